// The helper's own log and file writes: bunyan's record format without bunyan, and a file
// replaced whole or not at all.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { replaceFile } from '../../helper/files.js';
import { AuditLog } from '../../helper/audit.js';
import { JsonLineLog, type LevelName } from '../../helper/log.js';

function capture(level?: LevelName): { log: JsonLineLog; records: () => Record<string, unknown>[]; lines: string[] } {
  const lines: string[] = [];
  const log = new JsonLineLog('cloud-network-helper', level, (line) => void lines.push(line));
  return { log, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

test('a record is one line with bunyan fields, the caller fields and the message', (t) => {
  const { log, lines, records } = capture();
  log.info({ audit: 'request', method: 'apply', durationMs: 1.5 }, 'apply from pid 7 uid 0');
  log.warn('plain message');
  t.is(lines.length, 2);
  t.true(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n')));
  const [first, second] = records();
  t.like(first, { name: 'cloud-network-helper', pid: process.pid, level: 30, audit: 'request', method: 'apply', durationMs: 1.5, msg: 'apply from pid 7 uid 0', v: 0 });
  t.is(typeof first!.hostname, 'string');
  t.true(!Number.isNaN(Date.parse(String(first!.time))));
  t.like(second, { level: 40, msg: 'plain message' });
});

test('records below the level are dropped; the record fields cannot be overwritten', (t) => {
  const { log, records } = capture('warn');
  log.debug('no');
  log.info({ a: 1 }, 'no');
  log.error({ level: 99, pid: -1, msg: 'forged', name: 'other' }, 'kept');
  log.fatal('also kept');
  t.deepEqual(records().map((r) => [r.level, r.msg, r.pid, r.name]), [
    [50, 'kept', process.pid, 'cloud-network-helper'],
    [60, 'also kept', process.pid, 'cloud-network-helper'],
  ]);
});

test('errors keep their message, name, code and stack; a field JSON cannot write does not lose the line', (t) => {
  const { log, records } = capture();
  log.error({ err: Object.assign(new Error('socket closed'), { code: 'ECONNRESET' }) }, 'connection error');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  log.warn({ cyclic }, 'still logged');
  const [error, warned] = records();
  t.like(error!.err, { message: 'socket closed', name: 'Error', code: 'ECONNRESET' });
  t.regex(String((error!.err as { stack: string }).stack), /socket closed\n\s+at /);
  t.like(warned, { level: 40, msg: 'still logged', name: 'cloud-network-helper' });
  t.regex(String(warned!.logError), /could not be written/);
});

test("bunyan's own reader takes the records as bunyan records", (t) => {
  const { log, lines } = capture();
  log.info({ method: 'apply' }, 'apply from pid 7 uid 0');
  // a line it does not recognise as a record, it prints as it came
  const shown = spawnSync(process.execPath, [join('node_modules', 'bunyan', 'bin', 'bunyan'), '-o', 'short', '--color'], { input: lines.join(''), encoding: 'utf8' });
  t.is(shown.status, 0, shown.stderr);
  const text = shown.stdout.replace(/\x1b\[[0-9;]*m/g, ''); // colours, if the environment forces them
  t.regex(text, /INFO cloud-network-helper: apply from pid 7 uid 0 \(method=apply\)/);
  t.false(text.includes('{"name"'));
});

test('an audit record is a warning when an operation was refused or failed, and stays the same record', (t) => {
  const { log, records } = capture();
  const audit = new AuditLog(log);
  const peer = { pid: 7, uid: 995, gid: 995 };
  const operations = [
    { kind: 'address.add' as const, link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
    { kind: 'address.add' as const, link: 'lo', address: '10.4.1.6/24', noPrefixRoute: true },
  ];
  audit.request({ connection: 1, peer, method: 'apply', id: 1, durationMs: 2, operations: operations.slice(0, 1), results: [{ index: 0, kind: 'address.add', outcome: 'applied' }] });
  audit.request({
    connection: 1,
    peer,
    method: 'apply',
    id: 2,
    durationMs: 2,
    operations,
    results: [
      { index: 0, kind: 'address.add', outcome: 'already' },
      { index: 1, kind: 'address.add', outcome: 'refused', reason: 'never lo' },
    ],
  });
  const [done, refused] = records();
  t.like(done, { level: 30, audit: 'request', msg: 'apply from pid 7 uid 995' });
  t.like(refused, { level: 40, audit: 'request', outcomes: { applied: 0, already: 1, refused: 1, failed: 0 }, msg: 'apply from pid 7 uid 995: 1 operations refused or failed' });
});

test('replaceFile writes the whole text with the mode and leaves no temporary file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'ledger.json');
  writeFileSync(path, 'old', { mode: 0o644 });
  const text = `${'x'.repeat(300_000)}é\n`;
  await replaceFile(path, text, 0o600);
  t.is(readFileSync(path, 'utf8'), text);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.deepEqual(readdirSync(dir), ['ledger.json']);
  await t.throwsAsync(replaceFile(join(dir, 'absent', 'x.json'), 'y', 0o600), { code: 'ENOENT' });
  t.is(readFileSync(path, 'utf8'), text);
});
