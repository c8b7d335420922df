// A route as cloud-network sees it: its identity (table, family, destination), what it reads of
// one (rtmsg and its attributes, next hops included), the requests that set and remove one, and
// whether it is cloud-network's own.
import { LOCAL_TABLE, MAIN_TABLE, RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';
import type { RouteRemove, RouteReplace } from '../../protocol/operations.js';
import { networkOf, type Family, type ParsedIp, type ParsedPrefix } from '../../protocol/ip.js';
import { indexAttributes, indexedBytes, indexedIp, indexedU32, RequestBuilder } from '../attributes.js';
import { familyName, familyNumber } from '../families.js';

export type RouteType = 'unicast' | 'local' | 'broadcast' | 'multicast' | 'unreachable' | 'blackhole' | 'prohibit' | 'throw' | 'other';

export interface NextHop {
  ifindex: number;
  gateway?: string;
}

export interface ObservedRoute {
  table: number;
  family: Family;
  /** CIDR, e.g. 0.0.0.0/0 or 10.4.0.0/24 */
  destination: string;
  gateway?: string;
  ifindex?: number;
  /** rtm_protocol: RTPROT_KERNEL (2), RTPROT_BOOT (3), RTPROT_DHCP (16), ours (201), ... */
  protocol: number;
  type: RouteType;
  scope: Scope;
  source?: string;
  metric?: number;
  /** rtm_tos when not 0 (cloud-network's routes have none) */
  tos?: number;
  /** the next hops of a multipath route (RTA_MULTIPATH), whose gateway and ifindex are then here only */
  nexthops?: NextHop[];
}

export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, MULTIPATH: 9, TABLE: 15 } as const;
export const RT_TABLE_UNSPEC = 0;
const RTMSG_BYTES = 12;

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

/** The metric the kernel gives a route added without one. */
export function defaultMetric(family: Family): number {
  return family === 'inet' ? 0 : 1024;
}

/** A route's place: where the kernel keeps the routes to one destination of one table. */
export function routeKey(table: number, family: Family, destination: string): string {
  return `${table} ${family} ${destination}`;
}

/** Whether a route is cloud-network's own: its protocol, and a single next hop (a merged multipath route has another tool's). */
export function isOurRoute(route: ObservedRoute): boolean {
  return route.protocol === RTPROT_CLOUD_NETWORK && route.nexthops === undefined;
}

/** A route as cloud-network sets it: canonical texts, the link by index. */
export interface WantedRoute {
  table: number;
  destination: string;
  type: 'unicast' | 'local';
  scope: 'universe' | 'link' | 'host';
  ifindex: number;
  gateway?: string;
  source?: string;
}

/**
 * Whether the kernel holds `wanted` already, as cloud-network would set it: its own, at the
 * default metric (a replace sets that one), through the same link, gateway and source.
 */
export function isRouteAsWanted(route: ObservedRoute, wanted: WantedRoute): boolean {
  return (
    isOurRoute(route) &&
    route.table === wanted.table &&
    route.destination === wanted.destination &&
    route.type === wanted.type &&
    // IPv6 has no route scopes: the kernel reports every IPv6 route as universe
    (route.family === 'inet6' || route.scope === wanted.scope) &&
    route.ifindex === wanted.ifindex &&
    route.gateway === wanted.gateway &&
    route.source === wanted.source &&
    (route.metric ?? 0) === defaultMetric(route.family)
  );
}

export function decodeRoute(data: Buffer): ObservedRoute | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, RTMSG_BYTES);
  const dstLength = data.readUInt8(1);
  const destination = `${indexedIp(data, family, RTA.DST) ?? (family === 'inet' ? '0.0.0.0' : '::')}/${dstLength}`;
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
    const entry = data.subarray(offset, offset + length);
    indexAttributes(entry, 8);
    const gateway = indexedIp(entry, family, RTA.GATEWAY);
    if (gateway) hop.gateway = gateway;
    hops.push(hop);
    offset += (length + 3) & ~3;
  }
  return hops;
}

/** The fields of a route request besides its destination. */
export interface RouteFields {
  table: number;
  protocol: number;
  scope: number;
  type: number;
  ifindex: number;
  tos?: number;
  metric?: number;
  gateway?: ParsedIp;
  source?: ParsedIp;
}

/**
 * An rtmsg (family, destination length, TOS, table, protocol, scope, type), RTA_TABLE, RTA_DST,
 * RTA_OIF, and RTA_PRIORITY, RTA_GATEWAY and RTA_PREFSRC when given. A delete names every field
 * the kernel compares that it knows, or the kernel takes the first route that matches the rest.
 */
export function routePayload(destination: ParsedPrefix, fields: RouteFields): Uint8Array[] {
  const builder = new RequestBuilder(RTMSG_BYTES)
    .headerU8(0, familyNumber(destination.family))
    .headerU8(1, destination.prefixLength)
    .headerU8(3, fields.tos ?? 0)
    // like iproute2: tables above 255 only fit in RTA_TABLE
    .headerU8(4, fields.table <= 255 ? fields.table : RT_TABLE_UNSPEC)
    .headerU8(5, fields.protocol)
    .headerU8(6, fields.scope)
    .headerU8(7, fields.type)
    .u32(RTA.TABLE, fields.table);
  if (destination.prefixLength > 0) builder.bytes(RTA.DST, networkOf(destination, destination.prefixLength).bytes);
  builder.u32(RTA.OIF, fields.ifindex);
  if (fields.metric !== undefined) builder.u32(RTA.PRIORITY, fields.metric);
  if (fields.gateway) builder.bytes(RTA.GATEWAY, fields.gateway.bytes);
  if (fields.source) builder.bytes(RTA.PREFSRC, fields.source.bytes);
  return builder.build();
}

const isDefault = (destination: string) => destination === '0.0.0.0/0' || destination === '::/0';

/** How a route operation reads (addressWording says where each is used). */
const tableName = (table: number) => (table === LOCAL_TABLE ? 'local' : table === MAIN_TABLE ? 'main' : String(table));

export const routeWording = {
  command: (op: RouteReplace | RouteRemove) => {
    const v6 = op.destination.includes(':');
    const what = `${op.type === 'local' ? 'local ' : ''}${isDefault(op.destination) ? 'default' : op.destination}`;
    const where = `dev ${op.link} table ${tableName(op.table)} proto ${RTPROT_CLOUD_NETWORK}`;
    if (op.kind === 'route.remove') return `ip ${v6 ? '-6 ' : ''}route del ${what} ${where}`;
    // the kernel has no scopes for IPv6 routes; iproute2 names universe "global"
    const scope = v6 ? '' : ` scope ${op.scope === 'universe' ? 'global' : op.scope}`;
    return `ip ${v6 ? '-6 ' : ''}route replace ${what}${op.gateway ? ` via ${op.gateway}` : ''} ${where}${scope}${op.source ? ` src ${op.source}` : ''}`;
  },
  applied: (op: RouteReplace | RouteRemove, on: string, ifindex: string) => {
    if (op.kind === 'route.remove') return `Successfully removed route destination='${op.destination}'${on} table='${op.table}'`;
    if (isDefault(op.destination)) return `Successfully added default gateway='${op.gateway}' for link='${op.link}' ifindex='${ifindex}' table='${op.table}'`;
    return `Successfully added ${op.type === 'local' ? 'local ' : ''}route destination='${op.destination}'${on} table='${op.table}'`;
  },
  attempt: (op: RouteReplace | RouteRemove) =>
    op.kind === 'route.replace'
      ? `setting ${op.type} route ${op.destination}${op.gateway ? ` via ${op.gateway}` : ''} dev ${op.link} in table ${op.table}`
      : `removing ${op.type} route ${op.destination} dev ${op.link} from table ${op.table}`,
};
