// Reading the kernel's network configuration: one dump per object kind, every table, both families.
import type { KernelState, ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from './types.js';
import { RTM } from './messages.js';
import { decodeAddress } from './objects/address.js';
import { decodeLink } from './objects/link.js';
import { decodeRoute } from './objects/route.js';
import { decodeRule } from './objects/rule.js';
import type { RtnlRequester } from './wire.js';

// AF_UNSPEC in every header: the kernel then dumps all families
const LINK_REQUEST = () => [Buffer.alloc(16)];
const ADDRESS_REQUEST = () => [Buffer.alloc(8)];
const ROUTE_REQUEST = () => [Buffer.alloc(12)];
const RULE_REQUEST = () => [Buffer.alloc(12)];

function defined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

export async function readLinks(sock: RtnlRequester): Promise<ObservedLink[]> {
  const messages = await sock.dump(RTM.GETLINK, LINK_REQUEST());
  return messages.filter((m) => m.type === RTM.NEWLINK).map((m) => decodeLink(m.data));
}

export async function readAddresses(sock: RtnlRequester): Promise<ObservedAddress[]> {
  const messages = await sock.dump(RTM.GETADDR, ADDRESS_REQUEST());
  return messages.filter((m) => m.type === RTM.NEWADDR).map((m) => decodeAddress(m.data)).filter(defined);
}

/** Which routes a dump asks for; the kernel filters (strict dump checking, Linux 4.20+). */
export interface RouteFilter {
  /** only routes of this protocol (rtm_protocol) */
  protocol?: number;
  /** only routes of this table (rtm_table; tables above 255 are filtered here only) */
  table?: number;
}

/**
 * Routes of every table (main, local, and the numbered ones), IPv4 and IPv6, or only those the
 * filter asks for. The kernel filters, so a reader need not decode the local table's route of
 * every address; an older kernel ignores the filter, and the routes are filtered here as well.
 */
export async function readRoutes(sock: RtnlRequester, filter: RouteFilter = {}): Promise<ObservedRoute[]> {
  const request = ROUTE_REQUEST();
  if (filter.protocol !== undefined) request[0]!.writeUInt8(filter.protocol, 5); // rtm_protocol
  if (filter.table !== undefined && filter.table <= 255) request[0]!.writeUInt8(filter.table, 4); // rtm_table
  const messages = await sock.dump(RTM.GETROUTE, request);
  const routes = messages.filter((m) => m.type === RTM.NEWROUTE).map((m) => decodeRoute(m.data)).filter(defined);
  return routes.filter((route) => matchesFilter(route, filter));
}

function matchesFilter(route: ObservedRoute, filter: RouteFilter): boolean {
  return (filter.protocol === undefined || route.protocol === filter.protocol) && (filter.table === undefined || route.table === filter.table);
}

export async function readRules(sock: RtnlRequester): Promise<ObservedRule[]> {
  const messages = await sock.dump(RTM.GETRULE, RULE_REQUEST());
  return messages.filter((m) => m.type === RTM.NEWRULE).map((m) => decodeRule(m.data)).filter(defined);
}

/** The parts of the kernel state besides the links, which are always read. */
export type StatePart = 'addresses' | 'routes' | 'rules';
export const ALL_STATE_PARTS: ReadonlySet<StatePart> = new Set(['addresses', 'routes', 'rules']);

/**
 * The observed state: the links and the `parts` asked for (default all); a part not asked for
 * is an empty list, so ask for every part a decision looks at. `routeFilters`: the routes are
 * those of these dumps (a route that matches several is listed once); default every route.
 * The dumps are not one atomic snapshot: a change between two of them shows up in the next
 * read (the event watcher triggers one).
 */
export async function readKernelState(
  sock: RtnlRequester,
  parts: ReadonlySet<StatePart> = ALL_STATE_PARTS,
  routeFilters: readonly RouteFilter[] = [{}],
): Promise<KernelState> {
  const links = await readLinks(sock);
  const addresses = parts.has('addresses') ? await readAddresses(sock) : [];
  const routes: ObservedRoute[] = [];
  if (parts.has('routes')) {
    for (const [i, filter] of routeFilters.entries()) {
      const earlier = routeFilters.slice(0, i);
      for (const route of await readRoutes(sock, filter)) {
        if (!earlier.some((f) => matchesFilter(route, f))) routes.push(route);
      }
    }
  }
  const rules = parts.has('rules') ? await readRules(sock) : [];
  return { links, addresses, routes, rules };
}
