// cnctl's bash completion, run by bash with the bash-completion package's functions, as a shell
// completing a command line would run it.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../lib/staged-install.js';

const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';

/** What bash offers for the last word of `words` (the word being completed; '' for a new one). */
function complete(...words: string[]): string[] {
  if (!existsSync(BASH_COMPLETION)) throw new Error(`${BASH_COMPLETION} is missing: install the bash-completion package (tools/install-debian-packages does)`);
  const script = [
    `source ${BASH_COMPLETION}`,
    `source ${join(REPO, 'completions/cnctl')}`,
    'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}',
    '_cnctl cnctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  return execFileSync('bash', ['-c', script, 'bash', 'cnctl', ...words], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
}

test('the first word is a command', (t) => {
  t.deepEqual(complete(''), ['list', 'reload', 'show', 'status', 'wait']);
  t.deepEqual(complete('st'), ['status']);
});

test('status offers system and network, and network the links of this machine', (t) => {
  t.deepEqual(complete('status', ''), ['network', 'system']);
  // other tests add and remove links meanwhile: what bash offers lies between the links before and after
  const before = new Set(readdirSync('/sys/class/net'));
  const offered = complete('status', 'network', '');
  const after = new Set(readdirSync('/sys/class/net'));
  t.true(offered.includes('lo'));
  for (const link of offered) t.true(before.has(link) || after.has(link), `${link} is no link`);
  for (const link of before) if (after.has(link)) t.true(offered.includes(link), `${link} not offered`);
  t.deepEqual(complete('status', 'system', ''), []);
});

test('show offers ssh-keys and document; reload and wait take nothing but options', (t) => {
  t.deepEqual(complete('show', ''), ['document', 'ssh-keys']);
  t.deepEqual(complete('reload', ''), []);
  t.deepEqual(complete('wait', ''), []);
  t.deepEqual(complete('wait', '--timeout', ''), []);
});

test('options complete anywhere, and an option’s value does not count as a command word', (t) => {
  t.deepEqual(complete('--'), ['--config', '--help', '--json', '--json=', '--no-pager', '--no-wait', '--state-dir', '--timeout', '--url', '--version']);
  t.deepEqual(complete('--json='), ['pretty', 'short']);
  t.deepEqual(complete('--json', ''), ['list', 'reload', 'show', 'status', 'wait']);
  t.deepEqual(complete('--json=s'), ['short']);
  t.deepEqual(complete('--json', 'status', 'n'), ['network']);
  t.deepEqual(complete('--config', '/nonexistent.toml', 'status', ''), ['network', 'system']);
  t.deepEqual(complete('--url', ''), ['http://127.0.0.1:5209']);
});
