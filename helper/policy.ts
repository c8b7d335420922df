// The helper's policy: which operations it will carry out, judged against the kernel's
// current state (kernel-picture.ts, an index of a read). A pure function: no I/O, so every rule
// is tested on plain data.
//
// The rules, in short (SECURITY.md has the reasoning):
// - links must exist, and are never loopback, never enslaved (bond port, Azure VF), never denied;
// - addresses are unicast with a sane prefix; routes live in the managed tables, or are `local`
//   routes for routed ranges in the local table; rules have managed priorities and select one
//   host or routed range (or are the `lookup main suppress_prefixlength 0` rule);
// - removal touches only objects cloud-network owns: routes and rules with its protocol
//   number, addresses with its IFA_PROTO or in its ledger, never an address with a lifetime.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { formatIp, parsePrefix, type ParsedPrefix, type PrefixParser } from '../protocol/ip.js';
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
import type { ObservedAddress, ObservedLink } from '../netlink/types.js';
import type { KernelPicture, RuleShape } from './kernel-picture.js';
import { checkDestination, checkHost, checkInterfaceAddress, checkRoutedRange } from './unicast.js';

export const MAIN_TABLE = 254;
export const LOCAL_TABLE = 255;

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
  /** carry it out; for a rule.add, the rule as the kernel will report it (applier.ts records it) */
  | { decision: 'allow'; rule?: RuleShape }
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

/** Canonical "address/length" text of an observed address. */
export function addressText(a: ObservedAddress): string {
  return `${a.address}/${a.prefixLength}`;
}

/** Whether the helper owns this kernel address: never when it has a lifetime; else IFA_PROTO or the ledger. */
export function ownsAddress(a: ObservedAddress, linkName: string, ledger: LedgerView): boolean {
  if (a.dynamic) return false;
  if (a.protocol === RTPROT_CLOUD_NETWORK) return true;
  // An address another tool stamped with its own protocol is theirs, whatever the ledger says.
  if (a.protocol !== undefined && a.protocol !== 0) return false;
  return ledger.has(linkName, addressText(a));
}

function checkAddressAdd(op: AddressAdd, state: KernelPicture, ledger: LedgerView, config: PolicyConfig, parse: PrefixParser): Verdict {
  const link = state.link(op.link);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  const address = checkInterfaceAddress(op.address, parse);
  if (!address.ok) return refuse(address.reason);
  const ip = formatIp(address.value);
  for (const a of state.addressesOf(link!.index, ip)) {
    if (ownsAddress(a, op.link, ledger)) continue;
    if (a.prefixLength === address.value.prefixLength) {
      return already(`${addressText(a)} is already on ${op.link}, configured by another tool${a.dynamic ? ' (DHCP/SLAAC, with a lifetime)' : ''}; left as it is`);
    }
    return refuse(`${ip} is already on ${op.link} as ${addressText(a)}, configured by another tool; cloud-network does not change it`);
  }
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
  const found = state.addressesOf(link.index, ip).find((a) => a.prefixLength === address.value.prefixLength);
  if (!found) return already(`${text} is not on ${op.link}`);
  if (found.dynamic) {
    return refuse(`${text} on ${op.link} has a lifetime (it came from DHCP or SLAAC); cloud-network never removes it`);
  }
  if (!ownsAddress(found, op.link, ledger)) {
    const by = found.protocol ? `protocol ${protocolName(found.protocol)}` : 'no cloud-network protocol tag and no ledger entry';
    return refuse(`${text} on ${op.link} was not created by cloud-network (${by}); it is left alone`);
  }
  return allow;
}

function checkRouteReplace(op: RouteReplace, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
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
  // Replacing would overwrite a route another tool (or the kernel, in the local table) made.
  const foreign = state.routesTo(op.table, destination.family, canonical).find((r) => r.protocol !== RTPROT_CLOUD_NETWORK);
  if (foreign) {
    return refuse(`table ${op.table} already has a ${foreign.type} route to ${canonical} from protocol ${protocolName(foreign.protocol)}; cloud-network does not replace it`);
  }
  return allow;
}

function checkRouteRemove(op: RouteRemove, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  if (op.table === LOCAL_TABLE) {
    if (op.type !== 'local') return refuse(`only local routes are removed from the local table (255); got a ${op.type} route to ${op.destination}`);
    const range = checkRoutedRange(op.destination, parse);
    if (!range.ok) return refuse(`local route: ${range.reason}`);
  } else if (!inRange(op.table, config.tables)) {
    return refuse(`table ${op.table} is outside the managed tables ${config.tables.first}–${config.tables.last} (and is not the local table)`);
  }
  const destination = checkDestination(op.destination, parse);
  if (!destination.ok) return refuse(destination.reason);
  const link = state.link(op.link);
  if (!link) return already(`there is no interface named ${op.link}, so no route through it`);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  const canonical = `${formatIp(destination.value)}/${destination.value.prefixLength}`;
  const matches = state.routesTo(op.table, destination.value.family, canonical).filter((r) => r.type === op.type && r.ifindex === link.index);
  if (matches.length === 0) return already(`there is no ${op.type} route to ${canonical} via ${op.link} in table ${op.table}`);
  const foreign = matches.find((r) => r.protocol !== RTPROT_CLOUD_NETWORK);
  if (foreign && !matches.some((r) => r.protocol === RTPROT_CLOUD_NETWORK)) {
    return refuse(`the route to ${canonical} via ${op.link} in table ${op.table} belongs to protocol ${protocolName(foreign.protocol)}, not cloud-network; it is left alone`);
  }
  return allow;
}

type RuleOp = RuleAdd | RuleRemove;

/** A range as the kernel reports a rule's selector: 10.0.0.5/32. */
const rangeText = (range: ParsedPrefix) => `${formatIp(range)}/${range.prefixLength}`;

/**
 * The rule `op` describes, with its selector canonical as the kernel reports it (10.0.0.5/32),
 * or why the helper does not accept a rule of that shape.
 */
function checkRuleShape(op: RuleOp, config: PolicyConfig, parse: PrefixParser): { problem: string } | { shape: RuleShape } {
  if (!inRange(op.priority, config.priorities)) {
    return { problem: `priority ${op.priority} is outside the managed priorities ${config.priorities.first}–${config.priorities.last}` };
  }
  // counted without an array: this runs for each of an apply's ~3,600 rules, under --jitless
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
  if (!inRange(op.table, config.tables)) {
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
 * A rule is added only when no rule of the same shape exists, of any protocol, as the kernel's
 * own duplicate check (NLM_F_EXCL) would answer: the helper adds rules without it (write.ts,
 * rulesCheckedAbsent). A rule that also selects on something else (iif, fwmark, …) is another rule.
 */
function checkRuleAdd(op: RuleAdd, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  const checked = checkRuleShape(op, config, parse);
  if ('problem' in checked) return refuse(checked.problem);
  const existing = state.rulesLike(checked.shape).find((rule) => !rule.otherSelectors);
  if (existing) return already(`the rule exists at priority ${op.priority}, protocol ${protocolName(existing.protocol)}`);
  return { decision: 'allow', rule: checked.shape };
}

function checkRuleRemove(op: RuleRemove, state: KernelPicture, config: PolicyConfig, parse: PrefixParser): Verdict {
  const checked = checkRuleShape(op, config, parse);
  if ('problem' in checked) return refuse(checked.problem);
  const matches = state.rulesLike(checked.shape);
  if (matches.length === 0) return already(`there is no such rule at priority ${op.priority}`);
  if (!matches.some((r) => r.protocol === RTPROT_CLOUD_NETWORK)) {
    return refuse(`the rule at priority ${op.priority} belongs to protocol ${protocolName(matches[0]!.protocol)}, not cloud-network; it is left alone`);
  }
  return allow;
}

function checkLinkSet(op: LinkSet, state: KernelPicture, config: PolicyConfig): Verdict {
  const link = state.link(op.link);
  const problem = linkProblem(link, op.link, state, config);
  if (problem) return refuse(problem);
  if (op.up === false) return refuse(`cloud-network never takes an interface down (${op.link})`);
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
      return checkRouteReplace(op, state, config, parse);
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

