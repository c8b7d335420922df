// The helper against a real kernel, in a namespace: what it applies shows in `ip`, applying
// twice changes nothing, and whatever it refuses leaves the kernel exactly as it was.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HelperClient } from '../../agent/reconcile/helper-client.js';
import type { Operation } from '../../protocol/operations.js';
import { createNamespace, ip, kernelDump, settledKernelDump } from '../lib/netns.js';
import { addNics, startHelper } from '../lib/helper-harness.js';

async function setUp(t: import('ava').ExecutionContext) {
  const ns = createNamespace(t, 'helper');
  addNics(ns);
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath, timeoutMs: 30_000 });
  t.teardown(() => client.close());
  return { ns, helper, client };
}

const EVERY_KIND: Operation[] = [
  { kind: 'link.set', link: 'eth2', mtu: 1460 },
  { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
  { kind: 'address.add', link: 'eth1', address: '2001:db8:1::5/64', noPrefixRoute: true },
  { kind: 'route.replace', table: 20_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' },
  { kind: 'route.replace', table: 20_001, destination: '0.0.0.0/0', link: 'eth1', gateway: '10.4.1.1', type: 'unicast', scope: 'universe' },
  { kind: 'route.replace', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local', scope: 'host' },
  { kind: 'rule.add', priority: 20_000, table: 254, family: 'inet', suppressPrefixLength: 0 },
  { kind: 'rule.add', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', from: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet6', from: '2001:db8:1::5/128' },
];

test('every operation kind is applied and shows in ip, and applying it again reports already and changes nothing', async (t) => {
  const { ns, client, helper } = await setUp(t);
  const first = await client.apply(EVERY_KIND);
  t.deepEqual(first.results.map((r) => r.outcome), EVERY_KIND.map(() => 'applied'), JSON.stringify(first.results));
  t.regex(ip(ns, 'link', 'show', 'eth2'), /mtu 1460/);
  t.regex(ip(ns, 'addr', 'show', 'eth1'), /inet 10\.4\.1\.5\/24 .*noprefixroute/);
  t.regex(ip(ns, 'addr', 'show', 'eth1'), /inet6 2001:db8:1::5\/64/);
  t.regex(ip(ns, 'route', 'show', 'table', '20001'), /default via 10\.4\.1\.1 dev eth1 proto 201/);
  t.regex(ip(ns, 'route', 'show', 'table', '20001'), /10\.4\.1\.0\/24 dev eth1 proto 201 scope link/);
  t.regex(ip(ns, 'route', 'show', 'table', 'local'), /local 10\.128\.8\.0\/24 dev eth1 proto 201 scope host/);
  const rules = ip(ns, 'rule', 'show');
  t.regex(rules, /20000:\s+from all lookup main suppress_prefixlength 0 proto 201/);
  t.regex(rules, /20100:\s+from all to 10\.4\.1\.5 lookup 20001 proto 201/);
  t.regex(rules, /20200:\s+from 10\.4\.1\.5 lookup 20001 proto 201/);
  t.regex(ip(ns, '-6', 'rule', 'show'), /20200:\s+from 2001:db8:1::5 lookup 20001 proto 201/);
  t.deepEqual(JSON.parse(readFileSync(helper.ledgerPath, 'utf8')).addresses.map((a: { address: string }) => a.address).sort(), ['10.4.1.5/24', '2001:db8:1::5/64']);

  const before = await settledKernelDump(ns);
  const second = await client.apply(EVERY_KIND);
  t.deepEqual(second.results.map((r) => r.outcome), EVERY_KIND.map(() => 'already'), JSON.stringify(second.results));
  t.is(kernelDump(ns), before);
});

test('removals take away what the helper made, and the ledger forgets removed addresses', async (t) => {
  const { ns, client, helper } = await setUp(t);
  await client.apply(EVERY_KIND);
  const removals: Operation[] = [
    { kind: 'rule.remove', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' },
    { kind: 'route.remove', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local' },
    { kind: 'route.remove', table: 20_001, destination: '0.0.0.0/0', link: 'eth1', type: 'unicast' },
    { kind: 'address.remove', link: 'eth1', address: '10.4.1.5/24' },
  ];
  const result = await client.apply(removals);
  t.deepEqual(result.results.map((r) => r.outcome), ['applied', 'applied', 'applied', 'applied'], JSON.stringify(result.results));
  t.notRegex(ip(ns, 'rule', 'show'), /20100/);
  t.notRegex(ip(ns, 'route', 'show', 'table', 'local'), /10\.128\.8\.0/);
  t.notRegex(ip(ns, 'route', 'show', 'table', '20001'), /default/);
  t.notRegex(ip(ns, 'addr', 'show', 'eth1'), /10\.4\.1\.5/);
  t.deepEqual(JSON.parse(readFileSync(helper.ledgerPath, 'utf8')).addresses.map((a: { address: string }) => a.address), ['2001:db8:1::5/64']);
  t.deepEqual((await client.ownedAddresses()).addresses, [{ link: 'eth1', address: '2001:db8:1::5/64' }]);
});

const REFUSED: [string, Operation][] = [
  ['an address on lo', { kind: 'address.add', link: 'lo', address: '10.9.0.1/24', noPrefixRoute: true }],
  ['an address on an enslaved link', { kind: 'address.add', link: 'eth2p', address: '10.9.0.1/24', noPrefixRoute: true }],
  ['an address on a denied link', { kind: 'address.add', link: 'eth2', address: '10.9.0.1/24', noPrefixRoute: true }],
  ['a loopback address', { kind: 'address.add', link: 'eth1', address: '127.0.0.5/8', noPrefixRoute: true }],
  ['a link-local address', { kind: 'address.add', link: 'eth1', address: '169.254.1.1/16', noPrefixRoute: true }],
  ['a multicast address', { kind: 'address.add', link: 'eth1', address: '224.0.0.9/24', noPrefixRoute: true }],
  ['an IPv6 /32 address', { kind: 'address.add', link: 'eth1', address: '2001:db8::5/32', noPrefixRoute: true }],
  ['a route in main', { kind: 'route.replace', table: 254, destination: '0.0.0.0/0', link: 'eth1', gateway: '10.4.1.1', type: 'unicast', scope: 'universe' }],
  ['a local /0 route', { kind: 'route.replace', table: 255, destination: '0.0.0.0/0', link: 'eth1', type: 'local', scope: 'host' }],
  ['a unicast route in local', { kind: 'route.replace', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'unicast', scope: 'link' }],
  ['replacing the kernel local route of an address', { kind: 'route.replace', table: 255, destination: '10.4.1.99/32', link: 'eth1', type: 'local', scope: 'host' }],
  ['a rule outside the priorities', { kind: 'rule.add', priority: 100, table: 20_001, family: 'inet', from: '10.4.1.5/32' }],
  ['a from-all rule', { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', from: '0.0.0.0/0' }],
  ['a rule into main', { kind: 'rule.add', priority: 20_200, table: 254, family: 'inet', from: '10.4.1.5/32' }],
  ['another suppress rule', { kind: 'rule.add', priority: 20_000, table: 254, family: 'inet', suppressPrefixLength: 16 }],
  ['removing the main table default', { kind: 'route.remove', table: 254, destination: '0.0.0.0/0', link: 'eth1', type: 'unicast' }],
  ['removing a rule another tool made', { kind: 'rule.remove', priority: 20_500, table: 20_005, family: 'inet', from: '10.4.1.77/32' }],
  ['removing a route another tool made', { kind: 'route.remove', table: 20_005, destination: '10.4.5.0/24', link: 'eth1', type: 'unicast' }],
  ['removing the DHCP-like address', { kind: 'address.remove', link: 'eth1', address: '10.4.1.99/24' }],
  ['removing an address another tool added', { kind: 'address.remove', link: 'eth1', address: '10.4.1.98/24' }],
  ['taking a link down', { kind: 'link.set', link: 'eth1', up: false }],
];

test('every refused operation leaves the kernel byte for byte unchanged', async (t) => {
  const ns = createNamespace(t, 'helper');
  addNics(ns);
  // eth2p enslaved to a bridge; things other tools made
  ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  ip(ns, 'link', 'set', 'eth2p', 'master', 'br0');
  ip(ns, 'addr', 'add', '10.4.1.99/24', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  ip(ns, 'addr', 'add', '10.4.1.98/24', 'dev', 'eth1');
  ip(ns, 'rule', 'add', 'priority', '20500', 'from', '10.4.1.77', 'lookup', '20005');
  ip(ns, 'route', 'add', '10.4.5.0/24', 'dev', 'eth1', 'table', '20005');
  const helper = await startHelper(t, ns, { args: ['--deny-link', 'eth2'] });
  const client = new HelperClient({ socketPath: helper.socketPath });
  t.teardown(() => client.close());
  for (const [what, op] of REFUSED) {
    const before = await settledKernelDump(ns);
    const { results } = await client.apply([op]);
    t.is(results[0]?.outcome, 'refused', `${what}: ${JSON.stringify(results)}`);
    t.truthy(results[0]?.reason, what);
    t.is(kernelDump(ns), before, what);
  }
  // a refused operation does not stop the others
  const mixed = await client.apply([REFUSED[0]![1], { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true }]);
  t.deepEqual(mixed.results.map((r) => r.outcome), ['refused', 'applied']);
  t.regex(helper.output(), /"outcome":"refused","reason":"lo is the loopback interface/);
});

test('an address the ledger lists but that now has a lifetime is never removed', async (t) => {
  const { ns, client } = await setUp(t);
  await client.apply([{ kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true }]);
  // DHCP takes the address over: same address, now with a lifetime and no protocol of ours
  ip(ns, 'addr', 'del', '10.4.1.5/24', 'dev', 'eth1');
  ip(ns, 'addr', 'add', '10.4.1.5/24', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  const before = await settledKernelDump(ns);
  const { results } = await client.apply([{ kind: 'address.remove', link: 'eth1', address: '10.4.1.5/24' }]);
  t.is(results[0]?.outcome, 'refused');
  t.regex(results[0]?.reason ?? '', /lifetime/);
  t.is(kernelDump(ns), before);
});

test('rules are added without duplicates: one already there of any protocol counts, one that also selects on iif does not', async (t) => {
  const { ns, client } = await setUp(t);
  // an administrator's rules: the same as ours but proto static, and one that also matches iif
  ip(ns, 'rule', 'add', 'priority', '20200', 'from', '10.4.1.6', 'lookup', '20001', 'proto', 'static');
  ip(ns, 'rule', 'add', 'priority', '20200', 'from', '10.4.1.7', 'iif', 'eth1', 'lookup', '20001');
  const rule = (from: string): Operation => ({ kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', from });
  // a rule selects an address of this machine
  for (const host of ['10.4.1.5', '10.4.1.6', '10.4.1.7']) ip(ns, 'addr', 'add', `${host}/24`, 'dev', 'eth1');
  const result = await client.apply([rule('10.4.1.5/32'), rule('10.4.1.5/32'), rule('10.4.1.6/32'), rule('10.4.1.7/32')]);
  t.deepEqual(result.results.map((r) => r.outcome), ['applied', 'already', 'already', 'applied'], JSON.stringify(result.results));
  const rules = ip(ns, 'rule', 'show', 'priority', '20200').trim().split('\n');
  t.deepEqual(rules.sort(), [
    '20200:\tfrom 10.4.1.5 lookup 20001 proto 201',
    '20200:\tfrom 10.4.1.6 lookup 20001 proto static',
    '20200:\tfrom 10.4.1.7 iif eth1 lookup 20001',
    '20200:\tfrom 10.4.1.7 lookup 20001 proto 201',
  ]);
});
