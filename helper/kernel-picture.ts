// The kernel's state as the helper judges a request against it: the read, indexed by what an
// operation names (a link by name, an address on a link, a route's destination in a table, a
// rule's selector and priority), and kept current as the request's operations are approved, so
// that each operation is judged against the state the earlier ones leave (state-after.ts).
// Each lookup is one map access: a request can hold thousands of operations, judged --jitless.
import { RTPROT_KERNEL } from '../protocol/constants.js';
import { sameAddress } from '../netlink/objects/address.js';
import { isOurRoute, routeKey } from '../netlink/objects/route.js';
import { forReachKeys, isOurRuleOfShape, reachKey, ruleKey, type RuleShape } from '../netlink/objects/rule.js';
import type { Family, KernelState, ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from '../netlink/types.js';

export type { RuleShape };

const addressKey = (ifindex: number, address: string) => `${ifindex} ${address}`;

/**
 * An IPv4 address's subnet on its link (of the peer, for a point-to-point address), as the kernel
 * groups primaries and secondaries. The text is canonical (decoded or formatted here), so the
 * four parts convert directly: this runs for every address of a read.
 */
function subnetKey(address: ObservedAddress): string | undefined {
  if (address.family !== 'inet') return undefined;
  const parts = (address.peer ?? address.address).split('.');
  const value = ((+parts[0]! << 24) | (+parts[1]! << 16) | (+parts[2]! << 8) | +parts[3]!) >>> 0;
  const mask = address.prefixLength === 0 ? 0 : (0xffffffff << (32 - address.prefixLength)) >>> 0;
  return `${address.ifindex} ${(value & mask) >>> 0}/${address.prefixLength}`;
}

function addTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Keeps the entries of `key` that pass `keep`; drops the key when none is left. */
function keepIn<T>(map: Map<string, T[]>, key: string, keep: (value: T) => boolean): void {
  const list = map.get(key);
  if (!list) return;
  const kept = list.filter(keep);
  if (kept.length === 0) map.delete(key);
  else map.set(key, kept);
}

/** Removes the first entry of `key` that passes `which`. */
function removeOne<T>(map: Map<string, T[]>, key: string, which: (value: T) => boolean): void {
  const list = map.get(key);
  const i = list?.findIndex(which) ?? -1;
  if (i === -1) return;
  list!.splice(i, 1);
  if (list!.length === 0) map.delete(key);
}

export interface PictureOptions {
  /**
   * The kernel stamps addresses with IFA_PROTO (Linux 5.18 and later): an untagged address then
   * cannot be the helper's, whatever its ledger says. Default true, the safe answer.
   */
  tagsAddresses?: boolean;
}

export class KernelPicture {
  readonly links: ObservedLink[];
  readonly tagsAddresses: boolean;
  private readonly linksByName = new Map<string, ObservedLink>();
  /** by link index and address text (no prefix length: one IP may be there with several) */
  private readonly addressesByIp = new Map<string, ObservedAddress[]>();
  /** by address text alone, on every link */
  private readonly addressesAnywhere = new Map<string, ObservedAddress[]>();
  /** IPv4 addresses by link and subnet (subnetKey) */
  private readonly addressesBySubnet = new Map<string, ObservedAddress[]>();
  /** by table, family and canonical destination */
  private readonly routesByDestination = new Map<string, ObservedRoute[]>();
  /** other tools' routes by their preferred source: removing that address would take them along */
  private readonly foreignRoutesBySource = new Map<string, ObservedRoute[]>();
  /** the gateways of other tools' routes */
  private readonly foreignGatewaySet = new Set<string>();
  /** other tools' IPv4 routes by each link they go through */
  private readonly foreignIpv4RoutesByLink = new Map<string, ObservedRoute[]>();
  /** how many IPv4 addresses each link holds */
  private readonly ipv4AddressCount = new Map<number, number>();
  /** `lookup` rules by ruleKey; rules with other actions are never the policy's business */
  private readonly rulesByShape = new Map<string, ObservedRule[]>();
  /** `lookup` rules by each selector key they answer to */
  private readonly rulesBySelector = new Map<string, ObservedRule[]>();

  constructor(state: KernelState, options: PictureOptions = {}) {
    this.links = state.links;
    this.tagsAddresses = options.tagsAddresses ?? true;
    for (const link of state.links) this.linksByName.set(link.name, link);
    for (const address of state.addresses) this.addAddress(address);
    for (const route of state.routes) this.addRoute(route);
    for (const rule of state.rules) this.addRule(rule);
  }

  link(name: string): ObservedLink | undefined {
    return this.linksByName.get(name);
  }

  linkByIndex(index: number): ObservedLink | undefined {
    return this.links.find((link) => link.index === index);
  }

  /** The addresses with this IP (canonical text) on the link, whatever their prefix length. */
  addressesOf(ifindex: number, address: string): readonly ObservedAddress[] {
    return this.addressesByIp.get(addressKey(ifindex, address)) ?? [];
  }

  /** The addresses with this IP (canonical text) on any link. */
  addressesWithIp(address: string): readonly ObservedAddress[] {
    return this.addressesAnywhere.get(address) ?? [];
  }

  /** The IPv4 addresses of the link that share `address`'s subnet and prefix length, itself included. */
  sameSubnet(address: ObservedAddress): readonly ObservedAddress[] {
    const key = subnetKey(address);
    return key === undefined ? [] : (this.addressesBySubnet.get(key) ?? []);
  }

  /** Every address. */
  *addresses(): Iterable<ObservedAddress> {
    for (const list of this.addressesByIp.values()) yield* list;
  }

  /** The routes to this destination (canonical CIDR) in the table, of any type, link or protocol. */
  routesTo(table: number, family: Family, destination: string): readonly ObservedRoute[] {
    return this.routesByDestination.get(routeKey(table, family, destination)) ?? [];
  }

  /** Other tools' routes (any table) with this preferred source address. */
  foreignRoutesFrom(source: string): readonly ObservedRoute[] {
    return this.foreignRoutesBySource.get(source) ?? [];
  }

  /** Other tools' IPv4 routes (any table) through the link: the kernel flushes them when the link's last IPv4 address goes. */
  foreignIpv4RoutesThrough(ifindex: number): readonly ObservedRoute[] {
    return this.foreignIpv4RoutesByLink.get(String(ifindex)) ?? [];
  }

  /** How many IPv4 addresses the link holds. */
  ipv4Addresses(ifindex: number): number {
    return this.ipv4AddressCount.get(ifindex) ?? 0;
  }

  /** Whether a route of another tool uses this address as its gateway. */
  isForeignGateway(address: string): boolean {
    return this.foreignGatewaySet.has(address);
  }

  /** The gateways of other tools' routes. */
  foreignGateways(): Iterable<string> {
    return this.foreignGatewaySet;
  }

  /** The `lookup` rules of this shape (selectors canonical), of any protocol. */
  rulesLike(shape: RuleShape): readonly ObservedRule[] {
    return this.rulesByShape.get(ruleKey(shape)) ?? [];
  }

  /**
   * The `lookup` rules a delete of `shape` could reach, of any protocol: same family, priority,
   * table and the one selector the delete names, whatever else they select on.
   */
  rulesReachedBy(shape: RuleShape): readonly ObservedRule[] {
    const key = reachKey(shape);
    return key === undefined ? [] : (this.rulesBySelector.get(key) ?? []);
  }

  // What approved operations change, so that the rest of a request is judged against what the
  // kernel will then hold (state-after.ts).

  addAddress(address: ObservedAddress): void {
    addTo(this.addressesByIp, addressKey(address.ifindex, address.address), address);
    addTo(this.addressesAnywhere, address.address, address);
    const subnet = subnetKey(address);
    if (subnet !== undefined) addTo(this.addressesBySubnet, subnet, address);
    if (address.family === 'inet') this.ipv4AddressCount.set(address.ifindex, this.ipv4Addresses(address.ifindex) + 1);
  }

  /** Removes this very address (link, IP, prefix length and peer). */
  removeAddress(address: ObservedAddress): void {
    const same = (a: ObservedAddress) => a === address || sameAddress(a, address);
    const before = this.addressesOf(address.ifindex, address.address).length;
    removeOne(this.addressesByIp, addressKey(address.ifindex, address.address), same);
    const removed = before !== this.addressesOf(address.ifindex, address.address).length;
    if (removed && address.family === 'inet') this.ipv4AddressCount.set(address.ifindex, this.ipv4Addresses(address.ifindex) - 1);
    removeOne(this.addressesAnywhere, address.address, same);
    const subnet = subnetKey(address);
    if (subnet !== undefined) removeOne(this.addressesBySubnet, subnet, same);
  }

  addRoute(route: ObservedRoute): void {
    addTo(this.routesByDestination, routeKey(route.table, route.family, route.destination), route);
    if (isOurRoute(route)) return;
    // the kernel's own routes (local, broadcast and prefix routes) go with the address they were made for
    if (route.protocol === RTPROT_KERNEL) return;
    if (route.source !== undefined) addTo(this.foreignRoutesBySource, route.source, route);
    if (route.family === 'inet') {
      if (route.ifindex !== undefined) addTo(this.foreignIpv4RoutesByLink, String(route.ifindex), route);
      for (const hop of route.nexthops ?? []) if (hop.ifindex !== route.ifindex) addTo(this.foreignIpv4RoutesByLink, String(hop.ifindex), route);
    }
    if (route.gateway !== undefined) this.foreignGatewaySet.add(route.gateway);
    for (const hop of route.nexthops ?? []) if (hop.gateway !== undefined) this.foreignGatewaySet.add(hop.gateway);
  }

  /** Removes the routes to the destination that pass `which` (only ever cloud-network's own). */
  removeRoutes(table: number, family: Family, destination: string, which: (route: ObservedRoute) => boolean): void {
    keepIn(this.routesByDestination, routeKey(table, family, destination), (route) => !which(route));
  }

  addRule(rule: ObservedRule): void {
    if (rule.action !== 'lookup') return;
    addTo(this.rulesByShape, ruleKey(rule), rule);
    forReachKeys(rule, (key) => addTo(this.rulesBySelector, key, rule));
  }

  /** Removes one of our plain rules of this shape, as the kernel's RTM_DELRULE with our protocol does. */
  removeOurRule(shape: RuleShape): void {
    const ours = this.rulesLike(shape).find((rule) => isOurRuleOfShape(rule, shape));
    if (!ours) return;
    removeOne(this.rulesByShape, ruleKey(shape), (rule) => rule === ours);
    forReachKeys(ours, (key) => removeOne(this.rulesBySelector, key, (rule) => rule === ours));
  }
}
