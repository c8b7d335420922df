// cnctl's command line: mistakes answered in cnctl's words with a suggestion, and the Go
// cloud-network-setup's short forms that scripts still use.
import test from 'ava';
import { parseCommandLine } from '../../cnctl/command-line.js';
import { suggest, UsageError } from '../../protocol/cli.js';

const mistake = (argv: string[]) => {
  const error = (() => {
    try {
      parseCommandLine(argv);
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  if (!(error instanceof UsageError)) throw new Error(`${argv.join(' ')}: no usage error`);
  return error.message;
};

test('a mistyped option, command or noun gets its likely meaning', (t) => {
  t.is(mistake(['--jsn', 'status']), 'unknown option --jsn; did you mean --json?');
  t.is(mistake(['stauts']), 'unknown command "stauts"; did you mean status?');
  t.is(mistake(['status', 'netwrok']), 'unknown status "netwrok"; did you mean network?');
  t.is(mistake(['show', 'ssh']), 'unknown show "ssh"; did you mean ssh-keys?');
  t.is(mistake(['frobnicate']), 'unknown command "frobnicate" (choose list, status, show, reload, wait, help, version)');
  t.is(mistake(['status', '--url']), '--url needs a value');
  t.is(mistake(['status', '--help=yes']), '--help takes no value');
});

test('the Go tool\'s short forms work: s for status, show k and show d', (t) => {
  t.deepEqual(parseCommandLine(['s']).command, { kind: 'status' });
  t.deepEqual(parseCommandLine(['s', 'network', 'eth1']).command, { kind: 'status-network', link: 'eth1' });
  t.deepEqual(parseCommandLine(['show', 'k']).command, { kind: 'show-ssh-keys' });
  t.deepEqual(parseCommandLine(['show', 'd']).command, { kind: 'show-document' });
});

test('what the Go tool showed and cloud-network does not keep is refused with the reason', (t) => {
  t.regex(mistake(['show', 'credentials']), /^show credentials: not available: the instance credentials are secrets/);
  t.regex(mistake(['show', 'c']), /never reads them/);
  t.regex(mistake(['show', 'pkcs7']), /signatures are not read/);
  t.regex(mistake(['show', 'project']), /project metadata is not read/);
});

test('suggest: a prefix, or the nearest within two edits, else nothing', (t) => {
  t.is(suggest('--js', ['--json', '--url']), '--json');
  t.is(suggest('--jsno', ['--json', '--url']), '--json');
  t.is(suggest('--xyzzy', ['--json', '--url']), undefined);
  t.is(suggest('x', ['s', 'show']), undefined, 'a one-letter word is not worth guessing from');
});
