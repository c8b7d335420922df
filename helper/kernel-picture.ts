// The kernel's state as the helper judges a request against it: the read, indexed by what an
// operation names (a link by name, an address on a link, a route's destination in a table, a
// rule's selector and priority), and kept current as the request's operations succeed.
//
// The policy used to scan the whole read for every operation, and to canonicalise each kernel
// rule's selector while doing so: judging the removal of one NIC's 448 rules at 2,048 IPs took
// 2.6 s under --jitless, all 3,584 of them 20 s (bench/README.md, item 28). Each lookup here is one
// map access.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import type { Family, KernelState, ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from '../netlink/types.js';

/** A rule's identity as the policy matches it (selectors canonical): what it selects, at which priority, into which table. */
export type RuleShape = Pick<ObservedRule, 'family' | 'priority' | 'table' | 'from' | 'to' | 'suppressPrefixLength'>;

/** The kernel reports an unset suppress_prefixlength as -1 (0xffffffff unsigned). */
function suppressOf(value: number | undefined): number | undefined {
  return value === undefined || value < 0 || value === 0xffffffff ? undefined : value;
}

function ruleKey(rule: RuleShape): string {
  return `${rule.family} ${rule.priority} ${rule.table} ${rule.from ?? ''} ${rule.to ?? ''} ${suppressOf(rule.suppressPrefixLength) ?? ''}`;
}

const addressKey = (ifindex: number, address: string) => `${ifindex} ${address}`;
const routeKey = (table: number, family: Family, destination: string) => `${table} ${family} ${destination}`;

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

export class KernelPicture {
  readonly links: ObservedLink[];
  private readonly linksByName = new Map<string, ObservedLink>();
  /** by link index and address text (no prefix length: one IP may be there with several) */
  private readonly addressesByIp = new Map<string, ObservedAddress[]>();
  /** by table, family and canonical destination */
  private readonly routesByDestination = new Map<string, ObservedRoute[]>();
  /** `lookup` rules by ruleKey; rules with other actions are never the policy's business */
  private readonly rulesByShape = new Map<string, ObservedRule[]>();

  constructor(state: KernelState) {
    this.links = state.links;
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

  /** Every address, for the ledger's checks. */
  *addresses(): Iterable<ObservedAddress> {
    for (const list of this.addressesByIp.values()) yield* list;
  }

  /** The routes to this destination (canonical CIDR) in the table, of any type, link or protocol. */
  routesTo(table: number, family: Family, destination: string): readonly ObservedRoute[] {
    return this.routesByDestination.get(routeKey(table, family, destination)) ?? [];
  }

  /** The `lookup` rules of this shape (selectors canonical), of any protocol. */
  rulesLike(shape: RuleShape): readonly ObservedRule[] {
    return this.rulesByShape.get(ruleKey(shape)) ?? [];
  }

  // What succeeded operations change, so that the rest of a request is judged against what the
  // kernel now holds (state-after.ts).

  addAddress(address: ObservedAddress): void {
    addTo(this.addressesByIp, addressKey(address.ifindex, address.address), address);
  }

  removeAddress(ifindex: number, address: string, prefixLength: number): void {
    keepIn(this.addressesByIp, addressKey(ifindex, address), (a) => a.prefixLength !== prefixLength);
  }

  addRoute(route: ObservedRoute): void {
    addTo(this.routesByDestination, routeKey(route.table, route.family, route.destination), route);
  }

  /** Removes the routes to the destination that pass `which`. */
  removeRoutes(table: number, family: Family, destination: string, which: (route: ObservedRoute) => boolean): void {
    keepIn(this.routesByDestination, routeKey(table, family, destination), (route) => !which(route));
  }

  addRule(rule: ObservedRule): void {
    if (rule.action === 'lookup') addTo(this.rulesByShape, ruleKey(rule), rule);
  }

  /** Removes one of our rules of this shape, as the kernel's RTM_DELRULE does. */
  removeOurRule(shape: RuleShape): void {
    const key = ruleKey(shape);
    const list = this.rulesByShape.get(key);
    const i = list?.findIndex((rule) => rule.protocol === RTPROT_CLOUD_NETWORK) ?? -1;
    if (i === -1) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.rulesByShape.delete(key);
  }
}
