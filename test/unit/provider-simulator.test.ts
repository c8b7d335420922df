// The providers against the shared IMDS simulator (test/imds-sim): the same scenario served by
// each cloud becomes the same NICs, and the simulator's secrets never reach a snapshot.
import test from 'ava';
import type { ProviderName } from '../../agent/metadata/model.js';
import { primaryMacOf } from '../../agent/metadata/providers/azure.js';
import { LastParse } from '../../agent/metadata/providers/last-parse.js';
import { looksSecret } from '../../agent/metadata/secret-filter.js';
import { createProvider } from '../../agent/metadata/providers/index.js';
import { loadScenario, secretValues, startImdsSimulator } from '../imds-sim/index.js';
import { fastClient } from '../fixtures/metadata-server.js';

for (const name of ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as ProviderName[]) {
  test(`${name}: the built-in scenario becomes its NICs, primary first, without secrets`, async (t) => {
    const scenario = loadScenario(`builtin:${name}`);
    const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario });
    t.teardown(() => sim.close());
    const primaryMac = scenario.nics[0]!.mac;
    // Azure lists the primary NIC last here: the default-route link names it
    const provider = createProvider(name, { ...fastClient(sim.url), requestsPerSecond: name === 'azure' ? 4 : 1000, primaryMac: () => primaryMac });
    const snapshot = await provider.fetch();
    t.is(snapshot.model.instance.provider, name);
    t.is(snapshot.model.instance.id, scenario.instance.id);
    const byIndex = [...snapshot.model.nics].sort((a, b) => a.index - b.index);
    t.is(byIndex[0]!.mac, primaryMac.toLowerCase());
    t.true(byIndex[0]!.primary);
    t.deepEqual(snapshot.model.nics.map((n) => n.mac).sort(), scenario.nics.map((n) => n.mac.toLowerCase()).sort());
    for (const nic of scenario.nics) {
      const got = snapshot.model.nics.find((n) => n.mac === nic.mac.toLowerCase())!;
      if (name === 'oci') {
        // OCI's IMDS lists only each VNIC's primary private IP (docs/imds.md)
        t.deepEqual(got.ipv4.map((a) => a.address), nic.ipv4.slice(0, 1));
      } else if (name === 'gcp') {
        // GCE has one IP per NIC; further ones are alias ranges, routed rather than added
        t.deepEqual(got.ipv4.map((a) => a.address), nic.ipv4.slice(0, 1));
        for (const extra of nic.ipv4.slice(1)) t.true(got.routedRanges.includes(`${extra}/32`));
      } else {
        t.deepEqual(got.ipv4.map((a) => a.address), nic.ipv4);
      }
    }
    const text = JSON.stringify(snapshot);
    for (const secret of secretValues(scenario)) t.false(text.includes(secret), `secret ${secret.slice(0, 12)}… leaked`);
  });
}

/** The provider's own fact names each cloud's details hold, for the instance and for every NIC. */
const DETAIL_KEYS: Record<ProviderName, { instance: string[]; nic: string[] }> = {
  azure: { instance: ['subscriptionId', 'resourceGroupName', 'platformFaultDomain', 'platformUpdateDomain'], nic: [] },
  ec2: { instance: ['accountId', 'architecture'], nic: ['interface-id', 'device-number', 'subnet-id', 'vpc-id', 'security-group-ids'] },
  gcp: { instance: ['hostname', 'cpuPlatform'], nic: ['network', 'dnsServers', 'accessConfigs'] },
  oci: { instance: ['compartmentId', 'availabilityDomain', 'faultDomain'], nic: ['vnicId'] },
  aliyun: { instance: [], nic: ['network-interface-id', 'vpc-id', 'vswitch-id', 'vpc-cidr-block'] },
};

for (const name of ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as ProviderName[]) {
  test(`${name}: the details hold the provider's own facts under its own names, none of them secret`, async (t) => {
    const scenario = loadScenario(`builtin:${name}`);
    const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario });
    t.teardown(() => sim.close());
    const primaryMac = scenario.nics[0]!.mac;
    const provider = createProvider(name, { ...fastClient(sim.url), requestsPerSecond: name === 'azure' ? 4 : 1000, primaryMac: () => primaryMac });
    const { model } = await provider.fetch();
    t.deepEqual(Object.keys(model.instance.details).sort(), [...DETAIL_KEYS[name].instance].sort());
    for (const nic of model.nics) {
      // the simulator gives only some NICs a public IP: GCP's accessConfigs is there when it does
      const keys = DETAIL_KEYS[name].nic.filter((key) => key !== 'accessConfigs' || nic.publicIpv4.length > 0);
      t.deepEqual(Object.keys(nic.details).sort(), [...keys].sort(), nic.mac);
    }
    const all = [model.instance.details, ...model.nics.map((nic) => nic.details)];
    for (const details of all) {
      for (const [key, value] of Object.entries(details)) {
        t.false(looksSecret(key), `${key} looks secret`);
        t.true(typeof value === 'string' && value !== '', key);
        for (const secret of secretValues(scenario)) t.false(value.includes(secret), `${key} holds a secret`);
      }
    }
  });
}

test("the link of main's IPv4 default route names the Azure primary NIC", (t) => {
  const link = (index: number, mac: string) => ({ index, name: `eth${index - 2}`, mac, up: true, mtu: 1500, loopback: false });
  const route = (table: number, destination: string, ifindex: number) => ({ table, family: destination.includes(':') ? ('inet6' as const) : ('inet' as const), destination, ifindex, type: 'unicast' as const, protocol: 4, scope: 'universe' as const });
  const kernel = {
    links: [link(2, '00:0d:3a:5d:2d:68'), link(3, '00:0d:3a:5d:2d:66')],
    addresses: [],
    routes: [route(20001, '0.0.0.0/0', 2), route(254, '10.4.1.0/24', 2), route(254, '::/0', 2), route(254, '0.0.0.0/0', 3)],
    rules: [],
  };
  t.is(primaryMacOf(kernel), '00:0d:3a:5d:2d:66');
  t.is(primaryMacOf({ ...kernel, routes: kernel.routes.slice(0, 3) }), undefined);
});

for (const name of ['azure', 'gcp', 'oci'] as ProviderName[]) {
  test(`${name}: an unchanged document is not parsed again, a changed one is`, async (t) => {
    const scenario = loadScenario(`builtin:${name}`);
    const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario });
    t.teardown(() => sim.close());
    const primaryMac = scenario.nics[0]!.mac;
    const provider = createProvider(name, { ...fastClient(sim.url), requestsPerSecond: 1000, primaryMac: () => primaryMac });
    const first = await provider.fetch();
    // the same snapshot object: the reconciler and the API see "unchanged" without comparing
    t.is(await provider.fetch(), first);
    const nic = scenario.nics[0]!;
    const added = name === 'gcp' ? nic.ipv4 : [...nic.ipv4, nic.ipv4[0]!.replace(/\d+$/, (last) => String((Number(last) % 250) + 3))];
    // OCI lists no secondary private IP: a second IPv6 address is a change its VNIC list shows
    const changedNic = name === 'oci' ? { ...nic, ipv6: ['2603:c020:4:8a00::5'], ipv6Subnet: '2603:c020:4:8a00::/64', ipv6Gateway: 'fe80::200:17ff:fe05:1' } : { ...nic, ipv4: added };
    const changed = { ...scenario, instance: { ...scenario.instance, name: 'renamed' }, nics: [changedNic, ...scenario.nics.slice(1)] };
    sim.setScenario(changed);
    const second = await provider.fetch();
    t.not(second, first);
    // OCI reads the instance document once: only the VNIC list changes a running instance's model
    if (name !== 'oci') t.is(second.model.instance.name, 'renamed');
    else t.deepEqual(second.model.nics[0]!.ipv6, [{ address: '2603:c020:4:8a00::5', prefixLength: 64 }]);
    t.is(await provider.fetch(), second);
  });
}

test('LastParse: a parse that throws keeps the last good value for its text', (t) => {
  let parses = 0;
  const memo = new LastParse<{ n: number }>();
  const a = memo.get('a', '', () => ({ n: ++parses }));
  t.is(memo.get('a', '', () => ({ n: ++parses })), a);
  t.not(memo.get('a', 'other primary', () => ({ n: ++parses })), a);
  t.throws(() => memo.get('broken', '', () => { throw new Error('malformed'); }), { message: 'malformed' });
  t.deepEqual(memo.get('a', 'other primary', () => ({ n: ++parses })), { n: 2 });
  t.is(parses, 2);
});
