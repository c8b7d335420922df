// The OCI provider against the simulator's OCI IMDS v2: what the VNIC list becomes, what is asked
// and how often, bare metal, and every defect as an error.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import { OciProvider, type OciOptions } from '../../agent/metadata/providers/oci.js';
import { loadScenario, secretValues, startImdsSimulator, type RunningSimulator, type Scenario } from '../imds-sim/index.js';
import { fastClient } from '../fixtures/metadata-server.js';

async function simulator(t: ExecutionContext, scenario: Scenario = loadScenario('builtin:oci')): Promise<RunningSimulator> {
  const sim = await startImdsSimulator({ host: '127.0.0.1', port: 0, scenario });
  t.teardown(() => sim.close());
  return sim;
}

function provider(sim: RunningSimulator, options: OciOptions = {}): OciProvider {
  return new OciProvider({ ...fastClient(sim.url), requestsPerSecond: 1000, ...options });
}

/** A scenario of a bare-metal instance: the primary physical NIC and a VLAN VNIC riding on it. */
function bareMetal(): Scenario {
  const scenario = loadScenario('builtin:oci');
  scenario.nics[0] = { ...scenario.nics[0]!, nicIndex: 0, vlanTag: 0 };
  scenario.nics[1] = { ...scenario.nics[1]!, nicIndex: 0, vlanTag: 12 };
  return scenario;
}

test('the VNIC list becomes the model: the primary first, each VNIC\'s private IP, subnet and virtual router', async (t) => {
  const sim = await simulator(t);
  const snapshot = await provider(sim).fetch();
  t.deepEqual(snapshot.model.instance, {
    provider: 'oci',
    id: 'ocid1.instance.oc1.eu-frankfurt-1.antheljtsimdemo0000000000000000000000000000000000000001',
    name: 'cn-demo-vm',
    region: 'eu-frankfurt-1',
    zone: 'EU-FRANKFURT-1-AD-1',
    size: 'VM.Standard.E5.Flex',
    image: 'ocid1.image.oc1.eu-frankfurt-1.aaaaaaaasimdemo00000000000000000000000000000000000000000001',
    details: { compartmentId: 'ocid1.compartment.oc1..aaaaaaaasimdemocompartment', availabilityDomain: 'qIZq:EU-FRANKFURT-1-AD-1', faultDomain: 'FAULT-DOMAIN-2' },
  });
  t.deepEqual(snapshot.model.nics, [
    {
      mac: '02:00:17:05:d1:db',
      index: 0,
      primary: true,
      ipv4: [{ address: '10.0.0.230', prefixLength: 24, primary: true }],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '10.0.0.0', prefixLength: 24 },
      gateway: '10.0.0.1',
      routedRanges: [],
      hostAddresses: false,
      details: { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.abtheljtsimdemo0000000000000000000000000000000000000001' },
    },
    {
      mac: '02:00:17:02:2b:b1',
      index: 1,
      primary: false,
      ipv4: [{ address: '10.0.4.5', prefixLength: 24, primary: true }],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '10.0.4.0', prefixLength: 24 },
      gateway: '10.0.4.1',
      routedRanges: [],
      hostAddresses: false,
      details: { vnicId: 'ocid1.vnic.oc1.eu-frankfurt-1.abtheljtsimdemo0000000000000000000000000000000000000002' },
    },
  ]);
  t.deepEqual(snapshot.sshKeys, ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0mC0sSimulatedOciKeyForDemoOnly0123456789 demo']);
});

test('only IMDS v2 is asked, always with "Authorization: Bearer Oracle", never for the instance principal\'s key', async (t) => {
  const scenario = loadScenario('builtin:oci');
  const sim = await simulator(t, scenario);
  const { document } = await provider(sim).fetch();
  const log = sim.stats().log;
  t.true(log.length > 0);
  for (const request of log) t.regex(request.url, /^\/opc\/v2\/(instance|vnics)\/$/);
  t.false(log.some((r) => r.url.includes('identity')));
  const text = JSON.stringify(document);
  for (const secret of secretValues(scenario)) t.false(text.includes(secret), `the document holds ${secret.slice(0, 16)}…`);
});

test('a refresh asks for the VNIC list alone and returns the same snapshot when it did not change', async (t) => {
  const sim = await simulator(t);
  const oci = provider(sim);
  const first = await oci.fetch();
  sim.resetStats();
  t.is(await oci.fetch(), first);
  t.deepEqual(sim.stats().log.map((r) => r.url), ['/opc/v2/vnics/']);
});

test('a VNIC attached later is added, and one detached from the middle leaves the others their tables', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'cn-oci-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const scenario = loadScenario('builtin:oci');
  const third = { mac: '02:00:17:07:aa:01', deviceNumber: 2, ipv4: ['10.0.8.7'], subnet: '10.0.8.0/24' };
  const sim = await simulator(t, { ...scenario, nics: [...scenario.nics, third] });
  const oci = provider(sim, { stateDir });
  t.deepEqual((await oci.fetch()).model.nics.map((n) => [n.mac, n.index]), [
    ['02:00:17:05:d1:db', 0],
    ['02:00:17:02:2b:b1', 1],
    ['02:00:17:07:aa:01', 2],
  ]);
  sim.setScenario({ ...scenario, nics: [scenario.nics[0]!, third] });
  t.deepEqual((await oci.fetch()).model.nics.map((n) => [n.mac, n.index]), [
    ['02:00:17:05:d1:db', 0],
    ['02:00:17:07:aa:01', 2],
  ]);
});

test('a VNIC\'s IPv6 addresses come with the subnet\'s prefix length and the virtual router as gateway', async (t) => {
  const scenario = loadScenario('builtin:oci');
  scenario.nics[1] = { ...scenario.nics[1]!, ipv6: ['2603:c020:4:8a00::5', '2603:c020:4:8a00::6'], ipv6Subnet: '2603:c020:4:8a00::/64', ipv6Gateway: 'fe80::200:17ff:fe02:1' };
  const sim = await simulator(t, scenario);
  const nic = (await provider(sim).fetch()).model.nics[1]!;
  t.deepEqual(nic.ipv6, [
    { address: '2603:c020:4:8a00::5', prefixLength: 64 },
    { address: '2603:c020:4:8a00::6', prefixLength: 64 },
  ]);
  t.is(nic.gateway6, 'fe80::200:17ff:fe02:1');
});

test('bare metal: the physical NIC is configured, a VLAN VNIC is reported as not handled', async (t) => {
  const sim = await simulator(t, bareMetal());
  const nics = (await provider(sim).fetch()).model.nics;
  t.is(nics[0]!.unhandled, undefined);
  t.regex(nics[1]!.unhandled!, /VLAN VNIC of a bare-metal instance \(vlanTag 12 on physical NIC 0\): cloud-network does not create VLAN links/);
});

test('DMI: the chassis asset tag OracleCloud.com names OCI; the probe needs the instance document', async (t) => {
  const sim = await simulator(t);
  const oci = provider(sim);
  t.regex(oci.detectByDmi({ chassisAssetTag: 'OracleCloud.com' })!, /OracleCloud\.com/);
  t.is(oci.detectByDmi({ sysVendor: 'QEMU', chassisAssetTag: 'Not Specified' }), undefined);
  t.true(await oci.detectByProbe());
  sim.setFault({ kind: 'status', status: 404 });
  t.false(await oci.detectByProbe());
});

const defect = test.macro(async (t, set: Record<string, unknown>, expected: { kind: MetadataErrorKind; message: RegExp }) => {
  const sim = await simulator(t);
  sim.setFault({ kind: 'corrupt', path: '/opc/v2/vnics', set });
  const error = await t.throwsAsync(provider(sim).fetch(), { instanceOf: MetadataError });
  t.is(error!.provider, 'oci');
  t.is(error!.kind, expected.kind);
  t.regex(error!.message, expected.message);
});

test('a VNIC without a subnet is an error', defect, { '/1/subnetCidrBlock': null }, { kind: 'incomplete', message: /vnics\[1\]\.subnetCidrBlock is missing/ });
test('a private IP outside its subnet is an error', defect, { '/1/privateIp': '10.0.9.5' }, { kind: 'malformed', message: /10\.0\.9\.5 is outside the subnet 10\.0\.4\.0\/24/ });
test('an invalid private IP is an error', defect, { '/0/privateIp': '10.0.0.300' }, { kind: 'malformed', message: /"10\.0\.0\.300" is not an IPv4 address/ });
test('a MAC on two VNICs is an error', defect, { '/1/macAddr': '02:00:17:05:D1:DB' }, { kind: 'malformed', message: /appears on two VNICs/ });
test('nicIndex on some VNICs only is an error', defect, { '/1/nicIndex': 0 }, { kind: 'malformed', message: /nicIndex is present though the first VNIC has none/ });
test('a VNIC id that is no OCID is an error', defect, { '/0/vnicId': 'eni-123' }, { kind: 'malformed', message: /is not a VNIC OCID/ });

test('an empty VNIC list is an error, never a model without NICs', async (t) => {
  const sim = await simulator(t);
  sim.setFault({ kind: 'emptyNics' });
  const error = await t.throwsAsync(provider(sim).fetch(), { instanceOf: MetadataError });
  t.is(error!.kind, 'incomplete');
  t.regex(error!.message, /opc\/v2\/vnics is empty/);
});

test('an instance without IMDS v2 (404) is an error that says so', async (t) => {
  const sim = await simulator(t);
  sim.setFault({ kind: 'status', status: 404, body: 'Not Found' });
  const error = await t.throwsAsync(provider(sim, { retries: 0 }).fetch(), { instanceOf: MetadataError });
  t.is(error!.status, 404);
  t.regex(error!.message, /IMDS v2 endpoint is missing/);
});
