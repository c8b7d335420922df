// The policy fuzzer's view of a namespace: every address, route, next hop and rule as the text
// of its `ip -d` line (ticking lifetimes masked), with who owns it. The helper's objects carry
// protocol 201 (IFA_PROTO for addresses, read over netlink because this iproute2 does not
// print it); routes the kernel makes for an address belong to whoever owns that address; all
// else is another tool's ("foreign"), and must never change.
import { execFileSync } from 'node:child_process';
import { RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';
import { canonicalIp, formatIp, networkOf, parseIp, type Family } from '../../protocol/ip.js';

/** foreign: must stay byte-identical; helper: protocol 201 or made for a helper address; unowned: compared as part of something else, or made for an address that is gone. */
export type Owner = 'foreign' | 'helper' | 'unowned';

interface ObjectBase {
  /** the `ip -d` text, lifetimes and expiry masked, whitespace collapsed: compared byte for byte */
  text: string;
  /** what names the object across a change, to show what took its place */
  identity: string;
  owner: Owner;
}

export interface AddressObject extends ObjectBase {
  kind: 'address';
  link: string;
  ifindex: number;
  family: Family;
  ip: string;
  prefixLength: number;
  peer?: string;
  broadcast?: string;
  protocol?: number;
  secondary: boolean;
  dynamic: boolean;
  noPrefixRoute: boolean;
  tentative: boolean;
}

export interface Nexthop {
  gateway?: string;
  link?: string;
}

export interface RouteObject extends ObjectBase {
  kind: 'route';
  family: Family;
  type: string;
  table: number;
  /** canonical network text, 0.0.0.0/0 for default */
  destination: string;
  protocol: string;
  metric: number;
  source?: string;
  nexthops: Nexthop[];
}

/** One next hop of a route, compared on its own only where another tool appended it to a helper route. */
export interface NexthopObject extends ObjectBase {
  kind: 'nexthop';
  route: RouteObject;
  nexthop: Nexthop;
}

export interface RuleObject extends ObjectBase {
  kind: 'rule';
  family: Family;
  priority: number;
  table: number;
  from?: string;
  to?: string;
  suppressPrefixLength?: number;
  protocol: string;
  /** selects on more than from/to (iif, oif, not, fwmark, tos, uidrange, ports) */
  extraSelectors: boolean;
}

export type KernelObject = AddressObject | RouteObject | NexthopObject | RuleObject;

export interface LinkState {
  name: string;
  ifindex: number;
  mtu: number;
}

export interface Snapshot {
  objects: KernelObject[];
  links: LinkState[];
}

/** IFA_PROTO of each address, keyed by addressKey(); undefined where the kernel sent none. */
export type AddressProtocols = Map<string, number | undefined>;

export const addressKey = (ifindex: number, ip: string, prefixLength: number) => `${ifindex} ${canonicalIp(ip) ?? ip}/${prefixLength}`;

/** Facts only "another tool" knows: the next hops it appended to routes of the helper. */
export interface ForeignFacts {
  appendedNexthops: Set<string>;
}

const TABLE_NUMBERS: Record<string, number> = { main: 254, local: 255, default: 253 };
const tableNumber = (text: string) => TABLE_NUMBERS[text] ?? Number(text);

/** Masks what ticks (lifetimes, expiry) and collapses whitespace. */
const masked = (text: string) =>
  text
    .replace(/valid_lft \S+ preferred_lft \S+/g, '')
    .replace(/expires \S+/g, '')
    .replace(/\s+/g, ' ')
    .trim();

const valueAfter = (tokens: string[], key: string): string | undefined => {
  const at = tokens.indexOf(key);
  return at >= 0 ? tokens[at + 1] : undefined;
};

/** The canonical network text of an `ip` destination: "default", a host without length, or a prefix. */
function canonicalDestination(text: string, family: Family): string {
  if (text === 'default') return family === 'inet' ? '0.0.0.0/0' : '::/0';
  const [address, length] = text.split('/');
  const ip = parseIp(address!);
  if (!ip) return text;
  const prefixLength = length === undefined ? (family === 'inet' ? 32 : 128) : Number(length);
  return `${formatIp(networkOf(ip, prefixLength))}/${prefixLength}`;
}

function networkText(ip: string, prefixLength: number): string {
  const parsed = parseIp(ip);
  return parsed ? `${formatIp(networkOf(parsed, prefixLength))}/${prefixLength}` : `${ip}/${prefixLength}`;
}

/** The IPv4 subnet broadcast of an address, when its subnet has one (/30 and shorter). */
function subnetBroadcast(ip: string, prefixLength: number): string | undefined {
  const parsed = parseIp(ip);
  if (!parsed || parsed.family !== 'inet' || prefixLength > 30) return undefined;
  const value = ((parsed.bytes[0]! << 24) | (parsed.bytes[1]! << 16) | (parsed.bytes[2]! << 8) | parsed.bytes[3]!) >>> 0;
  const broadcast = (value | (0xffffffff >>> prefixLength)) >>> 0;
  return [broadcast >>> 24, (broadcast >>> 16) & 0xff, (broadcast >>> 8) & 0xff, broadcast & 0xff].join('.');
}

function parseAddressLine(line: string, protocols: AddressProtocols): AddressObject | undefined {
  const head = line.split('\\')[0]!;
  const tokens = head.trim().split(/\s+/);
  if (tokens.length < 4 || (tokens[2] !== 'inet' && tokens[2] !== 'inet6')) return undefined;
  const ifindex = Number(tokens[0]!.replace(':', ''));
  const link = tokens[1]!;
  const family: Family = tokens[2] === 'inet' ? 'inet' : 'inet6';
  const peer = valueAfter(tokens, 'peer');
  const [local, ownLength] = tokens[3]!.split('/');
  const prefixLength = Number((peer ?? tokens[3]!).split('/')[1] ?? ownLength ?? (family === 'inet' ? 32 : 128));
  const ip = canonicalIp(local!) ?? local!;
  const protocol = protocols.get(addressKey(ifindex, ip, prefixLength));
  const flags = new Set(tokens.slice(4));
  const object: AddressObject = {
    kind: 'address',
    // DAD ending drops "tentative" by itself: not a change anyone made
    text: `${masked(head).replace(/ tentative\b/, '')} proto ${protocol ?? 'none'}`,
    identity: `address ${link} ${ip}/${prefixLength}`,
    owner: protocol === RTPROT_CLOUD_NETWORK ? 'helper' : 'foreign',
    link,
    ifindex,
    family,
    ip,
    prefixLength,
    secondary: flags.has('secondary'),
    dynamic: flags.has('dynamic'),
    noPrefixRoute: flags.has('noprefixroute'),
    tentative: flags.has('tentative'),
  };
  if (protocol !== undefined) object.protocol = protocol;
  if (peer) object.peer = peer;
  const broadcast = valueAfter(tokens, 'brd');
  if (broadcast) object.broadcast = broadcast;
  return object;
}

/** One route of `ip -o route` output: its line, then one part per "nexthop" (the line is cut at each backslash). */
const routeBlock = (line: string) => line.split('\\').filter((part) => part.trim() !== '');

/** IPv6 routes always carry a preference, IPv4 routes never. */
const routeFamily = (line: string): Family => (/ pref \S+/.test(line) || line.split(/\s+/)[1]!.includes(':') ? 'inet6' : 'inet');

function parseNexthop(tokens: string[]): Nexthop {
  const nexthop: Nexthop = {};
  let via = valueAfter(tokens, 'via');
  // "via inet6 fe80::1" names the gateway's family first
  if (via === 'inet' || via === 'inet6') via = tokens[tokens.indexOf('via') + 2];
  if (via) nexthop.gateway = canonicalIp(via) ?? via;
  const link = valueAfter(tokens, 'dev');
  if (link) nexthop.link = link;
  return nexthop;
}

function parseRouteBlock(block: string[], family: Family): RouteObject {
  const tokens = block[0]!.trim().split(/\s+/);
  const type = tokens[0]!;
  const destination = canonicalDestination(tokens[1]!, family);
  const table = tableNumber(valueAfter(tokens, 'table') ?? 'main');
  const metric = Number(valueAfter(tokens, 'metric') ?? 0);
  const nexthopLines = block.slice(1).map((l) => l.trim().split(/\s+/));
  const route: RouteObject = {
    kind: 'route',
    text: block.map(masked).join(' | '),
    identity: `route ${family} table ${table} ${type} ${destination} metric ${metric}`,
    owner: 'unowned',
    family,
    type,
    table,
    destination,
    protocol: valueAfter(tokens, 'proto') ?? 'unspec',
    metric,
    nexthops: nexthopLines.length > 0 ? nexthopLines.map(parseNexthop) : [parseNexthop(tokens)],
  };
  const source = valueAfter(tokens, 'src');
  if (source) route.source = canonicalIp(source) ?? source;
  return route;
}

export const nexthopKey = (route: RouteObject, nexthop: Nexthop) =>
  `nexthop ${route.family} table ${route.table} ${route.destination} metric ${route.metric} via ${nexthop.gateway ?? '-'} dev ${nexthop.link ?? '-'}`;

function parseRuleLine(line: string, family: Family): RuleObject | undefined {
  const match = /^(\d+):\s+(.*)$/.exec(line.trim());
  if (!match) return undefined;
  const tokens = match[2]!.split(/\s+/);
  const known = new Set(['from', 'to', 'lookup', 'suppress_prefixlength', 'proto']);
  let extraSelectors = false;
  for (let i = 0; i < tokens.length; i++) {
    if (known.has(tokens[i]!)) i++;
    else extraSelectors = true;
  }
  const selector = (key: string) => {
    const value = valueAfter(tokens, key);
    return value === undefined || value === 'all' ? undefined : canonicalDestination(value, family);
  };
  const rule: RuleObject = {
    kind: 'rule',
    text: masked(line),
    identity: `rule ${family} ${masked(line).replace(/ proto \S+/, '')}`,
    owner: valueAfter(tokens, 'proto') === String(RTPROT_CLOUD_NETWORK) ? 'helper' : 'foreign',
    family,
    priority: Number(match[1]),
    table: tableNumber(valueAfter(tokens, 'lookup') ?? '0'),
    protocol: valueAfter(tokens, 'proto') ?? 'unspec',
    extraSelectors,
  };
  const from = selector('from');
  if (from) rule.from = from;
  const to = selector('to');
  if (to) rule.to = to;
  const suppress = valueAfter(tokens, 'suppress_prefixlength');
  if (suppress !== undefined) rule.suppressPrefixLength = Number(suppress);
  return rule;
}

/**
 * The addresses the kernel made `route` for: its local route (an IPv4 primary's with itself as
 * source, a secondary's with its primary), an IPv4 primary's subnet broadcast and prefix route,
 * an IPv6 prefix route, a peer route. Undefined for a route made for no address (IPv6 multicast).
 */
export function derivedFrom(route: RouteObject, addresses: AddressObject[]): AddressObject[] | undefined {
  const link = route.nexthops[0]?.link;
  const onLink = addresses.filter((a) => a.link === link && a.family === route.family);
  const [host] = route.destination.split('/');
  const primaries = onLink.filter((a) => !a.secondary);
  if (route.type === 'local') {
    const ownRoute = (a: AddressObject) => a.ip === host && (a.family === 'inet6' || (a.secondary ? route.source !== a.ip : route.source === a.ip));
    return onLink.filter((a) => ownRoute(a) || (!a.secondary && networkText(a.ip, a.prefixLength) === route.destination));
  }
  // a primary's broadcast and prefix routes have it as their source
  const sourced = primaries.filter((a) => route.source === undefined || route.source === a.ip);
  if (route.type === 'broadcast') return [...onLink.filter((a) => a.broadcast === host), ...sourced.filter((a) => a.broadcast !== host && subnetBroadcast(a.ip, a.prefixLength) === host)];
  if (route.type === 'unicast') {
    return sourced.filter((a) => (!a.noPrefixRoute && networkText(a.ip, a.prefixLength) === route.destination) || (a.peer !== undefined && canonicalDestination(a.peer, a.family) === route.destination));
  }
  return undefined;
}

/** Whose a route is that the kernel made for addresses: another tool's if any of them is; the kernel's own are foreign too. */
function derivedOwner(route: RouteObject, addresses: AddressObject[]): Owner {
  const sources = derivedFrom(route, addresses);
  if (sources === undefined || sources.some((a) => a.owner === 'foreign')) return 'foreign';
  return sources.length > 0 ? 'helper' : 'unowned';
}

function routeObjects(route: RouteObject, addresses: AddressObject[], facts: ForeignFacts): KernelObject[] {
  if (route.protocol === String(RTPROT_CLOUD_NETWORK)) route.owner = 'helper';
  else if (route.protocol === 'kernel') route.owner = derivedOwner(route, addresses);
  else route.owner = 'foreign';
  const nexthops: NexthopObject[] = route.nexthops
    .filter((n) => n.gateway !== undefined)
    .map((nexthop) => {
      const key = nexthopKey(route, nexthop);
      const appended = route.owner === 'helper' && facts.appendedNexthops.has(key);
      return { kind: 'nexthop', text: key, identity: key, owner: appended ? 'foreign' : 'unowned', route, nexthop };
    });
  return [route, ...nexthops];
}

function parseLinks(output: string): LinkState[] {
  return output
    .split('\n')
    .map((line) => /^(\d+): ([^:@\s]+)[^:]*:.* mtu (\d+)/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ ifindex: Number(m[1]), name: m[2]!, mtu: Number(m[3]) }));
}

const ipBatch = (ns: string, options: string[], commands: string[]) =>
  execFileSync('ip', ['-n', ns, ...options, '-batch', '-'], { input: commands.join('\n') + '\n', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/** The lines of `ip -d -o` addresses, routes of every table, rules and links: two processes, as each costs more than its dump. */
function dumpLines(ns: string): { addresses: string[]; routes: string[]; rules: { line: string; family: Family }[]; links: string[] } {
  const lines = ipBatch(ns, ['-d', '-o'], ['addr show', 'route show table all', 'rule show', 'link show']).split('\n').filter((l) => l.trim() !== '');
  const rules6 = ipBatch(ns, ['-d', '-o', '-6'], ['rule show']).split('\n').filter((l) => l.trim() !== '');
  const isAddress = (l: string) => /^\d+: \S+\s+inet6? /.test(l);
  const isLink = (l: string) => /^\d+: [^:\s]+: </.test(l);
  const isRule = (l: string) => /^\d+:\t/.test(l);
  return {
    addresses: lines.filter(isAddress),
    routes: lines.filter((l) => !isAddress(l) && !isLink(l) && !isRule(l)),
    rules: [...lines.filter(isRule).map((line) => ({ line, family: 'inet' as const })), ...rules6.map((line) => ({ line, family: 'inet6' as const }))],
    links: lines.filter(isLink),
  };
}

/** Reads the namespace with `ip -d` and sorts every object to its owner. */
export async function takeSnapshot(ns: string, readProtocols: () => Promise<AddressProtocols>, facts: ForeignFacts): Promise<Snapshot> {
  const protocols = await readProtocols();
  const dump = dumpLines(ns);
  const addresses = dump.addresses.map((line) => parseAddressLine(line, protocols)).filter((a): a is AddressObject => a !== undefined);
  const routes = dump.routes.map((line) => parseRouteBlock(routeBlock(line), routeFamily(line)));
  const rules = dump.rules.map(({ line, family }) => parseRuleLine(line, family)).filter((r): r is RuleObject => r !== undefined);
  const objects: KernelObject[] = [...addresses, ...routes.flatMap((r) => routeObjects(r, addresses, facts)), ...rules];
  return { objects, links: parseLinks(dump.links.join('\n')) };
}

/** A foreign object of `before` that `after` no longer holds as it was, and what holds its identity now. */
export interface ForeignChange {
  object: KernelObject;
  now: string[];
}

/** Every foreign object of `before` whose exact text `after` lacks (counted, so two identical objects need two). */
export function foreignChanges(before: Snapshot, after: Snapshot): ForeignChange[] {
  const remaining = new Map<string, number>();
  for (const o of after.objects) remaining.set(o.text, (remaining.get(o.text) ?? 0) + 1);
  const changes: ForeignChange[] = [];
  for (const object of before.objects) {
    if (object.owner !== 'foreign') continue;
    const left = remaining.get(object.text) ?? 0;
    if (left > 0) remaining.set(object.text, left - 1);
    else changes.push({ object, now: after.objects.filter((o) => o.identity === object.identity).map((o) => o.text) });
  }
  return changes;
}

export const foreignCount = (snapshot: Snapshot) => snapshot.objects.filter((o) => o.owner === 'foreign').length;

/** Whether a foreign address is still in duplicate address detection: its line changes when DAD ends. */
export const hasTentativeForeign = (snapshot: Snapshot) => snapshot.objects.some((o) => o.kind === 'address' && o.owner === 'foreign' && o.tentative && !o.text.includes('dadfailed'));
