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
 * Runs `program` with its stdout and stderr going to one file, as systemd connects a service to
 * the journal, and JOURNAL_STREAM naming that file (journal) or unset; returns the file's lines.
 */
function run(t: { teardown(fn: () => void): void }, program: string, args: string[], journal: boolean): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'cn-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'stream');
  const fd = openSync(path, 'w');
  const { dev, ino } = statSync(path, { bigint: true });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (journal) env.JOURNAL_STREAM = `${dev}:${ino}`;
  const result = spawnSync(process.execPath, [`--import=${TSX}`, '--input-type=module', '-e', program, ...args], { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  if (result.status !== 0) throw new Error(`the program failed: ${readFileSync(path, 'utf8')}`);
  return readFileSync(path, 'utf8').trim().split('\n');
}

for (const format of ['text', 'json']) {
  test(`the agent’s ${format} lines start with their syslog priority when stderr is the journal`, (t) => {
    const lines = run(t, AGENT, [format], true);
    t.deepEqual(lines.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>'], lines.join('\n'));
    if (format === 'json') t.is(JSON.parse(lines[2]!.slice(3)).msg, 'a warning');
    else t.regex(lines[2]!, /^<4>\S+ WARNING a warning$/);
  });

  test(`the agent’s ${format} lines are unchanged when stderr is not the journal`, (t) => {
    const lines = run(t, AGENT, [format], false);
    t.is(lines.length, 4);
    t.true(lines.every((l) => !l.startsWith('<')), lines.join('\n'));
  });
}

test('the helper’s lines start with their syslog priority when stdout is the journal, and only then', (t) => {
  const journal = run(t, HELPER, [], true);
  t.deepEqual(journal.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>'], journal.join('\n'));
  t.is(JSON.parse(journal[2]!.slice(3)).msg, 'a refusal');
  const plain = run(t, HELPER, [], false);
  t.deepEqual(plain.map((l) => JSON.parse(l).msg), ['a detail', 'a request', 'a refusal', 'a failure']);
});
