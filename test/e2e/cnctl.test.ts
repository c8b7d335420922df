// cnctl, run as a real process against the REST API served in-process from realistic views,
// and cnctl reload delivering a real SIGHUP.
import test, { type ExecutionContext } from 'ava';
import bunyan from 'bunyan';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi, type ApiLimits } from '../../agent/report/api/server.js';
import { Metrics } from '../../agent/report/metrics.js';
import type { ProviderName } from '../../agent/metadata/model.js';
import { block, style, wantsColour } from '../../cnctl/output.js';
import { reload } from '../../cnctl/reload.js';
import { FakeView, SECRETS, fixture } from '../lib/api-fixtures.js';
import { createNamespace } from '../lib/netns.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * cnctl processes running at once. Each is a tsx start-up; this file's ~25 at once would starve
 * the namespace tests that run beside it (an IMDS simulator that cannot start in time).
 */
const MAX_RUNNING = 4;
let running = 0;
const waiting: (() => void)[] = [];

async function cnctl(args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number } = {}): Promise<Result> {
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => waiting.push(resolve)); // handed a slot
  else running++;
  try {
    return await runCnctl(args, options);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function runCnctl(args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    delete env.NO_COLOR;
    if (options.env && 'NO_COLOR' in options.env) env.NO_COLOR = options.env.NO_COLOR;
    const child = spawn(process.execPath, ['--import=tsx', 'cnctl/main.ts', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined && { uid: options.uid, gid: options.uid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function agent(t: ExecutionContext, view: FakeView): Promise<string> {
  return (await agentWithSocket(t, view)).url;
}

/** The API on loopback TCP and, given a state directory, on its socket there too. */
async function agentWithSocket(t: ExecutionContext, view: FakeView, stateDir?: string, limits?: Partial<ApiLimits>): Promise<{ url: string; socket: string }> {
  const log = bunyan.createLogger({ name: 'cnctl-test', streams: [{ type: 'raw', stream: new bunyan.RingBuffer({ limit: 10 }) }] });
  const socketPath = stateDir === undefined ? undefined : join(stateDir, 'api.sock');
  const api = await startApi({ listen: '127.0.0.1:0', view, metrics: new Metrics(), log, ...(socketPath && { socketPath }), ...(limits && { limits }) });
  t.teardown(() => api.close());
  return { url: `http://127.0.0.1:${api.port}`, socket: socketPath ?? '' };
}

/** A loopback port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cnctl-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every block's colons line up, and continuation lines start under the values. */
function assertAligned(t: ExecutionContext, text: string): void {
  for (const chunk of text.trimEnd().split('\n\n')) {
    const lines = chunk.split('\n');
    const column = lines[0]!.indexOf(': ');
    t.true(column > 0, chunk);
    for (const line of lines) {
      if (line.trim().length === 0) continue;
      if (line.slice(0, column + 1).trim() === '') {
        t.is(line.search(/\S/), column + 2, `continuation misaligned: ${JSON.stringify(line)}`);
      } else {
        t.is(line.indexOf(': '), column, `label misaligned: ${JSON.stringify(line)}`);
      }
    }
  }
}

test('cnctl status network prints the Azure NICs with aligned labels from the neutral model', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).converge());
  const result = await cnctl(['status', 'network', 'eth1', '--url', url]);
  t.is(result.code, 0, result.stderr);
  t.is(
    result.stdout,
    [
      '       Name: eth1',
      '    Ifindex: 3',
      'MAC Address: 00:0d:3a:5d:2d:66',
      '    Primary: no',
      '  Public Ip: 20.253.243.104',
      ' Private Ip: 10.4.0.5/24',
      '             10.4.0.6/24',
      '       IPv6: -',
      ' Routed Ips: -',
      '     Subnet: 10.4.0.0/24',
      '    Gateway: 10.4.0.1',
      '        MTU: -',
      '      Table: 20001',
      '      State: configured',
      '',
    ].join('\n'),
  );
  t.false(result.stdout.includes('\u001b['), 'no colour when stdout is not a terminal');
});

for (const [provider, expected] of [
  ['azure', ['Name: eth0', 'Name: eth1', 'Table: main', 'Public Ip: 20.253.243.104']],
  ['ec2', ['Name: ens5', 'Name: ens6', 'Private Ip: 172.31.32.10/20', '172.31.32.11/20', 'Public Ip: 54.155.10.20', 'Gateway: 172.31.32.1']],
  ['gcp', ['Name: ens4', 'Name: ens5', 'MTU: 1460', 'Routed Ips: 10.130.8.0/24', 'Private Ip: 10.130.0.5/24']],
  ['oci', ['Name: enp0s3', 'Name: enp1s0', 'Private Ip: 10.0.4.5/24', 'Gateway: 10.0.4.1', 'Table: 20001']],
  ['aliyun', ['Name: eth0', 'Name: eth1', 'Private Ip: 192.168.1.21/24', '192.168.1.20/24', 'Gateway: 192.168.1.253']],
] as [ProviderName, string[]][]) {
  test(`cnctl status network shows every ${provider} NIC, the same labels in the same order`, async (t) => {
    const url = await agent(t, new FakeView(fixture(provider)).converge());
    const result = await cnctl(['status', 'network', '--url', url]);
    t.is(result.code, 0, result.stderr);
    for (const text of expected) t.true(result.stdout.includes(text), `${text} in\n${result.stdout}`);
    assertAligned(t, result.stdout);
    const labels = result.stdout
      .split('\n\n')[0]!
      .split('\n')
      .map((l) => l.split(': ')[0]!.trim())
      .filter((l) => l !== '' && !/^\d/.test(l));
    // the neutral labels, then the provider's own details under its own names
    const details = Object.keys(fixture(provider).snapshot.model.nics[0]!.details);
    t.deepEqual(labels, ['Name', 'Ifindex', 'MAC Address', 'Primary', 'Public Ip', 'Private Ip', 'IPv6', 'Routed Ips', 'Subnet', 'Gateway', 'MTU', 'Table', 'State', ...details]);
  });
}

const SYSTEM_GOLDEN: Record<ProviderName, string[]> = {
  azure: [
    '         Provider: azure',
    '      Instance Id: 02aab8a4-74ef-476e-8182-f6d2ba4166a6',
    '             Name: web-1',
    '           Region: eastus',
    '             Zone: 1',
    '             Size: Standard_D4s_v3',
    '            Image: Canonical:ubuntu-24_04-lts:server:latest',
    '   subscriptionId: 8d10da13-8125-4ba9-a717-bf7490507b3d',
    'resourceGroupName: rg-web',
  ],
  // the fixture's careless sessionToken detail is not shown
  ec2: [
    '    Provider: ec2',
    ' Instance Id: i-0123456789abcdef0',
    '        Name: ip-172-31-16-10',
    '      Region: eu-west-1',
    '        Zone: eu-west-1a',
    '        Size: c5.xlarge',
    '       Image: ami-0abcdef1234567890',
    '   accountId: 123456789012',
    'architecture: x86_64',
  ],
  gcp: [
    '   Provider: gcp',
    'Instance Id: 7454466891239578912',
    '       Name: gce-1',
    '     Region: us-central1',
    '       Zone: us-central1-a',
    '       Size: n2-standard-4',
    '      Image: debian-12',
    '   hostname: gce-1.us-central1-a.c.example.internal',
    'cpuPlatform: Intel Ice Lake',
  ],
  oci: [
    '          Provider: oci',
    '       Instance Id: ocid1.instance.oc1.eu-frankfurt-1.antheljtexample',
    '              Name: oci-1',
    '            Region: eu-frankfurt-1',
    '              Zone: EU-FRANKFURT-1-AD-1',
    '              Size: VM.Standard.E5.Flex',
    '             Image: ocid1.image.oc1.eu-frankfurt-1.example',
    '     compartmentId: ocid1.compartment.oc1..aaaaexample',
    'availabilityDomain: qIZq:EU-FRANKFURT-1-AD-1',
    '       faultDomain: FAULT-DOMAIN-2',
  ],
  // Alibaba's instance facts all have neutral fields: no details
  aliyun: [
    '   Provider: aliyun',
    'Instance Id: i-bp13znx0m0me8cquexample',
    '       Name: ecs-1',
    '     Region: cn-hangzhou',
    '       Zone: cn-hangzhou-i',
    '       Size: ecs.g7.xlarge',
    '      Image: aliyun_3_x64_20G_alibase_20240528.vhd',
  ],
};

for (const provider of ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as ProviderName[]) {
  test(`cnctl status system shows the ${provider} instance facts, then the provider's own details, aligned`, async (t) => {
    const url = await agent(t, new FakeView(fixture(provider)).converge());
    const result = await cnctl(['status', 'system', '--url', url]);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, [...SYSTEM_GOLDEN[provider], ''].join('\n'));
    assertAligned(t, result.stdout);
  });
}

test('cnctl status network LINK shows an EC2 ENI\'s own ids and security groups after the neutral fields', async (t) => {
  const url = await agent(t, new FakeView(fixture('ec2')).converge());
  const result = await cnctl(['status', 'network', 'ens6', '--url', url]);
  t.is(result.code, 0, result.stderr);
  t.is(
    result.stdout,
    [
      '              Name: ens6',
      '           Ifindex: 3',
      '       MAC Address: 02:1f:9a:00:00:02',
      '           Primary: no',
      '         Public Ip: -',
      '        Private Ip: 172.31.32.10/20',
      '                    172.31.32.11/20',
      '              IPv6: -',
      '        Routed Ips: -',
      '            Subnet: 172.31.32.0/20',
      '           Gateway: 172.31.32.1',
      '               MTU: -',
      '             Table: 20001',
      '             State: configured',
      '      interface-id: eni-0bbb',
      '     device-number: 1',
      '         subnet-id: subnet-0bbb',
      '            vpc-id: vpc-0abc',
      'security-group-ids: sg-0bbb2222',
      '',
    ].join('\n'),
  );
});

test('cnctl shows a link in error with the helper\'s reason', async (t) => {
  const url = await agent(t, new FakeView(fixture('ec2')).failSecondLink('helper refused address.add: permission denied'));
  const result = await cnctl(['status', 'network', 'ens6', '--url', url]);
  t.is(result.code, 0, result.stderr);
  t.true(result.stdout.includes('      State: error\n'));
  t.true(result.stdout.includes('      Error: helper refused address.add: permission denied\n'));
});

test('--json prints the API\'s JSON for every status command', async (t) => {
  const url = await agent(t, new FakeView(fixture('gcp')).converge());
  const status = await cnctl(['status', '--json', '--url', url]);
  t.like(JSON.parse(status.stdout), { provider: 'gcp', ready: true, helperReachable: true });
  const system = await cnctl(['--json', 'status', 'system', '--url', url]);
  t.like(JSON.parse(system.stdout), { provider: 'gcp', id: '7454466891239578912' });
  const network = await cnctl(['status', 'network', '--url', url, '--json']);
  t.deepEqual(
    (JSON.parse(network.stdout) as { links: { name: string }[] }).links.map((l) => l.name),
    ['ens4', 'ens5'],
  );
  const link = await cnctl(['status', 'network', 'ens5', '--json', '--url', url]);
  t.like(JSON.parse(link.stdout), { name: 'ens5', mtu: 1460, state: 'configured' });
  const keys = await cnctl(['show', 'ssh-keys', '--json', '--url', url]);
  t.deepEqual(JSON.parse(keys.stdout), { provider: 'gcp', sshKeys: ['alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgcp alice'] });
});

test('cnctl status shows the agent\'s health: version, provider, times, helper, pending', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).failSecondLink('helper refused rule.add: table 20001 outside the managed range'));
  const result = await cnctl(['status', '--url', url]);
  t.is(result.code, 1, result.stderr);
  t.true(result.stdout.includes('        Agent: cloud-network 0.1.0-test\n'), result.stdout);
  t.true(result.stdout.includes('     Provider: azure\n'));
  t.true(result.stdout.includes('       Helper: reachable\n'));
  t.true(result.stdout.includes('   Last Error: helper refused rule.add'));
  t.true(result.stdout.includes('   Error eth1: helper refused rule.add'));
  assertAligned(t, result.stdout);
});

test('cnctl show ssh-keys prints one key per line; show document prints the document without secrets', async (t) => {
  const url = await agent(t, new FakeView(fixture('ec2')).converge());
  const keys = await cnctl(['show', 'ssh-keys', '--url', url]);
  t.is(keys.code, 0);
  t.is(keys.stdout, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIec2 ec2-user\n');
  const document = await cnctl(['show', 'document', '--url', url]);
  t.is(document.code, 0);
  t.is((JSON.parse(document.stdout) as Record<string, Record<string, string>>)['meta-data']!['instance-id'], 'i-0123456789abcdef0');
  for (const secret of SECRETS) t.false(document.stdout.includes(secret));
});

test('an unreachable agent: exit 3 and a message naming the address, what happened and what to check', async (t) => {
  const port = await closedPort();
  const result = await cnctl(['status', 'system', '--url', `http://127.0.0.1:${port}`]);
  t.is(result.code, 3);
  t.is(result.stdout, '');
  t.true(result.stderr.includes(`http://127.0.0.1:${port}`));
  t.regex(result.stderr, /connection refused/);
  t.regex(result.stderr, /systemctl status cloud-network/);
});

test('without --url and without a socket in StateDir, the address comes from Listen= in the configuration', async (t) => {
  const port = await closedPort();
  const dir = await tempDir(t);
  const config = join(dir, 'cloud-network.toml');
  await writeFile(config, `[System]\nStateDir = "${dir}"\n[Network]\nListen = "127.0.0.1:${port}"\n`);
  const result = await cnctl(['status', '--config', config]);
  t.is(result.code, 3);
  t.true(result.stderr.includes(`http://127.0.0.1:${port}`), result.stderr);
  t.true(result.stderr.includes(`Listen= in ${config}`));
  t.true(result.stderr.includes(`as there is no ${join(dir, 'api.sock')}`), result.stderr);

  const url = await agent(t, new FakeView(fixture('azure')).converge());
  await writeFile(config, `[System]\nStateDir = "${dir}"\n[Network]\nListen = "${url.replace('http://', '')}"\n`);
  t.is((await cnctl(['status', 'system', '--config', config])).code, 0);
});

test('by default cnctl asks the agent on the socket in its StateDir, not on Listen=', async (t) => {
  const dir = await tempDir(t);
  await agentWithSocket(t, new FakeView(fixture('gcp')).converge(), dir);
  const config = join(dir, 'cloud-network.toml');
  // nothing listens on Listen=: an answer can only have come through the socket
  await writeFile(config, `[System]\nStateDir = "${dir}"\n[Network]\nListen = "127.0.0.1:${await closedPort()}"\n`);
  const result = await cnctl(['status', 'system', '--json', '--config', config]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { provider: 'gcp', id: '7454466891239578912' });
  // --state-dir names the same directory, whatever the configuration says
  const empty = join(dir, 'empty.toml');
  await writeFile(empty, '');
  const byStateDir = await cnctl(['status', '--state-dir', dir, '--config', empty]);
  t.is(byStateDir.code, 0, byStateDir.stderr);
  t.regex(byStateDir.stdout, /Provider: gcp/);
});

test('--socket PATH names the agent\'s socket; a socket nobody answers on is an error naming it', async (t) => {
  const dir = await tempDir(t);
  const { socket } = await agentWithSocket(t, new FakeView(fixture('ec2')).converge(), dir);
  const shown = await cnctl(['show', 'ssh-keys', '--socket', socket]);
  t.is(shown.code, 0, shown.stderr);
  t.is(shown.stdout, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIec2 ec2-user\n');

  const stale = join(dir, 'stale.sock');
  const holder = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", stale], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => holder.stdout!.once('data', resolve));
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  const refused = await cnctl(['status', '--socket', stale]);
  t.is(refused.code, 3);
  t.true(refused.stderr.includes(`cannot reach the cloud-network agent at ${stale}: connection refused`), refused.stderr);
  t.regex(refused.stderr, /given with --socket/);
  const missing = await cnctl(['status', '--socket', join(dir, 'none.sock')]);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /none\.sock: no such socket/);
});

test('a user holding idle connections on the socket crowds out neither another user\'s cnctl nor its own', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to connect as another user');
    return;
  }
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  // idle connections are held past the time each cnctl takes to start
  const { socket } = await agentWithSocket(t, new FakeView(fixture('azure')).converge(), dir, { headersTimeout: 120_000 });
  // nobody opens 20 idle connections, more than the 8 every user but root and the agent's may hold, and reports each one closed
  const script = `const net = require('net'); let closed = 0; const all = [];
for (let i = 0; i < 20; i++) { const s = net.connect(process.argv[1]); s.on('error', () => {}); s.on('close', () => console.log('closed', ++closed)); s.resume(); all.push(s); }
setTimeout(() => console.log('held'), 500); setTimeout(() => process.exit(0), 300000);`;
  const holder = spawn(process.execPath, ['-e', script, socket], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void holder.kill('SIGKILL'));
  let output = '';
  holder.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await waitForText(() => output, 'held');
  const closedCount = () => Number(/closed (\d+)\n(?![\s\S]*closed)/.exec(output)?.[1] ?? 0);
  // the holder hears of a close at its own pace, later when the machine is busy
  const settled = async (count: number) => {
    for (let waited = 0; closedCount() < count && waited < 10_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    return closedCount();
  };
  t.is(await settled(12), 12, 'nobody keeps 8 of its 20 connections');
  const asRoot = await cnctl(['status', '--socket', socket]);
  t.is(asRoot.code, 0, asRoot.stderr);
  t.is(await settled(12), 12, 'root\'s cnctl took none of nobody\'s places');
  const asNobody = await cnctl(['status', '--socket', socket], { uid: 65534, env: { HOME: dir } });
  t.is(asNobody.code, 0, asNobody.stderr);
  t.is(await settled(13), 13, 'nobody\'s own longest-waiting connection gave way to its cnctl');
});

test('another user holding every connection it may, each with an answer it leaves unread, cannot keep root\'s cnctl out', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to connect as another user');
    return;
  }
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  // an answer larger than the socket's buffer stays being sent while its reader reads no more
  const view = new FakeView(fixture('azure')).converge();
  view.current = { ...view.current!, document: { padding: 'x'.repeat(512 * 1024) } };
  const { socket } = await agentWithSocket(t, view, dir, { responseTimeout: 120_000 });
  // nobody asks for the document on 40 connections, more than the 32 its class may hold, one
  // after the other once the last one's answer began or it was closed, and reads no more
  const script = `const net = require('net'); let answered = 0, closed = 0;
const report = () => console.log('answered ' + answered + ' closed ' + closed);
const next = () => { if (answered + closed === 40) return;
  const s = net.connect(process.argv[1], () => s.write('GET /api/v1/document HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'));
  s.on('error', () => {}); s.once('readable', () => { if (s.readableLength > 0) { answered++; report(); next(); } });
  s.on('close', () => { closed++; report(); next(); }); };
next(); setTimeout(() => process.exit(0), 300000);`;
  const holder = spawn(process.execPath, ['-e', script, socket], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void holder.kill('SIGKILL'));
  let output = '';
  holder.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const counts = () => {
    const m = /answered (\d+) closed (\d+)\n$/.exec(output);
    return { answered: Number(m?.[1] ?? 0), closed: Number(m?.[2] ?? 0) };
  };
  while (counts().answered + counts().closed < 40) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(counts(), { answered: 32, closed: 8 }, 'nobody keeps 32 of its 40 connections, each being answered');
  const asRoot = await cnctl(['status', '--socket', socket]);
  t.is(asRoot.code, 0, asRoot.stderr);
  await new Promise((r) => setTimeout(r, 200));
  t.is(counts().closed, 8, 'root\'s cnctl came in on places of its own');
});

test('a configuration file named with --config that does not exist is an error, for status and reload alike', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'absent.toml');
  for (const args of [['status'], ['reload']]) {
    const result = await cnctl([...args, '--config', missing]);
    t.is(result.code, 1, args.join(' '));
    t.is(result.stderr, `cnctl: ${missing}: no such file: a file named with --config must exist (without --config a missing /etc/cloud-network/cloud-network.toml means the defaults)\n`);
  }
});

test('a configuration file that is not TOML still gives cnctl the agent’s address', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).converge());
  const dir = await tempDir(t);
  const config = join(dir, 'cloud-network.toml');
  await writeFile(config, `[System]\nLogLevel = Debug\n\n[Network]\nListen = "${url.replace('http://', '')}"\nSupplementary = "eth1\n`);
  const result = await cnctl(['status', 'system', '--config', config]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /Provider: azure/);
});

test('a configuration file its user may not read: cnctl tries the default address and says why', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to run cnctl as another user in a namespace of its own');
    return;
  }
  // a namespace of its own: nothing there listens on the default address
  const ns = createNamespace(t, 'cnctlcfg');
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const config = join(dir, 'cloud-network.toml');
  await writeFile(config, '[Network]\nListen = "127.0.0.1:6000"\n', { mode: 0o600 });
  const run = spawnSync('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import=tsx', 'cnctl/main.ts', 'status', '--config', config], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, HOME: dir },
  });
  t.regex(run.stderr, /cannot reach the cloud-network agent at http:\/\/127\.0\.0\.1:5209/);
  t.regex(run.stderr, new RegExp(`${config}: cannot read the configuration file \\(EACCES\\); the defaults were used`));
  t.not(run.status, 0);
});

test('an agent without metadata yet: exit 1 saying so and why', async (t) => {
  const view = new FakeView(fixture('azure'));
  view.state.metadataError = 'metadata from azure unavailable: HTTP 410 from /metadata/instance';
  const url = await agent(t, view);
  const result = await cnctl(['status', 'network', '--url', url]);
  t.is(result.code, 1);
  t.regex(result.stderr, /has no metadata yet: metadata from azure unavailable: HTTP 410/);
  // the agent's own health still answers, and names the failure
  const status = await cnctl(['status', '--url', url]);
  t.is(status.code, 1);
  t.regex(status.stdout, /Metadata Error: metadata from azure unavailable: HTTP 410/);
});

const FAILURES: [string, (view: FakeView) => void, RegExp][] = [
  ['a refused reload', (v) => (v.state.configError = 'reload refused: /etc/cloud-network/cloud-network.toml: not valid TOML: line 2; keeping the running configuration'), /^ Config Error: reload refused: .*not valid TOML/m],
  ['state files not written', (v) => (v.state.stateError = "state files not written: EACCES: permission denied, open '/run/cloud-network/links/eth1.json.9.tmp'"), /^  State Error: state files not written: EACCES/m],
  ['a helper that cannot be reached', (v) => Object.assign(v.state, { helperReachable: false, helperError: 'helper at /run/cloud-network/helper.sock is not reachable: ECONNREFUSED; will retry' }), /^       Helper: not reachable: helper at \/run\/cloud-network\/helper\.sock is not reachable: ECONNREFUSED/m],
  ['failing metadata', (v) => (v.state.metadataError = 'metadata from azure unavailable: HTTP 500'), /^Metadata Error: metadata from azure unavailable: HTTP 500/m],
  ['a link in error', (v) => (v.state.linkErrors = { eth1: 'kernel refused address.add: File exists' }), /^   Error eth1: kernel refused address\.add: File exists/m],
  ['not converged', (v) => (v.state.converged = false), /^    Converged: no/m],
];

for (const [what, inflict, shown] of FAILURES) {
  test(`cnctl status exits 1 for ${what}, shown in its own field; 0 when converged without failures`, async (t) => {
    const view = new FakeView(fixture('azure')).converge();
    const url = await agent(t, view);
    const healthy = await cnctl(['status', '--url', url]);
    t.is(healthy.code, 0, healthy.stdout);
    inflict(view);
    const result = await cnctl(['status', '--url', url]);
    t.is(result.code, 1, result.stdout);
    t.regex(result.stdout, shown);
    const json = await cnctl(['status', '--json', '--url', url]);
    t.is(json.code, 1);
    t.like(JSON.parse(json.stdout), { provider: 'azure' });
  });
}

test('cnctl wait exits 0 once the agent has converged, and at once when it has', async (t) => {
  const view = new FakeView(fixture('azure'));
  view.state.reconciling = true;
  const url = await agent(t, view);
  const waiting = cnctl(['wait', '--timeout', '60', '--url', url]);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  view.converge();
  const result = await waiting;
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, '');
  t.is((await cnctl(['wait', '--url', url])).code, 0);
});

test('cnctl wait gives up after --timeout with exit 1, saying why the agent has not converged', async (t) => {
  const view = new FakeView(fixture('azure')).failSecondLink('helper refused address.add: permission denied');
  view.state.metadataError = 'metadata from azure unavailable: HTTP 500';
  const url = await agent(t, view);
  const result = await cnctl(['wait', '--timeout', '1', '--url', url]);
  t.is(result.code, 1);
  t.is(result.stderr, 'cnctl: the agent has not converged after 1 s: metadata from azure unavailable: HTTP 500; eth1: helper refused address.add: permission denied\n');
});

test('cnctl wait for an agent that does not answer: exit 3 after --timeout, with the reason', async (t) => {
  const port = await closedPort();
  const result = await cnctl(['wait', '--timeout', '1', '--url', `http://127.0.0.1:${port}`]);
  t.is(result.code, 3);
  t.regex(result.stderr, /^cnctl: no answer from the agent after 1 s: cannot reach the cloud-network agent at http:\/\/127\.0\.0\.1:\d+: connection refused/);
});

test('an unknown link: exit 4 (not found, as systemctl for an unknown unit) with the agent\'s answer', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).converge());
  const result = await cnctl(['status', 'network', 'eth9', '--url', url]);
  t.is(result.code, 4);
  t.regex(result.stderr, /HTTP 404: no configured link named "eth9" \(links: eth0, eth1\)/);
});

for (const args of [[], ['frobnicate'], ['status', 'disks'], ['status', 'system', 'extra'], ['show'], ['--bogus', 'status'], ['status', '--url', 'not a url'], ['wait', 'now'], ['wait', '--timeout', '5s'], ['status', '--timeout', '5'], ['status', '--url', 'http://127.0.0.1:5209', '--socket', '/run/cloud-network/api.sock']]) {
  test(`usage error exits 2: cnctl ${args.join(' ')}`, async (t) => {
    const result = await cnctl(args);
    t.is(result.code, 2);
    t.regex(result.stderr, /^cnctl: .+\nTry 'cnctl --help'\.\n$/);
  });
}

test('cnctl list: one line per interface, as networkctl list', async (t) => {
  const url = await agent(t, new FakeView(fixture('ec2')).converge());
  const result = await cnctl(['list', '--url', url]);
  t.is(result.code, 0, result.stderr);
  t.is(
    result.stdout,
    [
      'IDX LINK MAC               NIC TABLE IPS STATE',
      '  2 ens5 02:1f:9a:00:00:01   0 main    1 configured',
      '  3 ens6 02:1f:9a:00:00:02   1 20001   2 configured',
      '',
      '2 interfaces listed.',
      '',
    ].join('\n'),
  );
  const json = await cnctl(['list', '--json=short', '--url', url]);
  t.is(json.stdout.trimEnd().split('\n').length, 1, 'short JSON is one line');
  t.deepEqual(JSON.parse(json.stdout).links.map((l: { name: string }) => l.name), ['ens5', 'ens6']);
});

test('--json=short is one line, --json and --json=pretty are indented, and every link key is present', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).converge());
  const short = await cnctl(['status', 'network', 'eth0', '--json=short', '--url', url]);
  const pretty = await cnctl(['status', 'network', 'eth0', '--json=pretty', '--url', url]);
  const plain = await cnctl(['--json', 'status', 'network', 'eth0', '--url', url]);
  t.is(short.stdout.split('\n').length, 2);
  t.is(pretty.stdout, plain.stdout);
  t.deepEqual(JSON.parse(short.stdout), JSON.parse(pretty.stdout));
  t.like(JSON.parse(short.stdout), { table: null, mtu: null, error: null, managedBy: null });
  const wrong = await cnctl(['status', '--json=yaml', '--url', url]);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr, /--json=yaml: choose --json=pretty or --json=short/);
});

/** cnctl on a pseudo-terminal (script(1)), so that it pages and colours as for a person. */
function onTerminal(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const command = ['--import=tsx', 'cnctl/main.ts', ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    // stdin stays open until cnctl is done: script(1) ends the session at its input's end
    const child = spawn('script', ['-qec', `${process.execPath} ${command}`, '/dev/null'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: stdout.replace(/\r\n/g, '\n'), stderr: '' }));
  });
}

test('on a terminal the output goes through the pager the environment names; --no-pager and a pipe do without', async (t) => {
  const url = await agent(t, new FakeView(fixture('azure')).converge());
  // a "pager" that marks every line, to see that it was used
  const env = { CNCTL_PAGER: "sed 's/^/paged: /'", NO_COLOR: '1' };
  const paged = await onTerminal(['status', 'system', '--url', url], env);
  t.is(paged.code, 0);
  t.regex(paged.stdout, /^paged: +Provider: azure$/m);
  const unpaged = await onTerminal(['status', 'system', '--no-pager', '--url', url], env);
  t.regex(unpaged.stdout, /^ +Provider: azure$/m);
  t.false(unpaged.stdout.includes('paged: '));
  const piped = await cnctl(['status', 'system', '--url', url], { env });
  t.false(piped.stdout.includes('paged: '));
  // SYSTEMD_PAGER and PAGER count when CNCTL_PAGER is not set; "cat" or empty means none
  t.regex((await onTerminal(['status', 'system', '--url', url], { SYSTEMD_PAGER: "sed 's/^/sd: /'", NO_COLOR: '1' })).stdout, /^sd: +Provider/m);
  t.false((await onTerminal(['status', 'system', '--url', url], { CNCTL_PAGER: 'cat', PAGER: "sed 's/^/p: /'", NO_COLOR: '1' })).stdout.includes('p: '));
});

test('status shows each time also as how long ago', async (t) => {
  const view = new FakeView(fixture('azure')).converge();
  const since = Date.now();
  view.state.lastSuccess = new Date(since - 125_000).toISOString();
  const url = await agent(t, view);
  const result = await cnctl(['status', '--url', url]);
  // cnctl may wait for a slot and start slowly: "ago" lies between 125 s and 125 s + the time taken
  const [, minutes, seconds] = /Last Success: \S+Z \((\d+)min (\d+)s ago\)/.exec(result.stdout) ?? [];
  t.truthy(minutes, result.stdout);
  const ago = Number(minutes) * 60 + Number(seconds);
  t.true(ago >= 125 && ago <= 126 + (Date.now() - since) / 1000, result.stdout);
});

test('--help and --version exit 0', async (t) => {
  const help = await cnctl(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: cnctl /);
  const version = await cnctl(['--version']);
  t.is(version.code, 0);
  t.regex(version.stdout, /^cnctl \d+\.\d+\.\d+\n$/);
});

test('colour only on a terminal and never with NO_COLOR set', (t) => {
  t.true(wantsColour({ isTTY: true }, {}));
  t.false(wantsColour({ isTTY: false }, {}));
  t.false(wantsColour({}, {}));
  t.false(wantsColour({ isTTY: true }, { NO_COLOR: '' }));
  t.false(wantsColour({ isTTY: true }, { NO_COLOR: '1' }));
  t.false(wantsColour({ isTTY: true }, { TERM: 'dumb' }));
  const coloured = block([['State', 'error', 'red']], style(true));
  t.true(coloured.includes('\u001b[31merror\u001b[39m'));
  t.is(block([['State', 'error', 'red']], style(false)), 'State: error\n');
});

/** A process that appends a line to `file` on every SIGHUP; resolves once its handler is set. */
async function hangupRecorder(t: ExecutionContext, file: string): Promise<ChildProcess> {
  const script = `process.on('SIGHUP', () => require('node:fs').appendFileSync(${JSON.stringify(file)}, 'HUP\\n'));
process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', () => reject(new Error('the recorder exited early')));
  });
  return child;
}

async function waitForText(read: () => string, text: string): Promise<void> {
  while (!read().includes(text)) await new Promise((r) => setTimeout(r, 20));
}

async function waitForFile(file: string, text: string): Promise<string> {
  for (;;) {
    const content = await readFile(file, 'utf8').catch(() => '');
    if (content.includes(text)) return content;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('cnctl reload sends SIGHUP to the agent whose pid is in <StateDir>/agent.pid', async (t) => {
  const dir = await tempDir(t);
  const record = join(dir, 'hangups');
  const child = await hangupRecorder(t, record);
  await writeFile(join(dir, 'agent.pid'), `${child.pid}\n`);
  // no API answers at --url: the reload is still asked for, and cnctl says why it cannot wait for its outcome
  const result = await cnctl(['reload', '--state-dir', dir, '--url', `http://127.0.0.1:${await closedPort()}`]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`sent SIGHUP to the agent \\(pid ${child.pid}\\)[^\\n]*\\nnot waiting for the outcome: cannot reach the cloud-network agent`));
  t.is(await waitForFile(record, 'HUP'), 'HUP\n');
  t.is(child.exitCode, null, 'the agent is still running');
});

test('cnctl reload takes the state directory from StateDir= in the configuration', async (t) => {
  const dir = await tempDir(t);
  const record = join(dir, 'hangups');
  const child = await hangupRecorder(t, record);
  await writeFile(join(dir, 'agent.pid'), `${child.pid}\n`);
  const config = join(dir, 'cloud-network.toml');
  await writeFile(config, `[System]\nStateDir = "${dir}"\n`);
  // without systemd here, the configured StateDir's pid file is used
  const result = await cnctl(['reload', '--config', config, '--no-wait']);
  t.is(result.code, 0, result.stderr);
  t.is(await waitForFile(record, 'HUP'), 'HUP\n');
});

test('cnctl reload refuses a missing or stale pid file with exit 3 (no agent runs), a group-signalling one with exit 1', async (t) => {
  const dir = await tempDir(t);
  const missing = await cnctl(['reload', '--state-dir', dir]);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /no agent pid file at .*agent\.pid: is the agent running/);

  for (const text of ['0', '-1', '1', 'garbage']) {
    await writeFile(join(dir, 'agent.pid'), text);
    const result = await cnctl(['reload', '--state-dir', dir]);
    t.is(result.code, 1, text);
    t.regex(result.stderr, /does not hold a process id/, text);
  }

  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.on('exit', resolve));
  await writeFile(join(dir, 'agent.pid'), String(gone.pid));
  const stale = await cnctl(['reload', '--state-dir', dir]);
  t.is(stale.code, 3);
  t.regex(stale.stderr, new RegExp(`no process with pid ${gone.pid}.*stale`));
});

test('cnctl reload says clearly when it is not allowed to signal the agent', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to run cnctl as another user');
    return;
  }
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const record = join(dir, 'hangups');
  const child = await hangupRecorder(t, record);
  await writeFile(join(dir, 'agent.pid'), String(child.pid), { mode: 0o644 });
  // nobody (65534) may not signal a root process
  const result = await cnctl(['reload', '--state-dir', dir, '--no-wait'], { uid: 65534, env: { HOME: dir } });
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`not allowed to signal the agent \\(pid ${child.pid}\\).*run as root`));
  t.is(await readFile(record, 'utf8').catch(() => ''), '');
});

test('under systemd, cnctl reload goes through systemctl reload and reports a polkit refusal', async (t) => {
  const dir = await tempDir(t);
  const systemdDir = join(dir, 'systemd-system');
  await writeFile(systemdDir, '');
  const calls = join(dir, 'calls');
  const systemctl = join(dir, 'systemctl');
  await writeFile(systemctl, `#!/bin/sh\necho "$@" >> ${calls}\n[ -e ${dir}/deny ] && { echo "Failed to reload cloud-network.service: Access denied" >&2; exit 1; }\nexit 0\n`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  t.teardown(() => {
    process.env.PATH = path;
  });
  t.regex(await reload({ stateDir: dir, explicitStateDir: false, systemdDir }), /asked cloud-network\.service to reload/);
  t.is(await readFile(calls, 'utf8'), 'reload cloud-network.service\n');
  await writeFile(join(dir, 'deny'), '');
  await t.throwsAsync(reload({ stateDir: dir, explicitStateDir: false, systemdDir }), {
    message: /not allowed to reload cloud-network\.service: Failed to reload cloud-network\.service: Access denied\. Run as root/,
  });
});
