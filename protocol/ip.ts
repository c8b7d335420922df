// IP address text: parsing, canonical form and prefix arithmetic, for both sides.
// node:net's isIP() validates but neither canonicalises IPv6 nor does prefix math.
import { isIPv6 } from 'node:net';
export type Family = 'inet' | 'inet6';

export interface ParsedIp {
  family: Family;
  /** 4 or 16 bytes, network order */
  bytes: Uint8Array;
}

/**
 * Dotted-quad IPv4 as node:net's isIPv4 accepts it (four decimal parts 0-255, no leading zeros).
 * The planner and the helper parse every address of a plan several times, and the helper runs
 * --jitless, where isIPv4's regular expression is interpreted, and so is a loop over the
 * characters; split() and the number conversions are built-ins, which run as machine code even
 * then: 40 % less time than the character loop under --jitless (bench/README.md, item 37). A part
 * is valid when it is the text of its own value: that rejects leading zeros, signs, spaces,
 * exponents, hex and empty parts.
 */
function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    const value = +part;
    if (!(value >= 0 && value <= 255) || `${value}` !== part) return undefined;
    bytes[i] = value;
  }
  return bytes;
}
const ZERO = 0x30;
const NINE = 0x39;

export function parseIp(text: string): ParsedIp | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 'inet', bytes: v4 };
  if (!isIPv6(text)) return undefined;
  let head = text;
  let tailV4: number[] = [];
  // an embedded dotted quad (::ffff:1.2.3.4) stands for the last two groups
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tailV4 = text.slice(lastColon + 1).split('.').map(Number);
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groupsOf = (part: string | undefined) => (part ? part.split(':').filter((g) => g !== '') : []);
  const leftGroups = groupsOf(left);
  const rightGroups = groupsOf(right);
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = [...leftGroups, ...Array<string>(right === undefined ? 0 : missing).fill('0'), ...rightGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  if (tailV4.length === 4) bytes.set(tailV4, 12);
  return { family: 'inet6', bytes };
}

export function formatIp(ip: ParsedIp): string {
  const b = ip.bytes;
  if (ip.family === 'inet') return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // RFC 5952: compress the longest run (≥ 2) of zero groups, the first one on a tie
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

/** The canonical text of an address (lower-case, compressed IPv6), or undefined if invalid. */
export function canonicalIp(text: string): string | undefined {
  const parsed = parseIp(text);
  return parsed && formatIp(parsed);
}

export interface ParsedPrefix extends ParsedIp {
  prefixLength: number;
}

/** Parses "address/length" (a length of one to three digits); undefined when either part is invalid. */
export function parsePrefix(text: string): ParsedPrefix | undefined {
  const slash = text.indexOf('/');
  const digits = text.length - slash - 1;
  if (slash === -1 || digits < 1 || digits > 3) return undefined;
  let prefixLength = 0;
  for (let i = slash + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) return undefined;
    prefixLength = prefixLength * 10 + (c - ZERO);
  }
  const ip = parseIp(text.slice(0, slash));
  if (!ip || prefixLength > ip.bytes.length * 8) return undefined;
  return { family: ip.family, bytes: ip.bytes, prefixLength };
}

/** parsePrefix, or a function answering as it does (rememberingParsePrefix). */
export type PrefixParser = (text: string) => ParsedPrefix | undefined;

/**
 * parsePrefix with each text's answer remembered. The helper judges, records and encodes every
 * address of a request: one of these per request parses each address once instead of three
 * times (bench/README.md, item 41), and is dropped with the request. The answers are shared
 * between their readers, who must not change them (nothing here does: networkOf copies).
 */
export function rememberingParsePrefix(): PrefixParser {
  const answers = new Map<string, ParsedPrefix>();
  return (text) => {
    const known = answers.get(text);
    if (known) return known;
    const parsed = parsePrefix(text);
    if (parsed) answers.set(text, parsed); // text that does not parse is rare: parsed again if asked again
    return parsed;
  };
}

/** Whether any bit after the prefix length is set: an address inside a network, not the network itself. */
export function hasHostBits(prefix: ParsedPrefix): boolean {
  return !hostBitsEqual(prefix, 0x00);
}

/** Whether every bit after the prefix length is set (an IPv4 subnet's broadcast address); false for /32 and /128. */
export function allHostBitsSet(prefix: ParsedPrefix): boolean {
  return prefix.prefixLength < prefix.bytes.length * 8 && hostBitsEqual(prefix, 0xff);
}

/** Whether the host bits of `prefix` all equal those of `fill` (0x00 or 0xff), compared in place. */
function hostBitsEqual(prefix: ParsedPrefix, fill: number): boolean {
  const bytes = prefix.bytes;
  const whole = prefix.prefixLength >> 3;
  if (whole >= bytes.length) return true;
  const mask = 0xff >> (prefix.prefixLength & 7); // the host bits of the byte the prefix ends in
  if ((bytes[whole]! & mask) !== (fill & mask)) return false;
  for (let i = whole + 1; i < bytes.length; i++) if (bytes[i] !== fill) return false;
  return true;
}

/** Canonical "address/length" text, keeping host bits (an interface address); `parse` reads it. */
export function canonicalPrefix(text: string, parse: PrefixParser = parsePrefix): string | undefined {
  const parsed = parse(text);
  return parsed && `${formatIp(parsed)}/${parsed.prefixLength}`;
}

/** The network of an address: host bits cleared. */
export function networkOf(ip: ParsedIp, prefixLength: number): ParsedIp {
  const bytes = Uint8Array.from(ip.bytes);
  const whole = prefixLength >> 3;
  if (whole < bytes.length) {
    // keep the prefix's bits of the byte it ends in, clear every byte after it
    bytes[whole]! &= (0xff00 >> (prefixLength & 7)) & 0xff;
    bytes.fill(0, whole + 1);
  }
  return { family: ip.family, bytes };
}

/** Canonical network text "10.4.0.0/24" of any "address/length". */
export function canonicalNetwork(text: string): string | undefined {
  const parsed = parsePrefix(text);
  return parsed && `${formatIp(networkOf(parsed, parsed.prefixLength))}/${parsed.prefixLength}`;
}

/** The first host of a subnet: where Azure and EC2 put the gateway (network address + 1). */
export function firstHost(subnet: string): string | undefined {
  const parsed = parsePrefix(subnet);
  if (!parsed) return undefined;
  const network = networkOf(parsed, parsed.prefixLength);
  const bytes = network.bytes;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = (bytes[i]! + 1) & 0xff;
    if (bytes[i] !== 0) break;
  }
  return formatIp(network);
}

/** Whether `ip` lies inside `prefix`. Both must be of the same family. */
export function prefixContains(prefix: ParsedPrefix, ip: ParsedIp): boolean {
  if (prefix.family !== ip.family) return false;
  // compared in place: the helper checks every address against a dozen reserved ranges
  const a = prefix.bytes;
  const b = ip.bytes;
  const whole = Math.min(prefix.prefixLength >> 3, a.length);
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = prefix.prefixLength & 7;
  if (bits === 0 || whole >= a.length) return true;
  const mask = (0xff00 >> bits) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** Host prefix length of a family: 32 or 128. */
export function hostLength(family: Family): number {
  return family === 'inet' ? 32 : 128;
}
