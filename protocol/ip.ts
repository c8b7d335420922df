// IP address text: parsing, canonical form and prefix arithmetic, for both sides.
// node:net's isIP() validates but neither canonicalises IPv6 nor does prefix math.
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
 * then (docs/performance.md, "The helper under --jitless"). A part
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

/** A group of IPv6 text: one to four hex digits, of either case. */
function hexGroup(text: string): number | undefined {
  if (text.length === 0 || text.length > 4) return undefined;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const lower = c | 0x20; // A-F to a-f
    const digit = c >= ZERO && c <= NINE ? c - ZERO : lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
    if (digit === -1) return undefined;
    value = value * 16 + digit;
  }
  return value;
}

/**
 * The groups of one side of IPv6 text ('' for none) into `bytes` from group `at`; the side that
 * ends the address may end in a dotted quad, which fills two groups. The number of groups
 * written, or -1 when the text is invalid or would pass the 8th group.
 */
function writeGroups(side: string, bytes: Uint8Array, at: number, endsAddress: boolean): number {
  if (side === '') return 0;
  const groups = side.split(':');
  let written = 0;
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (endsAddress && i === groups.length - 1 && group.includes('.')) {
      const v4 = parseIPv4(group);
      if (!v4 || at + written + 2 > 8) return -1;
      bytes.set(v4, (at + written) * 2);
      return written + 2;
    }
    const value = hexGroup(group);
    if (value === undefined || at + written + 1 > 8) return -1;
    bytes[(at + written) * 2] = value >> 8;
    bytes[(at + written) * 2 + 1] = value & 0xff;
    written++;
  }
  return written;
}

/**
 * IPv6 text (RFC 4291 2.2): eight groups of one to four hex digits; at most one `::`, which
 * stands for one or more zero groups; a dotted quad for the last two groups. It accepts what
 * node:net's isIPv6 accepts but for a zone (`fe80::1%eth0`), which no address here may carry.
 * Written out rather than isIPv6, whose regular expression is compiled at its first use, in the
 * first plan of every agent: every kernel read holds IPv6 text.
 */
function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const bytes = new Uint8Array(16);
  const gap = text.indexOf('::');
  if (gap === -1) return writeGroups(text, bytes, 0, true) === 8 ? bytes : undefined;
  if (text.indexOf('::', gap + 1) !== -1) return undefined; // a second gap, or ':::'
  const head = text.slice(0, gap);
  const tail = text.slice(gap + 2);
  const tailBytes = new Uint8Array(16);
  const before = writeGroups(head, bytes, 0, false);
  const after = writeGroups(tail, tailBytes, 0, true);
  // the gap stands for at least one group
  if (before === -1 || after === -1 || before + after > 7) return undefined;
  bytes.set(tailBytes.subarray(0, after * 2), 16 - after * 2);
  return bytes;
}

export function parseIp(text: string): ParsedIp | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 'inet', bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 && { family: 'inet6', bytes: v6 };
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
 * address of a request: one of these per request parses each address once, not once per
 * reader, and is dropped with the request. The answers are shared
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
