// The three programs' command lines share one skeleton (protocol/cli.ts): a mistake is one line
// naming it and a pointer to --help, exit 2; --help and --version go to stdout, exit 0.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EXIT_USAGE, runCli, UsageError } from '../../protocol/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const PROGRAMS = [
  ['cloud-network', 'agent/main.ts'],
  ['cloud-network-helper', 'helper/main.ts'],
  ['cnctl', 'cnctl/main.ts'],
] as const;

for (const [name, entry] of PROGRAMS) {
  test(`${name}: a usage error, --help and --version`, (t) => {
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import=tsx', entry, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const wrong = run('--no-such-option');
    t.is(wrong.status, 2);
    t.regex(wrong.stderr, new RegExp(`^${name}: unknown option --no-such-option\\nTry '${name} --help'\\.\\n$`));
    // a near miss gets a suggestion, in the program's words rather than the parser's
    const typo = run('--hepl');
    t.is(typo.status, 2);
    t.is(typo.stderr, `${name}: unknown option --hepl; did you mean --help?\nTry '${name} --help'.\n`);
    t.is(wrong.stdout, '');
    const help = run('--help');
    t.is(help.status, 0);
    t.regex(help.stdout, new RegExp(`^Usage: ${name} `));
    const version = run('--version');
    t.is(version.status, 0);
    t.regex(version.stdout, new RegExp(`^${name} \\d+\\.\\d+\\.\\d+\\n$`));
  });
}

test('runCli: a usage error is one line and the --help pointer; other errors are the program\'s', async (t) => {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } };
  const cli = (parse: (argv: string[]) => string) => ({ name: 'prog', usage: 'Usage: prog\n', parse, asks: () => undefined, run: async () => 0 });
  t.is(await runCli(cli(() => { throw new UsageError('no such thing'); }), [], io), EXIT_USAGE);
  t.is(err, "prog: no such thing\nTry 'prog --help'.\n");
  t.is(out, '');
  await t.throwsAsync(runCli(cli(() => { throw new Error('a bug'); }), [], io), { message: 'a bug' });
});
