// netlink/ against a real kernel: every operation kind, idempotent re-application, IFA_PROTO,
// readKernelState against `ip`, kernel errors as values, and 2,048 pipelined addresses.
// Each test runs netlink/ inside its own namespace (test/lib/netlink-runner.ts), once over each
// socket: the agent's (netlink/socket.ts) and the helper's (netlink/sync-socket.ts).
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createNamespace, ip, ipBatch, kernelDump, settledKernelDump, waitFor } from '../lib/netns.js';
import { startRunner, type RunnerSocket } from '../lib/netlink-client.js';
import type { Operation } from '../../protocol/operations.js';
import type { OperationResult } from '../../netlink/write.js';
import type { KernelState } from '../../netlink/types.js';

/** Registers `body` as one test per socket kind. */
function eachSocket(title: string, body: (t: ExecutionContext, socket: RunnerSocket) => Promise<void>): void {
  for (const socket of ['agent', 'helper'] as const) test(`${title} (the ${socket}'s socket)`, (t) => body(t, socket));
}

/** A namespace with a veth pair made entirely inside it: eth1 (down) and its peer eth1p (up). */
function namespaceWithNic(t: Parameters<typeof createNamespace>[0], purpose: string): string {
  const ns = createNamespace(t, purpose);
  ip(ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p');
  ip(ns, 'link', 'set', 'eth1p', 'up');
  return ns;
}

const CONFIGURE: Operation[] = [
  { kind: 'link.set', link: 'eth1', up: true, mtu: 1400 },
  { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
  { kind: 'address.add', link: 'eth1', address: '10.4.1.6/24', noPrefixRoute: true },
  { kind: 'address.add', link: 'eth1', address: '2001:db8:1::5/64', noPrefixRoute: true },
  { kind: 'route.replace', table: 20001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' },
  {
    kind: 'route.replace',
    table: 20001,
    destination: '0.0.0.0/0',
    link: 'eth1',
    gateway: '10.4.1.1',
    type: 'unicast',
    scope: 'universe',
    source: '10.4.1.5',
  },
  { kind: 'route.replace', table: 20001, destination: '2001:db8:1::/64', link: 'eth1', type: 'unicast', scope: 'link' },
  { kind: 'route.replace', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local', scope: 'host' },
  { kind: 'rule.add', priority: 20000, table: 254, family: 'inet', suppressPrefixLength: 0 },
  { kind: 'rule.add', priority: 20100, table: 20001, family: 'inet', to: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20200, table: 20001, family: 'inet', from: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20200, table: 20001, family: 'inet6', from: '2001:db8:1::5/128' },
];

const UNCONFIGURE: Operation[] = [
  { kind: 'rule.remove', priority: 20000, table: 254, family: 'inet', suppressPrefixLength: 0 },
  { kind: 'rule.remove', priority: 20100, table: 20001, family: 'inet', to: '10.4.1.5/32' },
  { kind: 'rule.remove', priority: 20200, table: 20001, family: 'inet', from: '10.4.1.5/32' },
  { kind: 'rule.remove', priority: 20200, table: 20001, family: 'inet6', from: '2001:db8:1::5/128' },
  { kind: 'route.remove', table: 20001, destination: '0.0.0.0/0', link: 'eth1', type: 'unicast' },
  { kind: 'route.remove', table: 20001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast' },
  { kind: 'route.remove', table: 20001, destination: '2001:db8:1::/64', link: 'eth1', type: 'unicast' },
  { kind: 'route.remove', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local' },
  { kind: 'address.remove', link: 'eth1', address: '10.4.1.6/24' },
  { kind: 'address.remove', link: 'eth1', address: '2001:db8:1::5/64' },
];

const outcomes = (results: OperationResult[]) => results.map((r) => r.outcome);

/** IFA_PROTO per address, read by a separate decoder (iproute2 6.1 does not print it). */
function addressProtocols(ns: string): Map<string, number | null> {
  const script = String.raw`
import socket, struct, json
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
s.send(struct.pack('=IHHII', 24, 22, 0x301, 1, 0) + struct.pack('=BBBBI', 0, 0, 0, 0, 0))
out = {}
done = False
while not done:
    data = s.recv(1 << 20)
    off = 0
    while off < len(data):
        length, kind = struct.unpack_from('=IH', data, off)
        if kind == 3: done = True; break
        if kind == 20:
            family, plen = struct.unpack_from('=BB', data, off + 16)
            a = off + 24; addr = None; proto = None
            while a < off + length:
                alen, atype = struct.unpack_from('=HH', data, a)
                value = data[a + 4:a + alen]
                if atype == 2 or (atype == 1 and addr is None):
                    addr = socket.inet_ntop(socket.AF_INET if family == 2 else socket.AF_INET6, value)
                if atype == 11: proto = value[0]
                a += (alen + 3) & ~3
            out['%s/%d' % (addr, plen)] = proto
        off += (length + 3) & ~3
print(json.dumps(out))
`;
  const output = execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', script], { encoding: 'utf8' });
  return new Map(Object.entries(JSON.parse(output) as Record<string, number | null>));
}

eachSocket('every operation kind is applied and shows in ip; applying again reports already and changes nothing', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlops');
  const runner = startRunner(t, ns, socket);

  const first = await runner.send<OperationResult[]>({ cmd: 'apply', ops: CONFIGURE });
  t.deepEqual(outcomes(first), CONFIGURE.map(() => 'applied'), JSON.stringify(first));

  t.regex(ip(ns, 'link', 'show', 'eth1'), /<[^>]*\bUP\b[^>]*> mtu 1400 /);
  const addresses = ip(ns, 'addr', 'show', 'dev', 'eth1');
  t.regex(addresses, /inet 10\.4\.1\.5\/24 scope global noprefixroute eth1/);
  t.regex(addresses, /inet 10\.4\.1\.6\/24 scope global secondary noprefixroute eth1/);
  t.regex(addresses, /inet6 2001:db8:1::5\/64 scope global .*noprefixroute/);
  // noprefixroute: no subnet route in main
  t.notRegex(ip(ns, 'route', 'show', 'table', 'main'), /10\.4\.1\.0\/24/);
  t.is(
    ip(ns, 'route', 'show', 'table', '20001'),
    'default via 10.4.1.1 dev eth1 proto 201 src 10.4.1.5 \n10.4.1.0/24 dev eth1 proto 201 scope link \n',
  );
  t.regex(ip(ns, '-6', 'route', 'show', 'table', '20001'), /^2001:db8:1::\/64 dev eth1 proto 201 metric 1024/m);
  t.regex(ip(ns, 'route', 'show', 'table', 'local'), /^local 10\.128\.8\.0\/24 dev eth1 proto 201 scope host/m);
  const rules = ip(ns, 'rule', 'show');
  t.regex(rules, /^20000:\tfrom all lookup main suppress_prefixlength 0 proto 201/m);
  t.regex(rules, /^20100:\tfrom all to 10\.4\.1\.5 lookup 20001 proto 201/m);
  t.regex(rules, /^20200:\tfrom 10\.4\.1\.5 lookup 20001 proto 201/m);
  t.regex(ip(ns, '-6', 'rule', 'show'), /^20200:\tfrom 2001:db8:1::5 lookup 20001 proto 201/m);

  // IPv6 duplicate address detection flips "tentative" off a moment later, on eth1 and on its
  // peer's link-local address (which then gets its local route): not our change
  const before = await settledKernelDump(ns);
  const again = await runner.send<OperationResult[]>({ cmd: 'apply', ops: CONFIGURE });
  t.deepEqual(outcomes(again), CONFIGURE.map(() => 'already'), JSON.stringify(again));
  t.is(kernelDump(ns), before);

  const removed = await runner.send<OperationResult[]>({ cmd: 'apply', ops: UNCONFIGURE });
  t.deepEqual(outcomes(removed), UNCONFIGURE.map(() => 'applied'), JSON.stringify(removed));
  t.is(ip(ns, 'route', 'show', 'table', 'all').includes('20001'), false);
  t.notRegex(ip(ns, 'rule', 'show'), /proto 201/);
  t.notRegex(ip(ns, '-6', 'rule', 'show'), /proto 201/);
  t.notRegex(ip(ns, 'addr', 'show', 'dev', 'eth1'), /10\.4\.1\.6|2001:db8:1::5/);
  t.regex(ip(ns, 'addr', 'show', 'dev', 'eth1'), /10\.4\.1\.5\/24/);

  const afterRemoval = kernelDump(ns);
  const removedAgain = await runner.send<OperationResult[]>({ cmd: 'apply', ops: UNCONFIGURE });
  t.deepEqual(outcomes(removedAgain), UNCONFIGURE.map(() => 'already'), JSON.stringify(removedAgain));
  t.is(kernelDump(ns), afterRemoval);
});

eachSocket('a changed route is replaced in place, and a link already as asked is left alone', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlrepl');
  const runner = startRunner(t, ns, socket);
  const setup: Operation[] = [
    { kind: 'link.set', link: 'eth1', up: true },
    { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: false },
  ];
  t.deepEqual(outcomes(await runner.send<OperationResult[]>({ cmd: 'apply', ops: setup })), ['applied', 'applied']);
  const route = (gateway: string): Operation => ({
    kind: 'route.replace',
    table: 20001,
    destination: '0.0.0.0/0',
    link: 'eth1',
    gateway,
    type: 'unicast',
    scope: 'universe',
  });
  t.deepEqual(outcomes(await runner.send<OperationResult[]>({ cmd: 'apply', ops: [route('10.4.1.1')] })), ['applied']);
  t.deepEqual(outcomes(await runner.send<OperationResult[]>({ cmd: 'apply', ops: [route('10.4.1.254')] })), ['applied']);
  t.is(ip(ns, 'route', 'show', 'table', '20001'), 'default via 10.4.1.254 dev eth1 proto 201 \n');
  const linkAgain = await runner.send<OperationResult[]>({ cmd: 'apply', ops: [{ kind: 'link.set', link: 'eth1', up: true }] });
  t.deepEqual(outcomes(linkAgain), ['already']);
});

eachSocket('addresses we add carry IFA_PROTO 201, addresses added by others carry none', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlproto');
  const runner = startRunner(t, ns, socket);
  ip(ns, 'addr', 'add', '10.9.9.9/24', 'dev', 'eth1');
  const ops: Operation[] = [
    { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
    { kind: 'address.add', link: 'eth1', address: '2001:db8:1::5/64', noPrefixRoute: false },
  ];
  t.deepEqual(outcomes(await runner.send<OperationResult[]>({ cmd: 'apply', ops })), ['applied', 'applied']);
  const protocols = addressProtocols(ns);
  t.is(protocols.get('10.4.1.5/24'), 201);
  t.is(protocols.get('2001:db8:1::5/64'), 201);
  t.is(protocols.get('10.9.9.9/24'), null);

  const state = await runner.send<KernelState>({ cmd: 'read' });
  const byAddress = new Map(state.addresses.map((a) => [`${a.address}/${a.prefixLength}`, a]));
  t.is(byAddress.get('10.4.1.5/24')?.protocol, 201);
  t.is(byAddress.get('2001:db8:1::5/64')?.protocol, 201);
  t.is(byAddress.get('10.9.9.9/24')?.protocol, undefined);
});

interface IpAddrJson {
  ifindex: number;
  ifname: string;
  mtu: number;
  flags: string[];
  address?: string;
  master?: string;
  addr_info: { family: string; local: string; prefixlen: number; noprefixroute?: boolean; valid_life_time?: number }[];
}
interface IpRouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  prefsrc?: string;
}
interface IpRuleJson {
  priority: number;
  table?: string;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
}

const TABLE_NAMES: Record<string, number> = { local: 255, main: 254, default: 253 };
const tableNumber = (name: string | undefined) => (name === undefined ? 254 : (TABLE_NAMES[name] ?? Number(name)));

eachSocket('readKernelState reports the links, addresses, routes and rules that ip shows', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlread');
  const runner = startRunner(t, ns, socket);
  ipBatch(ns, [
    'link set eth1 up mtu 1450',
    'addr add 10.4.1.5/24 dev eth1 noprefixroute',
    'addr add 10.4.2.7/24 dev eth1 valid_lft 3600 preferred_lft 3600',
    'addr add 2001:db8:1::5/64 dev eth1 nodad',
    'route add 10.4.1.0/24 dev eth1 table 20001 proto 201 scope link',
    'route add default via 10.4.1.1 dev eth1 table 20001 proto 201 src 10.4.1.5',
    'route add 192.0.2.0/24 via 10.4.2.1 dev eth1 metric 50',
    'route add 2001:db8:2::/64 via 2001:db8:1::1 dev eth1',
    'rule add priority 20000 lookup main suppress_prefixlength 0 protocol 201',
    'rule add priority 20200 from 10.4.1.5 lookup 20001 protocol 201',
    'rule add priority 20100 to 10.4.1.0/24 lookup 20001',
  ]);
  ip(ns, '-6', 'rule', 'add', 'priority', '20200', 'from', '2001:db8:1::5', 'lookup', '20001');
  // link-local addresses get their local route when DAD ends: wait, or the two reads differ
  await waitFor(() => !ip(ns, '-6', 'addr', 'show').includes('tentative'), 'IPv6 DAD to finish');
  const state = await runner.send<KernelState>({ cmd: 'read' });

  const links = JSON.parse(ip(ns, '-j', 'link', 'show')) as IpAddrJson[];
  t.deepEqual(
    state.links.map((l) => [l.index, l.name, l.mac, l.up, l.mtu, l.loopback]).sort(),
    links
      .map((l) => [l.ifindex, l.ifname, l.flags.includes('LOOPBACK') ? '' : (l.address ?? ''), l.flags.includes('UP'), l.mtu, l.flags.includes('LOOPBACK')])
      .sort(),
  );
  t.is(state.links.find((l) => l.name === 'eth1')?.kind, 'veth');

  const addrs = JSON.parse(ip(ns, '-j', 'addr', 'show')) as IpAddrJson[];
  t.deepEqual(
    state.addresses.map((a) => `${a.ifindex} ${a.family} ${a.address}/${a.prefixLength} npr=${a.noPrefixRoute} dyn=${a.dynamic}`).sort(),
    addrs
      .flatMap((l) =>
        l.addr_info.map(
          (a) =>
            `${l.ifindex} ${a.family} ${a.local}/${a.prefixlen} npr=${a.noprefixroute === true} dyn=${a.valid_life_time !== undefined && a.valid_life_time !== 4294967295}`,
        ),
      )
      .sort(),
  );
  t.true(state.addresses.some((a) => a.address === '10.4.2.7' && a.dynamic));

  const indexOf = new Map(links.map((l) => [l.ifname, l.ifindex]));
  const ipRoutes = [
    ...(JSON.parse(ip(ns, '-4', '-j', 'route', 'show', 'table', 'all')) as IpRouteJson[]).map((r) => ({ ...r, family: 'inet' })),
    ...(JSON.parse(ip(ns, '-j', '-6', 'route', 'show', 'table', 'all')) as IpRouteJson[]).map((r) => ({ ...r, family: 'inet6' })),
  ];
  const hostLength = (family: string) => (family === 'inet' ? 32 : 128);
  t.deepEqual(
    state.routes.map((r) => `${r.table} ${r.type} ${r.destination} via=${r.gateway ?? '-'} dev=${r.ifindex ?? '-'} src=${r.source ?? '-'}`).sort(),
    ipRoutes
      .map((r) => {
        const destination =
          r.dst === 'default' ? (r.family === 'inet' ? '0.0.0.0/0' : '::/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${hostLength(r.family)}`;
        return `${tableNumber(r.table)} ${r.type ?? 'unicast'} ${destination} via=${r.gateway ?? '-'} dev=${r.dev ? indexOf.get(r.dev) : '-'} src=${r.prefsrc ?? '-'}`;
      })
      .sort(),
  );
  const ours = state.routes.find((r) => r.table === 20001 && r.destination === '0.0.0.0/0');
  t.like(ours, { protocol: 201, scope: 'universe', gateway: '10.4.1.1', source: '10.4.1.5', type: 'unicast' });
  t.is(state.routes.find((r) => r.destination === '192.0.2.0/24')?.metric, 50);

  const ipRules = [
    ...(JSON.parse(ip(ns, '-j', 'rule', 'show')) as IpRuleJson[]).map((r) => ({ ...r, family: 'inet' })),
    ...(JSON.parse(ip(ns, '-j', '-6', 'rule', 'show')) as IpRuleJson[]).map((r) => ({ ...r, family: 'inet6' })),
  ];
  const cidr = (address: string | undefined, length: number | undefined, family: string) =>
    address === undefined || address === 'all' ? '-' : `${address}/${length ?? hostLength(family)}`;
  t.deepEqual(
    state.rules.map((r) => `${r.family} ${r.priority} ${r.table} from=${r.from ?? '-'} to=${r.to ?? '-'}`).sort(),
    ipRules
      .map((r) => `${r.family} ${r.priority} ${tableNumber(r.table)} from=${cidr(r.src, r.srclen, r.family)} to=${cidr(r.dst, r.dstlen, r.family)}`)
      .sort(),
  );
  t.like(
    state.rules.find((r) => r.priority === 20000),
    { family: 'inet', table: 254, suppressPrefixLength: 0, protocol: 201, action: 'lookup' },
  );
  t.is(state.rules.find((r) => r.priority === 20100)?.suppressPrefixLength, undefined);
});

eachSocket('kernel refusals are failed outcomes with the errno name and a readable reason', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlfail');
  const runner = startRunner(t, ns, socket);
  const ops: Operation[] = [
    { kind: 'link.set', link: 'eth1', up: true },
    { kind: 'address.add', link: 'eth9', address: '10.4.1.5/24', noPrefixRoute: true },
    {
      kind: 'route.replace',
      table: 20001,
      destination: '0.0.0.0/0',
      link: 'eth1',
      gateway: '192.0.2.1',
      type: 'unicast',
      scope: 'universe',
    },
    { kind: 'route.replace', table: 20001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' },
  ];
  const [up, noDevice, unreachable, fine] = await runner.send<OperationResult[]>({ cmd: 'apply', ops });
  t.is(up?.outcome, 'applied');
  t.like(noDevice, { outcome: 'failed', code: 'ENODEV' });
  t.regex(noDevice?.reason ?? '', /adding address 10\.4\.1\.5\/24 to eth9 failed: ENODEV/);
  t.like(unreachable, { outcome: 'failed', code: 'ENETUNREACH' });
  t.regex(unreachable?.reason ?? '', /via 192\.0\.2\.1 dev eth1 in table 20001 failed: ENETUNREACH.*gateway/);
  // one failure does not stop the others
  t.is(fine?.outcome, 'applied');
  t.is(ip(ns, 'route', 'show', 'table', '20001'), '10.4.1.0/24 dev eth1 proto 201 scope link \n');
});

eachSocket('2,048 addresses are applied pipelined, all present with our protocol, and re-applying reports already', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlmany');
  const runner = startRunner(t, ns, socket);
  const ops: Operation[] = [{ kind: 'link.set', link: 'eth1', up: true }];
  for (let i = 0; i < 2048; i++) {
    ops.push({ kind: 'address.add', link: 'eth1', address: `10.20.${i >> 8}.${i & 0xff}/16`, noPrefixRoute: true });
  }
  const results = await runner.send<OperationResult[]>({ cmd: 'apply', ops });
  t.deepEqual([...new Set(outcomes(results))], ['applied'], JSON.stringify(results.find((r) => r.outcome !== 'applied')));
  const listed = ip(ns, '-o', '-4', 'addr', 'show', 'dev', 'eth1').trim().split('\n');
  t.is(listed.length, 2048);
  const state = await runner.send<KernelState>({ cmd: 'read' });
  const ours = state.addresses.filter((a) => a.family === 'inet' && a.protocol === 201 && a.noPrefixRoute);
  t.is(ours.length, 2048);

  const again = await runner.send<OperationResult[]>({ cmd: 'apply', ops });
  t.deepEqual([...new Set(outcomes(again))], ['already']);
});

eachSocket('in a batch of many datagrams, each kernel refusal is reported on exactly its own operation', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlbatch');
  const runner = startRunner(t, ns, socket);
  // 600 adds span three datagrams (BATCH_MAX_MESSAGES = 256); the positions already present sit
  // at the first, last and boundary messages, where an off-by-one would show
  const present = [0, 1, 255, 256, 257, 511, 512, 599];
  ip(ns, 'link', 'set', 'eth1', 'up');
  for (const i of present) ip(ns, 'addr', 'add', `10.30.${i >> 8}.${i & 0xff}/32`, 'dev', 'eth1');
  const ops: Operation[] = [];
  for (let i = 0; i < 600; i++) {
    ops.push({ kind: 'address.add', link: 'eth1', address: `10.30.${i >> 8}.${i & 0xff}/32`, noPrefixRoute: false });
  }
  const results = await runner.send<OperationResult[]>({ cmd: 'apply', ops });
  t.is(results.length, 600);
  const already = results.flatMap((result, i) => (result.outcome === 'already' ? [i] : []));
  t.deepEqual(already, present);
  t.true(results.every((result, i) => present.includes(i) || result.outcome === 'applied'));
  t.is(ip(ns, '-o', '-4', 'addr', 'show', 'dev', 'eth1').trim().split('\n').length, 600);

  // (/32 each: deleting a primary address would take its subnet's secondaries with it)
  // removing: every other address is gone already (EADDRNOTAVAIL = already), and a real failure
  // in the middle of a route batch stays on its own operation while the rest are applied
  for (let i = 0; i < 600; i += 2) ip(ns, 'addr', 'del', `10.30.${i >> 8}.${i & 0xff}/32`, 'dev', 'eth1');
  const removals: Operation[] = ops.map((op) => ({ kind: 'address.remove', link: 'eth1', address: (op as { address: string }).address }));
  const removed = await runner.send<OperationResult[]>({ cmd: 'apply', ops: removals });
  t.deepEqual(
    removed.map((result) => result.outcome),
    removals.map((_, i) => (i % 2 === 0 ? 'already' : 'applied')),
  );
  const routes: Operation[] = [];
  for (let i = 0; i < 300; i++) {
    routes.push({ kind: 'route.replace', table: 20000 + i, destination: '10.30.0.0/16', link: 'eth1', type: 'unicast', scope: 'link' });
  }
  routes[150] = { kind: 'route.replace', table: 20150, destination: '0.0.0.0/0', link: 'eth1', gateway: '192.0.2.1', type: 'unicast', scope: 'universe' };
  const routed = await runner.send<OperationResult[]>({ cmd: 'apply', ops: routes });
  t.like(routed[150], { outcome: 'failed', code: 'ENETUNREACH' });
  t.true(routed.every((result, i) => i === 150 || result.outcome === 'applied'));
  t.is(ip(ns, 'route', 'show', 'table', '20149'), '10.30.0.0/16 dev eth1 proto 201 scope link \n');
  t.is(ip(ns, 'route', 'show', 'table', '20150'), '');
});

/**
 * Routes of several protocols and tables: the kernel's own in main and local (for the address),
 * a DHCP default route, ours in main and in table 20001, and a static one in 20001.
 */
function namespaceWithMixedRoutes(t: Parameters<typeof createNamespace>[0], purpose: string): string {
  const ns = namespaceWithNic(t, purpose);
  ip(ns, 'link', 'set', 'eth1', 'up');
  ip(ns, 'addr', 'add', '10.40.0.5/24', 'dev', 'eth1');
  ip(ns, 'route', 'add', 'default', 'via', '10.40.0.1', 'dev', 'eth1', 'proto', 'dhcp');
  ip(ns, 'route', 'add', '10.43.0.0/24', 'dev', 'eth1', 'proto', '201');
  ip(ns, 'route', 'add', '10.41.0.0/24', 'dev', 'eth1', 'table', '20001', 'proto', '201');
  ip(ns, 'route', 'add', '10.42.0.0/24', 'dev', 'eth1', 'table', '20001', 'proto', 'static');
  return ns;
}

eachSocket('a route dump filtered by protocol is filtered by the kernel: only our routes come back', async (t, socket) => {
  const ns = namespaceWithMixedRoutes(t, 'nlfilter');
  const runner = startRunner(t, ns, socket);
  const unfiltered = await runner.send<number[]>({ cmd: 'route-dump', protocol: 0 });
  t.true(unfiltered.some((protocol) => protocol !== 201), 'without a filter other protocols come back');
  t.deepEqual(await runner.send<number[]>({ cmd: 'route-dump', protocol: 201 }), [201, 201]);
});

eachSocket('route dumps filtered by protocol and by table: only those routes, each listed once, none of the local table', async (t, socket) => {
  const ns = namespaceWithMixedRoutes(t, 'nltable');
  const runner = startRunner(t, ns, socket);
  const state = await runner.send<KernelState>({ cmd: 'read', routeFilters: [{ protocol: 201 }, { table: 254 }] });
  const seen = state.routes.filter((r) => r.family === 'inet').map((r) => `${r.table} ${r.destination} ${r.protocol}`).sort();
  // 10.43.0.0/24, ours in main, matches both filters and is listed once
  t.deepEqual(seen, ['20001 10.41.0.0/24 201', '254 0.0.0.0/0 16', '254 10.40.0.0/24 2', '254 10.43.0.0/24 201']);
  t.false(state.routes.some((r) => r.table === 255), 'nothing from the local table');
  t.deepEqual([...new Set(await runner.send<number[]>({ cmd: 'route-dump', protocol: 0, table: 254 }))], [254], 'the kernel itself sends main only');
  // unfiltered, the same read has the local table's routes and the static one
  const all = await runner.send<KernelState>({ cmd: 'read' });
  t.true(all.routes.some((r) => r.table === 255));
  t.true(all.routes.some((r) => r.destination === '10.42.0.0/24'));
});

eachSocket('a batch keeps messages of unaligned length apart: each starts 4-byte aligned', async (t, socket) => {
  const ns = namespaceWithNic(t, 'nlalign');
  const runner = startRunner(t, ns, socket);
  ip(ns, 'link', 'set', 'eth1', 'up');
  const ifindex = Number(/^(\d+):/.exec(ip(ns, '-o', 'link', 'show', 'dev', 'eth1'))![1]);
  const addresses = ['10.50.0.1', '10.50.0.2', '10.50.0.3'];
  t.deepEqual(await runner.send<string[]>({ cmd: 'batch-unaligned', ifindex, addresses }), ['OK', 'OK', 'OK']);
  const listed = ip(ns, '-o', '-4', 'addr', 'show', 'dev', 'eth1');
  for (const address of addresses) t.true(listed.includes(` ${address}/32 `), `${address} in ${listed}`);
});
