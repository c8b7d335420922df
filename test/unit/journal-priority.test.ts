// Under systemd, each log line carries its priority for journald ("<4>" for a warning), so that
// `journalctl -p warning` finds the warnings; anywhere else the lines are unchanged.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../lib/staged-install.js';

const TSX = join(REPO, 'node_modules/tsx/dist/esm/index.mjs');

const AGENT = `
import { createLogger } from ${JSON.stringify(join(REPO, 'agent/process/logging.ts'))};
const log = createLogger({ level: 'Debug', format: process.argv[1] });
log.debug('a detail'); log.info('a change'); log.warn('a warning'); log.error('an error');
`;
const HELPER = `
import { JsonLineLog } from ${JSON.stringify(join(REPO, 'helper/log.ts'))};
const log = new JsonLineLog('cloud-network-helper', 'debug');
log.debug('a detail'); log.info('a request'); log.warn('a refusal'); log.error('a failure');
`;

/**
 * Runs node with `nodeArgs`, its stdout and stderr going to one file, as systemd connects a
 * service to the journal, and JOURNAL_STREAM naming that file (journal) or unset; returns the
 * exit status and the file's lines.
 */
function spawnToStream(t: { teardown(fn: () => void): void }, nodeArgs: string[], journal: boolean): { status: number | null; lines: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'cn-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'stream');
  const fd = openSync(path, 'w');
  const { dev, ino } = statSync(path, { bigint: true });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (journal) env.JOURNAL_STREAM = `${dev}:${ino}`;
  const result = spawnSync(process.execPath, [`--import=${TSX}`, ...nodeArgs], { stdio: ['ignore', fd, fd], env, cwd: dir, timeout: 60_000 });
  closeSync(fd);
  return { status: result.status, lines: readFileSync(path, 'utf8').trim().split('\n') };
}

/** Runs an inline `program` (see spawnToStream); it must succeed. */
function run(t: { teardown(fn: () => void): void }, program: string, args: string[], journal: boolean): string[] {
  const { status, lines } = spawnToStream(t, ['--input-type=module', '-e', program, ...args], journal);
  if (status !== 0) throw new Error(`the program failed: ${lines.join('\n')}`);
  return lines;
}

for (const format of ['text', 'json']) {
  test(`the agent’s ${format} lines start with their syslog priority when stderr is the journal`, (t) => {
    const lines = run(t, AGENT, [format], true);
    t.deepEqual(lines.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>'], lines.join('\n'));
    if (format === 'json') t.is(JSON.parse(lines[2]!.slice(3)).msg, 'a warning');
    // journald records the time: the line carries none of its own
    else t.is(lines[2], '<4>WARNING a warning');
  });

  test(`the agent’s ${format} lines are unchanged when stderr is not the journal`, (t) => {
    const lines = run(t, AGENT, [format], false);
    t.is(lines.length, 4);
    t.true(lines.every((l) => !l.startsWith('<')), lines.join('\n'));
    if (format === 'text') t.regex(lines[2]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ WARNING a warning$/);
  });
}

/** Runs a program's entry point as systemd would (journal or not). */
const runProgram = (t: { teardown(fn: () => void): void }, entry: string, args: string[], journal: boolean) => spawnToStream(t, [join(REPO, entry), ...args], journal);

test('the agent’s own error lines, outside its logger, are errors in the journal, every line of them', (t) => {
  const missing = runProgram(t, 'agent/main.ts', ['--once', '--config', '/nonexistent/cloud-network.toml'], true);
  t.is(missing.status, 1);
  t.deepEqual(missing.lines, ['<3>cloud-network: /nonexistent/cloud-network.toml: no such file: a file named with --config must exist (without --config a missing /etc/cloud-network/cloud-network.toml means the defaults)']);
  const usage = runProgram(t, 'agent/main.ts', ['--bogus'], true);
  t.is(usage.status, 2);
  t.is(usage.lines.length, 2);
  t.true(usage.lines.every((l) => l.startsWith('<3>cloud-network: ') || l === "<3>Try 'cloud-network --help'."), usage.lines.join('\n'));
  // not the journal: the same text, without the prefix
  t.deepEqual(runProgram(t, 'agent/main.ts', ['--once', '--config', '/nonexistent/cloud-network.toml'], false).lines, [missing.lines[0]!.slice(3)]);
});

test('the helper’s refusal to start is at its priority in the journal, its JSON record intact', (t) => {
  const run = runProgram(t, 'helper/main.ts', ['--socket', '/nonexistent/helper.sock', '--ledger', '/nonexistent/ledger.json', '--allow-user', 'cn-no-such-user'], true);
  t.is(run.status, 1);
  const fatal = run.lines.find((l) => l.includes('--allow-user'))!;
  t.true(fatal.startsWith('<2>{'), run.lines.join('\n'));
  t.like(JSON.parse(fatal.slice(3)), { level: 60, msg: 'the user cn-no-such-user (--allow-user) does not exist; create it (the package\'s sysusers.d entry does) or name an existing user' });
  const usage = runProgram(t, 'helper/main.ts', ['--socket', 'relative.sock'], true);
  t.is(usage.status, 2);
  t.is(usage.lines[0], '<3>cloud-network-helper: --socket relative.sock: expected an absolute path (starting with /)');
});

test('the helper’s lines start with their syslog priority when stdout is the journal, and only then', (t) => {
  const journal = run(t, HELPER, [], true);
  t.deepEqual(journal.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>'], journal.join('\n'));
  t.is(JSON.parse(journal[2]!.slice(3)).msg, 'a refusal');
  const plain = run(t, HELPER, [], false);
  t.deepEqual(plain.map((l) => JSON.parse(l).msg), ['a detail', 'a request', 'a refusal', 'a failure']);
});
