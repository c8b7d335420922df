// Living with other tools: each tool recognised from its objects laid out as it lays them (and
// from its files), and what the plan does beside it; the tug-of-war limit with a fake clock.
import test from 'ava';
import bunyan from 'bunyan';
import { EC2_NET_UTILS, GUEST_AGENT, NETWORKD, NM_CLOUD_SETUP, NO_HOST_FACTS, survey, type HostFacts } from '../../agent/coexist/tools.js';
import { plan, type PlannerConfig } from '../../agent/plan/planner.js';
import { Contest, CONTEST_LIMIT } from '../../agent/reconcile/contest.js';
import { Reconciler, type HelperApi, type KernelReader, type MetadataSource, type NeighbourView, type StateSink } from '../../agent/reconcile/reconciler.js';
import type { MetadataModel, Nic, ProviderSnapshot } from '../../agent/metadata/model.js';
import { DEFAULT_TABLE_RANGE, RULE_PRIORITY } from '../../protocol/constants.js';
import type { Operation } from '../../protocol/operations.js';
import type { KernelState, ObservedRoute } from '../../netlink/types.js';
import { applied } from '../lib/fake-kernel.js';

const config: PlannerConfig = { routeTableBase: 20_000, supplementary: [] };

const nic = (index: number, fields: Partial<Nic>): Nic => ({
  mac: `02:00:00:00:00:0${index + 1}`,
  index,
  primary: index === 0,
  ipv4: [],
  publicIpv4: [],
  ipv6: [],
  subnet: { address: `10.4.${index}.0`, prefixLength: 24 },
  gateway: `10.4.${index}.1`,
  routedRanges: [],
  hostAddresses: false,
  details: {},
  ...fields,
});

const model: MetadataModel = {
  instance: { provider: 'ec2', id: 'i-1', name: 'vm', region: 'r', zone: 'z', size: 's', image: 'i', details: {} },
  nics: [
    nic(0, { ipv4: [{ address: '10.4.0.4', prefixLength: 24, primary: true }, { address: '10.4.0.10', prefixLength: 24, primary: false }] }),
    nic(1, { ipv4: [{ address: '10.4.1.5', prefixLength: 24, primary: true }, { address: '10.4.1.6', prefixLength: 24, primary: false }] }),
    nic(2, { ipv4: [{ address: '10.4.2.5', prefixLength: 24, primary: true }], routedRanges: ['10.128.8.0/24'] }),
  ],
};

function kernel(): KernelState {
  return {
    links: [
      { index: 2, name: 'eth0', mac: '02:00:00:00:00:01', up: true, mtu: 9001, loopback: false },
      { index: 3, name: 'eth1', mac: '02:00:00:00:00:02', up: true, mtu: 9001, loopback: false },
      { index: 4, name: 'eth2', mac: '02:00:00:00:00:03', up: true, mtu: 9001, loopback: false },
    ],
    addresses: [
      { ifindex: 2, family: 'inet', address: '10.4.0.4', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.5', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 },
      { ifindex: 4, family: 'inet', address: '10.4.2.5', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 },
    ],
    routes: [],
    rules: [],
  };
}

const facts = (fields: Partial<HostFacts>): HostFacts => ({ ...NO_HOST_FACTS, ...fields });
const tables = DEFAULT_TABLE_RANGE;
const priorities = Object.values(RULE_PRIORITY);
const route = (fields: Partial<ObservedRoute>): ObservedRoute => ({ table: 254, family: 'inet', destination: '0.0.0.0/0', protocol: 4, type: 'unicast', scope: 'universe', ...fields });

/**
 * eth1 (device-number 1, network-card 0) as amazon-ec2-net-utils' lib.sh lays it out through
 * systemd-networkd: its drop-ins in /run/systemd/network/70-eth1.network.d/, table 10001 with
 * the DHCP gateway and the subnet, and `from ADDRESS lookup 10001` at priority 10001 per address;
 * the secondary IP as a /32 without a prefix route. networkd stamps them static and dhcp.
 */
function ec2NetUtilsEth1(k: KernelState): { kernel: KernelState; foreign: ObservedRoute[]; host: HostFacts } {
  k.addresses.push({ ifindex: 3, family: 'inet', address: '10.4.1.6', prefixLength: 32, dynamic: false, noPrefixRoute: true, scope: 0, protocol: 4 });
  k.rules.push(
    { family: 'inet', priority: 10_001, table: 10_001, from: '10.4.1.5/32', protocol: 4, action: 'lookup' },
    { family: 'inet', priority: 10_001, table: 10_001, from: '10.4.1.6/32', protocol: 4, action: 'lookup' },
  );
  const foreign = [
    route({ table: 10_001, destination: '0.0.0.0/0', gateway: '10.4.1.1', ifindex: 3, protocol: 16 }),
    route({ table: 10_001, destination: '10.4.1.0/24', ifindex: 3, protocol: 4, scope: 'link' }),
  ];
  const host = facts({
    runtimeNetworkFiles: ['70-eth1.network', '70-eth1.network.d'],
    runningUnits: new Set(['policy-routes@eth1.service', 'systemd-networkd.service']),
    present: new Set(['/run/amazon-ec2-net-utils']),
  });
  return { kernel: k, foreign, host };
}

const touches = (ops: Operation[], link: string, table: number) =>
  ops.filter((op) => ('link' in op && op.link === link) || ('table' in op && op.table === table)).map((op) => op.kind);

test('amazon-ec2-net-utils managing eth1: eth1 is left alone, its rules and tables untouched, the other NICs get tables of their own', (t) => {
  const { kernel: k, foreign, host } = ec2NetUtilsEth1(kernel());
  const found = survey({ kernel: k, foreignRoutes: foreign, host, tables, priorities });
  const tool = found.tools.find((x) => x.tool === EC2_NET_UTILS);
  t.is(tool?.stance, 'yield');
  t.deepEqual(tool?.links, ['eth1']);
  const result = plan(model, config, k, [], found.neighbours);
  t.like(result.nics[1], { leftAlone: { tool: EC2_NET_UTILS } });
  t.deepEqual(touches(result.operations, 'eth1', 20_001), []);
  // nothing the plan does names ec2-net-utils' table, priority or addresses
  t.false(result.operations.some((op) => ('table' in op && op.table === 10_001) || ('priority' in op && op.priority === 10_001) || JSON.stringify(op).includes('10.4.1.')));
  t.true(result.operations.some((op) => op.kind === 'rule.add' && op.table === 20_002 && op.priority === RULE_PRIORITY.from));
});

test('without recognising amazon-ec2-net-utils the plan would configure eth1 beside it', (t) => {
  const { kernel: k } = ec2NetUtilsEth1(kernel());
  const result = plan(model, config, k);
  t.true(touches(result.operations, 'eth1', 20_001).length > 0);
});

test('amazon-ec2-net-utils is recognised by its kernel objects alone, and by its files alone', (t) => {
  const { kernel: k, foreign, host } = ec2NetUtilsEth1(kernel());
  const byKernel = survey({ kernel: k, foreignRoutes: foreign, host: NO_HOST_FACTS, tables, priorities });
  t.deepEqual(byKernel.tools.find((x) => x.tool === EC2_NET_UTILS)?.links, ['eth1']);
  const byFiles = survey({ kernel: kernel(), foreignRoutes: [], host, tables, priorities });
  t.deepEqual(byFiles.tools.find((x) => x.tool === EC2_NET_UTILS)?.links, ['eth1']);
});

test('cloud-network’s own objects at the former defaults are not mistaken for another tool’s', (t) => {
  const k = kernel();
  k.rules.push({ family: 'inet', priority: 30_200, table: 10_001, from: '10.4.1.5/32', protocol: 201, action: 'lookup' });
  const found = survey({ kernel: k, foreignRoutes: [route({ table: 10_001, ifindex: 3, protocol: 201, gateway: '10.4.1.1' })], host: NO_HOST_FACTS, tables, priorities });
  t.deepEqual(found.tools, []);
});

test('the Go cloud-network-setup’s table 9999 + ifindex (10002 for ifindex 3) is not taken for amazon-ec2-net-utils’', (t) => {
  const k = kernel();
  // its rules have kernel-chosen priorities and no protocol; its default route vishvananda/netlink's protocol boot (3)
  k.rules.push({ family: 'inet', priority: 32_765, table: 10_002, from: '10.4.1.5/32', protocol: 0, action: 'lookup' });
  k.rules.push({ family: 'inet', priority: 32_764, table: 10_002, to: '10.4.1.5/32', protocol: 0, action: 'lookup' });
  const found = survey({ kernel: k, foreignRoutes: [route({ table: 10_002, ifindex: 3, protocol: 3, gateway: '10.4.1.1' })], host: NO_HOST_FACTS, tables, priorities });
  t.deepEqual(found.tools, []);
  t.deepEqual(found.neighbours.links.size, 0);
});

/** nm-cloud-setup's layout for interface index 1 (eth1): main.c's tables and priorities 30201 and 30401, and 30350. */
function nmCloudSetupEth1(k: KernelState): { kernel: KernelState; foreign: ObservedRoute[] } {
  k.rules.push(
    { family: 'inet', priority: 30_201, table: 30_201, from: '10.4.1.5/32', protocol: 4, action: 'lookup' },
    { family: 'inet', priority: 30_350, table: 254, suppressPrefixLength: 0, protocol: 4, action: 'lookup' },
    { family: 'inet', priority: 30_401, table: 30_401, from: '10.4.1.5/32', protocol: 4, action: 'lookup' },
  );
  const foreign = [
    route({ table: 30_201, destination: '10.4.1.0/24', ifindex: 3, scope: 'link', metric: 10 }),
    route({ table: 30_401, destination: '0.0.0.0/0', gateway: '10.4.1.1', ifindex: 3, metric: 10 }),
  ];
  return { kernel: k, foreign };
}

test('nm-cloud-setup managing eth1: eth1 is left alone, and no number of its is used', (t) => {
  const { kernel: k, foreign } = nmCloudSetupEth1(kernel());
  const found = survey({ kernel: k, foreignRoutes: foreign, host: facts({ enabledUnits: new Set(['nm-cloud-setup.timer']) }), tables, priorities });
  t.deepEqual(found.tools.find((x) => x.tool === NM_CLOUD_SETUP)?.links, ['eth1']);
  const result = plan(model, config, k, [], found.neighbours);
  t.deepEqual(touches(result.operations, 'eth1', 20_001), []);
  const numbers = result.operations.flatMap((op) => ['table' in op ? op.table : 0, 'priority' in op ? op.priority : 0]);
  t.false(numbers.some((n) => n >= 30_200 && n < 30_500));
});

test('nm-cloud-setup enabled: the interfaces NetworkManager manages are left to it before it has configured them', (t) => {
  const host = facts({ enabledUnits: new Set(['nm-cloud-setup.timer']), networkManagerDevices: new Map([[3, '[device]\nmanaged=true\n'], [4, '[device]\nmanaged=false\n']]) });
  const found = survey({ kernel: kernel(), foreignRoutes: [], host, tables, priorities });
  t.deepEqual([...found.neighbours.links.keys()], ['eth1']);
});

test('google-guest-agent delivering a forwarded range: cloud-network adds no local route or rule for it, and configures the NIC', (t) => {
  const k = kernel();
  const foreign = [route({ table: 255, destination: '10.128.8.0/24', ifindex: 4, protocol: 66, type: 'local', scope: 'host' })];
  const found = survey({ kernel: k, foreignRoutes: foreign, host: NO_HOST_FACTS, tables, priorities });
  t.is(found.tools.find((x) => x.tool === GUEST_AGENT)?.stance, 'coexist');
  const result = plan(model, config, k, [], found.neighbours);
  t.false(result.operations.some((op) => JSON.stringify(op).includes('10.128.8.0')));
  t.deepEqual(result.nics[2]?.rangesLeftAlone, ['10.128.8.0/24']);
  t.true(result.operations.some((op) => op.kind === 'route.replace' && op.table === 20_002));
  // without it, cloud-network would deliver the range itself
  t.true(plan(model, config, k).operations.some((op) => op.kind === 'route.replace' && op.destination === '10.128.8.0/24'));
});

test('systemd-networkd: coexists; the report says whether its configuration keeps cloud-network’s routes and rules', (t) => {
  const links = new Map([[3, 'ADMIN_STATE=configured\nNETWORK_FILE=/etc/systemd/network/10-eth.network\n']]);
  const running = new Set(['systemd-networkd.service']);
  const without = survey({ kernel: kernel(), foreignRoutes: [], host: facts({ runningUnits: running, networkdLinks: links }), tables, priorities });
  const networkd = without.tools.find((x) => x.tool === NETWORKD)!;
  t.is(networkd.stance, 'coexist');
  t.deepEqual(networkd.links, ['eth1']);
  t.regex(networkd.note, /removes cloud-network’s routes and rules/);
  t.is(without.neighbours.links.size, 0);
  const dropIn = { path: '/usr/lib/systemd/networkd.conf.d/50-cloud-network.conf', text: '[Network]\nManageForeignRoutes=no\nManageForeignRoutingPolicyRules=no\n' };
  const withDropIn = survey({ kernel: kernel(), foreignRoutes: [], host: facts({ runningUnits: running, networkdLinks: links, networkdConf: [dropIn] }), tables, priorities });
  t.regex(withDropIn.tools.find((x) => x.tool === NETWORKD)!.note, /leaves cloud-network’s routes and rules alone/);
  // a later file that says yes again wins, as in networkd
  const overridden = [dropIn, { path: '/etc/systemd/networkd.conf.d/99-local.conf', text: '[Network]\nManageForeignRoutingPolicyRules=yes\n' }];
  t.regex(survey({ kernel: kernel(), foreignRoutes: [], host: facts({ runningUnits: running, networkdLinks: links, networkdConf: overridden }), tables, priorities }).tools[0]!.note, /removes cloud-network’s rules/);
  t.is(withDropIn.likelyRemover('eth1'), NETWORKD);
});

test('a table of cloud-network’s holding another tool’s routes is reported and not used: that NIC is left alone', (t) => {
  const k = kernel();
  const foreign = [route({ table: 20_001, destination: '0.0.0.0/0', gateway: '10.4.1.1', ifindex: 3, protocol: 3 })];
  const found = survey({ kernel: k, foreignRoutes: foreign, host: NO_HOST_FACTS, tables, priorities });
  t.regex(found.collisions[0]!.what, /table 20001 holds routes of protocol boot/);
  const result = plan(model, config, k, [], found.neighbours);
  t.truthy(result.nics[1]?.leftAlone);
  t.deepEqual(touches(result.operations, 'eth1', 20_001), []);
});

test('a rule of another tool at cloud-network’s priority selecting a NIC’s address: reported, and that NIC left alone', (t) => {
  const k = kernel();
  k.rules.push({ family: 'inet', priority: RULE_PRIORITY.from, table: 100, from: '10.4.2.5/32', protocol: 4, action: 'lookup' });
  const found = survey({ kernel: k, foreignRoutes: [], host: NO_HOST_FACTS, tables, priorities });
  t.regex(found.collisions[0]!.what, /priority 20200 holds a rule of protocol static .* eth2 is left alone/);
  t.truthy(plan(model, config, k, [], found.neighbours).nics[2]?.leftAlone);
});

// ------------------------------------------------------------------------------------------
// The tug of war

const address: Operation = { kind: 'address.add', link: 'eth1', address: '10.4.1.6/24', noPrefixRoute: true };

test(`an object removed more than ${CONTEST_LIMIT} times within a minute is not re-added, until a reload`, (t) => {
  let now = 0;
  const contest = new Contest(() => now);
  const rounds: number[] = [];
  for (let i = 0; i < 8; i++) {
    now += 5_000;
    const { operations, newlyHeld } = contest.filter([address], () => NETWORKD);
    rounds.push(operations.length);
    contest.placedBy(operations, operations.map((_, index) => ({ index, outcome: 'applied' })));
    if (newlyHeld.length) t.like(newlyHeld[0], { object: 'ip address add 10.4.1.6/24 dev eth1 noprefixroute proto 201', removals: CONTEST_LIMIT + 1, likelyTool: NETWORKD });
  }
  // the first add, five re-adds, then held
  t.deepEqual(rounds, [1, 1, 1, 1, 1, 1, 0, 0]);
  t.is(contest.contested.length, 1);
  contest.clear();
  t.is(contest.filter([address], () => undefined).operations.length, 1);
});

test('an object found in place (as ExecStartPre --once leaves it) counts from its first removal', (t) => {
  let now = 0;
  const contest = new Contest(() => now);
  contest.settled('model');
  const rounds: number[] = [];
  for (let i = 0; i < 7; i++) {
    now += 5_000;
    const { operations } = contest.filter([address], () => NETWORKD, 'model');
    rounds.push(operations.length);
    contest.placedBy(operations, operations.map((_, index) => ({ index, outcome: 'applied' })));
    if (operations.length) contest.settled('model');
  }
  // five re-adds, then held
  t.deepEqual(rounds, [1, 1, 1, 1, 1, 0, 0]);
  // an add the metadata brings is no removal, and one removal is counted once however often it is planned
  const other = new Contest(() => now);
  other.settled('model');
  t.is(other.filter([address], () => undefined, 'new model').operations.length, 1);
  for (let i = 0; i < 10; i++) other.filter([address], () => undefined, 'model');
  t.deepEqual(other.contested, []);
});

test('an object the metadata takes away and brings back is not counted as removed by another tool', (t) => {
  let now = 0;
  const contest = new Contest(() => now);
  for (let i = 0; i < 8; i++) {
    now += 1_000;
    // the metadata lists the address again: it is added, and the reconcile converges
    const { operations } = contest.filter([address], () => undefined, 'with');
    t.is(operations.length, 1, `round ${i}`);
    contest.placedBy(operations, [{ index: 0, outcome: 'applied' }]);
    contest.settled('with');
    // the metadata drops it: cloud-network removes it itself, and converges without it
    contest.settled('without');
  }
  t.deepEqual(contest.contested, []);
});

test('removals spread over more than a minute are repaired every time', (t) => {
  let now = 0;
  const contest = new Contest(() => now);
  for (let i = 0; i < 20; i++) {
    now += 15_000;
    const { operations } = contest.filter([address], () => undefined);
    t.is(operations.length, 1);
    contest.placedBy(operations, [{ index: 0, outcome: 'applied' }]);
  }
  t.deepEqual(contest.contested, []);
});

/** A world where another tool deletes 10.4.1.6 from eth1 after every apply. */
class Tug implements MetadataSource, KernelReader, HelperApi, StateSink {
  readonly name = 'ec2' as const;
  kernel = kernel();
  adds = 0;
  async fetch(): Promise<ProviderSnapshot> {
    return { model, document: {}, sshKeys: [] };
  }
  async read(): Promise<KernelState> {
    return this.kernel;
  }
  async apply(operations: Operation[]) {
    this.adds += operations.filter((op) => op.kind === 'address.add' && op.address === '10.4.1.6/24').length;
    this.kernel = applied(this.kernel, operations);
    return { results: operations.map((op, index) => ({ index, kind: op.kind, outcome: 'applied' as const })) };
  }
  removeAddress(): void {
    this.kernel = { ...this.kernel, addresses: this.kernel.addresses.filter((a) => a.address !== '10.4.1.6') };
  }
  async ownedAddresses() {
    return { addresses: [] };
  }
  async write(): Promise<void> {}
}

test('the reconciler stops re-adding what another tool keeps removing, warns once naming it and the tool, and re-adds after a reload', async (t) => {
  const world = new Tug();
  let now = 0;
  const warnings: string[] = [];
  const log = bunyan.createLogger({ name: 'test', streams: [{ level: 'warn', type: 'raw', stream: { write: (r: object) => void warnings.push((r as { msg: string }).msg) } }] });
  const networkdManagesEth1: NeighbourView = {
    refresh: async () => false,
    survey: (k) =>
      survey({ kernel: k, foreignRoutes: [], host: facts({ runningUnits: new Set(['systemd-networkd.service']), networkdLinks: new Map([[3, 'NETWORK_FILE=/etc/systemd/network/eth.network\n']]) }), tables, priorities }),
  };
  const r = new Reconciler({ source: world, kernel: world, helper: world, state: world, log, config, retryMs: 60_000, neighbours: networkdManagesEth1, clock: () => now });
  t.like(await r.request('start', true), { converged: true });
  for (let i = 0; i < 10; i++) {
    now += 1_000;
    world.removeAddress();
    await r.request('kernel', false);
  }
  t.is(world.adds, 1 + CONTEST_LIMIT);
  t.false(world.kernel.addresses.some((a) => a.address === '10.4.1.6'));
  t.like(r.status.contested, [{ object: 'ip address add 10.4.1.6/24 dev eth1 noprefixroute proto 201', likelyTool: NETWORKD }]);
  t.is(warnings.filter((w) => w.includes('10.4.1.6')).length, 1);
  t.regex(warnings[0]!, /removed 6 times within a minute, likely by systemd-networkd; cloud-network stops re-adding it until the next reload/);
  await r.request('signal', true);
  t.true(world.kernel.addresses.some((a) => a.address === '10.4.1.6'));
  t.deepEqual(r.status.contested, []);
  await r.stop();
});
