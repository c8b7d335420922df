// The helper's policy, one rule per test, on plain kernel state (no kernel needed).
import test from 'ava';
import { KernelPicture, type PictureOptions } from '../../helper/kernel-picture.js';
import { checkOperation, type LedgerView, type PolicyConfig } from '../../helper/policy.js';
import { unicastProblem } from '../../helper/unicast.js';
import { parseIp } from '../../protocol/ip.js';
import type { Operation } from '../../protocol/operations.js';
import type { KernelState } from '../../netlink/types.js';

const config: PolicyConfig = { tables: { first: 20_000, last: 29_999 }, priorities: { first: 20_000, last: 20_999 }, deniedLinks: new Set(['eth9']) };
const noLedger: LedgerView = { has: () => false };

function state(): KernelState {
  return {
    links: [
      { index: 1, name: 'lo', mac: '', up: true, mtu: 65536, loopback: true },
      { index: 2, name: 'eth0', mac: '00:0d:3a:00:00:01', up: true, mtu: 1500, loopback: false },
      { index: 3, name: 'eth1', mac: '00:0d:3a:00:00:02', up: true, mtu: 1500, loopback: false },
      { index: 4, name: 'enP1s1', mac: '00:0d:3a:00:00:02', up: true, mtu: 1500, loopback: false, master: 3 },
      { index: 5, name: 'eth9', mac: '00:0d:3a:00:00:09', up: true, mtu: 1500, loopback: false },
    ],
    addresses: [
      { ifindex: 2, family: 'inet', address: '10.4.0.4', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 },
      { ifindex: 2, family: 'inet', address: '10.4.0.20', prefixLength: 24, dynamic: false, noPrefixRoute: false, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.5', prefixLength: 24, protocol: 201, dynamic: false, noPrefixRoute: true, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.6', prefixLength: 24, dynamic: false, noPrefixRoute: true, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.7', prefixLength: 24, protocol: 4, dynamic: false, noPrefixRoute: true, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.9', prefixLength: 24, protocol: 4, dynamic: false, noPrefixRoute: true, scope: 0 },
      { ifindex: 3, family: 'inet', address: '10.4.1.10', prefixLength: 24, protocol: 4, dynamic: false, noPrefixRoute: true, scope: 0 },
    ],
    routes: [
      { table: 20_001, family: 'inet', destination: '10.4.1.0/24', ifindex: 3, protocol: 201, type: 'unicast', scope: 'link' },
      { table: 20_002, family: 'inet', destination: '0.0.0.0/0', ifindex: 3, gateway: '10.4.1.1', protocol: 4, type: 'unicast', scope: 'universe' },
      { table: 255, family: 'inet', destination: '10.4.0.4/32', ifindex: 2, protocol: 2, type: 'local', scope: 'host' },
      { table: 255, family: 'inet', destination: '10.128.8.0/24', ifindex: 2, protocol: 201, type: 'local', scope: 'host' },
    ],
    rules: [
      { family: 'inet', priority: 20_100, table: 20_001, to: '10.4.1.5/32', protocol: 201, action: 'lookup' },
      { family: 'inet', priority: 20_200, table: 20_001, from: '10.4.1.9/32', protocol: 0, action: 'lookup' },
      // the same selector, but only for packets arriving on eth1 (iif): another rule
      { family: 'inet', priority: 20_200, table: 20_001, from: '10.4.1.10/32', protocol: 0, action: 'lookup', otherSelectors: true },
    ],
  };
}

function decide(op: Operation, ledger = noLedger, options: PictureOptions = {}) {
  return checkOperation(op, new KernelPicture(state(), options), ledger, config);
}

function refused(t: import('ava').ExecutionContext, op: Operation, reason: RegExp, ledger = noLedger) {
  const verdict = decide(op, ledger);
  t.is(verdict.decision, 'refuse', JSON.stringify(op));
  if (verdict.decision === 'refuse') t.regex(verdict.reason, reason);
}

const addAddress = (link: string, address: string): Operation => ({ kind: 'address.add', link, address, noPrefixRoute: true });

test('an address on a normal NIC is allowed', (t) => {
  t.is(decide(addAddress('eth1', '10.4.1.8/24')).decision, 'allow');
  t.is(decide(addAddress('eth1', '2001:db8:1::5/64')).decision, 'allow');
});

test('a link that does not exist is refused', (t) => refused(t, addAddress('eth7', '10.4.1.8/24'), /no interface named eth7/));
test('the loopback interface is never touched', (t) => refused(t, addAddress('lo', '10.4.1.8/24'), /loopback interface/));
test('a link enslaved to another (an accelerated-networking VF) is refused, naming its master', (t) =>
  refused(t, { kind: 'link.set', link: 'enP1s1', mtu: 1500 }, /enslaved to eth1/));
test('a link on the deny list is refused', (t) => refused(t, addAddress('eth9', '10.4.9.8/24'), /deny list/));
test('an interface is never taken down', (t) => refused(t, { kind: 'link.set', link: 'eth1', up: false }, /never takes an interface down/));

test('addresses that are not unicast are refused', (t) => {
  for (const [address, why] of [
    ['0.1.2.3/24', /this network/],
    ['127.0.0.2/8', /loopback/],
    ['169.254.169.254/16', /link-local/],
    ['224.0.0.5/24', /multicast/],
    ['255.255.255.255/32', /reserved or broadcast/],
    ['240.0.0.1/24', /reserved/],
    ['::/128', /unspecified/],
    ['::1/128', /loopback/],
    ['fe80::1/64', /link-local/],
    ['ff02::1/64', /multicast/],
    ['::ffff:10.4.1.8/128', /IPv4-mapped/],
  ] as const) {
    refused(t, addAddress('eth1', address), why);
  }
});

test('every IPv4 first byte, and the edges of the IPv6 ranges, are judged as the reserved ranges say', (t) => {
  // unicast.ts looks up the ranges by an address's first byte; the oracle here is the ranges' text
  for (let first = 0; first < 256; first++) {
    for (const second of [0, 1, 253, 254, 255]) {
      const ip = parseIp(`${first}.${second}.7.9`)!;
      const reserved = first === 0 || first === 127 || (first === 169 && second === 254) || first >= 224;
      t.is(unicastProblem(ip) !== undefined, reserved, `${first}.${second}.7.9`);
    }
  }
  for (const [text, reserved] of [
    ['::', true], ['::1', true], ['::2', false], ['::ffff:0:1', true], ['::fffe:0:1', false], ['100::1', false],
    ['fe7f:ffff::1', false], ['fe80::1', true], ['febf:ffff::1', true], ['fec0::1', false], ['feff::1', false],
    ['ff00::1', true], ['ff02::1', true], ['fd00::1', false], ['2001:db8::1', false],
  ] as const) {
    t.is(unicastProblem(parseIp(text)!) !== undefined, reserved, text);
  }
  // an IPv6 gateway may be link-local, and nothing else changes for it
  t.is(unicastProblem(parseIp('fe80::1')!, true), undefined);
  t.regex(unicastProblem(parseIp('ff02::1')!, true) ?? '', /multicast/);
});

test('prefix lengths outside IPv4 8–32 and IPv6 48–128 are refused', (t) => {
  refused(t, addAddress('eth1', '10.4.1.8/7'), /outside 8–32/);
  refused(t, addAddress('eth1', '2001:db8::5/47'), /outside 48–128/);
});

test("a subnet's network and broadcast addresses are not interface addresses", (t) => {
  refused(t, addAddress('eth1', '10.4.1.0/24'), /network address/);
  refused(t, addAddress('eth1', '10.4.1.255/24'), /broadcast address/);
});

test('an address another tool configured is left as it is', (t) => {
  t.is(decide(addAddress('eth0', '10.4.0.4/24')).decision, 'already');
  refused(t, addAddress('eth0', '10.4.0.4/32'), /configured by another tool/);
});

test('removing the DHCP address is refused, even when the ledger lists it', (t) => {
  refused(t, { kind: 'address.remove', link: 'eth0', address: '10.4.0.4/24' }, /lifetime/, { has: () => true });
});

test('removing an address another tool added is refused', (t) => {
  refused(t, { kind: 'address.remove', link: 'eth0', address: '10.4.0.20/24' }, /not created by cloud-network/);
  refused(t, { kind: 'address.remove', link: 'eth1', address: '10.4.1.7/24' }, /protocol static/, { has: () => true });
});

test('an address is removable when it carries our IFA_PROTO, or is in the ledger on a kernel without IFA_PROTO', (t) => {
  const listed: LedgerView = { has: (l, a) => l === 'eth1' && a === '10.4.1.6/24' };
  t.is(decide({ kind: 'address.remove', link: 'eth1', address: '10.4.1.5/24' }).decision, 'allow');
  t.is(decide({ kind: 'address.remove', link: 'eth1', address: '10.4.1.6/24' }, noLedger, { tagsAddresses: false }).decision, 'refuse');
  t.is(decide({ kind: 'address.remove', link: 'eth1', address: '10.4.1.6/24' }, listed, { tagsAddresses: false }).decision, 'allow');
  // a kernel that tags addresses tagged every address the helper made: an untagged one is someone else's now
  refused(t, { kind: 'address.remove', link: 'eth1', address: '10.4.1.6/24' }, /not created by cloud-network \(no cloud-network protocol tag\)/, listed);
});

test('removing an absent address is already done', (t) => t.is(decide({ kind: 'address.remove', link: 'eth1', address: '10.4.1.99/24' }).decision, 'already'));

const route = (fields: Partial<Extract<Operation, { kind: 'route.replace' }>>): Operation => ({
  kind: 'route.replace', table: 20_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link', ...fields,
});

test('routes go only into the managed tables or, as local routes, into the local table', (t) => {
  t.is(decide(route({ destination: '0.0.0.0/0', gateway: '10.4.1.1', scope: 'universe' })).decision, 'allow');
  refused(t, route({ table: 254 }), /outside the managed tables/);
  refused(t, route({ table: 30_000 }), /outside the managed tables/);
  refused(t, route({ type: 'local', scope: 'host' }), /only unicast routes go into managed tables/);
});

test('local routes for routed ranges are the only local-table routes, never /0', (t) => {
  t.is(decide(route({ table: 255, destination: '10.128.9.0/24', type: 'local', scope: 'host' })).decision, 'allow');
  refused(t, route({ table: 255, destination: '0.0.0.0/0', type: 'local', scope: 'host' }), /every address/);
  refused(t, route({ table: 255, destination: '10.128.9.0/24', type: 'unicast', scope: 'link' }), /only routes of type local/);
  refused(t, route({ table: 255, destination: '10.128.9.0/24', type: 'local', scope: 'link' }), /scope host/);
  refused(t, route({ table: 255, destination: '127.0.0.0/8', type: 'local', scope: 'host' }), /loopback/);
  refused(t, route({ table: 255, destination: '10.128.9.1/24', type: 'local', scope: 'host' }), /host bits/);
});

test("a route another tool or the kernel made is never replaced", (t) => {
  refused(t, route({ table: 20_002, destination: '0.0.0.0/0', gateway: '10.4.1.1', scope: 'universe' }), /protocol static/);
  refused(t, route({ table: 255, destination: '10.4.0.4/32', link: 'eth0', type: 'local', scope: 'host' }), /cover 10\.4\.0\.4\/24, configured by another tool/);
  refused(t, route({ table: 255, destination: '10.4.1.9/32', link: 'eth1', type: 'local', scope: 'host', }), /cover 10\.4\.1\.9\/24/);
});

test('gateways must be unicast; IPv6 link-local routers are accepted', (t) => {
  refused(t, route({ destination: '0.0.0.0/0', gateway: '224.0.0.1', scope: 'universe' }), /gateway .*multicast/);
  t.is(decide(route({ destination: '::/0', gateway: 'fe80::1234:5678:9abc', scope: 'universe' })).decision, 'allow');
});

test('only our own routes are removed', (t) => {
  t.is(decide({ kind: 'route.remove', table: 20_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast' }).decision, 'allow');
  refused(t, { kind: 'route.remove', table: 20_002, destination: '0.0.0.0/0', link: 'eth1', type: 'unicast' }, /belongs to protocol static/);
  refused(t, { kind: 'route.remove', table: 255, destination: '10.4.0.4/32', link: 'eth0', type: 'local' }, /belongs to protocol kernel/);
  refused(t, { kind: 'route.remove', table: 254, destination: '10.4.0.0/24', link: 'eth0', type: 'unicast' }, /outside the managed tables/);
  t.is(decide({ kind: 'route.remove', table: 255, destination: '10.128.8.0/24', link: 'eth0', type: 'local' }).decision, 'allow');
});

const rule = (fields: Partial<Extract<Operation, { kind: 'rule.add' }>>): Operation => ({ kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', ...fields });

test('rules use managed priorities and select one host or routed range', (t) => {
  t.is(decide(rule({ from: '10.4.1.5/32' })).decision, 'allow');
  t.is(decide(rule({ from: '10.128.8.0/24' })).decision, 'allow');
  refused(t, rule({ priority: 100, from: '10.4.1.5/32' }), /outside the managed priorities/);
  refused(t, rule({ from: '0.0.0.0/0' }), /every address/);
  refused(t, rule({ from: '10.4.1.5/32', to: '10.4.1.6/32' }), /exactly one/);
  refused(t, rule({}), /exactly one/);
  refused(t, rule({ to: '2001:db8::5/128' }), /not of family inet/);
});

test('from/to rules point only at managed tables', (t) => refused(t, rule({ from: '10.4.1.5/32', table: 254 }), /managed table/));

test('the suppress_prefixlength rule is exactly "lookup main suppress_prefixlength 0"', (t) => {
  t.is(decide(rule({ priority: 20_000, table: 254, suppressPrefixLength: 0 })).decision, 'allow');
  refused(t, rule({ priority: 20_000, table: 254, suppressPrefixLength: 8 }), /only suppress_prefixlength rule/);
  refused(t, rule({ priority: 20_000, table: 20_001, suppressPrefixLength: 0 }), /only suppress_prefixlength rule/);
});

test('a rule is added only when no rule of its shape exists, of any protocol; one with more selectors is another rule', (t) => {
  // the helper adds rules without the kernel's own duplicate check (NLM_F_EXCL)
  const ours = decide(rule({ priority: 20_100, to: '10.4.1.5/32' }));
  t.is(ours.decision, 'already');
  if (ours.decision === 'already') t.regex(ours.reason, /exists at priority 20100, protocol cloud-network/);
  t.is(decide(rule({ from: '10.4.1.9/32' })).decision, 'already');
  t.is(decide(rule({ from: '10.4.1.10/32' })).decision, 'allow');
  t.is(decide(rule({ priority: 20_201, from: '10.4.1.9/32' })).decision, 'allow');
});

test('only our own rules are removed', (t) => {
  t.is(decide({ kind: 'rule.remove', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' }).decision, 'allow');
  refused(t, { kind: 'rule.remove', priority: 20_200, table: 20_001, family: 'inet', from: '10.4.1.9/32' }, /belongs to protocol unspecified/);
  t.is(decide({ kind: 'rule.remove', priority: 20_300, table: 20_001, family: 'inet', from: '10.4.1.9/32' }).decision, 'already');
});

test("an IPv6 subnet's network (subnet-router anycast) address is not an interface address", (t) => {
  refused(t, addAddress('eth1', '2001:db8:89::/64'), /network \(subnet-router anycast\) address/);
  t.is(decide(addAddress('eth1', '2001:db8:89::1/64')).decision, 'allow');
  t.is(decide(addAddress('eth1', '2001:db8:89::/127')).decision, 'allow');
});

test('an MTU below 1280 is refused: the kernel would drop IPv6 from the link', (t) => {
  refused(t, { kind: 'link.set', link: 'eth1', mtu: 1279 }, /below 1280/);
  t.is(decide({ kind: 'link.set', link: 'eth1', mtu: 1280 }).decision, 'allow');
});

test("an address another tool holds on another interface, or another tool's gateway, is not added", (t) => {
  refused(t, addAddress('eth1', '10.4.0.4/24'), /already on eth0, configured by another tool/);
  refused(t, addAddress('eth0', '10.4.1.1/24'), /gateway of a route another tool made/);
});

test('a rule of ours is not removed while a rule of our protocol with more selectors answers to the same delete', (t) => {
  const s = state();
  s.rules.push({ family: 'inet', priority: 20_100, table: 20_001, to: '10.4.1.5/32', from: '10.4.1.9/32', protocol: 201, action: 'lookup' });
  const verdict = checkOperation({ kind: 'rule.remove', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' }, new KernelPicture(s), noLedger, config);
  t.is(verdict.decision, 'refuse');
  if (verdict.decision === 'refuse') t.regex(verdict.reason, /selects on more than this one \(to 10\.4\.1\.5\/32\)/);
});

test('a multipath route, whose next hops another tool may have added, is neither replaced nor removed', (t) => {
  const s = state();
  s.routes.push({ table: 20_003, family: 'inet6', destination: '::/0', protocol: 201, type: 'unicast', scope: 'universe', nexthops: [{ ifindex: 3, gateway: 'fe80::1' }, { ifindex: 3, gateway: 'fe80::2' }] });
  const judge = (op: Operation) => checkOperation(op, new KernelPicture(s), noLedger, config);
  const replace = judge({ kind: 'route.replace', table: 20_003, destination: '::/0', link: 'eth1', gateway: 'fe80::1', type: 'unicast', scope: 'universe' });
  const remove = judge({ kind: 'route.remove', table: 20_003, destination: '::/0', link: 'eth1', type: 'unicast' });
  for (const verdict of [replace, remove]) {
    t.is(verdict.decision, 'refuse');
    if (verdict.decision === 'refuse') t.regex(verdict.reason, /multipath route/);
  }
});

test('a removal that is allowed names the very object judged', (t) => {
  const verdict = decide({ kind: 'route.remove', table: 20_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast' });
  t.like(verdict, { decision: 'allow', target: { table: 20_001, destination: '10.4.1.0/24', ifindex: 3, protocol: 201 } });
  t.like(decide({ kind: 'address.remove', link: 'eth1', address: '10.4.1.5/24' }), { decision: 'allow', target: { ifindex: 3, address: '10.4.1.5', prefixLength: 24 } });
});

// A VM upgraded from cloud-network 0.1 holds protocol-201 objects at the old defaults
// (tables 10000–19999, priorities 30000–30999), where other tools' objects live too.
function upgradedState(): KernelState {
  const s = state();
  s.routes.push(
    { table: 10_001, family: 'inet', destination: '0.0.0.0/0', ifindex: 3, gateway: '10.4.1.1', protocol: 201, type: 'unicast', scope: 'universe' },
    // amazon-ec2-net-utils' table for device 1, made by systemd-networkd (protocol static)
    { table: 10_001, family: 'inet', destination: '10.4.1.0/24', ifindex: 3, protocol: 4, type: 'unicast', scope: 'link' },
  );
  s.rules.push(
    { family: 'inet', priority: 30_200, table: 10_001, from: '10.4.1.5/32', protocol: 201, action: 'lookup' },
    { family: 'inet', priority: 30_000, table: 254, suppressPrefixLength: 0, protocol: 201, action: 'lookup' },
    // nm-cloud-setup's rule for interface 0 (priority 30200 + 0, table 30200 + 0)
    { family: 'inet', priority: 30_200, table: 30_200, from: '10.4.1.7/32', protocol: 4, action: 'lookup' },
  );
  return s;
}

const judgeUpgraded = (op: Operation) => checkOperation(op, new KernelPicture(upgradedState()), noLedger, config);

test('after an upgrade, the former default tables and priorities still let the helper remove its own objects', (t) => {
  t.is(judgeUpgraded({ kind: 'rule.remove', priority: 30_200, table: 10_001, family: 'inet', from: '10.4.1.5/32' }).decision, 'allow');
  t.is(judgeUpgraded({ kind: 'rule.remove', priority: 30_000, table: 254, family: 'inet', suppressPrefixLength: 0 }).decision, 'allow');
  t.is(judgeUpgraded({ kind: 'route.remove', table: 10_001, destination: '0.0.0.0/0', link: 'eth1', type: 'unicast' }).decision, 'allow');
});

test('the former ranges are for removing its own objects only: nothing is added there, and no other tool’s object goes', (t) => {
  const verdicts = [
    judgeUpgraded({ kind: 'rule.add', priority: 30_200, table: 20_001, family: 'inet', from: '10.4.1.5/32' }),
    judgeUpgraded({ kind: 'rule.add', priority: 20_200, table: 10_001, family: 'inet', from: '10.4.1.5/32' }),
    judgeUpgraded({ kind: 'route.replace', table: 10_002, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' }),
    judgeUpgraded({ kind: 'route.remove', table: 10_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast' }),
    judgeUpgraded({ kind: 'rule.remove', priority: 30_200, table: 30_200, family: 'inet', from: '10.4.1.7/32' }),
  ];
  t.deepEqual(verdicts.map((v) => v.decision), ['refuse', 'refuse', 'refuse', 'refuse', 'refuse']);
  if (verdicts[3]!.decision === 'refuse') t.regex(verdicts[3]!.reason, /belongs to protocol static/);
  if (verdicts[4]!.decision === 'refuse') t.regex(verdicts[4]!.reason, /managed table/);
});
