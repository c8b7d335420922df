// Which addresses the helper accepts, as plain checks on parsed addresses. Each returns the
// reason an address is unusable, or undefined when it is fine.
import { allHostBitsSet, formatIp, hasHostBits, networkOf, parseIp, parsePrefix, prefixContains, type ParsedIp, type ParsedPrefix, type PrefixParser } from '../protocol/ip.js';

interface Reserved {
  family: 'inet' | 'inet6';
  network: string;
  length: number;
  what: string;
}

// Addresses that are never a VM's own unicast address. IPv4 240/4 covers 255.255.255.255.
const RESERVED: readonly Reserved[] = [
  { family: 'inet', network: '0.0.0.0', length: 8, what: '"this network" (0.0.0.0/8)' },
  { family: 'inet', network: '127.0.0.0', length: 8, what: 'loopback (127.0.0.0/8)' },
  { family: 'inet', network: '169.254.0.0', length: 16, what: 'link-local (169.254.0.0/16, where the metadata service lives)' },
  { family: 'inet', network: '224.0.0.0', length: 4, what: 'multicast (224.0.0.0/4)' },
  { family: 'inet', network: '240.0.0.0', length: 4, what: 'reserved or broadcast (240.0.0.0/4)' },
  { family: 'inet6', network: '::', length: 128, what: 'the unspecified address (::)' },
  { family: 'inet6', network: '::1', length: 128, what: 'loopback (::1)' },
  { family: 'inet6', network: 'fe80::', length: 10, what: 'link-local (fe80::/10)' },
  { family: 'inet6', network: 'ff00::', length: 8, what: 'multicast (ff00::/8)' },
  { family: 'inet6', network: '::ffff:0:0', length: 96, what: 'IPv4-mapped (::ffff:0:0/96)' },
];

const reserved = RESERVED.map((r) => ({ ...r, prefix: { ...parseIp(r.network)!, prefixLength: r.length } }));
type ReservedRange = (typeof reserved)[number];

// The ranges that can hold an address, by the address's first byte: most first bytes (10, 172,
// 192, fd, 20..3f) have none, so most addresses of an apply are compared with no range at all.
function candidatesByFirstByte(family: 'inet' | 'inet6'): ReservedRange[][] {
  const table = Array.from({ length: 256 }, (): ReservedRange[] => []);
  for (const r of reserved) {
    if (r.family !== family) continue;
    const first = r.prefix.bytes[0]!;
    // a range shorter than 8 bits spans several first bytes
    const last = r.length >= 8 ? first : first | (0xff >> r.length);
    for (let byte = first; byte <= last; byte++) table[byte]!.push(r);
  }
  return table;
}
const reservedOf = { inet: candidatesByFirstByte('inet'), inet6: candidatesByFirstByte('inet6') };

/** Why `ip` is not a usable unicast address, or undefined. `allowLinkLocal` for IPv6 gateways. */
export function unicastProblem(ip: ParsedIp, allowLinkLocal = false): string | undefined {
  for (const r of reservedOf[ip.family][ip.bytes[0]!]!) {
    if (allowLinkLocal && r.family === 'inet6' && r.network === 'fe80::') continue;
    if (prefixContains(r.prefix, ip)) return `${formatIp(ip)} is ${r.what}, not a unicast address`;
  }
  return undefined;
}

export const PREFIX_LENGTHS = { inet: { min: 8, max: 32 }, inet6: { min: 48, max: 128 } } as const;

function lengthProblem(p: ParsedPrefix, text: string): string | undefined {
  const { min, max } = PREFIX_LENGTHS[p.family];
  if (p.prefixLength < min || p.prefixLength > max) {
    return `${text}: prefix length /${p.prefixLength} is outside ${min}–${max} for ${p.family === 'inet' ? 'IPv4' : 'IPv6'}`;
  }
  return undefined;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** An interface address such as 10.4.0.5/24: unicast, a sane prefix, not its subnet's network (or IPv4 broadcast) address. */
export function checkInterfaceAddress(text: string, parse: PrefixParser = parsePrefix): Checked<ParsedPrefix> {
  const p = parse(text);
  if (!p) return { ok: false, reason: `${text} is not an address with a prefix length` };
  const problem = unicastProblem(p) ?? lengthProblem(p, text);
  if (problem) return { ok: false, reason: problem };
  if (p.family === 'inet' && p.prefixLength <= 30) {
    if (!hasHostBits(p)) return { ok: false, reason: `${text} is the network address of its subnet` };
    if (allHostBitsSet(p)) return { ok: false, reason: `${text} is the broadcast address of its subnet` };
  }
  // IPv6 has no broadcast, but all host bits zero is the subnet's router anycast address (RFC 4291 2.6.1)
  if (p.family === 'inet6' && p.prefixLength <= 126 && !hasHostBits(p)) {
    return { ok: false, reason: `${text} is the network (subnet-router anycast) address of its subnet` };
  }
  return { ok: true, value: p };
}

/**
 * A routed range (GCP alias range, forwarded IP, EC2 prefix delegation) or a host address, as
 * used by local routes and by rule selectors: a network (no host bits), unicast, never /0.
 */
export function checkRoutedRange(text: string, parse: PrefixParser = parsePrefix): Checked<ParsedPrefix> {
  const p = parse(text);
  if (!p) return { ok: false, reason: `${text} is not an address with a prefix length` };
  if (p.prefixLength === 0) return { ok: false, reason: `${text} would match every address; only host addresses and routed ranges are accepted` };
  const problem = unicastProblem(p) ?? lengthProblem(p, text);
  if (problem) return { ok: false, reason: problem };
  if (hasHostBits(p)) {
    return { ok: false, reason: `${text} has host bits set; the range is ${formatIp(networkOf(p, p.prefixLength))}/${p.prefixLength}` };
  }
  return { ok: true, value: p };
}

/** A route destination in a managed table: any network, /0 included, but without host bits. */
export function checkDestination(text: string, parse: PrefixParser = parsePrefix): Checked<ParsedPrefix> {
  const p = parse(text);
  if (!p) return { ok: false, reason: `${text} is not an address with a prefix length` };
  if (hasHostBits(p)) {
    return { ok: false, reason: `${text} has host bits set; the network is ${formatIp(networkOf(p, p.prefixLength))}/${p.prefixLength}` };
  }
  return { ok: true, value: p };
}

/** A bare address: a gateway (IPv6 link-local allowed, as Azure and EC2 IPv6 routers are) or a preferred source. */
export function checkHost(text: string, role: 'gateway' | 'source'): Checked<ParsedIp> {
  const ip = parseIp(text);
  if (!ip) return { ok: false, reason: `${role} ${text} is not an IP address` };
  const problem = unicastProblem(ip, role === 'gateway');
  if (problem) return { ok: false, reason: `${role} ${problem}` };
  return { ok: true, value: ip };
}
