import test from 'ava';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ConfigError, configNotes, DEFAULT_CONFIG, loadConfig, parseConfig, parseDuration } from '../../agent/process/config.js';
import { createLogger, formatTextRecord } from '../../agent/process/logging.js';

const PATH = '/etc/cloud-network/cloud-network.toml';

test('a missing file means the defaults', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = await loadConfig(join(dir, 'absent.toml'));
  t.deepEqual(config, {
    system: {
      logLevel: 'Info',
      logFormat: 'text',
      refreshTimerMs: 300_000,
      provider: 'auto',
      helperSocket: '/run/cloud-network/helper.sock',
      stateDir: '/run/cloud-network',
    },
    network: { listen: '127.0.0.1:5209', supplementary: [], routeTableBase: 20_000 },
  });
  // the defaults are not shared: changing one result leaves the next untouched
  config.network.supplementary.push('eth9');
  t.deepEqual(DEFAULT_CONFIG.network.supplementary, []);
});

test('an empty file means the defaults', (t) => {
  t.deepEqual(parseConfig('', PATH), DEFAULT_CONFIG);
});

test('every key is read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'cloud-network.toml');
  await writeFile(
    path,
    `# a full configuration
[System]
LogLevel = "debug"
LogFormat = "json"
RefreshTimer = "5m"
Provider = "ec2"
HelperSocket = "/run/cn/helper.sock"
StateDir = "/var/lib/cn"

[Network]
Listen = "[::1]:8080"
Supplementary = "eth0  eth2\tens6"
RouteTableBase = 22000
`,
  );
  t.deepEqual(await loadConfig(path), {
    system: {
      logLevel: 'Debug',
      logFormat: 'json',
      refreshTimerMs: 300_000,
      provider: 'ec2',
      helperSocket: '/run/cn/helper.sock',
      stateDir: '/var/lib/cn',
    },
    network: { listen: '[::1]:8080', supplementary: ['eth0', 'eth2', 'ens6'], routeTableBase: 22_000 },
  });
});

test('log levels are case-insensitive', (t) => {
  for (const [text, level] of [
    ['TRACE', 'Trace'],
    ['warning', 'Warning'],
    ['Warn', 'Warning'],
    ['ERROR', 'Error'],
    ['fatal', 'Fatal'],
    ['Panic', 'Panic'],
  ] as const) {
    t.is(parseConfig(`[System]\nLogLevel = "${text}"`, PATH).system.logLevel, level);
  }
});

test('durations take Go-style units', (t) => {
  t.is(parseDuration('300s'), 300_000);
  t.is(parseDuration('5m'), 300_000);
  t.is(parseDuration('1h30m'), 5_400_000);
  t.is(parseDuration('1.5s'), 1_500);
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('300'), undefined);
  t.is(parseDuration('5 minutes'), undefined);
  t.is(parseDuration('-5s'), undefined);
});

const rejected = test.macro((t, text: string, mentions: RegExp[]) => {
  const error = t.throws(() => parseConfig(text, PATH), { instanceOf: ConfigError });
  t.true(error!.message.startsWith(`${PATH}: `), error!.message);
  for (const pattern of mentions) t.regex(error!.message, pattern);
});

test('a misspelt key is an error naming the key and the allowed ones', rejected, '[System]\nLogLevl = "Info"', [/\[System\] LogLevl/, /allowed in \[System\]: LogLevel, LogFormat/]);
test('sections and keys are read in any case, as Viper read them for the Go cloud-network-setup', (t) => {
  const config = parseConfig('[network]\nlisten = "127.0.0.1:1"\nSUPPLEMENTARY = "eth1"\n[SYSTEM]\nloglevel = "debug"', PATH);
  t.is(config.network.listen, '127.0.0.1:1');
  t.deepEqual(config.network.supplementary, ['eth1']);
  t.is(config.system.logLevel, 'Debug');
});
test('one key in two spellings is an error', rejected, '[Network]\nListen = "127.0.0.1:1"\nlisten = "127.0.0.1:2"', [/\[Network\] Listen and listen are the same key: set it once/]);
test('one section in two spellings is an error', rejected, '[Network]\nListen = "127.0.0.1:1"\n[network]\nSupplementary = "eth1"', [/\[Network\] and \[network\] are the same section/]);
test('the Go tool\'s PrimaryAddress= is read, said to do nothing, and must be a boolean', (t) => {
  const config = parseConfig('[Network]\nPrimaryAddress = true', PATH);
  t.true(config.network.primaryAddress);
  t.deepEqual(configNotes(config).length, 1);
  t.regex(configNotes(config)[0]!, /PrimaryAddress= is read and does nothing/);
  t.deepEqual(configNotes(parseConfig('', PATH)), []);
  t.throws(() => parseConfig('[Network]\nPrimaryAddress = "yes"', PATH), { message: /PrimaryAddress = "yes" is not allowed: true or false/ });
});
test('an unknown section is an error', rejected, '[Networking]\nListen = "127.0.0.1:1"', [/unknown section \[Networking\]/, /\[System\], \[Network\]/]);
test('a key outside any section is an error', rejected, 'LogLevel = "Info"', [/LogLevel is outside any section: put it under \[System\]/]);
test('an unknown log level is an error listing the levels', rejected, '[System]\nLogLevel = "verbose"', [/\[System\] LogLevel = "verbose"/, /Trace, Debug, Info, Warning, Error, Fatal, Panic/]);
test('an unknown log format is an error', rejected, '[System]\nLogFormat = "xml"', [/LogFormat/, /text, json/]);
test('a refresh timer without a unit is an error suggesting one', rejected, '[System]\nRefreshTimer = 300', [/RefreshTimer = 300/, /"300s"/]);
test('a refresh timer that is not a duration is an error', rejected, '[System]\nRefreshTimer = "soon"', [/RefreshTimer/, /units: ms, s, m, h/]);
test('a refresh timer under a second is an error', rejected, '[System]\nRefreshTimer = "10ms"', [/between 1s and 24h/]);
test('an unknown provider is an error', rejected, '[System]\nProvider = "oracle"', [/Provider = "oracle"/, /auto, azure, ec2, gcp/]);
test('a relative helper socket path is an error', rejected, '[System]\nHelperSocket = "helper.sock"', [/HelperSocket/, /absolute path/]);
test('a relative state directory is an error', rejected, '[System]\nStateDir = "run"', [/StateDir/, /absolute path/]);
test('a listen address without a port is an error', rejected, '[Network]\nListen = "127.0.0.1"', [/Listen = "127.0.0.1"/, /\[IPV6\]:PORT/]);
test('an IPv6 listen address without brackets is an error', rejected, '[Network]\nListen = "::1:5209"', [/Listen/]);
test('a host name other than localhost as listen address is an error', rejected, '[Network]\nListen = "example.org:5209"', [/Listen/, /localhost:PORT/]);
test('localhost is a listen address, as the REST API and cnctl take it', async (t) => {
  t.is(parseConfig('[Network]\nListen = "localhost:5209"\n', PATH).network.listen, 'localhost:5209');
});
test('a listen port over 65535 is an error', rejected, '[Network]\nListen = "127.0.0.1:70000"', [/Listen/]);
test('a supplementary name that cannot be an interface is an error', rejected, '[Network]\nSupplementary = "eth0 averyveryverylongname"', [
  /Supplementary/,
  /"averyveryverylongname" is not an interface name/,
]);
test('a comma-separated Supplementary is an error that shows the spaces it takes', rejected, '[Network]\nSupplementary = "eth0,eth1"', [
  /Supplementary = "eth0,eth1" is not allowed: "eth0,eth1" is not an interface name: separate names with spaces \("eth0 eth1"\)/,
]);
test('a quoted Supplementary name is an error', rejected, '[Network]\nSupplementary = ["\'eth0\'"]', [/"'eth0'" is not an interface name/]);

test('a file named with --config must exist; without --config a missing file means the defaults', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'absent.toml');
  const error = await t.throwsAsync(loadConfig(path, { named: true }), { instanceOf: ConfigError });
  t.regex(error!.message, new RegExp(`^${path}: no such file: a file named with --config must exist`));
  t.deepEqual(await loadConfig(path), DEFAULT_CONFIG);
});

test('a route table base outside the managed range is an error that explains the range', rejected, '[Network]\nRouteTableBase = 254', [
  /RouteTableBase = 254/,
  /from 20000 to 29000/,
  /20000–29999/,
]);
test('a route table base too close to the end of the range is an error', rejected, '[Network]\nRouteTableBase = 29900', [/from 20000 to 29000/]);
test('a route table base given as text is an error', rejected, '[Network]\nRouteTableBase = "20000"', [/RouteTableBase/]);
test('a string where a section should be is an error', rejected, 'System = "x"', [/System must be a section/]);
test('a file that is not TOML is an error with its line and column, on one line', rejected, '[System]\nLogLevel = Info\n', [/not valid TOML: line 2, column 12: \S/, /^[^\n]*$/]);

test('an unreadable file is an error naming it', async (t) => {
  if (process.getuid?.() === 0) {
    // root reads any file; a directory in its place is unreadable for everyone
    const dir = await mkdtemp(join(tmpdir(), 'cn-config-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const error = await t.throwsAsync(loadConfig(dir), { instanceOf: ConfigError });
    t.regex(error!.message, new RegExp(`^${dir}: cannot read the configuration file \\(EISDIR\\)`));
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'cn-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'c.toml');
  await writeFile(path, '');
  await chmod(path, 0);
  const error = await t.throwsAsync(loadConfig(path), { instanceOf: ConfigError });
  t.regex(error!.message, /EACCES/);
});

// ---- the logger honours LogLevel and LogFormat

function capture(level: 'Info' | 'Debug' | 'Warning', format: 'text' | 'json') {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter((l) => l !== '')));
  return { log: createLogger({ level, format, stream }), lines };
}

test('the text log reads as time, level, message and context', (t) => {
  const line = formatTextRecord({ time: new Date('2026-11-28T12:00:00.123Z'), level: 30, msg: 'Successfully added address', address: '10.4.0.5/24', link: 'eth1', name: 'cloud-network', pid: 1, hostname: 'h', v: 0 });
  t.is(line, "2026-11-28T12:00:00Z INFO Successfully added address address='10.4.0.5/24' link='eth1'");
});

test('the logger drops records below LogLevel and writes text lines', async (t) => {
  const { log, lines } = capture('Info', 'text');
  log.debug('hidden');
  log.info({ link: 'eth1' }, "Successfully added address='10.4.0.5/24'");
  log.warn({ err: new Error('IMDS timed out') }, 'metadata fetch failed');
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO Successfully added address='10\.4\.0\.5\/24' link='eth1'$/);
  t.regex(lines[1]!, / WARNING metadata fetch failed err='IMDS timed out'$/);
});

test('the JSON log is one bunyan record per line', async (t) => {
  const { log, lines } = capture('Warning', 'json');
  log.info('hidden');
  log.error({ link: 'eth1' }, 'apply failed');
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 1);
  const record = JSON.parse(lines[0]!);
  t.is(record.level, 50);
  t.is(record.msg, 'apply failed');
  t.is(record.link, 'eth1');
});
