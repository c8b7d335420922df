// The helper's policy: which operations it will carry out, judged against the kernel's state
// as the earlier operations of the request leave it (kernel-picture.ts, an index of a read kept
// current by state-after.ts). A pure function: no I/O, so every rule is tested on plain data.
//
// The rules, in short (SECURITY.md has the reasoning):
// - links must exist, and are never loopback, never enslaved (bond port, Azure VF), never denied;
// - addresses are unicast with a sane prefix and noprefixroute, never another tool's IP or
//   gateway; routes live in the managed tables, or are `local` routes for routed ranges that
//   cover nothing of another tool's; rules have managed priorities and select one address of
//   this machine or one locally delivered range (or are `lookup main suppress_prefixlength 0`);
// - removal touches only objects cloud-network owns, names them exactly (write.ts), and is
//   refused where the kernel would take another tool's object along.
import { LEGACY_PRIORITY_RANGE, LEGACY_TABLE_RANGE, LOCAL_TABLE, MAIN_TABLE, MTU_RANGE, RTPROT_CLOUD_NETWORK, RTPROT_KERNEL } from '../protocol/constants.js';
import { formatIp, hostLength, networkOf, parseIp, parsePrefix, prefixContains, type ParsedPrefix, type PrefixParser } from '../protocol/ip.js';
import type {
  AddressAdd,
  AddressRemove,
  LinkSet,
  Operation,
  RouteRemove,
  RouteReplace,
  RuleAdd,
  RuleRemove,
} from '../protocol/operations.js';
import type { ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from '../netlink/types.js';
import { addressText, isOurAddress } from '../netlink/objects/address.js';
import { isOurRoute } from '../netlink/objects/route.js';
import { isOurRuleOfShape } from '../netlink/objects/rule.js';
import type { KernelPicture, RuleShape } from './kernel-picture.js';
import { checkDestination, checkHost, checkInterfaceAddress, checkRoutedRange } from './unicast.js';


export interface NumberRange {
  first: number;
  last: number;
}

export interface PolicyConfig {
  tables: NumberRange;
  priorities: NumberRange;
  deniedLinks: ReadonlySet<string>;
}

/** The helper's record of the addresses it created, for kernels without IFA_PROTO. */
export interface LedgerView {
  has(link: string, address: string): boolean;
}

export type Verdict =
  /**
   * carry it out; for a rule, the rule as the kernel reports it; for an address or route
   * removal, the very object to remove (write.ts names it exactly in the delete)
   */
  | { decision: 'allow'; rule?: RuleShape; target?: ObservedAddress | ObservedRoute }
  /** do nothing and say so: the kernel already is as asked (e.g. removing what is absent) */
  | { decision: 'already'; reason: string }
  | { decision: 'refuse'; reason: string };

const allow: Verdict = { decision: 'allow' };
const refuse = (reason: string): Verdict => ({ decision: 'refuse', reason });
const already = (reason: string): Verdict => ({ decision: 'already', reason });

const PROTOCOL_NAMES: Record<number, string> = {
  0: 'unspecified',
  1: 'redirect',
  2: 'kernel',
  3: 'boot',
  4: 'static',
  16: 'dhcp',
  [RTPROT_CLOUD_NETWORK]: 'cloud-network',
};

export function protocolName(protocol: number | undefined): string {
  if (protocol === undefined) return 'none';
  return PROTOCOL_NAMES[protocol] ? `${PROTOCOL_NAMES[protocol]} (${protocol})` : String(protocol);
}

const inRange = (value: number, range: NumberRange) => value >= range.first && value <= range.last;

/**
 * Where the helper may remove its own (protocol 201) routes and rules: the managed range, and
 * the range cloud-network 0.1 used by default, so that an upgraded VM's old objects can go.
 */
const removableTable = (table: number, config: PolicyConfig) => inRange(table, config.tables) || inRange(table, LEGACY_TABLE_RANGE);
const removablePriority = (priority: number, config: PolicyConfig) => inRange(priority, config.priorities) || inRange(priority, LEGACY_PRIORITY_RANGE);

/** Why a link may not be touched, or undefined. */
function linkProblem(link: ObservedLink | undefined, name: string, state: KernelPicture, config: PolicyConfig): string | undefined {
  if (!link) return `there is no interface named ${name}`;
  if (link.loopback || name === 'lo') return `${name} is the loopback interface; cloud-network never changes it`;
  if (link.master !== undefined) {
    const master = state.linkByIndex(link.master);
    return `${name} is enslaved to ${master?.name ?? `interface #${link.master}`} (a bond, bridge or accelerated-networking VF); configure its master instead`;
  }
  if (config.deniedLinks.has(name)) return `${name} is on the helper's deny list (--deny-link)`;
  return undefined;
}

/** Whether the helper owns this kernel address (netlink/objects/address.ts says how), asking its ledger. */
export function ownsAddress(a: ObservedAddress, linkName: string, ledger: LedgerView, state: KernelPicture): boolean {
  return isOurAddress(a, { tagsAddresses: state.tagsAddresses, listed: ledger.has(linkName, addressText(a)) });
}

/** Whether `a` belongs to another tool (or the kernel), with the name of its link. */
function isForeignAddress(a: ObservedAddress, state: KernelPicture, ledger: LedgerView): boolean {
  const link = state.linkByIndex(a.ifindex);
  return !link || !ownsAddress(a, link.name, ledger, state);
}

/** The same-subnet IPv4 secondaries of a primary address, which the kernel deletes with it (promote_secondaries off). */
function secondariesOf(primary: ObservedAddress, state: KernelPicture): readonly ObservedAddress[] {
  if (primary.family !== 'inet' || primary.secondary) return [];
  return state.sameSubnet(primary).filter((a) => a.secondary);
}

function checkAddressAdd(op: AddressAdd, state: KernelPicture, ledger: LedgerView, config: PolicyConfig, parse: PrefixParser): Verdict {
  const link = state.link(op.link);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  const address = checkInterfaceAddress(op.address, parse);
  if (!address.ok) return refuse(address.reason);
  // without it the kernel would add a route to the subnet in main, which the helper never changes
  if (!op.noPrefixRoute) return refuse(`${op.address}: cloud-network adds addresses only with noprefixroute (a prefix route would go into the main table)`);
  const ip = formatIp(address.value);
  for (const a of state.addressesOf(link!.index, ip)) {
    if (ownsAddress(a, op.link, ledger, state)) continue;
    if (a.prefixLength === address.value.prefixLength && a.peer === undefined) {
      return already(`${addressText(a)} is already on ${op.link}, configured by another tool${a.dynamic ? ' (DHCP/SLAAC, with a lifetime)' : ''}; left as it is`);
    }
    return refuse(`${ip} is already on ${op.link} as ${addressText(a)}${a.peer ? ` peer ${a.peer}` : ''}, configured by another tool; cloud-network does not change it`);
  }
  const elsewhere = state.addressesWithIp(ip).find((a) => a.ifindex !== link!.index && isForeignAddress(a, state, ledger));
  if (elsewhere) {
    return refuse(`${ip} is already on ${state.linkByIndex(elsewhere.ifindex)?.name ?? `interface #${elsewhere.ifindex}`}, configured by another tool; cloud-network does not add it a second time`);
  }
  // the address would make the gateway local to this host, cutting off whatever routes through it
  if (state.isForeignGateway(ip)) return refuse(`${ip} is the gateway of a route another tool made; cloud-network never takes it as an address`);
  return allow;
}

function checkAddressRemove(op: AddressRemove, state: KernelPicture, ledger: LedgerView, config: PolicyConfig, parse: PrefixParser): Verdict {
  const link = state.link(op.link);
  if (!link) return already(`there is no interface named ${op.link}, so no address on it`);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  const address = checkInterfaceAddress(op.address, parse);
  if (!address.ok) return refuse(address.reason);
  const ip = formatIp(address.value);
  const text = `${ip}/${address.value.prefixLength}`;
  // the delete names the local address, the prefix length and the address itself as IFA_ADDRESS,
  // so the kernel matches only this address, never a point-to-point one with a peer
  const found = state.addressesOf(link.index, ip).find((a) => a.prefixLength === address.value.prefixLength && a.peer === undefined);
  if (!found) return already(`${text} is not on ${op.link}`);
  if (found.dynamic) {
    return refuse(`${text} on ${op.link} has a lifetime (it came from DHCP or SLAAC); cloud-network never removes it`);
  }
  if (!ownsAddress(found, op.link, ledger, state)) {
    const by = found.protocol ? `protocol ${protocolName(found.protocol)}` : state.tagsAddresses ? 'no cloud-network protocol tag' : 'no cloud-network protocol tag and no ledger entry';
    return refuse(`${text} on ${op.link} was not created by cloud-network (${by}); it is left alone`);
  }
  const foreignSecondary = secondariesOf(found, state).find((a) => isForeignAddress(a, state, ledger));
  if (foreignSecondary) {
    return refuse(`${text} is the primary address of its subnet on ${op.link}, and removing it would take ${addressText(foreignSecondary)}, configured by another tool, along; it is left alone`);
  }
  // without an IPv4 address the kernel takes IPv4 off the link and flushes every IPv4 route through it
  const remaining = found.family === 'inet' ? state.ipv4Addresses(link.index) - 1 - secondariesOf(found, state).length : 1;
  const through = remaining === 0 ? state.foreignIpv4RoutesThrough(link.index)[0] : undefined;
  if (through) {
    return refuse(`${text} is the last IPv4 address of ${op.link}, and without one the kernel removes every IPv4 route through ${op.link}, among them ${through.destination} (table ${through.table}) of protocol ${protocolName(through.protocol)}; it is left alone`);
  }
  // the kernel changes the routes that prefer an address once no address holds its IP (IPv4), or at once (IPv6)
  const lastHolder = found.family === 'inet6' || state.addressesWithIp(ip).length === 1;
  const dependent = lastHolder ? state.foreignRoutesFrom(ip)[0] : undefined;
  if (dependent) {
    return refuse(`${text} is the preferred source of another tool's route to ${dependent.destination} (table ${dependent.table}), which the kernel would change with it; it is left alone`);
  }
  if (found.family === 'inet6' && !found.noPrefixRoute) {
    // the kernel removes the address's prefix route from main with it, whoever made that route
    const network = `${formatIp(networkOf(address.value, address.value.prefixLength))}/${address.value.prefixLength}`;
    const prefixRoute = state.routesTo(MAIN_TABLE, 'inet6', network).find((r) => r.protocol !== RTPROT_KERNEL && r.ifindex === link.index);
    if (prefixRoute) return refuse(`${text} was added without noprefixroute, and removing it would take the route to ${network} that protocol ${protocolName(prefixRoute.protocol)} made along; it is left alone`);
  }
  return { decision: 'allow', target: found };
}

// Other tools' addresses, found once per picture: approved operations add and remove only the helper's own.
const foreignAddressesOf = new WeakMap<KernelPicture, ObservedAddress[]>();

function foreignAddresses(state: KernelPicture, ledger: LedgerView): ObservedAddress[] {
  let found = foreignAddressesOf.get(state);
  if (!found) {
    found = [...state.addresses()].filter((a) => isForeignAddress(a, state, ledger));
    foreignAddressesOf.set(state, found);
  }
  return found;
}

/** Why a local route to `range` would capture what another tool relies on, or undefined. */
function localRouteProblem(range: ParsedPrefix, canonical: string, state: KernelPicture, ledger: LedgerView): string | undefined {
  for (const a of foreignAddresses(state, ledger)) {
    if (a.family !== range.family || !prefixContains(range, parseIp(a.address)!)) continue;
    return `a local route to ${canonical} would cover ${addressText(a)}, configured by another tool${a.dynamic ? ' (DHCP/SLAAC)' : ''}`;
  }
  for (const gateway of state.foreignGateways()) {
    const ip = parseIp(gateway)!;
    if (prefixContains(range, ip)) return `a local route to ${canonical} would cover ${gateway}, the gateway of a route another tool made`;
  }
  return undefined;
}

function checkRouteReplace(op: RouteReplace, state: KernelPicture, ledger: LedgerView, config: PolicyConfig, parse: PrefixParser): Verdict {
  const link = state.link(op.link);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  let destination;
  if (op.table === LOCAL_TABLE) {
    if (op.type !== 'local') return refuse(`only routes of type local go into the local table (255); got a ${op.type} route to ${op.destination}`);
    if (op.scope !== 'host') return refuse(`a local route to ${op.destination} must have scope host, not ${op.scope}`);
    if (op.gateway !== undefined) return refuse(`a local route to ${op.destination} cannot have a gateway`);
    if (op.source !== undefined) return refuse(`a local route to ${op.destination} cannot carry a preferred source`);
    const range = checkRoutedRange(op.destination, parse);
    if (!range.ok) return refuse(`local route: ${range.reason}`);
    destination = range.value;
    const captured = localRouteProblem(destination, `${formatIp(destination)}/${destination.prefixLength}`, state, ledger);
    if (captured) return refuse(captured);
  } else {
    if (!inRange(op.table, config.tables)) {
      return refuse(`table ${op.table} is outside the managed tables ${config.tables.first}–${config.tables.last} (and is not the local table)`);
    }
    if (op.type !== 'unicast') return refuse(`only unicast routes go into managed tables; local routes belong in the local table (255)`);
    if (op.scope === 'host') return refuse(`a unicast route to ${op.destination} cannot have scope host`);
    const checked = checkDestination(op.destination, parse);
    if (!checked.ok) return refuse(checked.reason);
    destination = checked.value;
    if (op.gateway !== undefined) {
      const gateway = checkHost(op.gateway, 'gateway');
      if (!gateway.ok) return refuse(gateway.reason);
      if (gateway.value.family !== destination.family) return refuse(`gateway ${op.gateway} is not of the same family as ${op.destination}`);
      if (op.scope !== 'universe') return refuse(`a route via gateway ${op.gateway} must have scope universe, not ${op.scope}`);
    }
    if (op.source !== undefined) {
      const source = checkHost(op.source, 'source');
      if (!source.ok) return refuse(source.reason);
      if (source.value.family !== destination.family) return refuse(`source ${op.source} is not of the same family as ${op.destination}`);
    }
  }
  const canonical = `${formatIp(destination)}/${destination.prefixLength}`;
  // A replace takes the place of the first route to the destination of the same metric, whoever
  // made it: only a destination where every route is cloud-network's own may be replaced.
  for (const route of state.routesTo(op.table, destination.family, canonical)) {
    if (route.nexthops !== undefined) {
      return refuse(`table ${op.table} has a multipath route to ${canonical} with next hops another tool added; cloud-network does not replace it`);
    }
    if (route.protocol !== RTPROT_CLOUD_NETWORK) {
      return refuse(`table ${op.table} already has a ${route.type} route to ${canonical} from protocol ${protocolName(route.protocol)}; cloud-network does not replace it`);
    }
  }
  return allow;
}

function checkRouteRemove(op: RouteRemove, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  if (op.table === LOCAL_TABLE) {
    if (op.type !== 'local') return refuse(`only local routes are removed from the local table (255); got a ${op.type} route to ${op.destination}`);
    const range = checkRoutedRange(op.destination, parse);
    if (!range.ok) return refuse(`local route: ${range.reason}`);
  } else if (!removableTable(op.table, config)) {
    return refuse(`table ${op.table} is outside the managed tables ${config.tables.first}–${config.tables.last} and the former ${LEGACY_TABLE_RANGE.first}–${LEGACY_TABLE_RANGE.last} (and is not the local table)`);
  }
  const destination = checkDestination(op.destination, parse);
  if (!destination.ok) return refuse(destination.reason);
  const link = state.link(op.link);
  if (!link) return already(`there is no interface named ${op.link}, so no route through it`);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  const canonical = `${formatIp(destination.value)}/${destination.value.prefixLength}`;
  const through = (r: ObservedRoute) => r.ifindex === link.index || (r.nexthops?.some((hop) => hop.ifindex === link.index) ?? false);
  const matches = state.routesTo(op.table, destination.value.family, canonical).filter((r) => r.type === op.type && through(r));
  if (matches.length === 0) return already(`there is no ${op.type} route to ${canonical} via ${op.link} in table ${op.table}`);
  // the delete names this route's protocol, metric, scope, gateway and source (write.ts): the kernel removes only it
  const target = matches.find(isOurRoute);
  if (target) return { decision: 'allow', target };
  if (matches.some((r) => r.nexthops !== undefined)) {
    return refuse(`the route to ${canonical} via ${op.link} in table ${op.table} is a multipath route with next hops another tool added; it is left alone`);
  }
  return refuse(`the route to ${canonical} via ${op.link} in table ${op.table} belongs to protocol ${protocolName(matches[0]!.protocol)}, not cloud-network; it is left alone`);
}

type RuleOp = RuleAdd | RuleRemove;

/** A range as the kernel reports a rule's selector: 10.0.0.5/32. */
const rangeText = (range: ParsedPrefix) => `${formatIp(range)}/${range.prefixLength}`;

/**
 * The rule `op` describes, with its selector canonical as the kernel reports it (10.0.0.5/32),
 * or why the helper does not accept a rule of that shape.
 */
function checkRuleShape(op: RuleOp, config: PolicyConfig, parse: PrefixParser): { problem: string } | { shape: RuleShape } {
  const removal = op.kind === 'rule.remove';
  if (removal ? !removablePriority(op.priority, config) : !inRange(op.priority, config.priorities)) {
    const former = removal ? ` and the former ${LEGACY_PRIORITY_RANGE.first}–${LEGACY_PRIORITY_RANGE.last}` : '';
    return { problem: `priority ${op.priority} is outside the managed priorities ${config.priorities.first}–${config.priorities.last}${former}` };
  }
  // counted without an array: this runs for every rule of an apply, under --jitless
  const selectors = (op.from !== undefined ? 1 : 0) + (op.to !== undefined ? 1 : 0) + (op.suppressPrefixLength !== undefined ? 1 : 0);
  if (selectors !== 1) return { problem: `a rule needs exactly one of from, to or suppressPrefixLength (got ${selectors})` };
  const shape: RuleShape = { family: op.family, priority: op.priority, table: op.table, from: undefined, to: undefined, suppressPrefixLength: op.suppressPrefixLength };
  if (op.suppressPrefixLength !== undefined) {
    if (op.suppressPrefixLength !== 0 || op.table !== MAIN_TABLE) {
      return { problem: `the only suppress_prefixlength rule accepted is "lookup main suppress_prefixlength 0" (table 254, 0); got table ${op.table}, ${op.suppressPrefixLength}` };
    }
    return { shape };
  }
  const selector = (op.from ?? op.to)!;
  const range = checkRoutedRange(selector, parse);
  if (!range.ok) return { problem: `rule ${op.from !== undefined ? 'from' : 'to'}: ${range.reason}` };
  if (range.value.family !== op.family) return { problem: `rule selector ${selector} is not of family ${op.family}` };
  if (removal ? !removableTable(op.table, config) : !inRange(op.table, config.tables)) {
    return { problem: `a from/to rule may only point at a managed table (${config.tables.first}–${config.tables.last}), not table ${op.table}` };
  }
  if (op.from !== undefined) shape.from = rangeText(range.value);
  else shape.to = rangeText(range.value);
  return { shape };
}

/** The rule `op` describes, selector canonical where it parses (state-after.ts; the tests). */
export function ruleShape(op: RuleOp, parse: PrefixParser = parsePrefix): RuleShape {
  const canonical = (text: string | undefined) => {
    if (text === undefined) return undefined;
    const range = checkRoutedRange(text, parse);
    return range.ok ? rangeText(range.value) : text;
  };
  return { family: op.family, priority: op.priority, table: op.table, from: canonical(op.from), to: canonical(op.to), suppressPrefixLength: op.suppressPrefixLength };
}

/**
 * Why a rule's selector is not something this machine receives, or undefined: a host selector
 * must be an address present on a link, a wider one a range the helper delivers locally (a local
 * route of its own), so that no rule can steer traffic to or from arbitrary addresses.
 */
function selectorProblem(shape: RuleShape, state: KernelPicture): string | undefined {
  const selector = shape.from ?? shape.to;
  if (selector === undefined) return undefined;
  const slash = selector.indexOf('/');
  const ip = selector.slice(0, slash);
  if (Number(selector.slice(slash + 1)) === hostLength(shape.family) && state.addressesWithIp(ip).length > 0) return undefined;
  if (state.routesTo(LOCAL_TABLE, shape.family, selector).some((r) => isOurRoute(r) && r.type === 'local')) return undefined;
  return `rule ${shape.from !== undefined ? 'from' : 'to'} ${selector}: neither an address on this machine nor a range cloud-network delivers locally`;
}

/**
 * A rule is added only when no rule of the same shape exists, of any protocol, as the kernel's
 * own duplicate check (NLM_F_EXCL) would answer: the helper adds rules without it (write.ts,
 * rulesCheckedAbsent). A rule that also selects on something else (iif, fwmark, …) is another rule.
 */
function checkRuleAdd(op: RuleAdd, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  const checked = checkRuleShape(op, config, parse);
  if ('problem' in checked) return refuse(checked.problem);
  const existing = state.rulesLike(checked.shape).find((rule) => !rule.otherSelectors);
  if (existing) return already(`the rule exists at priority ${op.priority}, protocol ${protocolName(existing.protocol)}`);
  const problem = selectorProblem(checked.shape, state);
  if (problem) return refuse(problem);
  return { decision: 'allow', rule: checked.shape };
}

/**
 * A rule is removed with our protocol and its one selector (write.ts); the kernel compares only
 * the fields a delete sets and removes the first rule that matches. So every rule of our protocol
 * the delete reaches must be exactly ours, or the kernel might take another in its place.
 */
function checkRuleRemove(op: RuleRemove, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  const checked = checkRuleShape(op, config, parse);
  if ('problem' in checked) return refuse(checked.problem);
  const shape = checked.shape;
  const reached = state.rulesReachedBy(shape).filter((rule) => rule.protocol === RTPROT_CLOUD_NETWORK);
  if (reached.length === 0) {
    const foreign = state.rulesLike(shape).find((rule) => !rule.otherSelectors);
    if (foreign) return refuse(`the rule at priority ${op.priority} belongs to protocol ${protocolName(foreign.protocol)}, not cloud-network; it is left alone`);
    return already(`there is no such rule at priority ${op.priority}`);
  }
  if (reached.some((rule) => !isOurRuleOfShape(rule, shape))) {
    return refuse(`a rule of the cloud-network protocol at priority ${op.priority} selects on more than this one (${describeSelector(shape)}); the kernel could remove it instead, so both are left alone`);
  }
  return { decision: 'allow', rule: shape };
}

function describeSelector(shape: RuleShape): string {
  if (shape.from !== undefined) return `from ${shape.from}`;
  if (shape.to !== undefined) return `to ${shape.to}`;
  return `suppress_prefixlength ${shape.suppressPrefixLength}`;
}

/** The kernel drops IPv6 from a link whose MTU falls below this (RFC 8200's minimum), addresses and routes included. */
export const IPV6_MIN_MTU = MTU_RANGE.min;

function checkLinkSet(op: LinkSet, state: KernelPicture, config: PolicyConfig): Verdict {
  const link = state.link(op.link);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  if (op.up === false) return refuse(`cloud-network never takes an interface down (${op.link})`);
  if (op.mtu !== undefined && op.mtu < IPV6_MIN_MTU) {
    return refuse(`MTU ${op.mtu} on ${op.link} is below ${IPV6_MIN_MTU}: the kernel would remove every IPv6 address and route of the link`);
  }
  if (op.up === undefined && op.mtu === undefined) return already(`nothing to change on ${op.link}`);
  return allow;
}

/**
 * Decides one operation against the kernel's state. `parse` reads its addresses and ranges: the
 * applier's remembers them for the rest of the request (rememberingParsePrefix).
 */
export function checkOperation(op: Operation, state: KernelPicture, ledger: LedgerView, config: PolicyConfig, parse: PrefixParser = parsePrefix): Verdict {
  switch (op.kind) {
    case 'address.add':
      return checkAddressAdd(op, state, ledger, config, parse);
    case 'address.remove':
      return checkAddressRemove(op, state, ledger, config, parse);
    case 'route.replace':
      return checkRouteReplace(op, state, ledger, config, parse);
    case 'route.remove':
      return checkRouteRemove(op, state, config, parse);
    case 'rule.add':
      return checkRuleAdd(op, state, config, parse);
    case 'rule.remove':
      return checkRuleRemove(op, state, config, parse);
    case 'link.set':
      return checkLinkSet(op, state, config);
  }
}
