// Decoding rtnetlink messages (netlink/messages.ts) from bytes laid out as the kernel sends
// them. The namespace tests (netlink-kernel.test.ts) check the same decoders against `ip`.
import test from 'ava';
import { RequestBuilder } from '../../netlink/attributes.js';
import { decodeAddress, IFA } from '../../netlink/objects/address.js';
import { decodeLink } from '../../netlink/objects/link.js';
import { decodeRoute, RTA } from '../../netlink/objects/route.js';
import { decodeRule, FRA } from '../../netlink/objects/rule.js';

const bytes = (...values: number[]) => Uint8Array.from(values);
const u32le = (value: number) => bytes(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
const message = (builder: RequestBuilder) => Buffer.from(builder.build()[0]!);

function header(length: number, fields: Record<number, number>): Uint8Array {
  const h = new Uint8Array(length);
  for (const [at, value] of Object.entries(fields)) h[Number(at)] = value;
  return h;
}

test('an address: IFA_LOCAL before IFA_ADDRESS, flags, lifetime and protocol', (t) => {
  const addressHeader = (ifindex: number) => {
    const h = header(8, { 0: 2, 1: 24, 2: 0x80, 3: 0 });
    h.set(u32le(ifindex), 4);
    return h;
  };
  const permanent = decodeAddress(
    message(
      new RequestBuilder(addressHeader(7))
        .bytes(IFA.ADDRESS, bytes(10, 0, 0, 99)) // the peer, on point-to-point links
        .bytes(IFA.LOCAL, bytes(10, 0, 0, 5))
        .bytes(IFA.CACHEINFO, Uint8Array.from([...u32le(0xffffffff), ...u32le(0xffffffff), ...u32le(0), ...u32le(0)]))
        .u32(IFA.FLAGS, 0x200)
        .u8(IFA.PROTO, 201),
    ),
  );
  t.deepEqual(permanent, { ifindex: 7, family: 'inet', address: '10.0.0.5', peer: '10.0.0.99', prefixLength: 24, dynamic: false, noPrefixRoute: true, scope: 0, protocol: 201 });

  const leased = decodeAddress(
    message(
      new RequestBuilder(addressHeader(2))
        .bytes(IFA.ADDRESS, bytes(10, 0, 0, 6))
        .bytes(IFA.CACHEINFO, Uint8Array.from([...u32le(3600), ...u32le(3600), ...u32le(0), ...u32le(0)])),
    ),
  );
  t.deepEqual(leased, { ifindex: 2, family: 'inet', address: '10.0.0.6', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 });

  const v6 = decodeAddress(message(new RequestBuilder(header(8, { 0: 10, 1: 64 })).bytes(IFA.ADDRESS, bytes(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1))));
  t.is(v6?.address, 'fd00::1');
  t.is(decodeAddress(message(new RequestBuilder(header(8, { 0: 2, 1: 24 })).bytes(IFA.LOCAL, bytes(10, 0, 0)))), undefined, 'a 3-byte IPv4 address is not one');
  t.is(decodeAddress(message(new RequestBuilder(header(8, { 0: 7 })).bytes(IFA.LOCAL, bytes(10, 0, 0, 1)))), undefined, 'another family');
});

test('a route: a table above 255 from RTA_TABLE, gateway, interface, source and metric', (t) => {
  const route = decodeRoute(
    message(
      new RequestBuilder(header(12, { 0: 2, 1: 0, 4: 0, 5: 201, 6: 0, 7: 1 }))
        .u32(RTA.TABLE, 20002)
        .bytes(RTA.GATEWAY, bytes(10, 1, 0, 1))
        .u32(RTA.OIF, 3)
        .bytes(RTA.PREFSRC, bytes(10, 1, 0, 9))
        .u32(RTA.PRIORITY, 100),
    ),
  );
  t.deepEqual(route, { table: 20002, family: 'inet', destination: '0.0.0.0/0', protocol: 201, type: 'unicast', scope: 'universe', gateway: '10.1.0.1', ifindex: 3, source: '10.1.0.9', metric: 100 });
  const local = decodeRoute(message(new RequestBuilder(header(12, { 0: 2, 1: 32, 4: 255, 5: 2, 6: 254, 7: 2 })).bytes(RTA.DST, bytes(10, 1, 0, 9)).u32(RTA.OIF, 3)));
  t.deepEqual(local, { table: 255, family: 'inet', destination: '10.1.0.9/32', protocol: 2, type: 'local', scope: 'host', ifindex: 3 });
});

test('a rule: selectors with their lengths, protocol, suppress_prefixlength unset or set', (t) => {
  const from = decodeRule(
    message(new RequestBuilder(header(12, { 0: 2, 2: 32, 7: 1 })).u32(FRA.PRIORITY, 20100).u32(FRA.TABLE, 20001).bytes(FRA.SRC, bytes(10, 0, 1, 7)).u32(FRA.SUPPRESS_PREFIXLEN, 0xffffffff).u8(FRA.PROTOCOL, 201)),
  );
  t.deepEqual(from, { family: 'inet', priority: 20100, table: 20001, protocol: 201, action: 'lookup', from: '10.0.1.7/32' });
  const suppress = decodeRule(message(new RequestBuilder(header(12, { 0: 2, 4: 254, 7: 1 })).u32(FRA.PRIORITY, 20000).u32(FRA.SUPPRESS_PREFIXLEN, 0)));
  t.deepEqual(suppress, { family: 'inet', priority: 20000, table: 254, protocol: 0, action: 'lookup', suppressPrefixLength: 0 });
  const to = decodeRule(message(new RequestBuilder(header(12, { 0: 2, 1: 24, 7: 2 })).u32(FRA.PRIORITY, 5).bytes(FRA.DST, bytes(10, 9, 0, 0))));
  t.deepEqual(to, { family: 'inet', priority: 5, table: 0, protocol: 0, action: 'other', to: '10.9.0.0/24', otherSelectors: true });
});

test('a rule that selects on more than cloud-network uses (iif, tos, not) is marked as such', (t) => {
  const plain = () => new RequestBuilder(header(12, { 0: 2, 2: 32, 7: 1 })).u32(FRA.PRIORITY, 20200).u32(FRA.TABLE, 20001).bytes(FRA.SRC, bytes(10, 0, 1, 7));
  t.is(decodeRule(message(plain()))!.otherSelectors, undefined);
  t.is(decodeRule(message(plain().bytes(3 /* FRA_IIFNAME */, new TextEncoder().encode('eth1\0'))))!.otherSelectors, true);
  t.is(decodeRule(message(new RequestBuilder(header(12, { 0: 2, 2: 32, 3: 0x10, 7: 1 })).u32(FRA.PRIORITY, 20200).bytes(FRA.SRC, bytes(10, 0, 1, 7))))!.otherSelectors, true);
  const inverted = header(12, { 0: 2, 2: 32, 7: 1, 8: 2 /* FIB_RULE_INVERT */ });
  t.is(decodeRule(message(new RequestBuilder(inverted).u32(FRA.PRIORITY, 20200).bytes(FRA.SRC, bytes(10, 0, 1, 7))))!.otherSelectors, true);
});

test('attributes: nested and byte-order flags are masked, unknown types skipped, the last of a type wins, a truncated one ends the list', (t) => {
  const rule = decodeRule(
    message(
      new RequestBuilder(header(12, { 0: 2, 7: 1 }))
        .u32(FRA.PRIORITY, 1)
        .u32(200, 7) // a type this decoder does not read
        .u32(FRA.TABLE | 0x8000, 20001) // NLA_F_NESTED set
        .u32(FRA.PRIORITY, 2),
    ),
  );
  // an attribute this decoder does not know could select on anything: not a plain rule
  t.deepEqual(rule, { family: 'inet', priority: 2, table: 20001, protocol: 0, action: 'lookup', otherSelectors: true });

  const whole = message(new RequestBuilder(header(12, { 0: 2, 7: 1 })).u32(FRA.PRIORITY, 3).u32(FRA.TABLE, 20005));
  const truncated = Buffer.from(whole.subarray(0, whole.length - 2)); // the table attribute cut short
  t.deepEqual(decodeRule(truncated), { family: 'inet', priority: 3, table: 0, protocol: 0, action: 'lookup' });
});

test('a link: name, hardware address, MTU, master, and its kind from the nested IFLA_LINKINFO', (t) => {
  const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18 };
  const linkHeader = (index: number, flags: number) => {
    const h = new Uint8Array(16);
    h.set(u32le(index), 4);
    h.set(u32le(flags), 8);
    return h;
  };
  const kind = new RequestBuilder(new Uint8Array(0)).bytes(1 /* IFLA_INFO_KIND */, new TextEncoder().encode('veth\0')).build()[0]!;
  const vf = decodeLink(
    message(
      new RequestBuilder(linkHeader(5, 0x1))
        .bytes(IFLA.IFNAME, new TextEncoder().encode('eth1\0'))
        .bytes(IFLA.ADDRESS, bytes(0x00, 0x0d, 0x3a, 0x00, 0x00, 0x02))
        .u32(IFLA.MTU, 9000)
        .u32(IFLA.MASTER, 3)
        .bytes(IFLA.LINKINFO | 0x8000, kind),
    ),
  );
  t.deepEqual(vf, { index: 5, name: 'eth1', mac: '00:0d:3a:00:00:02', up: true, mtu: 9000, loopback: false, master: 3, kind: 'veth' });
  const lo = decodeLink(message(new RequestBuilder(linkHeader(1, 0x8)).bytes(IFLA.IFNAME, new TextEncoder().encode('lo\0')).bytes(IFLA.ADDRESS, new Uint8Array(6)).u32(IFLA.MTU, 65536)));
  t.deepEqual(lo, { index: 1, name: 'lo', mac: '', up: false, mtu: 65536, loopback: true });
});

test('a secondary IPv4 address and a multipath route: the flag, the TOS and each next hop', (t) => {
  const secondary = decodeAddress(message(new RequestBuilder(header(8, { 0: 2, 1: 24, 2: 0x01 })).bytes(IFA.LOCAL, bytes(10, 0, 0, 7)).bytes(IFA.ADDRESS, bytes(10, 0, 0, 7))));
  t.like(secondary, { address: '10.0.0.7', secondary: true });
  t.is(secondary?.peer, undefined, 'IFA_ADDRESS equal to IFA_LOCAL is no peer');
  const nexthop = (ifindex: number, gateway: number[]) => {
    const attribute = [4 + gateway.length, 0, 5 /* RTA_GATEWAY */, 0, ...gateway];
    return [8 + attribute.length, 0, 0, 0, ...u32le(ifindex), ...attribute];
  };
  const v6 = (last: number) => [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
  const route = decodeRoute(
    message(
      new RequestBuilder(header(12, { 0: 10, 1: 64, 3: 0x10, 4: 254, 5: 201, 7: 1 }))
        .bytes(RTA.DST, bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0x76, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        .bytes(RTA.MULTIPATH, Uint8Array.from([...nexthop(3, v6(1)), ...nexthop(4, v6(2))])),
    ),
  );
  t.like(route, { destination: '2001:db8:76::/64', tos: 0x10, nexthops: [{ ifindex: 3, gateway: 'fe80::1' }, { ifindex: 4, gateway: 'fe80::2' }] });
});
