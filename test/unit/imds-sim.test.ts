// The IMDS simulator: Azure, EC2, GCP, OCI and Alibaba Cloud protocol behaviour from docs/imds.md,
// every fault, the request log, the control interface and the CLI. All traffic goes to
// 127.0.0.1, ::1 or a Unix socket.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_SIZES, generateScenario } from '../imds-sim/generate.js';
import { BUILTIN_SCENARIOS, loadScenario, parseScenario, secretValues, type Scenario, type SimProvider } from '../imds-sim/scenario.js';
import { startImdsSimulator, type RunningSimulator, type SimulatorOptions } from '../imds-sim/server.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

type Target = { port: number } | { socketPath: string };

function call(target: Target, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
    const req = httpRequest({ ...where, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a request and hands back the response as soon as its headers arrive (or the error). */
function open(port: number, method: string, path: string, headers: Record<string, string> = {}): { response: Promise<IncomingMessage>; abort: () => void } {
  const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  response.catch(() => undefined);
  req.end();
  return { response, abort: () => req.destroy() };
}

async function until(t: ExecutionContext, what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.fail(`gave up waiting for ${what}`);
}

async function simulate(t: ExecutionContext, provider: SimProvider | Scenario, options: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const scenario = typeof provider === 'string' ? loadScenario(`builtin:${provider}`) : provider;
  const sim = await startImdsSimulator({ scenario, ...options });
  t.teardown(() => sim.close());
  return sim;
}

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let now = Date.UTC(2024, 4, 2, 9, 0, 0);
  return { now: () => now, advance: (ms) => (now += ms) };
}

const AZURE = '/metadata/instance?api-version=2021-02-01';
const AZURE_HEADERS = { Metadata: 'true' };
const GCP_HEADERS = { 'Metadata-Flavor': 'Google' };
const GCP_INSTANCE = '/computeMetadata/v1/instance/?recursive=true';

const OCI_HEADERS = { Authorization: 'Bearer Oracle' };

async function aliyunToken(sim: Target, ttl = '21600'): Promise<Record<string, string>> {
  const reply = await call(sim, 'PUT', '/latest/api/token', { 'X-aliyun-ecs-metadata-token-ttl-seconds': ttl });
  if (reply.status !== 200) throw new Error(`token PUT answered ${reply.status}`);
  return { 'X-aliyun-ecs-metadata-token': reply.body };
}

async function ec2Token(sim: RunningSimulator, ttl = '21600'): Promise<Record<string, string>> {
  const reply = await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': ttl });
  if (reply.status !== 200) throw new Error(`token PUT answered ${reply.status}`);
  return { 'X-aws-ec2-metadata-token': reply.body };
}

function withScenario(scenario: Scenario, change: (s: Scenario) => void): Scenario {
  const copy = structuredClone(scenario);
  change(copy);
  return copy;
}

// ---------------------------------------------------------------- Azure

test('Azure answers the instance document only with the Metadata: true header (else 400 with a JSON error)', async (t) => {
  const sim = await simulate(t, 'azure');
  const without = await call(sim, 'GET', AZURE);
  t.is(without.status, 400);
  t.regex(JSON.parse(without.body).error, /metadata header/i);
  const wrong = await call(sim, 'GET', AZURE, { Metadata: 'yes' });
  t.is(wrong.status, 400);
  const ok = await call(sim, 'GET', AZURE, AZURE_HEADERS);
  t.is(ok.status, 200);
  t.is(JSON.parse(ok.body).compute.name, 'cn-demo-vm');
});

test('Azure rejects a missing or unknown api-version with 400 naming the valid versions', async (t) => {
  const sim = await simulate(t, 'azure');
  const missing = await call(sim, 'GET', '/metadata/instance', AZURE_HEADERS);
  t.is(missing.status, 400);
  t.regex(JSON.parse(missing.body).error, /api-version/);
  const unknown = await call(sim, 'GET', '/metadata/instance?api-version=2099-01-01', AZURE_HEADERS);
  t.is(unknown.status, 400);
  t.true(JSON.parse(unknown.body)['newest-versions'].includes('2023-07-01'));
});

test('Azure writes every primitive as a string, MACs as 12 upper-case hex digits, secondary NIC first', async (t) => {
  const sim = await simulate(t, 'azure');
  const doc = JSON.parse((await call(sim, 'GET', AZURE, AZURE_HEADERS)).body);
  const nonStrings: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${path}/${i}`));
    else if (node !== null && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
    else if (typeof node !== 'string') nonStrings.push(path);
  };
  walk(doc, '');
  t.deepEqual(nonStrings, []);
  const interfaces = doc.network.interface;
  t.deepEqual(interfaces.map((i: { macAddress: string }) => i.macAddress), ['000D3A5D2D67', '000D3A5D2D66']);
  t.deepEqual(interfaces[1].ipv4.ipAddress, [
    { privateIpAddress: '10.4.0.4', publicIpAddress: '198.51.100.23' },
    { privateIpAddress: '10.4.0.10', publicIpAddress: '' },
    { privateIpAddress: '10.4.0.11', publicIpAddress: '' },
  ]);
  t.deepEqual(interfaces[1].ipv4.subnet, [{ address: '10.4.0.0', prefix: '24' }]);
  t.deepEqual(interfaces[0].ipv6.ipAddress, []);
  t.deepEqual(interfaces[1].ipv6.ipAddress, [{ privateIpAddress: 'fd00:4::4' }]);
  t.regex(doc.compute.publicKeys[0].keyData, /^ssh-ed25519 /);
  t.is(doc.compute.vmId, '02aab8a4-74ef-476e-8182-f6d2ba4166a6');
});

test('Azure answers 429 past 5 requests in one second, counts them, and serves again the next second', async (t) => {
  const clock = manualClock();
  const sim = await simulate(t, 'azure', { clock: clock.now });
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await call(sim, 'GET', AZURE, AZURE_HEADERS)).status);
  t.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
  t.is(sim.stats().rateLimited, 2);
  clock.advance(1000);
  t.is((await call(sim, 'GET', AZURE, AZURE_HEADERS)).status, 200);
});

test('Azure rejects X-Forwarded-For and every method but GET', async (t) => {
  const sim = await simulate(t, 'azure', { azureRequestsPerSecond: 100 });
  t.is((await call(sim, 'GET', AZURE, { ...AZURE_HEADERS, 'X-Forwarded-For': '10.0.0.9' })).status, 400);
  t.is((await call(sim, 'POST', AZURE, AZURE_HEADERS, '{}')).status, 405);
});

// ---------------------------------------------------------------- EC2

test('EC2 answers 401 to a GET without a valid session token', async (t) => {
  const sim = await simulate(t, 'ec2');
  t.is((await call(sim, 'GET', '/latest/meta-data/instance-id')).status, 401);
  t.is((await call(sim, 'GET', '/latest/meta-data/instance-id', { 'X-aws-ec2-metadata-token': 'A'.repeat(56) })).status, 401);
  const ok = await call(sim, 'GET', '/latest/meta-data/instance-id', await ec2Token(sim));
  t.is(ok.status, 200);
  t.is(ok.body, 'i-0f3a9c2b7d1e4a5b6');
});

test('EC2 issues a 56-character token only for a TTL of 1 to 21600 seconds, echoes the TTL, and counts the PUTs', async (t) => {
  const sim = await simulate(t, 'ec2');
  for (const ttl of ['0', '21601', 'abc', '-5', '']) {
    t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': ttl })).status, 400, `ttl ${JSON.stringify(ttl)}`);
  }
  t.is((await call(sim, 'PUT', '/latest/api/token')).status, 400);
  t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.0.0.9' })).status, 403);
  const ok = await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '21600' });
  t.is(ok.status, 200);
  t.is(ok.body.length, 56);
  t.is(ok.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
  t.like(sim.stats(), { tokenPuts: 8, tokensIssued: 1 });
});

test('EC2 tokens expire after their TTL', async (t) => {
  const clock = manualClock();
  const sim = await simulate(t, 'ec2', { clock: clock.now });
  const token = await ec2Token(sim, '2');
  t.is((await call(sim, 'GET', '/latest/meta-data/mac', token)).status, 200);
  clock.advance(1999);
  t.is((await call(sim, 'GET', '/latest/meta-data/mac', token)).status, 200);
  clock.advance(1);
  t.is((await call(sim, 'GET', '/latest/meta-data/mac', token)).status, 401);
});

test('EC2 lists one entry per line, sub-directories with "/", no final newline, MACs in MAC order', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  const macs = await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/', token);
  // device 1 (02:7c:...) sorts before device 0 (0e:5a:...)
  t.is(macs.body, '02:7c:55:66:77:88/\n0e:5a:11:22:33:44/');
  const top = (await call(sim, 'GET', '/latest/meta-data/', token)).body;
  t.false(top.endsWith('\n'));
  for (const entry of ['instance-id', 'instance-type', 'ami-id', 'mac', 'local-ipv4', 'placement/', 'network/', 'public-keys/']) t.true(top.split('\n').includes(entry), entry);
  t.is((await call(sim, 'GET', '/latest/meta-data/placement/region', token)).body, 'eu-west-1');
  t.is((await call(sim, 'GET', '/latest/meta-data/placement/availability-zone', token)).body, 'eu-west-1b');
});

test('EC2 per-MAC keys: multi-valued leaves primary first, network-card and ipv4-prefix 404 unless the NIC has them', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  const get = async (path: string) => call(sim, 'GET', `/latest/meta-data/network/interfaces/macs/${path}`, token);
  t.is((await get('0e:5a:11:22:33:44/local-ipv4s')).body, '172.31.21.10\n172.31.21.11\n172.31.21.12');
  t.is((await get('0e:5a:11:22:33:44/device-number')).body, '0');
  t.is((await get('0e:5a:11:22:33:44/subnet-ipv4-cidr-block')).body, '172.31.16.0/20');
  t.is((await get('0e:5a:11:22:33:44/ipv6s')).body, '2001:db8:1200:5a00::10');
  t.is((await get('0e:5a:11:22:33:44/public-ipv4s')).body, '198.51.100.45');
  t.is((await get('0e:5a:11:22:33:44/interface-id')).body, 'eni-0a1b2c3d4e5f60001');
  t.is((await get('0e:5a:11:22:33:44/network-card')).status, 404);
  t.is((await get('0e:5a:11:22:33:44/ipv4-prefix')).status, 404);
  t.is((await get('02:7c:55:66:77:88/ipv4-prefix')).body, '172.31.40.32/28');
  t.is((await get('02:7c:55:66:77:88/ipv6s')).status, 404);
  t.is((await get('02:7c:55:66:77:88/public-ipv4s')).status, 404);
  t.is((await get('02:7c:55:66:77:88/network-card-index')).status, 404);
  const listing = (await get('02:7c:55:66:77:88/')).body.split('\n');
  t.false(listing.includes('network-card'));

  sim.setScenario(withScenario(sim.scenario(), (s) => (s.nics[1]!.networkCard = 1)));
  t.is((await get('02:7c:55:66:77:88/network-card')).body, '1');
});

test('EC2 top-level facts, public keys, identity document, and 404 for unknown paths', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  const get = async (path: string) => call(sim, 'GET', path, token);
  t.is((await get('/latest/meta-data/mac')).body, '0e:5a:11:22:33:44');
  t.is((await get('/latest/meta-data/local-ipv4')).body, '172.31.21.10');
  t.is((await get('/latest/meta-data/instance-type')).body, 'm6i.xlarge');
  t.is((await get('/latest/meta-data/ami-id')).body, 'ami-0a1b2c3d4e5f67890');
  t.is((await get('/latest/meta-data/public-keys/')).body, '0=cn-demo-key');
  t.regex((await get('/latest/meta-data/public-keys/0/openssh-key')).body, /^ssh-ed25519 /);
  const doc = JSON.parse((await get('/latest/dynamic/instance-identity/document')).body);
  t.like(doc, { instanceId: 'i-0f3a9c2b7d1e4a5b6', region: 'eu-west-1', privateIp: '172.31.21.10' });
  t.is((await get('/latest/dynamic/instance-identity/signature')).status, 200);
  t.is((await get('/latest/meta-data/no-such-thing')).status, 404);
  t.is((await get('/latest/meta-data/network/interfaces/macs/aa:aa:aa:aa:aa:aa/')).status, 404);
});

test('EC2 serves the IAM role credentials a real instance hands out (for leak tests to look for)', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  t.is((await call(sim, 'GET', '/latest/meta-data/iam/security-credentials/', token)).body, 'cn-demo-role');
  const credentials = JSON.parse((await call(sim, 'GET', '/latest/meta-data/iam/security-credentials/cn-demo-role', token)).body);
  t.like(credentials, { Code: 'Success', AccessKeyId: 'ASIASIMSECRETEC20001' });
  t.true(secretValues(sim.scenario()).includes(credentials.SecretAccessKey));
  t.true(secretValues(sim.scenario()).includes(credentials.Token));
});

// ---------------------------------------------------------------- GCP

test('GCP requires Metadata-Flavor: Google and says it on every answer, the 403 HTML page included', async (t) => {
  const sim = await simulate(t, 'gcp');
  const denied = await call(sim, 'GET', GCP_INSTANCE);
  t.is(denied.status, 403);
  t.regex(String(denied.headers['content-type']), /text\/html/);
  t.is(denied.headers['metadata-flavor'], 'Google');
  t.is((await call(sim, 'GET', GCP_INSTANCE, { ...GCP_HEADERS, 'X-Forwarded-For': '10.0.0.9' })).status, 403);
  const ok = await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS);
  t.is(ok.status, 200);
  t.is(ok.headers['metadata-flavor'], 'Google');
  t.regex(String(ok.headers['etag']), /^[0-9a-f]{16}$/);
  const missing = await call(sim, 'GET', '/computeMetadata/v1/instance/nope', GCP_HEADERS);
  t.is(missing.status, 404);
  t.is(missing.headers['metadata-flavor'], 'Google');
});

test('GCP writes the instance id above 2^53 as a bare JSON number, digit for digit', async (t) => {
  const sim = await simulate(t, 'gcp');
  const body = (await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).body;
  t.true(body.includes('"id":4520031799277581759,'));
  t.true(4520031799277581759 > Number.MAX_SAFE_INTEGER);
  t.is((await call(sim, 'GET', '/computeMetadata/v1/instance/id', GCP_HEADERS)).body, '4520031799277581759');
});

test('GCP network interfaces carry ip, mac, gateway, subnetmask, a numeric mtu, aliases, forwarded IPs and access configs', async (t) => {
  const sim = await simulate(t, 'gcp');
  const doc = JSON.parse((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).body);
  t.like(doc.networkInterfaces[0], {
    ip: '10.128.0.2',
    mac: '42:01:0a:80:00:02',
    gateway: '10.128.0.1',
    subnetmask: '255.255.240.0',
    mtu: 1460,
    network: 'projects/123456789012/networks/default',
    forwardedIps: ['203.0.113.50'],
    accessConfigs: [{ externalIp: '198.51.100.67', type: 'ONE_TO_ONE_NAT' }],
  });
  t.deepEqual(doc.networkInterfaces[0].ipAliases, ['10.128.8.0/24', '10.128.0.3/32']);
  t.like(doc.networkInterfaces[1], { ip: '10.10.0.2', gateway: '10.10.0.1', subnetmask: '255.255.255.0', mtu: 1500, accessConfigs: [] });
  t.regex(doc.attributes['ssh-keys'], /^demo:ssh-ed25519 /);
  t.is((await call(sim, 'GET', '/computeMetadata/v1/instance/network-interfaces/1/mtu', GCP_HEADERS)).body, '1500');
});

test('GCP wait_for_change answers at once when last_etag differs from the current ETag', async (t) => {
  const sim = await simulate(t, 'gcp');
  const reply = await call(sim, 'GET', `${GCP_INSTANCE}&wait_for_change=true&last_etag=0000000000000000&timeout_sec=600`, GCP_HEADERS);
  t.is(reply.status, 200);
  t.is(reply.headers['etag'], (await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).headers['etag']);
  t.is(sim.stats().waiting, 0);
});

test('GCP wait_for_change with the current ETag blocks until the scenario changes, then returns the new content', async (t) => {
  const sim = await simulate(t, 'gcp');
  const before = await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS);
  let answered = false;
  const waiting = call(sim, 'GET', `${GCP_INSTANCE}&wait_for_change=true&last_etag=${before.headers['etag']}&timeout_sec=600`, GCP_HEADERS).finally(() => (answered = true));
  await until(t, 'the request to wait', () => sim.stats().waiting === 1);
  t.false(answered);
  sim.setScenario(withScenario(sim.scenario(), (s) => s.nics[1]!.ipv4.push('10.10.0.9')));
  const after = await waiting;
  t.not(after.headers['etag'], before.headers['etag']);
  t.true(JSON.parse(after.body).networkInterfaces[1].ipAliases.includes('10.10.0.9/32'));
  t.is(sim.stats().waiting, 0);
});

test('GCP wait_for_change with the current ETag returns the same content and ETag when timeout_sec passes', async (t) => {
  const sim = await simulate(t, 'gcp');
  const before = await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS);
  const after = await call(sim, 'GET', `${GCP_INSTANCE}&wait_for_change=true&last_etag=${before.headers['etag']}&timeout_sec=1`, GCP_HEADERS);
  t.is(after.status, 200);
  t.is(after.headers['etag'], before.headers['etag']);
  t.is(after.body, before.body);
});

test('GCP refuses wait_for_change on a non-recursive directory listing with 400', async (t) => {
  const sim = await simulate(t, 'gcp');
  const reply = await call(sim, 'GET', '/computeMetadata/v1/instance/?wait_for_change=true', GCP_HEADERS);
  t.is(reply.status, 400);
  t.is(reply.headers['metadata-flavor'], 'Google');
});

test('GCP serves the service-account token a real VM hands out, outside the recursive listing', async (t) => {
  const sim = await simulate(t, 'gcp');
  const token = JSON.parse((await call(sim, 'GET', '/computeMetadata/v1/instance/service-accounts/default/token', GCP_HEADERS)).body);
  t.is(token.access_token, sim.scenario().secrets.accessToken);
  t.false((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).body.includes(token.access_token));
});

// ---------------------------------------------------------------- faults

test('a delay fault answers normally, after a later undelayed request', async (t) => {
  const sim = await simulate(t, 'azure', { azureRequestsPerSecond: 100 });
  // the delay only has to outlast one local request, on a loaded machine too
  sim.setFault({ kind: 'delay', ms: 4000, count: 1 });
  const order: string[] = [];
  const delayed = call(sim, 'GET', AZURE, AZURE_HEADERS).then((reply) => (order.push('delayed'), reply));
  await until(t, 'the delayed request to arrive', () => sim.stats().faulted === 1);
  await call(sim, 'GET', AZURE, AZURE_HEADERS).then(() => order.push('prompt'));
  t.is((await delayed).status, 200);
  t.deepEqual(order, ['prompt', 'delayed']);
});

test('a hang fault holds the request without answering until the client gives up', async (t) => {
  const sim = await simulate(t, 'ec2');
  sim.setFault({ kind: 'hang' });
  let responded = false;
  const pending = open(sim.port, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' });
  pending.response.then(() => (responded = true), () => undefined);
  await until(t, 'the request to hang', () => sim.stats().hanging === 1);
  t.false(responded);
  pending.abort();
  await until(t, 'the hung request to be released', () => sim.stats().hanging === 0);
  t.false(responded);
});

test('a hang fault with afterBytes sends the headers and that much body, then nothing', async (t) => {
  const sim = await simulate(t, 'azure');
  sim.setFault({ kind: 'hang', afterBytes: 10 });
  const pending = open(sim.port, 'GET', AZURE, AZURE_HEADERS);
  const res = await pending.response;
  t.is(res.statusCode, 200);
  t.true(Number(res.headers['content-length']) > 10);
  const received = await new Promise<Buffer>((resolve) => res.once('data', resolve));
  t.is(received.toString(), '{"compute"');
  await until(t, 'the request to hang', () => sim.stats().hanging === 1);
  t.false(res.complete);
  pending.abort();
});

test('a status fault answers that status for count requests, then clears itself', async (t) => {
  const sim = await simulate(t, 'gcp');
  sim.setFault({ kind: 'status', status: 503, count: 2 });
  const first = await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS);
  t.is(first.status, 503);
  t.is(first.headers['metadata-flavor'], 'Google');
  t.regex(String(first.headers['etag']), /^[0-9a-f]{16}$/);
  t.is((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).status, 503);
  t.is(sim.fault(), null);
  t.is((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).status, 200);
});

test('a rateLimit fault answers 429 with Retry-After and is counted', async (t) => {
  const sim = await simulate(t, 'ec2');
  sim.setFault({ kind: 'rateLimit', retryAfter: 7, path: '/latest/meta-data' });
  const token = await ec2Token(sim);
  const reply = await call(sim, 'GET', '/latest/meta-data/mac', token);
  t.is(reply.status, 429);
  t.is(reply.headers['retry-after'], '7');
  t.is(sim.stats().rateLimited, 1);
});

test('a malformed fault sends a 200 whose body is neither JSON nor clean text', async (t) => {
  const sim = await simulate(t, 'azure');
  sim.setFault({ kind: 'malformed' });
  const reply = await call(sim, 'GET', AZURE, AZURE_HEADERS);
  t.is(reply.status, 200);
  t.throws(() => JSON.parse(reply.body));
  t.true(reply.body.includes('\u0000'));
});

test('a truncated fault promises more body than it sends, then closes the connection', async (t) => {
  const sim = await simulate(t, 'gcp');
  sim.setFault({ kind: 'truncated' });
  const res = await open(sim.port, 'GET', GCP_INSTANCE, GCP_HEADERS).response;
  const promised = Number(res.headers['content-length']);
  let received = 0;
  const outcome = await new Promise<string>((resolve) => {
    res.on('data', (chunk: Buffer) => (received += chunk.length));
    res.on('aborted', () => resolve('aborted'));
    res.on('error', () => resolve('aborted'));
    res.on('end', () => resolve('end'));
  });
  t.is(outcome, 'aborted');
  t.true(received < promised);
});

test('a close fault destroys the connection before any answer', async (t) => {
  const sim = await simulate(t, 'azure');
  sim.setFault({ kind: 'close' });
  const error = await t.throwsAsync(call(sim, 'GET', AZURE, AZURE_HEADERS));
  t.regex(String((error as NodeJS.ErrnoException).code), /ECONNRESET/);
});

test('an emptyNics fault makes every provider answer with no NICs', async (t) => {
  for (const provider of ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as const) {
    const sim = await simulate(t, provider);
    sim.setFault({ kind: 'emptyNics' });
    if (provider === 'oci') t.is((await call(sim, 'GET', '/opc/v2/vnics/', OCI_HEADERS)).body, '[ ]');
    if (provider === 'aliyun') t.is((await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/', await aliyunToken(sim))).body, '');
    if (provider === 'azure') t.deepEqual(JSON.parse((await call(sim, 'GET', AZURE, AZURE_HEADERS)).body).network.interface, []);
    if (provider === 'gcp') t.deepEqual(JSON.parse((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).body).networkInterfaces, []);
    if (provider === 'ec2') {
      const reply = await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/', await ec2Token(sim));
      t.is(reply.status, 200);
      t.is(reply.body, '');
    }
  }
});

test('a hugeBody fault streams the requested number of bytes without Content-Length', async (t) => {
  const sim = await simulate(t, 'azure');
  sim.setFault({ kind: 'hugeBody', bytes: 8 * 1024 * 1024 + 5 });
  const res = await open(sim.port, 'GET', AZURE, AZURE_HEADERS).response;
  t.is(res.statusCode, 200);
  t.is(res.headers['content-length'], undefined);
  let received = 0;
  for await (const chunk of res) received += (chunk as Buffer).length;
  t.is(received, 8 * 1024 * 1024 + 5);
});

test('a noFlavorHeader fault drops Metadata-Flavor from GCP answers', async (t) => {
  const sim = await simulate(t, 'gcp');
  sim.setFault({ kind: 'noFlavorHeader', count: 1 });
  const reply = await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS);
  t.is(reply.status, 200);
  t.is(reply.headers['metadata-flavor'], undefined);
  t.is((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).headers['metadata-flavor'], 'Google');
});

test('a tokenRefused fault answers the EC2 token PUT with 403 and leaves GETs alone', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  sim.setFault({ kind: 'tokenRefused' });
  t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' })).status, 403);
  t.is((await call(sim, 'GET', '/latest/meta-data/mac', token)).status, 200);
  t.like(sim.stats(), { tokenPuts: 2, tokensIssued: 1 });
});

test('a corrupt fault replaces values at JSON pointers in the JSON answer, and a pointer to nothing is refused', async (t) => {
  const sim = await simulate(t, 'azure');
  sim.setFault({ kind: 'corrupt', count: 1, set: { '/network/interface/0/ipv4/subnet': [], '/network/interface/1/macAddress': 'X' } });
  const doc = JSON.parse((await call(sim, 'GET', AZURE, AZURE_HEADERS)).body);
  t.deepEqual(doc.network.interface[0].ipv4.subnet, []);
  t.is(doc.network.interface[1].macAddress, 'X');
  t.deepEqual(JSON.parse((await call(sim, 'GET', AZURE, AZURE_HEADERS)).body).network.interface[0].ipv4.subnet.length, 1);
  sim.setFault({ kind: 'corrupt', set: { '/nothing/here': 1 } });
  t.is((await call(sim, 'GET', AZURE, AZURE_HEADERS)).status, 500);
});

// ---------------------------------------------------------------- OCI

test('OCI: v2 needs "Authorization: Bearer Oracle"; v1 and OpenStack answer 404; forwarded requests are rejected', async (t) => {
  const sim = await simulate(t, 'oci');
  t.is((await call(sim, 'GET', '/opc/v2/vnics/')).status, 401);
  t.is((await call(sim, 'GET', '/opc/v2/vnics/', { Authorization: 'Bearer Other' })).status, 401);
  t.is((await call(sim, 'GET', '/opc/v1/vnics/', OCI_HEADERS)).status, 404);
  t.is((await call(sim, 'GET', '/openstack/latest/meta_data.json', OCI_HEADERS)).status, 404);
  for (const header of ['Forwarded', 'X-Forwarded-For', 'X-Forwarded-Host']) {
    t.is((await call(sim, 'GET', '/opc/v2/vnics/', { ...OCI_HEADERS, [header]: '10.0.0.9' })).status, 403, header);
  }
});

test('OCI: the VNIC list as the captures print it, primary first, one privateIp each, upper-case MACs', async (t) => {
  const scenario = loadScenario('builtin:oci');
  scenario.nics[1]!.ipv6 = ['2603:c020:4:8a00::5'];
  scenario.nics[1]!.ipv6Subnet = '2603:c020:4:8a00::/64';
  scenario.nics[1]!.ipv6Gateway = 'fe80::200:17ff:fe02:1';
  const sim = await simulate(t, scenario);
  const reply = await call(sim, 'GET', '/opc/v2/vnics/', OCI_HEADERS);
  t.is(reply.status, 200);
  t.is(
    reply.body,
    [
      '[ {',
      '  "vnicId" : "ocid1.vnic.oc1.eu-frankfurt-1.abtheljtsimdemo0000000000000000000000000000000000000001",',
      '  "privateIp" : "10.0.0.230",',
      '  "vlanTag" : 1039,',
      '  "macAddr" : "02:00:17:05:D1:DB",',
      '  "virtualRouterIp" : "10.0.0.1",',
      '  "subnetCidrBlock" : "10.0.0.0/24"',
      '}, {',
      '  "vnicId" : "ocid1.vnic.oc1.eu-frankfurt-1.abtheljtsimdemo0000000000000000000000000000000000000002",',
      '  "privateIp" : "10.0.4.5",',
      '  "vlanTag" : 1041,',
      '  "macAddr" : "02:00:17:02:2B:B1",',
      '  "virtualRouterIp" : "10.0.4.1",',
      '  "subnetCidrBlock" : "10.0.4.0/24",',
      '  "ipv6Addresses" : [ "2603:c020:4:8a00::5" ],',
      '  "ipv6SubnetCidrBlock" : "2603:c020:4:8a00::/64",',
      '  "ipv6VirtualRouterIp" : "fe80::200:17ff:fe02:1"',
      '} ]',
    ].join('\n'),
  );
  const instance = JSON.parse((await call(sim, 'GET', '/opc/v2/instance/', OCI_HEADERS)).body);
  t.like(instance, { id: scenario.instance.id, displayName: 'cn-demo-vm', canonicalRegionName: 'eu-frankfurt-1', region: 'fra', shape: 'VM.Standard.E5.Flex' });
  t.is((await call(sim, 'GET', '/opc/v2/instance/id', OCI_HEADERS)).body, scenario.instance.id);
});

test('OCI: a bare-metal scenario gives every VNIC its nicIndex, and a scenario mixing them is refused', (t) => {
  const scenario = loadScenario('builtin:oci');
  scenario.nics[0]!.nicIndex = 0;
  t.throws(() => parseScenario(scenario), { message: /every NIC of an OCI scenario has one or none does/ });
  scenario.nics[1]!.nicIndex = 0;
  t.notThrows(() => parseScenario(scenario));
});

// ---------------------------------------------------------------- Alibaba Cloud

test('Alibaba: hardening mode only: no token 403, an unknown one 401, a bad TTL 400, a forwarded PUT 403', async (t) => {
  const sim = await simulate(t, 'aliyun');
  t.is((await call(sim, 'GET', '/latest/meta-data/instance-id')).status, 403);
  t.is((await call(sim, 'GET', '/latest/meta-data/instance-id', { 'X-aliyun-ecs-metadata-token': 'AAAAAAAAAAAAAAAAAAAAAAAA' })).status, 401);
  for (const ttl of ['0', '21601', 'abc']) t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aliyun-ecs-metadata-token-ttl-seconds': ttl })).status, 400, ttl);
  t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aliyun-ecs-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.0.0.9' })).status, 403);
  // the EC2 header is not Alibaba's: no token
  t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' })).status, 400);
  const token = await aliyunToken(sim);
  t.is((await call(sim, 'GET', '/latest/meta-data/instance-id', token)).body, 'i-bp13znx0m0me8cquusim');
  t.is((await call(sim, 'GET', '/2016-01-01/meta-data/instance-id', token)).body, 'i-bp13znx0m0me8cquusim');
});

test('Alibaba: per-MAC values in the documented text forms; a token expires after its TTL', async (t) => {
  const clock = manualClock();
  const scenario = loadScenario('builtin:aliyun');
  scenario.nics[1]!.ipv6 = ['2408:4005:3e4:a300::5', '2408:4005:3e4:a300::6'];
  scenario.nics[1]!.ipv6Subnet = '2408:4005:3e4:a300::/64';
  scenario.nics[1]!.ipv6Gateway = '2408:4005:3e4:a3ff:ffff:ffff:ffff:fffd';
  const sim = await simulate(t, scenario, { clock: clock.now });
  const token = await aliyunToken(sim, '60');
  const get = async (path: string) => (await call(sim, 'GET', `/latest/meta-data/${path}`, token)).body;
  t.is(await get('network/interfaces/macs/'), '00:16:3e:0f:a1:27/\n00:16:3e:30:3e:ca/');
  t.is(await get('mac'), '00:16:3e:30:3e:ca');
  const second = 'network/interfaces/macs/00:16:3e:0f:a1:27/';
  t.is(await get(`${second}private-ipv4s`), '["192.168.1.20","192.168.1.21"]');
  t.is(await get(`${second}primary-ip-address`), '192.168.1.21');
  t.is(await get(`${second}netmask`), '255.255.255.0');
  t.is(await get(`${second}gateway`), '192.168.1.253');
  t.is(await get(`${second}vswitch-cidr-block`), '192.168.1.0/24');
  t.is(await get(`${second}ipv6s`), '[2408:4005:3e4:a300::5,2408:4005:3e4:a300::6]');
  t.is(await get(`${second}ipv6-gateway`), '2408:4005:3e4:a3ff:ffff:ffff:ffff:fffd');
  t.is((await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/00:16:3e:30:3e:ca/ipv6s', token)).status, 404);
  const identity = JSON.parse((await call(sim, 'GET', '/latest/dynamic/instance-identity/document', token)).body);
  t.like(identity, { 'instance-id': 'i-bp13znx0m0me8cquusim', 'region-id': 'cn-hangzhou', 'zone-id': 'cn-hangzhou-i', mac: '00:16:3e:30:3e:ca', 'instance-type': 'ecs.g7.xlarge' });
  clock.advance(61_000);
  t.is((await call(sim, 'GET', '/latest/meta-data/mac', token)).status, 401);
});

test('a tokenRefused fault answers the Alibaba token PUT with 403 too', async (t) => {
  const sim = await simulate(t, 'aliyun');
  sim.setFault({ kind: 'tokenRefused' });
  t.is((await call(sim, 'PUT', '/latest/api/token', { 'X-aliyun-ecs-metadata-token-ttl-seconds': '60' })).status, 403);
});

// ---------------------------------------------------------------- the request log and more addresses

test('the request log lists every metadata request in order with its address family and status', async (t) => {
  const v4port = await freePort();
  const sim = await simulate(t, 'ec2', { host: '::1', alsoListen: [{ host: '127.0.0.1', port: v4port }] });
  const v6 = await new Promise<Reply>((resolve, reject) => {
    const req = httpRequest({ host: '::1', port: sim.port, method: 'PUT', path: '/latest/api/token', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end();
  });
  t.is(v6.status, 200);
  t.is((await call({ port: v4port }, 'GET', '/latest/meta-data/mac?x=1', { 'X-aws-ec2-metadata-token': v6.body })).status, 200);
  const log = sim.stats().log;
  t.like(log[0], { method: 'PUT', url: '/latest/api/token', family: 'ipv6', status: 200 });
  t.like(log[1], { method: 'GET', url: '/latest/meta-data/mac?x=1', family: 'ipv4', status: 200 });
  t.true(log.every((entry) => entry.at >= 0));
  sim.resetStats();
  t.deepEqual(sim.stats().log, []);
});

// ---------------------------------------------------------------- scenario and control

test('a scenario change is visible on the next request', async (t) => {
  const sim = await simulate(t, 'ec2');
  const token = await ec2Token(sim);
  sim.setScenario(withScenario(sim.scenario(), (s) => s.nics[0]!.ipv4.push('172.31.21.99')));
  t.is((await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/0e:5a:11:22:33:44/local-ipv4s', token)).body, '172.31.21.10\n172.31.21.11\n172.31.21.12\n172.31.21.99');
});

test('an invalid scenario is refused with the field named, and the old one stays', async (t) => {
  const sim = await simulate(t, 'azure');
  const bad = withScenario(sim.scenario(), (s) => (s.nics[1]!.ipv4[0] = '10.9.9.9'));
  t.throws(() => sim.setScenario(bad), { message: /\/nics\/1\/ipv4\/0: 10\.9\.9\.9 is outside the NIC's subnet 10\.4\.1\.0\/24/ });
  t.is(sim.scenario().nics[1]!.ipv4[0], '10.4.1.5');
});

test('the control endpoint works only with X-Sim-Control: 1', async (t) => {
  const sim = await simulate(t, 'azure', { azureRequestsPerSecond: 100 });
  const hidden = await call(sim, 'POST', '/__sim/fault', {}, JSON.stringify({ kind: 'status', status: 500 }));
  t.is(hidden.status, 404);
  t.is(sim.fault(), null);
  t.is((await call(sim, 'GET', '/__sim/stats')).status, 404);

  const control = { 'X-Sim-Control': '1' };
  const set = await call(sim, 'POST', '/__sim/fault', control, JSON.stringify({ kind: 'status', status: 500, count: 1 }));
  t.is(set.status, 200);
  t.is((await call(sim, 'GET', AZURE, AZURE_HEADERS)).status, 500);

  const refused = await call(sim, 'POST', '/__sim/fault', control, JSON.stringify({ kind: 'explode' }));
  t.is(refused.status, 400);
  t.regex(JSON.parse(refused.body).error, /kind must be one of/);

  const scenario = withScenario(sim.scenario(), (s) => (s.instance.name = 'renamed-vm'));
  t.is((await call(sim, 'POST', '/__sim/scenario', control, JSON.stringify(scenario))).status, 200);
  t.is(JSON.parse((await call(sim, 'GET', AZURE, AZURE_HEADERS)).body).compute.name, 'renamed-vm');
  const badScenario = await call(sim, 'POST', '/__sim/scenario', control, JSON.stringify({ provider: 'azure' }));
  t.is(badScenario.status, 400);

  const stats = JSON.parse((await call(sim, 'GET', '/__sim/stats', control)).body);
  // the hidden control attempts were metadata requests: the cloud saw them
  t.like(stats, { requests: 4, byProvider: { azure: 4, ec2: 0, gcp: 0, oci: 0, aliyun: 0 }, faulted: 1 });
  t.is(stats.byPath['/metadata/instance'], 2);
});

test('the control socket serves /__sim/* without the header', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imds-sim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'control.sock');
  const sim = await simulate(t, 'gcp', { controlSocket: socketPath });
  t.is((await call({ socketPath }, 'POST', '/__sim/fault', {}, JSON.stringify({ kind: 'status', status: 410, count: 1 }))).status, 200);
  t.is((await call(sim, 'GET', GCP_INSTANCE, GCP_HEADERS)).status, 410);
  const stats = JSON.parse((await call({ socketPath }, 'GET', '/__sim/stats')).body);
  t.like(stats, { requests: 1, byProvider: { gcp: 1 } });
  t.is((await call({ socketPath }, 'GET', GCP_INSTANCE, GCP_HEADERS)).status, 404);
});

test('--provider renders the same scenario as another cloud', async (t) => {
  const sim = await simulate(t, 'azure', { provider: 'ec2' });
  const token = await ec2Token(sim);
  t.is((await call(sim, 'GET', '/latest/meta-data/local-ipv4', token)).body, '10.4.0.4');
  t.is((await call(sim, 'GET', AZURE, AZURE_HEADERS)).status, 404);
});

// ---------------------------------------------------------------- generated scenarios

test('every secret of the built-in and generated scenarios is marked SIMSECRET, so a leak is easy to find', (t) => {
  for (const scenario of [...BUILTIN_SCENARIOS.map((name) => loadScenario(`builtin:${name}`)), generateScenario('gcp', 2, 3), generateScenario('aliyun', 2, 3), generateScenario('oci', 2, 1)]) {
    const [, , , , userData, , base64] = secretValues(scenario);
    t.is(base64, Buffer.from(userData!).toString('base64'));
    t.deepEqual(secretValues(scenario).filter((value) => value !== base64 && !value.includes('SIMSECRET')), []);
  }
});

test('generated benchmark scenarios are valid and render every IP', async (t) => {
  for (const [size, { nics, ipsPerNic }] of Object.entries(BENCH_SIZES)) {
    for (const provider of ['azure', 'ec2', 'gcp', 'aliyun'] as const) {
      const scenario = parseScenario(generateScenario(provider, nics, ipsPerNic), `${provider} ${size}`);
      t.is(scenario.nics.length, nics);
      t.true(scenario.nics.every((nic) => nic.ipv4.length === ipsPerNic));
      t.is(new Set(scenario.nics.map((nic) => nic.mac)).size, nics);
    }
  }
  const sim = await simulate(t, generateScenario('ec2', 8, 256));
  const token = await ec2Token(sim);
  const macs = (await call(sim, 'GET', '/latest/meta-data/network/interfaces/macs/', token)).body.split('\n');
  t.is(macs.length, 8);
  const ips = (await call(sim, 'GET', `/latest/meta-data/network/interfaces/macs/${macs[7]}local-ipv4s`, token)).body.split('\n');
  t.is(ips.length, 256);
});

// ---------------------------------------------------------------- CLI

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('the CLI serves a built-in scenario, prints one "listening on" line, and exits on SIGTERM', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/cloud-network-imds-sim', import.meta.url));
  const port = await freePort();
  const child = spawn(bin, ['--scenario', 'builtin:ec2', '--listen', `127.0.0.1:${port}`], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`the simulator exited before listening: ${stderr}`)));
  });
  t.regex(stdout, new RegExp(`^listening on http://127\\.0\\.0\\.1:${port} as ec2`));
  const token = await ec2Token({ port } as RunningSimulator);
  t.is((await call({ port }, 'GET', '/latest/meta-data/instance-id', token)).body, 'i-0f3a9c2b7d1e4a5b6');
  const stats = JSON.parse((await call({ port }, 'GET', '/__sim/stats', { 'X-Sim-Control': '1' })).body);
  t.like(stats, { tokenPuts: 1, requests: 2 });
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.is(stdout.trim().split('\n').length, 1);
});

test('the CLI explains a bad scenario and exits 2', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/cloud-network-imds-sim', import.meta.url));
  const child = spawn(bin, ['--scenario', 'builtin:openstack', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.is(code, 2);
  t.regex(stderr, /unknown built-in scenario builtin:openstack: choose one of builtin:azure, builtin:ec2, builtin:gcp, builtin:oci, builtin:aliyun/);
});
