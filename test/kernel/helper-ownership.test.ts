// Exact ownership against the real kernel: an operation the helper's policy allows acts on the
// object the policy judged and on nothing else, however another tool's objects sit beside it.
// Each test lays out another tool's objects as `ip` makes them, then checks them line for line.
// Serial: each test starts a helper, and a dozen starting at once outlast the harness's wait.
import test from 'ava';
import { HelperClient } from '../../agent/reconcile/helper-client.js';
import type { Operation } from '../../protocol/operations.js';
import { createNamespace, ip, nsExec, waitFor } from '../lib/netns.js';
import { startRunner } from '../lib/netlink-client.js';
import { addNics, startHelper } from '../lib/helper-harness.js';

async function setUp(t: import('ava').ExecutionContext) {
  const ns = createNamespace(t, 'owner');
  addNics(ns);
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath, timeoutMs: 30_000 });
  t.teardown(() => client.close());
  const apply = async (ops: Operation[]) => (await client.apply(ops)).results.map((r) => (r.outcome === 'refused' ? `refused: ${r.reason}` : r.outcome));
  return { ns, helper, client, apply };
}

/** The lines of an `ip` listing that match `pattern`, with lifetimes and the IPv6 `tentative` flag masked (the kernel changes both on its own). */
function lines(ns: string, args: string[], pattern: RegExp): string[] {
  return ip(ns, ...args)
    .split('\n')
    .filter((line) => pattern.test(line))
    .map((line) => line.replace(/valid_lft \S+ preferred_lft \S+/g, '').replace(/expires \S+/g, '').replace(/ tentative\b/g, '').trim());
}

const addressLines = (ns: string, link: string) => lines(ns, ['-d', '-o', 'addr', 'show', 'dev', link], /inet/);
const address = (link: string, text: string): Operation => ({ kind: 'address.add', link, address: text, noPrefixRoute: true });

test.serial('removing an own address never takes another tool\'s address of the same IP with another prefix length', async (t) => {
  const { ns, apply } = await setUp(t);
  t.deepEqual(await apply([address('eth1', '10.71.0.10/24'), address('eth1', '10.71.0.50/24')]), ['applied', 'applied']);
  ip(ns, 'addr', 'add', '10.71.0.50/16', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  const foreign = addressLines(ns, 'eth1').filter((line) => line.includes('10.71.0.50/16'));
  t.is(foreign.length, 1);
  const remove: Operation = { kind: 'address.remove', link: 'eth1', address: '10.71.0.50/24' };
  t.deepEqual(await apply([remove, remove]), ['applied', 'already']);
  const after = addressLines(ns, 'eth1');
  t.deepEqual(after.filter((line) => line.includes('10.71.0.50/16')), foreign);
  t.false(after.some((line) => line.includes('10.71.0.50/24')));
});

test.serial("removing an own primary address is refused while another tool's secondary shares its subnet", async (t) => {
  const { ns, apply } = await setUp(t);
  nsExec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.eth2.promote_secondaries=0']);
  t.deepEqual(await apply([address('eth2', '10.73.0.5/24')]), ['applied']);
  ip(ns, 'addr', 'add', '10.73.0.6/24', 'dev', 'eth2', 'valid_lft', '3600', 'preferred_lft', '3600');
  ip(ns, 'addr', 'add', '10.73.0.7/24', 'dev', 'eth2');
  const before = addressLines(ns, 'eth2');
  const [outcome] = await apply([{ kind: 'address.remove', link: 'eth2', address: '10.73.0.5/24' }]);
  t.regex(outcome!, /^refused: .*primary address of its subnet.*10\.73\.0\.\d\/24, configured by another tool/);
  t.deepEqual(addressLines(ns, 'eth2'), before);
});

test.serial('an own primary address whose subnet holds only own secondaries is removed', async (t) => {
  const { ns, apply } = await setUp(t);
  t.deepEqual(await apply([address('eth2', '10.74.0.5/24'), address('eth2', '10.74.0.6/24')]), ['applied', 'applied']);
  t.deepEqual(await apply([{ kind: 'address.remove', link: 'eth2', address: '10.74.0.5/24' }]), ['applied']);
  t.false(addressLines(ns, 'eth2').some((line) => line.includes('10.74.0.5/')));
});

test.serial("removing an own route never takes another tool's route to the same destination", async (t) => {
  const { ns, apply } = await setUp(t);
  const v6 = { table: 29_904, destination: '2001:db8:75::/64', link: 'eth1', type: 'unicast' } as const;
  t.deepEqual(await apply([{ kind: 'route.replace', ...v6, scope: 'link' }]), ['applied']);
  ip(ns, '-6', 'route', 'add', '2001:db8:75::/64', 'dev', 'eth1', 'table', '29904', 'metric', '100', 'proto', 'static');
  const v4 = { table: 29_904, destination: '10.75.0.0/24', link: 'eth1', type: 'unicast' } as const;
  t.deepEqual(await apply([{ kind: 'route.replace', ...v4, scope: 'link' }]), ['applied']);
  ip(ns, 'route', 'prepend', '10.75.0.0/24', 'dev', 'eth1', 'table', '29904', 'proto', 'static');
  const foreign = () => [...lines(ns, ['-6', 'route', 'show', 'table', '29904'], /proto static/), ...lines(ns, ['route', 'show', 'table', '29904'], /proto static/)];
  const before = foreign();
  t.is(before.length, 2);
  const removeV6: Operation = { kind: 'route.remove', ...v6 };
  const removeV4: Operation = { kind: 'route.remove', ...v4 };
  const outcomes = await apply([removeV6, removeV4, removeV4, removeV4, removeV6]);
  t.deepEqual(outcomes.slice(0, 2), ['applied', 'applied']);
  // the duplicates find only the other tool's routes left
  for (const outcome of outcomes.slice(2)) t.regex(outcome, /^refused: .*belongs to protocol static/);
  t.deepEqual(foreign(), before);
  t.deepEqual(lines(ns, ['route', 'show', 'table', 'all'], /proto 201/), []);
  t.deepEqual(lines(ns, ['-6', 'route', 'show', 'table', 'all'], /proto 201/), []);
});

test.serial("removing an own local route never takes the kernel's local route of another tool's address", async (t) => {
  const { ns, apply } = await setUp(t);
  const local = { table: 255, destination: '10.76.0.9/32', link: 'eth1', type: 'local' } as const;
  t.deepEqual(await apply([{ kind: 'route.replace', ...local, scope: 'host' }]), ['applied']);
  ip(ns, 'addr', 'add', '10.76.0.9/24', 'dev', 'eth1');
  const kernels = () => lines(ns, ['route', 'show', 'table', 'local'], /10\.76\.0\.9 .*proto kernel/);
  const before = kernels();
  t.is(before.length, 1);
  const outcomes = await apply([{ kind: 'route.remove', ...local }, { kind: 'route.remove', ...local }]);
  t.is(outcomes[0], 'applied');
  t.regex(outcomes[1]!, /^refused: .*belongs to protocol kernel/);
  t.deepEqual(kernels(), before);
  t.deepEqual(lines(ns, ['route', 'show', 'table', 'local'], /proto 201/), []);
});

test.serial("a multipath route that holds another tool's next hop is neither replaced nor removed", async (t) => {
  const { ns, apply } = await setUp(t);
  const route = { table: 29_904, destination: '2001:db8:76::/64', link: 'eth1', type: 'unicast' } as const;
  const replace: Operation = { kind: 'route.replace', ...route, gateway: 'fe80::1', scope: 'universe' };
  t.deepEqual(await apply([replace]), ['applied']);
  ip(ns, '-6', 'route', 'append', '2001:db8:76::/64', 'via', 'fe80::2', 'dev', 'eth1', 'table', '29904', 'proto', 'static');
  const table = () => ip(ns, '-6', '-d', 'route', 'show', 'table', '29904');
  const before = table();
  t.regex(before, /nexthop via fe80::2/);
  const outcomes = await apply([replace, { kind: 'route.remove', ...route }]);
  t.regex(outcomes[0]!, /^refused: .*multipath route .*next hops another tool added/);
  t.regex(outcomes[1]!, /^refused: .*multipath route .*next hops another tool added/);
  t.is(table(), before);
});

// Rules another tool made that share an own rule's selector, priority and table, and differ in
// something else the kernel's delete does not compare unless the delete names it.
const TWIN_RULES: [string, string[], Partial<Operation & { kind: 'rule.add' }>][] = [
  ['iif', ['-4', 'from', '10.79.0.1', 'iif', 'eth1'], { from: '10.79.0.1/32' }],
  ['oif', ['-4', 'from', '10.79.0.1', 'oif', 'eth1'], { from: '10.79.0.1/32' }],
  ['not', ['-4', 'not', 'from', '10.79.0.1'], { from: '10.79.0.1/32' }],
  ['fwmark', ['-4', 'from', '10.79.0.1', 'fwmark', '0x5'], { from: '10.79.0.1/32' }],
  ['tos', ['-4', 'from', '10.79.0.1', 'tos', '0x10'], { from: '10.79.0.1/32' }],
  ['uidrange', ['-4', 'from', '10.79.0.1', 'uidrange', '100-200'], { from: '10.79.0.1/32' }],
  ['ipproto and dport', ['-4', 'from', '10.79.0.1', 'ipproto', 'tcp', 'dport', '80'], { from: '10.79.0.1/32' }],
  ['a from selector too', ['-4', 'from', '10.79.0.2', 'to', '10.79.0.1'], { to: '10.79.0.1/32' }],
  ['the same rule, another protocol', ['-4', 'from', '10.79.0.1'], { from: '10.79.0.1/32' }],
  ['IPv6 iif', ['-6', 'from', '2001:db8:79::1', 'iif', 'eth1'], { family: 'inet6', from: '2001:db8:79::1/128' }],
  ['the suppress rule with iif', ['-4', 'iif', 'eth1', 'lookup', 'main', 'suppress_prefixlength', '0'], { table: 254, priority: 20_000, suppressPrefixLength: 0 }],
];

for (const [what, selectors, fields] of TWIN_RULES) {
  test.serial(`removing an own rule never takes another tool's rule that shares its selector (${what})`, async (t) => {
    const { ns, apply } = await setUp(t);
    t.deepEqual(await apply([address('eth1', '10.79.0.1/24'), address('eth1', '2001:db8:79::1/64')]), ['applied', 'applied']);
    const rule = { priority: 20_700, table: 29_907, family: 'inet', ...fields } as Omit<Operation & { kind: 'rule.add' }, 'kind'>;
    t.deepEqual(await apply([{ kind: 'rule.add', ...rule }]), ['applied']);
    const [family, ...rest] = selectors;
    const lookup = rest.includes('lookup') ? [] : ['lookup', String(rule.table)];
    ip(ns, family!, 'rule', 'add', ...rest, ...lookup, 'priority', String(rule.priority), 'proto', 'static');
    const foreign = () => lines(ns, [family!, 'rule', 'show'], /proto static/);
    const before = foreign();
    t.is(before.length, 1);
    const outcomes = await apply([{ kind: 'rule.remove', ...rule }, { kind: 'rule.remove', ...rule }]);
    t.is(outcomes[0], 'applied');
    // the duplicate finds no rule of ours; the same rule of another protocol is named as such
    if (what === 'the same rule, another protocol') t.regex(outcomes[1]!, /^refused: .*belongs to protocol static/);
    else t.is(outcomes[1], 'already');
    t.deepEqual(foreign(), before);
    t.deepEqual(lines(ns, [family!, 'rule', 'show'], /proto 201/), []);
  });
}

test.serial('an MTU below 1280 is refused, and every IPv6 address and route of the link stays', async (t) => {
  const { ns, client } = await setUp(t);
  ip(ns, '-6', 'addr', 'add', '2001:db8:7a::5/64', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  ip(ns, '-6', 'route', 'add', '2001:db8:7c::/64', 'dev', 'eth1', 'table', '29910', 'proto', 'static');
  await waitFor(() => !ip(ns, '-6', 'addr', 'show', 'dev', 'eth1').includes('tentative'), 'IPv6 duplicate address detection');
  const before = [addressLines(ns, 'eth1'), lines(ns, ['-6', 'route', 'show', 'table', 'all'], /eth1/)];
  await t.throwsAsync(client.apply([{ kind: 'link.set', link: 'eth1', mtu: 576 }]), { message: /mtu.*1280/i });
  t.deepEqual([addressLines(ns, 'eth1'), lines(ns, ['-6', 'route', 'show', 'table', 'all'], /eth1/)], before);
  t.regex(ip(ns, 'link', 'show', 'eth1'), /mtu 1500/);
});

test.serial("removing an own IPv6 address never takes another tool's route to its prefix", async (t) => {
  const { ns, apply } = await setUp(t);
  // an address without noprefixroute is refused: its prefix route would go into main
  const [added] = await apply([{ kind: 'address.add', link: 'eth1', address: '2001:db8:7b::5/64', noPrefixRoute: false }]);
  t.regex(added!, /^refused: .*noprefixroute/);
  // one an earlier helper left without noprefixroute, tagged as ours
  const runner = startRunner(t, ns, 'helper');
  await runner.send({ cmd: 'apply', ops: [{ kind: 'address.add', link: 'eth1', address: '2001:db8:7d::5/64', noPrefixRoute: false }] });
  ip(ns, '-6', 'route', 'add', '2001:db8:7d::/64', 'dev', 'eth1', 'metric', '100', 'proto', 'static');
  const foreign = () => lines(ns, ['-6', 'route', 'show'], /2001:db8:7d::\/64 .*proto static/);
  const before = foreign();
  t.is(before.length, 1);
  const [removed] = await apply([{ kind: 'address.remove', link: 'eth1', address: '2001:db8:7d::5/64' }]);
  t.regex(removed!, /^refused: .*without noprefixroute.*protocol static/);
  t.deepEqual(foreign(), before);
  t.true(addressLines(ns, 'eth1').some((line) => line.includes('2001:db8:7d::5/64')));
});

test.serial('an address another tool deleted and added again is not the helper\'s, whatever its ledger says', async (t) => {
  const { ns, apply, client } = await setUp(t);
  t.deepEqual(await apply([address('eth1', '10.85.0.5/24')]), ['applied']);
  ip(ns, 'addr', 'del', '10.85.0.5/24', 'dev', 'eth1');
  ip(ns, 'addr', 'add', '10.85.0.5/24', 'dev', 'eth1');
  const before = addressLines(ns, 'eth1');
  const [outcome] = await apply([{ kind: 'address.remove', link: 'eth1', address: '10.85.0.5/24' }]);
  t.regex(outcome!, /^refused: .*not created by cloud-network/);
  t.deepEqual(addressLines(ns, 'eth1'), before);
  t.deepEqual((await client.ownedAddresses()).addresses, []);
});

test.serial('a rule selects only an address of this machine or a range the helper delivers locally', async (t) => {
  const { apply } = await setUp(t);
  const rule = (fields: object): Operation => ({ kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', ...fields }) as Operation;
  const [elsewhere, wide] = await apply([rule({ to: '8.8.8.8/32' }), rule({ from: '10.0.0.0/9' })]);
  t.regex(elsewhere!, /^refused: .*neither an address on this machine nor a range/);
  t.regex(wide!, /^refused: .*neither an address on this machine nor a range/);
  // an address and a local route approved earlier in the same request count
  t.deepEqual(
    await apply([
      address('eth1', '10.80.0.5/24'),
      { kind: 'route.replace', table: 255, destination: '10.80.8.0/24', link: 'eth1', type: 'local', scope: 'host' },
      rule({ from: '10.80.0.5/32' }),
      rule({ from: '10.80.8.0/24' }),
    ]),
    ['applied', 'applied', 'applied', 'applied'],
  );
});

test.serial("a local route never covers another tool's address or gateway", async (t) => {
  const { ns, apply } = await setUp(t);
  ip(ns, 'addr', 'add', '10.81.0.4/24', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  ip(ns, 'route', 'add', 'default', 'via', '10.81.0.1', 'dev', 'eth1', 'proto', 'dhcp');
  const local = (destination: string): Operation => ({ kind: 'route.replace', table: 255, destination, link: 'eth1', type: 'local', scope: 'host' });
  const outcomes = await apply([local('10.81.0.0/24'), local('10.81.0.0/30'), local('10.81.0.128/25'), address('eth2', '10.81.0.1/32')]);
  t.regex(outcomes[0]!, /^refused: .*cover 10\.81\.0\.4\/24, configured by another tool/);
  t.regex(outcomes[1]!, /^refused: .*cover 10\.81\.0\.1, the gateway/);
  t.is(outcomes[2], 'applied');
  t.regex(outcomes[3]!, /^refused: .*10\.81\.0\.1 is the gateway of a route another tool made/);
});

test.serial("removing a link's last IPv4 address is refused while another tool routes through the link", async (t) => {
  const { ns, apply } = await setUp(t);
  t.deepEqual(await apply([address('eth2', '10.90.0.5/24'), address('eth2', '10.90.0.6/24')]), ['applied', 'applied']);
  ip(ns, 'route', 'add', '10.91.0.0/24', 'dev', 'eth2', 'table', '29911', 'proto', 'static');
  const foreign = () => lines(ns, ['route', 'show', 'table', '29911'], /proto static/);
  const before = foreign();
  t.is(before.length, 1);
  // the secondary goes; the primary, with it the link's IPv4, stays
  const outcomes = await apply([{ kind: 'address.remove', link: 'eth2', address: '10.90.0.6/24' }, { kind: 'address.remove', link: 'eth2', address: '10.90.0.5/24' }]);
  t.is(outcomes[0], 'applied');
  t.regex(outcomes[1]!, /^refused: .*last IPv4 address of eth2.*10\.91\.0\.0\/24 \(table 29911\) of protocol static/);
  t.deepEqual(foreign(), before);
});
