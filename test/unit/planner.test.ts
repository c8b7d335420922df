import test from 'ava';
import { plan, Planner, type PlannerConfig } from '../../agent/plan/planner.js';
import { describeOperation } from '../../netlink/describe.js';
import type { MetadataModel, Nic } from '../../agent/metadata/model.js';
import type { KernelState, ObservedAddress, ObservedLink } from '../../netlink/types.js';
import type { Operation } from '../../protocol/operations.js';
import { applied } from '../lib/fake-kernel.js';

const config: PlannerConfig = { routeTableBase: 20000, supplementary: [] };

function nic(overrides: Partial<Nic> & Pick<Nic, 'mac' | 'index'>): Nic {
  return {
    primary: false,
    ipv4: [],
    publicIpv4: [],
    ipv6: [],
    subnet: { address: '10.4.0.0', prefixLength: 24 },
    gateway: '10.4.0.1',
    routedRanges: [],
    hostAddresses: false,
    details: {},
    ...overrides,
  };
}

const azure: MetadataModel = {
  instance: { provider: 'azure', id: 'vm-1', name: 'vm', region: 'westeurope', zone: '1', size: 'D2', image: 'debian', details: {} },
  nics: [
    nic({
      mac: '00:0d:3a:00:00:01',
      index: 0,
      primary: true,
      ipv4: [
        { address: '10.4.0.4', prefixLength: 24, primary: true },
        { address: '10.4.0.10', prefixLength: 24, primary: false },
      ],
    }),
    nic({
      mac: '00:0d:3a:00:00:02',
      index: 1,
      ipv4: [
        { address: '10.4.1.5', prefixLength: 24, primary: true },
        { address: '10.4.1.6', prefixLength: 24, primary: false },
      ],
      subnet: { address: '10.4.1.0', prefixLength: 24 },
      gateway: '10.4.1.1',
    }),
  ],
};

const links: ObservedLink[] = [
  { index: 1, name: 'lo', mac: '00:00:00:00:00:00', up: true, mtu: 65536, loopback: true },
  { index: 2, name: 'eth0', mac: '00:0d:3a:00:00:01', up: true, mtu: 1500, loopback: false },
  { index: 3, name: 'eth1', mac: '00:0d:3a:00:00:02', up: true, mtu: 1500, loopback: false },
];

const dhcp: ObservedAddress = {
  ifindex: 2,
  family: 'inet',
  address: '10.4.0.4',
  prefixLength: 24,
  dynamic: true,
  noPrefixRoute: false,
  scope: 0,
};

const dhcpOnly: KernelState = { links, addresses: [dhcp], routes: [], rules: [] };

const lines = (ops: Operation[]) => ops.map(describeOperation);

test('from a DHCP-only start, every secondary IP gets its address, table and rules', (t) => {
  const result = plan(azure, config, dhcpOnly);
  t.deepEqual(lines(result.operations), [
    'ip address add 10.4.0.10/24 dev eth0 noprefixroute proto 201',
    'ip address add 10.4.1.5/24 dev eth1 noprefixroute proto 201',
    'ip address add 10.4.1.6/24 dev eth1 noprefixroute proto 201',
    'ip route replace 10.4.1.0/24 dev eth1 table 20001 proto 201 scope link',
    'ip route replace default via 10.4.1.1 dev eth1 table 20001 proto 201 scope global',
    // highest priority number first: the kernel's insertions then stop early (planner.ts)
    'ip rule add priority 20200 from 10.4.1.5/32 lookup 20001 proto 201',
    'ip rule add priority 20200 from 10.4.1.6/32 lookup 20001 proto 201',
    'ip rule add priority 20100 to 10.4.1.5/32 lookup 20001 proto 201',
    'ip rule add priority 20100 to 10.4.1.6/32 lookup 20001 proto 201',
    'ip rule add priority 20000 lookup main suppress_prefixlength 0 proto 201',
  ]);
  t.is(result.nics[1]!.table, 20001);
  t.is(result.nics[0]!.table, undefined);
});

test('the DHCP address is never added, replaced or removed', (t) => {
  const result = plan(azure, config, dhcpOnly);
  t.false(result.operations.some((op) => 'address' in op && op.address.startsWith('10.4.0.4/')));
  // even when the metadata no longer lists it
  const without = { ...azure, nics: [azure.nics[1]!] };
  t.false(plan(without, config, dhcpOnly).operations.some((op) => op.kind === 'address.remove'));
});

test('a second pass over the converged kernel plans nothing', (t) => {
  const first = plan(azure, config, dhcpOnly);
  const converged = applied(dhcpOnly, first.operations);
  t.deepEqual(plan(azure, config, converged).operations, []);
});

test('an IP removed from the metadata removes exactly its address and rules', (t) => {
  const converged = applied(dhcpOnly, plan(azure, config, dhcpOnly).operations);
  const fewer: MetadataModel = {
    ...azure,
    nics: [azure.nics[0]!, { ...azure.nics[1]!, ipv4: [azure.nics[1]!.ipv4[0]!] }],
  };
  t.deepEqual(lines(plan(fewer, config, converged).operations), [
    'ip rule del priority 20100 to 10.4.1.6/32 lookup 20001 proto 201',
    'ip rule del priority 20200 from 10.4.1.6/32 lookup 20001 proto 201',
    'ip address del 10.4.1.6/24 dev eth1',
  ]);
});

test('a rule of ours that is in the kernel twice is removed twice when unwanted, and left when wanted', (t) => {
  const converged = applied(dhcpOnly, plan(azure, config, dhcpOnly).operations);
  const twice = { ...converged, rules: [...converged.rules, ...converged.rules.filter((r) => r.to === '10.4.1.6/32' || r.to === '10.4.1.5/32')] };
  t.deepEqual(plan(azure, config, twice).operations, [], 'a wanted rule twice: nothing to do');
  const fewer: MetadataModel = { ...azure, nics: [azure.nics[0]!, { ...azure.nics[1]!, ipv4: [azure.nics[1]!.ipv4[0]!] }] };
  t.deepEqual(lines(plan(fewer, config, twice).operations), [
    'ip rule del priority 20100 to 10.4.1.6/32 lookup 20001 proto 201',
    'ip rule del priority 20200 from 10.4.1.6/32 lookup 20001 proto 201',
    'ip rule del priority 20100 to 10.4.1.6/32 lookup 20001 proto 201',
    'ip address del 10.4.1.6/24 dev eth1',
  ]);
});

test('a NIC gone from the metadata loses everything we made for it and nothing else', (t) => {
  const converged = applied(dhcpOnly, plan(azure, config, dhcpOnly).operations);
  const handMade: ObservedAddress = { ...dhcp, ifindex: 3, address: '192.0.2.9', dynamic: false };
  converged.addresses.push(handMade);
  const onlyPrimary: MetadataModel = { ...azure, nics: [azure.nics[0]!] };
  const ops = plan(onlyPrimary, config, converged).operations;
  t.true(ops.every((op) => op.kind.endsWith('.remove')));
  t.false(ops.some((op) => 'address' in op && op.address.startsWith('192.0.2.9')));
  const after = applied(converged, ops);
  t.deepEqual(after.rules, []);
  t.deepEqual(after.routes, []);
  t.deepEqual(
    after.addresses.map((a) => a.address),
    ['10.4.0.4', '10.4.0.10', '192.0.2.9'],
  );
});

test('addresses and rules that others made are left alone', (t) => {
  const foreignRule = { family: 'inet' as const, priority: 20200, table: 20001, from: '10.9.9.9/32', protocol: 4, action: 'lookup' as const };
  const state: KernelState = { ...dhcpOnly, rules: [foreignRule] };
  t.false(plan(azure, config, state).operations.some((op) => op.kind === 'rule.remove'));
});

test('Supplementary= gives the primary NIC a table and rules for its primary IP too', (t) => {
  const ops = lines(plan(azure, { ...config, supplementary: ['eth0'] }, dhcpOnly).operations);
  t.true(ops.includes('ip rule add priority 20200 from 10.4.0.4/32 lookup 20000 proto 201'));
  t.true(ops.includes('ip rule add priority 20100 to 10.4.0.10/32 lookup 20000 proto 201'));
  t.true(ops.includes('ip route replace default via 10.4.0.1 dev eth0 table 20000 proto 201 scope global'));
  t.false(ops.some((line) => line.startsWith('add address 10.4.0.4/')));
});

test('the primary IP gets no rule without Supplementary=', (t) => {
  const ops = lines(plan(azure, config, dhcpOnly).operations);
  t.false(ops.some((line) => line.includes('10.4.0.4')));
  t.false(ops.some((line) => line.includes('10.4.0.10/32')));
});

test('a NIC without a matching link is reported and planned for later', (t) => {
  const result = plan(azure, config, { ...dhcpOnly, links: links.slice(0, 2) });
  t.regex(result.nics[1]!.problem!, /no network interface with MAC 00:0d:3a:00:00:02/);
  t.false(result.operations.some((op) => 'link' in op && op.link === 'eth1'));
});

test('an enslaved link with the same MAC (Azure accelerated networking VF) is skipped', (t) => {
  const vf: ObservedLink = { index: 4, name: 'enP1s1', mac: '00:0d:3a:00:00:02', up: true, mtu: 1500, loopback: false, master: 3 };
  const result = plan(azure, config, { ...dhcpOnly, links: [...links, vf].sort((a, b) => b.index - a.index) });
  t.is(result.nics[1]!.link!.name, 'eth1');
});

test('GCP: /32 addresses, a host route to the gateway, the metadata MTU and local routes for alias ranges', (t) => {
  const gcp: MetadataModel = {
    instance: { ...azure.instance, provider: 'gcp' },
    nics: [
      nic({
        mac: '42:01:0a:80:00:02',
        index: 0,
        primary: true,
        ipv4: [{ address: '10.128.0.2', prefixLength: 20, primary: true }],
        subnet: { address: '10.128.0.0', prefixLength: 20 },
        gateway: '10.128.0.1',
        hostAddresses: true,
        mtu: 1460,
        routedRanges: ['10.128.8.0/24'],
      }),
      nic({
        mac: '42:01:0a:0a:00:02',
        index: 1,
        ipv4: [{ address: '10.10.0.2', prefixLength: 24, primary: true }],
        subnet: { address: '10.10.0.0', prefixLength: 24 },
        gateway: '10.10.0.1',
        hostAddresses: true,
        mtu: 1460,
      }),
    ],
  };
  const gcpLinks: ObservedLink[] = [
    { index: 2, name: 'ens4', mac: '42:01:0a:80:00:02', up: true, mtu: 1460, loopback: false },
    { index: 3, name: 'ens5', mac: '42:01:0a:0a:00:02', up: false, mtu: 1500, loopback: false },
  ];
  const state: KernelState = {
    links: gcpLinks,
    addresses: [{ ...dhcp, address: '10.128.0.2', prefixLength: 32 }],
    routes: [],
    rules: [],
  };
  const ops = lines(plan(gcp, config, state).operations);
  t.deepEqual(ops.slice(0, 4), [
    'ip link set dev ens5 up',
    'ip link set dev ens5 mtu 1460',
    'ip address add 10.10.0.2/32 dev ens5 noprefixroute proto 201',
    'ip route replace local 10.128.8.0/24 dev ens4 table local proto 201 scope host',
  ]);
  t.true(ops.includes('ip route replace 10.10.0.1/32 dev ens5 table 20001 proto 201 scope link'));
  t.true(ops.includes('ip route replace default via 10.10.0.1 dev ens5 table 20001 proto 201 scope global'));
});

test('IPv6 addresses are configured, and policy-routed where a gateway is known', (t) => {
  const v6: MetadataModel = {
    ...azure,
    nics: [
      azure.nics[0]!,
      { ...azure.nics[1]!, ipv6: [{ address: '2001:DB8:1::5', prefixLength: 64 }], gateway6: 'fe80::1234:5678:9abc' },
    ],
  };
  const ops = lines(plan(v6, config, dhcpOnly).operations);
  t.true(ops.includes('ip address add 2001:db8:1::5/64 dev eth1 noprefixroute proto 201'));
  t.true(ops.includes('ip -6 route replace default via fe80::1234:5678:9abc dev eth1 table 20001 proto 201'));
  t.true(ops.includes('ip -6 rule add priority 20200 from 2001:db8:1::5/128 lookup 20001 proto 201'));
  t.true(ops.includes('ip rule add priority 20000 lookup main suppress_prefixlength 0 proto 201'));
});

test('a NIC on an IPv6-only subnet gets its IPv6 addresses, table and rules, and no IPv4 route', (t) => {
  const { subnet: _subnet, gateway: _gateway, ...second } = azure.nics[1]!;
  const v6only: MetadataModel = {
    ...azure,
    nics: [azure.nics[0]!, { ...second, ipv4: [], ipv6: [{ address: '2001:db8:1::5', prefixLength: 64 }], gateway6: 'fe80::1' }],
  };
  const ops = lines(plan(v6only, config, dhcpOnly).operations);
  t.deepEqual(
    ops.filter((line) => line.includes('eth1') || line.includes('20001')),
    [
      'ip address add 2001:db8:1::5/64 dev eth1 noprefixroute proto 201',
      'ip -6 route replace default via fe80::1 dev eth1 table 20001 proto 201',
      'ip -6 rule add priority 20200 from 2001:db8:1::5/128 lookup 20001 proto 201',
      'ip -6 rule add priority 20100 to 2001:db8:1::5/128 lookup 20001 proto 201',
    ],
  );
  t.false(ops.some((line) => line.includes('0.0.0.0/0')));
});

test('a NIC the metadata marks as unhandled is reported with its reason and nothing is planned for it', (t) => {
  const marked: MetadataModel = { ...azure, nics: [azure.nics[0]!, { ...azure.nics[1]!, unhandled: 'a VLAN-tagged VNIC on a bare-metal instance' }] };
  const result = plan(marked, config, { ...dhcpOnly, links: links.map((l) => (l.name === 'eth1' ? { ...l, up: false } : l)) });
  t.is(result.nics[1]!.problem, 'a VLAN-tagged VNIC on a bare-metal instance');
  t.is(result.nics[1]!.link, undefined);
  t.false(result.operations.some((op) => ('link' in op && op.link === 'eth1') || ('table' in op && op.table === 20001)));
});

test('an owned route with a different gateway is replaced, a stale owned table route removed', (t) => {
  const converged = applied(dhcpOnly, plan(azure, config, dhcpOnly).operations);
  const moved: MetadataModel = {
    ...azure,
    nics: [azure.nics[0]!, { ...azure.nics[1]!, gateway: '10.4.1.254', subnet: { address: '10.4.1.0', prefixLength: 25 } }],
  };
  t.deepEqual(lines(plan(moved, config, converged).operations), [
    'ip route replace 10.4.1.0/25 dev eth1 table 20001 proto 201 scope link',
    'ip route replace default via 10.4.1.254 dev eth1 table 20001 proto 201 scope global',
    'ip route del 10.4.1.0/24 dev eth1 table 20001 proto 201',
  ]);
});

test('the same model planned again follows its links and config: a NIC attached later, another supplementary NIC, a renamed link', (t) => {
  const ruleTexts = (p: ReturnType<typeof plan>) => p.operations.filter((op) => op.kind === 'rule.add').map((op) => describeOperation(op)).sort();
  // eth1 not there yet
  const before = plan(azure, config, { ...dhcpOnly, links: links.filter((l) => l.name !== 'eth1') });
  t.regex(before.nics[1]!.problem ?? '', /no network interface with MAC 00:0d:3a:00:00:02/);
  t.deepEqual(ruleTexts(before), []);
  // the same model object, now with eth1: its addresses and rules are planned
  const attached = plan(azure, config, dhcpOnly);
  t.is(attached.nics[1]!.problem, undefined);
  t.true(attached.operations.some((op) => op.kind === 'address.add' && op.address === '10.4.1.6/24'));
  t.is(ruleTexts(attached).length, 5);
  // a new config object: eth0 supplementary too
  const supplementary = plan(azure, { ...config, supplementary: ['eth0'] }, dhcpOnly);
  t.true(ruleTexts(supplementary).length > ruleTexts(attached).length);
  // eth1 renamed (same MAC): the operations name the new link
  const renamed = plan(azure, config, { ...dhcpOnly, links: links.map((l) => (l.name === 'eth1' ? { ...l, name: 'ens5' } : l)) });
  t.true(renamed.operations.some((op) => op.kind === 'address.add' && op.link === 'ens5'));
  t.false(renamed.operations.some((op) => 'link' in op && op.link === 'eth1'));
});

test('a Planner that remembers earlier plans plans as a fresh one: the same model, a new config, other links', (t) => {
  const planner = new Planner();
  const converged = applied(dhcpOnly, plan(azure, config, dhcpOnly).operations);
  const renamed: KernelState = { ...converged, links: converged.links.map((l) => (l.index === 3 ? { ...l, name: 'ens5' } : l)) };
  const supplementary: PlannerConfig = { ...config, supplementary: ['eth0'] };
  const fewer: MetadataModel = { ...azure, nics: azure.nics.slice(0, 1) };
  const sequence: [MetadataModel, PlannerConfig, KernelState][] = [
    [azure, config, dhcpOnly],
    [azure, config, converged],
    [azure, config, converged],
    [azure, supplementary, converged],
    [azure, config, renamed],
    [fewer, config, converged],
    [azure, config, dhcpOnly],
  ];
  for (const [model, planConfig, kernel] of sequence) t.deepEqual(planner.plan(model, planConfig, kernel), plan(model, planConfig, kernel));
});
