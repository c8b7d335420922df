// The Alibaba Cloud provider against the simulator's ECS metadata in security hardening mode:
// the model, the token, what a refresh asks, and every defect as an error.
import test, { type ExecutionContext } from 'ava';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import { AliyunProvider, type AliyunOptions } from '../../agent/metadata/providers/aliyun.js';
import { loadScenario, secretValues, startImdsSimulator, type RunningSimulator, type Scenario } from '../imds-sim/index.js';
import { fastClient } from '../fixtures/metadata-server.js';

const PRIMARY = '00:16:3e:30:3e:ca';
const SECOND = '00:16:3e:0f:a1:27';
const MACS = '/latest/meta-data/network/interfaces/macs/';

async function simulator(t: ExecutionContext, scenario: Scenario = loadScenario('builtin:aliyun')): Promise<RunningSimulator> {
  const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario });
  t.teardown(() => sim.close());
  return sim;
}

function provider(sim: RunningSimulator, options: AliyunOptions = {}): AliyunProvider {
  return new AliyunProvider({ ...fastClient(sim.url), requestsPerSecond: 1000, eniAttempts: 2, eniRetryDelayMs: 1, ...options });
}

test('the metadata becomes the model: the primary (the identity document\'s MAC) first, its primary IP first, the given gateway', async (t) => {
  const sim = await simulator(t);
  const snapshot = await provider(sim).fetch();
  t.deepEqual(snapshot.model.instance, {
    provider: 'aliyun',
    id: 'i-bp13znx0m0me8cquusim',
    name: 'cn-demo-vm',
    region: 'cn-hangzhou',
    zone: 'cn-hangzhou-i',
    size: 'ecs.g7.xlarge',
    image: 'aliyun_3_x64_20G_alibase_20240528.vhd',
    details: {},
  });
  t.deepEqual(snapshot.model.nics, [
    {
      mac: PRIMARY,
      index: 0,
      primary: true,
      ipv4: [
        { address: '192.168.0.9', prefixLength: 24, primary: true },
        { address: '192.168.0.10', prefixLength: 24, primary: false },
      ],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '192.168.0.0', prefixLength: 24 },
      gateway: '192.168.0.253',
      routedRanges: [],
      hostAddresses: false,
      details: { 'network-interface-id': 'eni-bp1b2c0jvnj0g17bsim1', 'vpc-id': 'vpc-bp1e0g399hkd7c8q3sim', 'vswitch-id': 'vsw-bp1ygryo03m39xhsysim1', 'vpc-cidr-block': '192.168.0.0/16' },
    },
    {
      mac: SECOND,
      index: 1,
      primary: false,
      // private-ipv4s says ["192.168.1.20","192.168.1.21"]; primary-ip-address says .21
      ipv4: [
        { address: '192.168.1.21', prefixLength: 24, primary: true },
        { address: '192.168.1.20', prefixLength: 24, primary: false },
      ],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '192.168.1.0', prefixLength: 24 },
      gateway: '192.168.1.253',
      routedRanges: [],
      hostAddresses: false,
      details: { 'network-interface-id': 'eni-bp1b2c0jvnj0g17bsim2', 'vpc-id': 'vpc-bp1e0g399hkd7c8q3sim', 'vswitch-id': 'vsw-bp1ygryo03m39xhsysim2', 'vpc-cidr-block': '192.168.0.0/16' },
    },
  ]);
  t.deepEqual(snapshot.sshKeys, ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0mC0sSimulatedAliyunKeyForDemoOnly01234 demo']);
});

test('one token PUT with a 21600 s TTL, every GET carrying it, no credential or user data asked for or kept', async (t) => {
  const scenario = loadScenario('builtin:aliyun');
  const sim = await simulator(t, scenario);
  const aliyun = provider(sim);
  const { document } = await aliyun.fetch();
  await aliyun.fetch();
  const stats = sim.stats();
  t.is(stats.tokenPuts, 1);
  t.false(stats.log.some((r) => r.status === 401 || r.status === 403), 'every GET carried a valid token');
  t.false(stats.log.some((r) => /ram\/|user-data|pkcs7/.test(r.url)));
  const text = JSON.stringify(document);
  for (const secret of secretValues(scenario)) t.false(text.includes(secret), `the document holds ${secret.slice(0, 16)}…`);
});

test('a quiet refresh asks the MAC listing and two keys per ENI, and returns the same snapshot', async (t) => {
  const sim = await simulator(t);
  const aliyun = provider(sim);
  const first = await aliyun.fetch();
  sim.resetStats();
  t.is(await aliyun.fetch(), first);
  t.deepEqual(
    sim.stats().log.map((r) => r.url).sort(),
    [MACS, `${MACS}${PRIMARY}/private-ipv4s`, `${MACS}${PRIMARY}/ipv6s`, `${MACS}${SECOND}/private-ipv4s`, `${MACS}${SECOND}/ipv6s`].sort(),
  );
});

test('a secondary IP assigned to one ENI reads that ENI in full and no other', async (t) => {
  const scenario = loadScenario('builtin:aliyun');
  const sim = await simulator(t, scenario);
  const aliyun = provider(sim);
  await aliyun.fetch();
  const next = structuredClone(scenario);
  next.nics[1]!.ipv4.push('192.168.1.22');
  sim.setScenario(next);
  sim.resetStats();
  const snapshot = await aliyun.fetch();
  t.deepEqual(snapshot.model.nics[1]!.ipv4.map((ip) => ip.address), ['192.168.1.21', '192.168.1.20', '192.168.1.22']);
  const urls = sim.stats().log.map((r) => r.url);
  t.true(urls.includes(`${MACS}${SECOND}/vswitch-cidr-block`));
  t.false(urls.includes(`${MACS}${PRIMARY}/vswitch-cidr-block`));
  t.is(sim.stats().tokenPuts, 0);
});

test('IPv6: the bracketed ipv6s list, the vSwitch\'s IPv6 prefix length and ipv6-gateway', async (t) => {
  const scenario = loadScenario('builtin:aliyun');
  scenario.nics[1] = { ...scenario.nics[1]!, ipv6: ['2408:4005:3e4:a300::5', '2408:4005:3e4:a300::6'], ipv6Subnet: '2408:4005:3e4:a300::/64', ipv6Gateway: '2408:4005:3e4:a3ff:ffff:ffff:ffff:fffd' };
  const sim = await simulator(t, scenario);
  const nic = (await provider(sim).fetch()).model.nics[1]!;
  t.deepEqual(nic.ipv6, [
    { address: '2408:4005:3e4:a300::5', prefixLength: 64 },
    { address: '2408:4005:3e4:a300::6', prefixLength: 64 },
  ]);
  t.is(nic.gateway6, '2408:4005:3e4:a3ff:ffff:ffff:ffff:fffd');
});

test('a refused token (hardening mode switched off, or an old agent image) is an error that says so', async (t) => {
  const sim = await simulator(t);
  sim.setFault({ kind: 'tokenRefused' });
  const error = await t.throwsAsync(provider(sim).fetch(), { instanceOf: MetadataError });
  t.is(error!.status, 403);
  t.regex(error!.message, /security hardening mode/);
  t.false(sim.stats().log.some((r) => r.method === 'GET'), 'nothing is asked without a token');
});

test('a token the service no longer knows (401) is replaced once and the fetch succeeds', async (t) => {
  let now = 1_000_000;
  const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario: loadScenario('builtin:aliyun'), clock: () => now });
  t.teardown(() => sim.close());
  const aliyun = provider(sim, { tokenTtlSeconds: 600 });
  await aliyun.fetch();
  now += 700_000; // the service's clock: the token expired, the provider's clock did not move
  await aliyun.fetch();
  t.is(sim.stats().tokensIssued, 2);
});

test('DMI names Alibaba Cloud by vendor or product; the probe is a hardening-mode token request', async (t) => {
  const sim = await simulator(t);
  const aliyun = provider(sim);
  t.truthy(aliyun.detectByDmi({ sysVendor: 'Alibaba Cloud', productName: 'Alibaba Cloud ECS' }));
  t.truthy(aliyun.detectByDmi({ productName: 'Alibaba Cloud ECS' }));
  t.is(aliyun.detectByDmi({ sysVendor: 'QEMU' }), undefined);
  t.true(await aliyun.detectByProbe());
});

const defect = test.macro(async (t, change: (scenario: Scenario) => void, fault: Record<string, unknown> | null, expected: { kind: MetadataErrorKind; nic?: string; message: RegExp }) => {
  const scenario = loadScenario('builtin:aliyun');
  change(scenario);
  const sim = await simulator(t, scenario);
  if (fault) sim.setFault(fault as never);
  const error = await t.throwsAsync(provider(sim).fetch(), { instanceOf: MetadataError });
  t.is(error!.provider, 'aliyun');
  t.is(error!.kind, expected.kind);
  if (expected.nic) t.is(error!.nic, expected.nic);
  t.regex(error!.message, expected.message);
});

test('private-ipv4s that is not a JSON list is an error', defect, () => undefined, { kind: 'malformed', path: `${MACS}${SECOND}/private-ipv4s` }, { kind: 'malformed', nic: SECOND, message: /private-ipv4s is not valid JSON/ });
test('a MAC listing that empties is an error, never a model without NICs', async (t) => {
  const sim = await simulator(t);
  const aliyun = provider(sim);
  await aliyun.fetch();
  sim.setFault({ kind: 'emptyNics' });
  const error = await t.throwsAsync(aliyun.fetch(), { instanceOf: MetadataError });
  t.is(error!.kind, 'incomplete');
  t.regex(error!.message, /macs\/ is empty/);
});
test('a gateway outside the vSwitch is an error', defect, (s) => void (s.nics[1]!.gateway = '192.168.7.253'), null, { kind: 'malformed', nic: SECOND, message: /192\.168\.7\.253 is outside the vSwitch 192\.168\.1\.0\/24/ });
test('an ENI whose keys keep answering 404 is an error after the attempts', defect, () => undefined, { kind: 'status', status: 404, body: 'gone', path: `${MACS}${SECOND}/netmask` }, { kind: 'incomplete', nic: SECOND, message: /netmask answered 404 after 2 attempts/ });
