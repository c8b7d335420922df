// The agent's REST API, served in-process on 127.0.0.1 (port 0) from realistic views of an
// Azure, an EC2 and a GCP VM.
import test, { type ExecutionContext } from 'ava';
import bunyan from 'bunyan';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startApi, type ApiLimits, type RunningApi } from '../../agent/report/api/server.js';
import { isLoopback, parseListen, statusProblems, urlForListen, type NetworkResource, type StatusResource, type SystemResource } from '../../protocol/rest.js';
import { withoutSecrets } from '../../agent/metadata/secret-filter.js';
import { StateFiles, type LinkState } from '../../agent/report/state-files.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../agent/report/metrics.js';
import type { ProviderName } from '../../agent/metadata/model.js';
import { FakeView, SECRETS, fixture } from '../lib/api-fixtures.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function quietLog(): { log: bunyan; records: { level: number; msg: string }[] } {
  const ring = new bunyan.RingBuffer({ limit: 100 });
  const log = bunyan.createLogger({ name: 'api-test', streams: [{ type: 'raw', stream: ring, level: 'trace' }] });
  return { log, records: ring.records as { level: number; msg: string }[] };
}

async function serve(
  t: ExecutionContext,
  view: FakeView,
  limits?: Partial<ApiLimits>,
  metrics = new Metrics(),
  log = quietLog().log,
): Promise<RunningApi> {
  const api = await startApi({ listen: '127.0.0.1:0', view, metrics, log, ...(limits && { limits }) });
  t.teardown(() => api.close());
  return api;
}

function call(api: RunningApi, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: api.port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function getJson<T>(api: RunningApi, path: string, status = 200): Promise<T> {
  const answer = await call(api, 'GET', path);
  if (answer.status !== status) throw new Error(`GET ${path}: expected ${status}, got ${answer.status}: ${answer.body}`);
  if (!String(answer.headers['content-type']).startsWith('application/json')) throw new Error(`GET ${path}: not JSON`);
  return JSON.parse(answer.body) as T;
}

const METADATA_PATHS = [
  '/api/v1/system',
  '/api/v1/network',
  '/api/v1/network/eth1',
  '/api/v1/ssh-keys',
  '/api/v1/document',
  '/api/cloud/system',
  '/api/cloud/network',
];

test('before the first metadata fetch, status answers 200 with ready false and the reason', async (t) => {
  const view = new FakeView(fixture('azure'));
  view.state.lastError = 'metadata from azure unavailable: connect ETIMEDOUT 169.254.169.254:80; nothing configured yet, will retry';
  view.state.reconciling = true;
  const api = await serve(t, view);
  const status = await getJson<StatusResource>(api, '/api/v1/status');
  t.false(status.ready);
  t.true(status.reconciling);
  t.is(status.provider, 'azure');
  t.is(status.version, '0.1.0-test');
  t.is(status.lastSuccess, null);
  t.is(status.helperReachable, null);
  t.regex(status.lastError ?? '', /ETIMEDOUT/);
});

test('before the first metadata fetch, every metadata resource answers 503 "no metadata yet" with the status', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')));
  for (const path of METADATA_PATHS) {
    const answer = await call(api, 'GET', path);
    t.is(answer.status, 503, path);
    t.is(answer.headers['retry-after'], '5', path);
    const body = JSON.parse(answer.body) as { error: string; status: StatusResource };
    t.is(body.error, 'no metadata yet', path);
    t.false(body.status.ready, path);
  }
  const metrics = await call(api, 'GET', '/metrics');
  t.is(metrics.status, 200);
  // the process's own memory, under the usual names
  const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(metrics.body)?.[1]);
  t.true(rss > 10 * 1024 * 1024, `resident memory ${rss}`);
  t.regex(metrics.body, /^nodejs_heap_size_used_bytes \d+$/m);
});

for (const [provider, expected] of [
  ['azure', { id: '02aab8a4-74ef-476e-8182-f6d2ba4166a6', name: 'web-1', region: 'eastus', zone: '1', size: 'Standard_D4s_v3' }],
  ['ec2', { id: 'i-0123456789abcdef0', name: 'ip-172-31-16-10', region: 'eu-west-1', zone: 'eu-west-1a', size: 'c5.xlarge' }],
  ['gcp', { id: '7454466891239578912', name: 'gce-1', region: 'us-central1', zone: 'us-central1-a', size: 'n2-standard-4' }],
  ['oci', { id: 'ocid1.instance.oc1.eu-frankfurt-1.antheljtexample', name: 'oci-1', region: 'eu-frankfurt-1', zone: 'EU-FRANKFURT-1-AD-1', size: 'VM.Standard.E5.Flex' }],
  ['aliyun', { id: 'i-bp13znx0m0me8cquexample', name: 'ecs-1', region: 'cn-hangzhou', zone: 'cn-hangzhou-i', size: 'ecs.g7.xlarge' }],
] as const) {
  test(`GET /api/v1/system serves the ${provider} instance facts of the neutral model`, async (t) => {
    const api = await serve(t, new FakeView(fixture(provider)).converge());
    const system = await getJson<Record<string, string>>(api, '/api/v1/system');
    t.like(system, { provider, ...expected });
    t.deepEqual(Object.keys(system).sort(), ['details', 'id', 'image', 'name', 'provider', 'region', 'size', 'zone']);
  });
}

for (const [provider, system, link] of [
  ['azure', { subscriptionId: '8d10da13-8125-4ba9-a717-bf7490507b3d', resourceGroupName: 'rg-web' }, {}],
  [
    'ec2',
    { accountId: '123456789012', architecture: 'x86_64' },
    { 'interface-id': 'eni-0bbb', 'device-number': '1', 'subnet-id': 'subnet-0bbb', 'vpc-id': 'vpc-0abc', 'security-group-ids': 'sg-0bbb2222' },
  ],
  ['gcp', { hostname: 'gce-1.us-central1-a.c.example.internal', cpuPlatform: 'Intel Ice Lake' }, { network: 'projects/123/networks/backend', dnsServers: '169.254.169.254' }],
  [
    'oci',
    { compartmentId: 'ocid1.compartment.oc1..aaaaexample', availabilityDomain: 'qIZq:EU-FRANKFURT-1-AD-1', faultDomain: 'FAULT-DOMAIN-2' },
    { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.b' },
  ],
  ['aliyun', {}, { 'network-interface-id': 'eni-bp1bbb', 'vpc-id': 'vpc-bp1example', 'vswitch-id': 'vsw-bp1bbb', 'vpc-cidr-block': '192.168.0.0/16' }],
] as const) {
  test(`${provider}: /api/v1/system and each link serve the provider's own details, and the state files hold them, without what looks secret`, async (t) => {
    const f = fixture(provider);
    const view = new FakeView(f).converge();
    const api = await serve(t, view);
    t.deepEqual((await getJson<SystemResource>(api, '/api/v1/system')).details, system);
    const second = await getJson<LinkState>(api, `/api/v1/network/${f.links[1]}`);
    t.deepEqual(second.details, link);
    const network = await getJson<NetworkResource>(api, '/api/v1/network');
    t.deepEqual(network.links[1]!.details, link);
    const dir = await mkdtemp(join(tmpdir(), 'cn-state-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await new StateFiles(dir).write(view.current!, view.currentPlan!, f.kernel, view.state);
    t.deepEqual(JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')).details, system);
    t.deepEqual(JSON.parse(await readFile(join(dir, 'links', `${f.links[1]}.json`), 'utf8')).details, link);
  });
}

test('GET /api/v1/network lists every NIC with link, ifindex, MAC, addresses, subnet, gateway, table and state', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const network = await getJson<NetworkResource>(api, '/api/v1/network');
  t.is(network.provider, 'azure');
  t.deepEqual(network.unmatched, []);
  t.deepEqual(
    network.links.map((l) => l.name),
    ['eth0', 'eth1'],
  );
  const eth1 = network.links[1]!;
  t.like(eth1, {
    name: 'eth1',
    ifindex: 3,
    mac: '00:0d:3a:5d:2d:66',
    primary: false,
    table: 20_001,
    subnet: '10.4.0.0/24',
    gateway: '10.4.0.1',
    state: 'configured',
  });
  t.deepEqual(eth1.privateIpv4, ['10.4.0.5/24', '10.4.0.6/24']);
  t.deepEqual(eth1.publicIpv4, ['20.253.243.104']);
  t.is(eth1.error, null);
  const eth0 = network.links[0]!;
  t.true(eth0.primary);
  // every documented key is there, null when unknown: the primary NIC has no table, Azure says no MTU
  t.deepEqual(Object.keys(eth0).sort(), Object.keys(eth1).sort());
  t.deepEqual(
    Object.keys(eth0).sort(),
    ['addresses', 'details', 'error', 'gateway', 'ifindex', 'ipv6', 'mac', 'managedBy', 'mtu', 'name', 'nicIndex', 'primary', 'privateIpv4', 'publicIpv4', 'rangesLeftAlone', 'routedRanges', 'state', 'subnet', 'table'],
  );
  t.like(eth0, { table: null, mtu: null, error: null, managedBy: null, nicIndex: 0 });
  t.is(eth1.nicIndex, 1);
});

test('GET /api/v1/network shows GCP MTU and routed ranges', async (t) => {
  const api = await serve(t, new FakeView(fixture('gcp')).converge());
  const link = await getJson<LinkState>(api, '/api/v1/network/ens5');
  t.is(link.mtu, 1460);
  t.deepEqual(link.routedRanges, ['10.130.8.0/24']);
  t.is(link.state, 'configured');
});

test('a link the helper refused is in state error with the last error, its operations pending', async (t) => {
  const view = new FakeView(fixture('ec2')).failSecondLink('helper refused address.add: 172.31.32.10/20 on ens6: permission denied');
  const api = await serve(t, view);
  const ens6 = await getJson<LinkState>(api, '/api/v1/network/ens6');
  t.is(ens6.state, 'error');
  t.regex(ens6.error ?? '', /permission denied/);
  const status = await getJson<StatusResource>(api, '/api/v1/status');
  t.true(status.pendingOperations > 0);
  t.is(status.pending.length, status.pendingOperations);
  t.true(status.pending.includes('ip address add 172.31.32.10/20 dev ens6 noprefixroute proto 201'), status.pending.join('\n'));
  t.false(status.converged);
  t.regex(status.lastError ?? '', /helper refused/);
});

test('a NIC the plan found no link for is listed as unmatched with the planner\'s reason', async (t) => {
  const f = fixture('azure');
  f.kernel.links = f.kernel.links.filter((l) => l.name !== 'eth1');
  const api = await serve(t, new FakeView(f).converge());
  const network = await getJson<NetworkResource>(api, '/api/v1/network');
  t.deepEqual(
    network.links.map((l) => l.name),
    ['eth0'],
  );
  t.is(network.unmatched.length, 1);
  t.is(network.unmatched[0]!.mac, '00:0d:3a:5d:2d:66');
  t.regex(network.unmatched[0]!.problem, /no network interface with MAC/);
});

test('GET /api/v1/network/:link answers 404 with a JSON error naming the known links', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const body = await getJson<{ error: string }>(api, '/api/v1/network/eth9', 404);
  t.regex(body.error, /"eth9"/);
  t.regex(body.error, /eth0, eth1/);
});

test('GET /api/v1/status reports version, provider, refresh and success times, helper and pending operations', async (t) => {
  const api = await serve(t, new FakeView(fixture('gcp')).converge());
  const status = await getJson<StatusResource>(api, '/api/v1/status');
  t.like(status, {
    version: '0.1.0-test',
    provider: 'gcp',
    ready: true,
    lastRefresh: '2025-11-28T12:00:01.000Z',
    lastSuccess: '2025-11-28T12:00:02.000Z',
    lastError: null,
    helperReachable: true,
    pendingOperations: 0,
    converged: true,
  });
});

test('GET /api/v1/status names every failure in its own field, and counts what it lists as pending', async (t) => {
  const view = new FakeView(fixture('azure')).failSecondLink('helper refused address.add: permission denied');
  const converged = await getJson<StatusResource>(await serve(t, new FakeView(fixture('azure')).converge()), '/api/v1/status');
  t.like(converged, { helperError: null, stateError: null, configError: null, metadataError: null });
  t.deepEqual(statusProblems(converged), []);
  view.state = {
    ...view.state,
    helperReachable: false,
    helperError: 'helper at /run/cloud-network/helper.sock is not reachable: ECONNREFUSED; will retry',
    stateError: "state files not written: EACCES: permission denied, open '/run/cloud-network/links/eth1.json.9.tmp'",
    configError: 'reload refused: /etc/cloud-network/cloud-network.toml: not valid TOML: line 2; keeping the running configuration',
    metadataError: 'metadata from azure unavailable: HTTP 500',
    pendingOperations: 99,
  };
  const status = await getJson<StatusResource>(await serve(t, view), '/api/v1/status');
  t.is(status.helperError, view.state.helperError!);
  t.is(status.stateError, view.state.stateError!);
  t.is(status.configError, view.state.configError!);
  t.is(status.pendingOperations, status.pending.length);
  t.true(status.pending.length > 0);
  t.deepEqual(statusProblems(status), [
    view.state.configError,
    view.state.metadataError,
    view.state.helperError,
    view.state.stateError,
    'eth1: helper refused address.add: permission denied',
  ]);
});

test('an object no longer re-added after a tug of war is a failure of the status, as its red field says', async (t) => {
  const converged = await getJson<StatusResource>(await serve(t, new FakeView(fixture('azure')).converge()), '/api/v1/status');
  const contested = { object: 'ip rule add from 10.4.1.5 lookup 20001 priority 20200 proto 201', removals: 6, likelyTool: 'systemd-networkd', since: '2025-11-28T12:00:03.000Z' };
  t.deepEqual(statusProblems({ ...converged, contested: [contested] }), [
    'ip rule add from 10.4.1.5 lookup 20001 priority 20200 proto 201: removed 6 times within a minute, likely by systemd-networkd; not re-added until the next reload',
  ]);
});

test('GET /api/v1/ssh-keys and /api/v1/document serve the keys and the secret-free document', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const keys = await getJson<{ sshKeys: string[] }>(api, '/api/v1/ssh-keys');
  t.deepEqual(keys.sshKeys, ['ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQazure azureuser']);
  const doc = await getJson<{ provider: string; document: { compute: Record<string, unknown> } }>(api, '/api/v1/document');
  t.is(doc.provider, 'azure');
  t.is(doc.document.compute.name, 'web-1');
  // the filter errs on the safe side: disablePasswordAuthentication goes too
  t.deepEqual(doc.document.compute.osProfile, { adminUsername: 'azureuser' });
  t.deepEqual(doc.document.compute.tagsList, [{ name: 'env', value: 'prod' }, { name: 'dbPassword' }]);
});

test('the older Go tool\'s /api/cloud/ paths answer as it did: Azure and GCP the whole document, EC2 its trees', async (t) => {
  const azure = await serve(t, new FakeView(fixture('azure')).converge());
  const system = await getJson<{ compute: { vmId: string } }>(azure, '/api/cloud/system');
  t.is(system.compute.vmId, '02aab8a4-74ef-476e-8182-f6d2ba4166a6');
  // scripts written for the Go tool read .network.interface from /api/cloud/network
  const network = await getJson<{ compute: unknown; network: { interface: { macAddress: string }[] } }>(azure, '/api/cloud/network');
  t.deepEqual(
    network.network.interface.map((i) => i.macAddress),
    ['000D3A5D2D65', '000D3A5D2D66'],
  );
  t.truthy(network.compute);

  const gcp = await serve(t, new FakeView(fixture('gcp')).converge());
  const gcpNetwork = await getJson<{ instance: { networkInterfaces: { mac: string }[] } }>(gcp, '/api/cloud/network');
  t.is(gcpNetwork.instance.networkInterfaces[1]!.mac, '42:01:0a:82:00:05');
  t.deepEqual(await getJson(gcp, '/api/cloud/system'), gcpNetwork);

  const ec2 = await serve(t, new FakeView(fixture('ec2')).converge());
  const ec2Network = await getJson<Record<string, { 'device-number': string }>>(ec2, '/api/cloud/network');
  t.deepEqual(Object.keys(ec2Network), ['02:1f:9a:00:00:01', '02:1f:9a:00:00:02']);
  t.is(ec2Network['02:1f:9a:00:00:02']!['device-number'], '1');
  const ec2System = await getJson<Record<string, unknown>>(ec2, '/api/cloud/system');
  t.is(ec2System['instance-id'], 'i-0123456789abcdef0');
  const identity = await getJson<{ instanceId: string }>(ec2, '/api/cloud/dynamicinstanceidentity/document');
  t.is(identity.instanceId, 'i-0123456789abcdef0');
  const credentials = await call(ec2, 'GET', '/api/cloud/credentials');
  t.is(credentials.status, 404);
  t.regex(JSON.parse(credentials.body).error, /not served: cloud-network never reads credentials/);
  const unknown = await call(azure, 'GET', '/api/cloud/credentials');
  t.is(unknown.status, 404);
  t.regex(JSON.parse(unknown.body).error, /no \/api\/cloud\/credentials on azure \(paths: system, network\)/);
});

for (const provider of ['oci', 'aliyun'] as ProviderName[]) {
  test(`on ${provider}, for which the Go tool had no provider, its /api/cloud/ paths answer 404 naming the neutral API`, async (t) => {
    const api = await serve(t, new FakeView(fixture(provider)).converge());
    for (const path of ['/api/cloud/system', '/api/cloud/network']) {
      const answer = await call(api, 'GET', path);
      t.is(answer.status, 404, path);
      t.regex(JSON.parse(answer.body).error, new RegExp(`is not served: cloud-network-setup had no ${provider} provider; GET /api/v1/system and /api/v1/network serve its metadata`), path);
    }
  });
}

const ALL_PATHS = [
  '/api/v1/status',
  '/api/v1/system',
  '/api/v1/network',
  '/api/v1/ssh-keys',
  '/api/v1/document',
  '/api/cloud/system',
  '/api/cloud/network',
  '/api/cloud/credentials',
  '/api/cloud/dynamicinstanceidentity/document',
  '/api/cloud/dynamicinstanceidentity/signature',
  '/metrics',
  '/api/v1/nothing-here',
];

for (const provider of ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as ProviderName[]) {
  test(`no credential, token, signature or user data of the ${provider} document appears in any answer`, async (t) => {
    const f = fixture(provider);
    const api = await serve(t, new FakeView(f).converge());
    const paths = [...ALL_PATHS, ...f.links.map((l) => `/api/v1/network/${l}`)];
    let served = 0;
    for (const path of paths) {
      const answer = await call(api, 'GET', path);
      served += answer.body.length;
      for (const secret of SECRETS) t.false(answer.body.includes(secret), `${path} leaks ${secret}`);
      t.false(/PRIVATE KEY/.test(answer.body), `${path} serves a private key`);
    }
    t.true(served > 2_000, 'the answers are not empty');
  });
}

test('the EC2 document keeps its harmless parts and loses credentials and the identity signatures', async (t) => {
  const api = await serve(t, new FakeView(fixture('ec2')).converge());
  const doc = await getJson<{ 'meta-data': Record<string, any>; dynamic: Record<string, any> }>(api, '/api/v1/document').then((d: any) => d.document);
  t.is(doc['meta-data']['instance-id'], 'i-0123456789abcdef0');
  t.deepEqual(Object.keys(doc['meta-data'].iam), ['info']);
  t.false('identity-credentials' in doc['meta-data']);
  t.deepEqual(Object.keys(doc.dynamic['instance-identity']), ['document']);
  t.false('user-data' in doc);
});

test('the secret filter drops secret-looking keys in any spelling, PEM private keys and secret-named values', (t) => {
  t.deepEqual(
    withoutSecrets({
      keep: 'yes',
      AccessKeyId: 'a',
      secret_access_key: 'b',
      'X-aws-ec2-metadata-token': 'c',
      nested: [{ ClientSecret: 'd', ok: 1 }, '-----BEGIN RSA PRIVATE KEY-----\nx', 'fine'],
      tags: [{ name: 'api-token', value: 'e' }],
      PrivateKey: 'f',
      adminPassword: 'g',
    }),
    { keep: 'yes', nested: [{ ok: 1 }, 'fine'], tags: [{ name: 'api-token' }] },
  );
});

test('the secret filter shares what it keeps unchanged, never changes its input, and drops what a full copy drops', (t) => {
  // the filter as a plain copy of everything kept: what withoutSecrets must answer, shared or not
  const copyWithout = (value: unknown): unknown => {
    if (typeof value === 'string') return value.includes('PRIVATE KEY-----') ? undefined : value;
    if (Array.isArray(value)) return value.map(copyWithout).filter((v) => v !== undefined);
    if (value === null || typeof value !== 'object') return value;
    const object = value as Record<string, unknown>;
    const named = typeof object.name === 'string' && /token|secret|password/i.test(object.name);
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(object)) {
      if (/token|secret|password/i.test(key) || (named && key === 'value')) continue;
      const kept = copyWithout(child);
      if (kept !== undefined) out[key] = kept;
    }
    return out;
  };
  const pem = '-----BEGIN PRIVATE KEY-----\nx';
  const leaves = ['plain', 'ok', pem, 7, null, true];
  const keys = ['name', 'value', 'address', 'token', 'adminPassword', 'items', 'x'];
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const build = (depth: number): unknown => {
    const kind = depth === 0 ? 0 : random(3);
    if (kind === 0) return leaves[random(leaves.length)];
    if (kind === 1) return Array.from({ length: random(4) }, () => build(depth - 1));
    const object: Record<string, unknown> = {};
    for (let i = random(4); i > 0; i--) object[keys[random(keys.length)]!] = random(3) === 0 ? ['token', 'api', 'db-password'][random(3)] : build(depth - 1);
    return object;
  };
  for (let round = 0; round < 300; round++) {
    const document = build(4);
    const before = structuredClone(document);
    const filtered = withoutSecrets(document);
    t.deepEqual(filtered, copyWithout(document), `document ${JSON.stringify(before)}`);
    t.deepEqual(document, before, 'the input is unchanged');
  }
  const clean = { interface: [{ ipv4: { ipAddress: [{ privateIpAddress: '10.0.0.4' }] } }] };
  const document = { network: clean, compute: { userData: 'c2VjcmV0', name: 'vm' } };
  const filtered = withoutSecrets(document) as typeof document;
  t.is(filtered.network, clean, 'a subtree with nothing to remove is the same object');
  t.not(filtered.compute, document.compute);
  t.deepEqual(filtered.compute, { name: 'vm' } as typeof document.compute);
  t.is(withoutSecrets(clean), clean);
});

test('other methods answer 405 with Allow: GET, HEAD, on known and unknown paths', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    for (const path of ['/api/v1/status', '/api/v1/nowhere']) {
      const answer = await call(api, method, path);
      t.is(answer.status, 405, `${method} ${path}`);
      t.is(answer.headers.allow, 'GET, HEAD');
      t.regex((JSON.parse(answer.body) as { error: string }).error, /read-only/);
    }
  }
});

test('unknown paths answer 404 with a JSON error', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const body = await getJson<{ error: string }>(api, '/api/v2/anything', 404);
  t.regex(body.error, /no resource at \/api\/v2\/anything/);
});

test('HEAD answers like GET without a body', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const get = await call(api, 'GET', '/api/v1/network');
  const head = await call(api, 'HEAD', '/api/v1/network');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is(head.headers['content-type'], get.headers['content-type']);
  t.is(head.headers['content-length'], String(Buffer.byteLength(get.body)));
  t.is((await call(api, 'HEAD', '/api/v1/network/eth7')).status, 404);
});

test('a request with a body is refused with 413', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  const answer = await call(api, 'GET', '/api/v1/status', { 'Content-Type': 'application/json', 'Content-Length': '7' }, '{"x":1}');
  t.is(answer.status, 413);
});

test('a Host that is not an IP or a local name is refused, so web pages cannot read the API by DNS rebinding', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge());
  t.is((await call(api, 'GET', '/api/v1/status', { Host: 'attacker.example:5209' })).status, 421);
  t.is((await call(api, 'GET', '/api/v1/status', { Host: `localhost:${api.port}` })).status, 200);
  t.is((await call(api, 'GET', '/api/v1/status', { Host: `[::1]:${api.port}` })).status, 200);
});

test('oversized request headers are refused with 431', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge(), { maxHeaderSize: 1024 });
  const answer = await call(api, 'GET', '/api/v1/status', { 'X-Padding': 'a'.repeat(4096) });
  t.is(answer.status, 431);
});

test('GET /metrics counts reconciles, operations by kind, IMDS requests and errors by status, last success and helper', async (t) => {
  const metrics = new Metrics();
  metrics.imdsRequest('ec2', 200);
  metrics.imdsRequest('ec2', 200);
  metrics.imdsRequest('ec2', 401);
  metrics.imdsRequest('ec2', 'timeout');
  const view = new FakeView(fixture('ec2')).converge();
  const api = await serve(t, view, undefined, metrics);
  const answer = await call(api, 'GET', '/metrics');
  t.is(answer.status, 200);
  t.regex(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const lines = answer.body.split('\n');
  const has = (line: string) => t.true(lines.includes(line), `missing: ${line}\n${answer.body}`);
  has('# TYPE cloud_network_reconciles_total counter');
  has('cloud_network_reconciles_total 1');
  has(`cloud_network_operations_total{kind="address.add",result="applied"} ${view.state.operations.applied['address.add']}`);
  has('cloud_network_imds_requests_total{provider="ec2",status="200"} 2');
  has('cloud_network_imds_requests_total{provider="ec2",status="401"} 1');
  has('cloud_network_imds_errors_total{provider="ec2",status="401"} 1');
  has('cloud_network_imds_errors_total{provider="ec2",status="timeout"} 1');
  t.false(answer.body.includes('cloud_network_imds_errors_total{provider="ec2",status="200"}'));
  has(`cloud_network_last_success_timestamp_seconds ${Date.parse('2025-11-28T12:00:02.000Z') / 1000}`);
  has('cloud_network_helper_up 1');
  has('cloud_network_info{version="0.1.0-test",provider="ec2"} 1');

  // values read at scrape time follow the agent
  view.state = { ...view.state, helperReachable: false, reconciles: 2, operations: { applied: view.state.operations.applied, failed: { 'rule.add': 3 } } };
  const later = (await call(api, 'GET', '/metrics')).body.split('\n');
  t.true(later.includes('cloud_network_helper_up 0'));
  t.true(later.includes('cloud_network_reconciles_total 2'));
  t.true(later.includes('cloud_network_operations_total{kind="rule.add",result="failed"} 3'));
});

test('metric label values are escaped as the exposition format requires', (t) => {
  const metrics = new Metrics();
  metrics.imdsRequest('we"ird\\pro\nvider', 500);
  t.true(metrics.render().includes('cloud_network_imds_requests_total{provider="we\\"ird\\\\pro\\nvider",status="500"} 1'));
});

/** A connection that sends half a request and then nothing. */
function slowClient(port: number): Promise<{ socket: Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      resolve({ socket, closed });
    });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

test('slow clients below the connection limit do not block other requests', async (t) => {
  const api = await serve(t, new FakeView(fixture('azure')).converge(), { maxIdleConnections: 16 });
  const slow = await Promise.all(Array.from({ length: 10 }, () => slowClient(api.port)));
  t.teardown(() => slow.forEach((s) => s.socket.destroy()));
  for (let i = 0; i < 5; i++) {
    t.is((await call(api, 'GET', '/api/v1/status')).status, 200);
  }
});

test('Listen= parsing accepts IPv4, bracketed IPv6 and localhost, and refuses what is not HOST:PORT', (t) => {
  t.deepEqual(parseListen('127.0.0.1:5209'), { host: '127.0.0.1', port: 5209 });
  t.deepEqual(parseListen('[::1]:5209'), { host: '::1', port: 5209 });
  t.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  t.throws(() => parseListen('::1:5209'), { message: /not HOST:PORT/ });
  t.throws(() => parseListen('127.0.0.1'), { message: /not HOST:PORT/ });
  t.throws(() => parseListen('127.0.0.1:70000'), { message: /not between 0 and 65535/ });
  // one grammar for the agent's configuration, its server and cnctl: no other host names
  t.throws(() => parseListen('example.org:5209'), { message: /not an IPv4 address or localhost/ });
  t.throws(() => parseListen('[127.0.0.1]:5209'), { message: /not an IPv6 address/ });
  t.true(isLoopback('127.0.0.2'));
  t.true(isLoopback('::1'));
  t.false(isLoopback('10.0.0.1'));
  t.false(isLoopback('0.0.0.0'));
  t.is(urlForListen(parseListen('[::1]:5209')), 'http://[::1]:5209');
  t.is(urlForListen(parseListen('0.0.0.0:5209')), 'http://127.0.0.1:5209');
});

test('a non-loopback Listen= logs a warning', async (t) => {
  const { log, records } = quietLog();
  // 192.0.2.1 (TEST-NET-1) is not on this host: the bind fails, after the warning
  const error = await t.throwsAsync(
    startApi({ listen: '192.0.2.1:0', view: new FakeView(fixture('azure')), metrics: new Metrics(), log }),
  );
  t.regex(error.message, /cannot listen on 192\.0\.2\.1:0: EADDRNOTAVAIL/);
  t.true(records.some((r) => r.level === bunyan.WARN && /not a loopback address/.test(r.msg)));
});

test('the API answers while a reconcile runs', async (t) => {
  const view = new FakeView(fixture('azure')).converge();
  view.state.reconciling = true;
  const api = await serve(t, view);
  const status = await getJson<StatusResource>(api, '/api/v1/status');
  t.true(status.reconciling);
  t.is((await getJson<NetworkResource>(api, '/api/v1/network')).links.length, 2);
});
