// The helper's indexed picture of the kernel (helper/kernel-picture.ts): the lookups the policy
// makes, and the changes recorded as a request's operations succeed.
import test from 'ava';
import { KernelPicture } from '../../helper/kernel-picture.js';
import { ruleShape } from '../../helper/policy.js';
import type { KernelState, ObservedAddress, ObservedRule } from '../../netlink/types.js';

const address = (ifindex: number, text: string, prefixLength: number, protocol?: number): ObservedAddress => ({
  ifindex,
  family: text.includes(':') ? 'inet6' : 'inet',
  address: text,
  prefixLength,
  ...(protocol !== undefined ? { protocol } : {}),
  dynamic: false,
  noPrefixRoute: true,
  scope: 0,
});

const rule = (priority: number, from: string, protocol: number, extra: Partial<ObservedRule> = {}): ObservedRule => ({
  family: 'inet',
  priority,
  table: 20001,
  from,
  protocol,
  action: 'lookup',
  ...extra,
});

function picture(): KernelPicture {
  const state: KernelState = {
    links: [
      { index: 2, name: 'eth0', mac: '00:0d:3a:00:00:01', up: true, mtu: 1500, loopback: false },
      { index: 3, name: 'eth1', mac: '00:0d:3a:00:00:02', up: true, mtu: 1500, loopback: false },
    ],
    addresses: [address(3, '10.4.1.5', 24, 201), address(3, '10.4.1.5', 32), address(2, '10.4.1.5', 24), address(3, '2001:db8::5', 64, 201)],
    routes: [
      { table: 20001, family: 'inet', destination: '10.4.1.0/24', ifindex: 3, protocol: 201, type: 'unicast', scope: 'link' },
      { table: 20001, family: 'inet', destination: '10.4.1.0/24', ifindex: 2, protocol: 4, type: 'unicast', scope: 'link' },
      { table: 255, family: 'inet', destination: '10.4.1.0/24', ifindex: 3, protocol: 201, type: 'local', scope: 'host' },
    ],
    rules: [
      rule(20200, '10.4.1.5/32', 201),
      rule(20200, '10.4.1.5/32', 201),
      rule(20200, '10.4.1.5/32', 4),
      rule(20200, '10.4.1.5/32', 0, { action: 'other' }),
      rule(20200, '10.4.1.5/32', 201, { suppressPrefixLength: -1 }),
      rule(30201, '10.4.1.5/32', 201),
    ],
  };
  return new KernelPicture(state);
}

test('links by name and by index', (t) => {
  const p = picture();
  t.is(p.link('eth1')?.index, 3);
  t.is(p.linkByIndex(2)?.name, 'eth0');
  t.is(p.link('eth7'), undefined);
});

test('addresses are found by link and IP, with every prefix length they are there with', (t) => {
  const p = picture();
  t.deepEqual(p.addressesOf(3, '10.4.1.5').map((a) => a.prefixLength).sort(), [24, 32]);
  t.is(p.addressesOf(2, '10.4.1.5').length, 1);
  t.is(p.addressesOf(3, '10.4.1.6').length, 0);
  t.is(p.addressesOf(3, '2001:db8::5').length, 1);
  t.is([...p.addresses()].length, 4);
  p.removeAddress(p.addressesOf(3, '10.4.1.5').find((a) => a.prefixLength === 32)!);
  t.deepEqual(p.addressesOf(3, '10.4.1.5').map((a) => a.prefixLength), [24]);
  t.is(p.addressesOf(2, '10.4.1.5').length, 1, 'the same IP on another link stays');
  p.addAddress(address(3, '10.4.1.9', 24, 201));
  t.is(p.addressesOf(3, '10.4.1.9').length, 1);
  t.is([...p.addresses()].length, 4);
});

test('routes are found by table, family and destination; removal takes only those asked for', (t) => {
  const p = picture();
  t.is(p.routesTo(20001, 'inet', '10.4.1.0/24').length, 2);
  t.is(p.routesTo(255, 'inet', '10.4.1.0/24').length, 1);
  t.is(p.routesTo(20001, 'inet6', '10.4.1.0/24').length, 0);
  p.removeRoutes(20001, 'inet', '10.4.1.0/24', (r) => r.ifindex === 3);
  t.deepEqual(p.routesTo(20001, 'inet', '10.4.1.0/24').map((r) => r.protocol), [4]);
  t.is(p.routesTo(255, 'inet', '10.4.1.0/24').length, 1, 'another table keeps its route');
});

test('rules are found by their shape, selectors canonical, of any protocol; other actions never', (t) => {
  const p = picture();
  const op = { kind: 'rule.remove', family: 'inet', priority: 20200, from: '10.4.1.5/32', table: 20001 } as const;
  // the two of ours, the foreign one, and the one whose unset suppress_prefixlength reads -1
  t.deepEqual(p.rulesLike(ruleShape(op)).map((r) => r.protocol), [201, 201, 4, 201]);
  t.is(p.rulesLike(ruleShape({ ...op, priority: 30201 })).length, 1);
  t.is(p.rulesLike(ruleShape({ ...op, table: 20002 })).length, 0);
  t.is(p.rulesLike(ruleShape({ ...op, from: undefined, to: '10.4.1.5/32' })).length, 0);
});

test('removing a rule takes one of ours of that shape, as the kernel does, and never a foreign one', (t) => {
  const p = picture();
  const shape = ruleShape({ kind: 'rule.remove', family: 'inet', priority: 20200, from: '10.4.1.5/32', table: 20001 });
  p.removeOurRule(shape);
  t.deepEqual(p.rulesLike(shape).map((r) => r.protocol), [201, 4, 201]);
  p.removeOurRule(shape);
  p.removeOurRule(shape);
  t.deepEqual(p.rulesLike(shape).map((r) => r.protocol), [4]);
  p.removeOurRule(shape);
  t.deepEqual(p.rulesLike(shape).map((r) => r.protocol), [4], 'the foreign rule stays');
  p.addRule(rule(20200, '10.4.1.5/32', 201));
  t.is(p.rulesLike(shape).length, 2);
});
