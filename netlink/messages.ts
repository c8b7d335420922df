// The rtnetlink wire format for the four object kinds cloud-network touches: the fixed headers
// (ifinfomsg, ifaddrmsg, rtmsg, fib_rule_hdr), their attributes, and decoding into the
// observed types. Decoded by hand because the `netlink` package drops attributes it does not
// know (IFA_PROTO among them) instead of keeping them in `__unparsed`.
import type { NetlinkMessage } from './wire.js';
import { formatIp, type Family, type ParsedIp, type ParsedPrefix } from '../protocol/ip.js';
import { putU16, putU32, putU8 } from './bytes.js';
import type { NextHop, ObservedAddress, ObservedLink, ObservedRoute, ObservedRule, RouteType } from './types.js';

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
} as const;

export const NLM_F = { REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400 } as const;

export const AF_INET = 2;
export const AF_INET6 = 10;

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18 } as const;
const IFLA_INFO_KIND = 1;
export const IFA = { ADDRESS: 1, LOCAL: 2, CACHEINFO: 6, FLAGS: 8, PROTO: 11 } as const;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NOPREFIXROUTE = 0x200;
export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, MULTIPATH: 9, TABLE: 15 } as const;
export const FRA = { DST: 1, SRC: 2, PRIORITY: 6, SUPPRESS_PREFIXLEN: 14, TABLE: 15, PROTOCOL: 21 } as const;
export const FR_ACT_TO_TBL = 1;
export const RT_TABLE_UNSPEC = 0;
const INFINITE_LIFETIME = 0xffffffff;
const SUPPRESS_PREFIXLEN_UNSET = 0xffffffff;

export const ROUTE_TYPES: Record<number, RouteType> = {
  1: 'unicast',
  2: 'local',
  3: 'broadcast',
  5: 'multicast',
  6: 'blackhole',
  7: 'unreachable',
  8: 'prohibit',
  9: 'throw',
};
export const ROUTE_TYPE_NUMBER = { unicast: 1, local: 2 } as const;

export const SCOPE_NUMBER = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
export type Scope = keyof typeof SCOPE_NUMBER;
function scopeName(value: number): Scope {
  const entry = Object.entries(SCOPE_NUMBER).find(([, number]) => number === value);
  return entry ? (entry[0] as Scope) : 'universe';
}

export function familyName(af: number): Family | undefined {
  return af === AF_INET ? 'inet' : af === AF_INET6 ? 'inet6' : undefined;
}
export function familyNumber(family: Family): number {
  return family === 'inet' ? AF_INET : AF_INET6;
}

// Messages are decoded by reading their attributes in place: at 2,048 IPs a kernel read decodes
// ~7,000 addresses, routes and rules, and a Buffer and a Map entry per attribute was most of
// that work (the agent reads the kernel on every repair). The attributes of the message being
// decoded: where each type's value starts (-1: absent) and its length; the last of a type wins.
// Decoding is synchronous, so one index serves every message. Types above the highest one
// read here (FRA_PROTOCOL, 21) are skipped.
const INDEXED_TYPES = 32;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
const valueAt = new Int32Array(INDEXED_TYPES);
const valueLength = new Int32Array(INDEXED_TYPES);

/** the attribute types the last indexAttributes() met, one bit each; and whether one was too large to index */
let presentTypes = 0;
let unindexedSeen = false;

function indexAttributes(data: Buffer, headerLength: number): void {
  valueAt.fill(-1);
  presentTypes = 0;
  unindexedSeen = false;
  let offset = headerLength;
  while (offset + 4 <= data.length) {
    const length = data[offset]! | (data[offset + 1]! << 8);
    if (length < 4 || offset + length > data.length) break;
    const type = (data[offset + 2]! | (data[offset + 3]! << 8)) & NLA_TYPE_MASK;
    if (type < INDEXED_TYPES) {
      valueAt[type] = offset + 4;
      valueLength[type] = length - 4;
      presentTypes |= 1 << type;
    } else unindexedSeen = true;
    offset += (length + 3) & ~3;
  }
}

function indexedU32(data: Buffer, type: number): number | undefined {
  const at = valueAt[type]!;
  return at >= 0 && valueLength[type]! >= 4 ? data.readUInt32LE(at) : undefined;
}

function indexedU8(data: Buffer, type: number): number | undefined {
  const at = valueAt[type]!;
  return at >= 0 && valueLength[type]! >= 1 ? data[at] : undefined;
}

function indexedBytes(data: Buffer, type: number): Buffer | undefined {
  const at = valueAt[type]!;
  return at >= 0 ? data.subarray(at, at + valueLength[type]!) : undefined;
}

function indexedIp(data: Buffer, family: Family, type: number): string | undefined {
  const at = valueAt[type]!;
  const length = family === 'inet' ? 4 : 16;
  return at >= 0 && valueLength[type] === length ? formatIp({ family, bytes: data.subarray(at, at + length) }) : undefined;
}

function zeroNetwork(family: Family): string {
  return family === 'inet' ? '0.0.0.0' : '::';
}

const text = (bytes: Buffer | undefined) => bytes?.toString('utf8').replace(/\0+$/, '');

export function decodeLink(data: Buffer): ObservedLink {
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  indexAttributes(data, 16);
  const address = indexedBytes(data, IFLA.ADDRESS);
  const link: ObservedLink = {
    index,
    name: text(indexedBytes(data, IFLA.IFNAME)) ?? '',
    // loopback and tunnels have an all-zero or no hardware address
    mac: address && address.some((b) => b !== 0) ? [...address].map((b) => b.toString(16).padStart(2, '0')).join(':') : '',
    up: (flags & IFF_UP) !== 0,
    mtu: indexedU32(data, IFLA.MTU) ?? 0,
    loopback: (flags & IFF_LOOPBACK) !== 0,
  };
  const master = indexedU32(data, IFLA.MASTER);
  if (master) link.master = master;
  const linkinfo = indexedBytes(data, IFLA.LINKINFO);
  if (linkinfo) {
    // nested attributes: indexed last, the index holds one attribute list at a time
    indexAttributes(linkinfo, 0);
    const kind = text(indexedBytes(linkinfo, IFLA_INFO_KIND));
    if (kind) link.kind = kind;
  }
  return link;
}

export function decodeAddress(data: Buffer): ObservedAddress | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, 8);
  // IFA_LOCAL is our own address; IFA_ADDRESS is the peer on point-to-point links
  const address = indexedIp(data, family, valueAt[IFA.LOCAL]! >= 0 ? IFA.LOCAL : IFA.ADDRESS);
  if (!address) return undefined;
  const peer = valueAt[IFA.LOCAL]! >= 0 ? indexedIp(data, family, IFA.ADDRESS) : undefined;
  const flags = indexedU32(data, IFA.FLAGS) ?? data.readUInt8(2);
  const cacheinfo = valueAt[IFA.CACHEINFO]!;
  const valid = cacheinfo >= 0 && valueLength[IFA.CACHEINFO]! >= 8 ? data.readUInt32LE(cacheinfo + 4) : INFINITE_LIFETIME;
  const proto = indexedU8(data, IFA.PROTO);
  const observed: ObservedAddress = {
    ifindex: data.readUInt32LE(4),
    family,
    address,
    prefixLength: data.readUInt8(1),
    dynamic: valid !== INFINITE_LIFETIME,
    noPrefixRoute: (flags & IFA_F_NOPREFIXROUTE) !== 0,
    scope: data.readUInt8(3),
  };
  if (proto !== undefined) observed.protocol = proto;
  if (peer !== undefined && peer !== address) observed.peer = peer;
  // for IPv6 the same bit means a temporary (privacy) address
  if (family === 'inet' && (flags & IFA_F_SECONDARY) !== 0) observed.secondary = true;
  return observed;
}

export function decodeRoute(data: Buffer): ObservedRoute | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, 12);
  const dstLength = data.readUInt8(1);
  const destination = `${indexedIp(data, family, RTA.DST) ?? zeroNetwork(family)}/${dstLength}`;
  const route: ObservedRoute = {
    // tables above 255 exist only in RTA_TABLE
    table: indexedU32(data, RTA.TABLE) ?? data.readUInt8(4),
    family,
    destination,
    protocol: data.readUInt8(5),
    type: ROUTE_TYPES[data.readUInt8(7)] ?? 'other',
    scope: scopeName(data.readUInt8(6)),
  };
  const gateway = indexedIp(data, family, RTA.GATEWAY);
  if (gateway) route.gateway = gateway;
  const oif = indexedU32(data, RTA.OIF);
  if (oif !== undefined) route.ifindex = oif;
  const source = indexedIp(data, family, RTA.PREFSRC);
  if (source) route.source = source;
  const metric = indexedU32(data, RTA.PRIORITY);
  if (metric !== undefined) route.metric = metric;
  const tos = data.readUInt8(3);
  if (tos !== 0) route.tos = tos;
  const multipath = indexedBytes(data, RTA.MULTIPATH);
  // decoded last: the attribute index holds one attribute list at a time
  if (multipath) route.nexthops = decodeNextHops(multipath, family);
  return route;
}

/** The rtnexthop entries of RTA_MULTIPATH: length, flags, hops, ifindex, then attributes (RTA_GATEWAY). */
function decodeNextHops(data: Buffer, family: Family): NextHop[] {
  const hops: NextHop[] = [];
  let offset = 0;
  while (offset + 8 <= data.length) {
    const length = data.readUInt16LE(offset);
    if (length < 8 || offset + length > data.length) break;
    const hop: NextHop = { ifindex: data.readInt32LE(offset + 4) };
    const attributes = data.subarray(offset, offset + length);
    indexAttributes(attributes, 8);
    const gateway = indexedIp(attributes, family, RTA.GATEWAY);
    if (gateway) hop.gateway = gateway;
    hops.push(hop);
    offset += (length + 3) & ~3;
  }
  return hops;
}

/** The rule attributes the kernel reports for a rule made only of what cloud-network uses (and FRA_UNSPEC), one bit each. */
const PLAIN_RULE_ATTRIBUTES = [0, FRA.DST, FRA.SRC, FRA.PRIORITY, FRA.SUPPRESS_PREFIXLEN, FRA.TABLE, FRA.PROTOCOL].reduce((bits, type) => bits | (1 << type), 0);

/**
 * Whether the indexed rule (indexAttributes) selects on or does anything beyond cloud-network's
 * from/to/priority/table/suppress_prefixlength lookup: a tos, inverted, an iif or oif, a fwmark,
 * a uid range, ports, another action. The kernel reports those only when they are set.
 */
function hasOtherSelectors(data: Buffer): boolean {
  return data[3] !== 0 || data.readUInt32LE(8) !== 0 || data[7] !== FR_ACT_TO_TBL || unindexedSeen || (presentTypes & ~PLAIN_RULE_ATTRIBUTES) !== 0;
}

export function decodeRule(data: Buffer): ObservedRule | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, 12);
  const rule: ObservedRule = {
    family,
    priority: indexedU32(data, FRA.PRIORITY) ?? 0,
    table: indexedU32(data, FRA.TABLE) ?? data.readUInt8(4),
    protocol: indexedU8(data, FRA.PROTOCOL) ?? 0,
    action: data.readUInt8(7) === FR_ACT_TO_TBL ? 'lookup' : 'other',
  };
  const dstLength = data.readUInt8(1);
  const srcLength = data.readUInt8(2);
  const from = indexedIp(data, family, FRA.SRC);
  if (from) rule.from = `${from}/${srcLength}`;
  const to = indexedIp(data, family, FRA.DST);
  if (to) rule.to = `${to}/${dstLength}`;
  const suppress = indexedU32(data, FRA.SUPPRESS_PREFIXLEN);
  if (suppress !== undefined && suppress !== SUPPRESS_PREFIXLEN_UNSET) rule.suppressPrefixLength = suppress;
  if (hasOtherSelectors(data)) rule.otherSelectors = true;
  return rule;
}

export type KernelObjectKind = 'link' | 'address' | 'route' | 'rule';
export type KernelObject =
  | { kind: 'link'; object: ObservedLink }
  | { kind: 'address'; object: ObservedAddress }
  | { kind: 'route'; object: ObservedRoute }
  | { kind: 'rule'; object: ObservedRule };

/** Decodes one rtnetlink message of the kinds we know; undefined for anything else. */
export function decodeMessage(message: NetlinkMessage): (KernelObject & { action: 'new' | 'del' }) | undefined {
  switch (message.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return { kind: 'link', action: message.type === RTM.NEWLINK ? 'new' : 'del', object: decodeLink(message.data) };
    case RTM.NEWADDR:
    case RTM.DELADDR: {
      const object = decodeAddress(message.data);
      return object && { kind: 'address', action: message.type === RTM.NEWADDR ? 'new' : 'del', object };
    }
    case RTM.NEWROUTE:
    case RTM.DELROUTE: {
      const object = decodeRoute(message.data);
      return object && { kind: 'route', action: message.type === RTM.NEWROUTE ? 'new' : 'del', object };
    }
    case RTM.NEWRULE:
    case RTM.DELRULE: {
      const object = decodeRule(message.data);
      return object && { kind: 'rule', action: message.type === RTM.NEWRULE ? 'new' : 'del', object };
    }
    default:
      return undefined;
  }
}

// The payloads of the two requests an apply sends by the thousand (2,048 addresses and 3,584
// rules at 2,048 IPs), written with plain stores into a buffer of their exact size. Through
// RequestBuilder each took ~30 calls (the header byte by byte, each attribute's header and
// value), which the helper's interpreter (--jitless) pays one by one: encoding an apply of
// 2,048 IPs took 19 ms instead of 11 (bench/README.md, item 52). They lay out what
// RequestBuilder would, which a test checks; everything else still goes through it.

/**
 * An ifaddrmsg (family, prefix length, the link's index; flags and scope 0) and IFA_LOCAL; for
 * an address added, also IFA_FLAGS (`flags`) and IFA_PROTO (`protocol`); for one removed, also
 * IFA_ADDRESS (`peer`: the address itself, or its point-to-point peer).
 */
export function addressPayload(address: ParsedPrefix, index: number, added?: { flags: number; protocol: number }, peer?: ParsedIp): Uint8Array {
  const bytes = address.bytes;
  const out = new Uint8Array(12 + bytes.length + (added ? 16 : 0) + (peer ? 4 + peer.bytes.length : 0));
  out[0] = familyNumber(address.family);
  out[1] = address.prefixLength;
  putU32(out, 4, index);
  putU16(out, 8, 4 + bytes.length);
  out[10] = IFA.LOCAL;
  out.set(bytes, 12);
  if (peer) {
    const at = 12 + bytes.length;
    putU16(out, at, 4 + peer.bytes.length);
    out[at + 2] = IFA.ADDRESS;
    out.set(peer.bytes, at + 4);
  }
  if (!added) return out;
  const at = 12 + bytes.length + (peer ? 4 + peer.bytes.length : 0);
  out[at] = 8;
  out[at + 2] = IFA.FLAGS;
  putU32(out, at + 4, added.flags);
  out[at + 8] = 5; // nla_len counts the one byte of value, not the padding
  out[at + 10] = IFA.PROTO;
  out[at + 12] = added.protocol;
  return out;
}

/**
 * A fib_rule_hdr (family, the selectors' lengths, the table when it fits a byte, the lookup
 * action), then FRA_PRIORITY, FRA_TABLE, and FRA_SRC, FRA_DST, FRA_SUPPRESS_PREFIXLEN and
 * FRA_PROTOCOL when given, in that order.
 */
export function rulePayload(
  family: Family,
  priority: number,
  table: number,
  from: ParsedPrefix | undefined,
  to: ParsedPrefix | undefined,
  suppressPrefixLength: number | undefined,
  protocol: number | undefined,
): Uint8Array {
  const fromBytes = from?.bytes;
  const toBytes = to?.bytes;
  const out = new Uint8Array(
    28 + (fromBytes ? 4 + fromBytes.length : 0) + (toBytes ? 4 + toBytes.length : 0) + (suppressPrefixLength === undefined ? 0 : 8) + (protocol === undefined ? 0 : 8),
  );
  out[0] = familyNumber(family);
  out[1] = to ? to.prefixLength : 0;
  out[2] = from ? from.prefixLength : 0;
  out[4] = table <= 255 ? table : RT_TABLE_UNSPEC; // like iproute2: a larger table only in FRA_TABLE
  out[7] = FR_ACT_TO_TBL;
  out[12] = 8;
  out[14] = FRA.PRIORITY;
  putU32(out, 16, priority);
  out[20] = 8;
  out[22] = FRA.TABLE;
  putU32(out, 24, table);
  let at = 28;
  // an IPv4 or IPv6 selector is 4 or 16 bytes: the next attribute needs no padding
  if (fromBytes) {
    out[at] = 4 + fromBytes.length;
    out[at + 2] = FRA.SRC;
    out.set(fromBytes, at + 4);
    at += 4 + fromBytes.length;
  }
  if (toBytes) {
    out[at] = 4 + toBytes.length;
    out[at + 2] = FRA.DST;
    out.set(toBytes, at + 4);
    at += 4 + toBytes.length;
  }
  if (suppressPrefixLength !== undefined) {
    out[at] = 8;
    out[at + 2] = FRA.SUPPRESS_PREFIXLEN;
    putU32(out, at + 4, suppressPrefixLength);
    at += 8;
  }
  if (protocol !== undefined) {
    out[at] = 5;
    out[at + 2] = FRA.PROTOCOL;
    out[at + 4] = protocol;
  }
  return out;
}

/**
 * A request payload: a fixed header followed by attributes, each padded to 4 bytes. Written as
 * it is built, into one buffer (grown when an attribute does not fit): the helper encodes
 * thousands per apply under --jitless, where every allocation and every pass counts (an apply
 * of 2,048 IPs: bench/README.md, item 41). The header is given as bytes, or as a size and then
 * written in place with headerU8/headerU32.
 */
export class RequestBuilder {
  private buffer: Uint8Array;
  private length: number;

  constructor(header: Uint8Array | number) {
    const headerBytes = typeof header === 'number' ? header : header.length;
    this.length = align4(headerBytes);
    this.buffer = new Uint8Array(Math.max(IN_HEAP_BYTES, this.length + 8));
    if (typeof header !== 'number') this.buffer.set(header, 0);
  }

  /** Sets a byte of the header (the constructor's size). */
  headerU8(offset: number, value: number): this {
    putU8(this.buffer, offset, value);
    return this;
  }

  /** Sets a 32-bit field of the header, in host byte order. */
  headerU32(offset: number, value: number): this {
    putU32(this.buffer, offset, value);
    return this;
  }

  bytes(type: number, value: Uint8Array): this {
    const at = this.attribute(type, value.length); // before this.buffer is read: it may grow
    this.buffer.set(value, at);
    return this;
  }

  u32(type: number, value: number): this {
    const at = this.attribute(type, 4);
    putU32(this.buffer, at, value >>> 0);
    return this;
  }

  u8(type: number, value: number): this {
    const at = this.attribute(type, 1);
    putU8(this.buffer, at, value & 0xff);
    return this;
  }

  /** The payload, in a buffer of its own size (a copy: a view would move the buffer off V8's heap). */
  build(): Uint8Array[] {
    return [this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length)];
  }

  /** Writes an attribute's header for `size` bytes of value; returns where the value goes. */
  private attribute(type: number, size: number): number {
    const at = this.length;
    const next = at + align4(4 + size);
    if (next > this.buffer.length) {
      const grown = new Uint8Array(Math.max(next, this.buffer.length * 2));
      grown.set(this.buffer, 0); // no subarray: that would move the old buffer off the heap first
      this.buffer = grown;
    }
    putU16(this.buffer, at, 4 + size); // nla_len counts the attribute header, not the padding
    putU16(this.buffer, at + 2, type);
    this.length = next;
    return at + 4;
  }
}

/**
 * A builder's first buffer: what V8 keeps on its own heap (typed arrays of up to 64 bytes; a
 * larger one is malloc'd, and the helper's ~5,600 requests per apply then left ~1 MiB more
 * resident). Every request the helper makes fits but an IPv6 route with a gateway, which grows.
 */
const IN_HEAP_BYTES = 64;

function align4(length: number): number {
  return (length + 3) & ~3;
}
