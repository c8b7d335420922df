// The planner: a pure function from (metadata model, config, observed kernel state) to the
// ordered operations that bring the kernel to the desired layout. No I/O here: a plan is
// data that can be printed (--dry-run), logged, tested and sent to the helper. What it
// remembers between plans to be quick (canonical address texts, the last desired state) lives
// in a Planner, which the reconciler owns; a plan is the same from a fresh Planner.
//
// Layout (README "Network layout"):
// - every metadata IP is on its NIC; the primary NIC's primary IP (DHCP's) is never touched;
//   added addresses carry no main-table prefix route (the subnet route lives in the NIC's
//   table), so two NICs in one subnet do not fight over main;
// - a NIC that needs policy routing (every non-primary NIC, and a Supplementary= interface)
//   gets table RouteTableBase + NIC index with its subnet route and `default via gateway`;
// - per IP of those NICs: `to IP lookup T` (priority 30100) and `from IP lookup T` (30200),
//   after `lookup main suppress_prefixlength 0` (30000), so more specific routes in main
//   (docker, CNI) keep winning;
// - routed ranges (GCP alias ranges and forwarded IPs, EC2 prefix delegations) are local
//   routes in the local table, and from-rules on policy-routed NICs;
// - GCP: /32 addresses and a host route to the gateway (GCP's own guidance), MTU from metadata;
// - a link another tool manages, and a NIC whose table another tool uses, is left alone: nothing
//   is added there, and what cloud-network itself had configured there is taken back; a routed
//   range another tool delivers is left to it (Neighbours; README "Living with other tools").
import type { Operation, RouteReplace, RuleAdd } from '../../protocol/operations.js';
import { LOCAL_TABLE, MAIN_TABLE, RULE_PRIORITY } from '../../protocol/constants.js';
import {
  canonicalIp as parseCanonicalIp,
  canonicalNetwork as parseCanonicalNetwork,
  canonicalPrefix as parseCanonicalPrefix,
  hostLength,
} from '../../protocol/ip.js';
import { addressText, isOurAddress } from '../../netlink/objects/address.js';
import { isOurRoute, isRouteAsWanted, routeKey, type WantedRoute } from '../../netlink/objects/route.js';
import { isOurRule, ruleKey } from '../../netlink/objects/rule.js';
import type { Family, KernelState, ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from '../../netlink/types.js';
import type { MetadataModel, Nic } from '../metadata/model.js';

const CANONICAL_CACHE_LIMIT = 100_000;
function memoised(canonical: (text: string) => string | undefined): (text: string) => string | undefined {
  const cache = new Map<string, string | undefined>();
  return (text) => {
    const known = cache.get(text);
    if (known !== undefined || cache.has(text)) return known;
    if (cache.size >= CANONICAL_CACHE_LIMIT) cache.clear();
    const value = canonical(text);
    cache.set(text, value);
    return value;
  };
}

/**
 * Canonical forms of address texts. Every refresh plans against the same texts, and parsing
 * them would be most of a no-change refresh's CPU: a Planner remembers their canonical forms
 * (docs/performance.md, "The no-change refresh").
 */
class CanonicalForms {
  readonly ip = memoised(parseCanonicalIp);
  readonly network = memoised(parseCanonicalNetwork);
  readonly prefix = memoised(parseCanonicalPrefix);
}

export interface PlannerConfig {
  routeTableBase: number;
  /** interface names whose IPs all get policy rules, the primary IP included */
  supplementary: string[];
}

/**
 * What other network tools hold, as the planner needs it (agent/coexist/ finds it; the planner
 * knows no tool): links, tables and routed ranges cloud-network leaves to them, each with the
 * tool and why. Kept as the same object while unchanged, so a plan can reuse its desired state.
 */
export interface Neighbours {
  /** link name → who manages it */
  links: ReadonlyMap<string, LeftAlone>;
  /** table → who holds objects in it */
  tables: ReadonlyMap<number, LeftAlone>;
  /** routed range (canonical CIDR) → who delivers it */
  ranges: ReadonlyMap<string, LeftAlone>;
  /** every routed range is delivered by this tool, when one does them all */
  allRanges?: LeftAlone;
}

export interface LeftAlone {
  tool: string;
  why: string;
}

export const NO_NEIGHBOURS: Neighbours = { links: new Map(), tables: new Map(), ranges: new Map() };

/** What the planner decided for one metadata NIC. */
export interface NicPlan {
  mac: string;
  /** the matching kernel link, or undefined when none has this MAC (yet) */
  link?: { name: string; index: number };
  /** route table when the NIC is policy-routed */
  table?: number;
  /** the addresses that should be on the link, "ip/len" canonical */
  addresses: string[];
  /** why nothing could be done for this NIC, when that is the case */
  problem?: string;
  /** the tool the NIC is left to, and why: cloud-network configures nothing on it */
  leftAlone?: LeftAlone;
  /** routed ranges of the NIC another tool delivers */
  rangesLeftAlone?: string[];
}

export interface Plan {
  operations: Operation[];
  nics: NicPlan[];
}

/** An address the helper's ledger says it created (for kernels without IFA_PROTO). */
export interface OwnedAddress {
  link: string;
  address: string;
}

interface DesiredAddress {
  link: string;
  ifindex: number;
  address: string; // canonical ip
  prefixLength: number;
}

/** Finds the kernel link of a metadata NIC: same MAC, not loopback, not enslaved (Azure's VF). */
export function linkForNic(nic: Nic, links: ObservedLink[]): ObservedLink | undefined {
  return links
    .filter((link) => !link.loopback && link.master === undefined && link.mac === nic.mac)
    .sort((a, b) => a.index - b.index)[0];
}

function familyOf(address: string): Family {
  return address.includes(':') ? 'inet6' : 'inet';
}

/** The key of a route the planner wants: netlink/objects/route.ts's, of its canonical destination. */
function wantedRouteKey(c: CanonicalForms, op: RouteReplace): string {
  const destination = c.network(op.destination) ?? op.destination;
  return routeKey(op.table, familyOf(destination), destination);
}

/** The key of a rule the planner wants: netlink/objects/rule.ts's, of its canonical selectors. */
function wantedRuleKey(c: CanonicalForms, rule: RuleAdd): string {
  return ruleKey({ ...rule, from: rule.from && c.network(rule.from), to: rule.to && c.network(rule.to) });
}

/** Whether the planner may propose removing an address: ours by IFA_PROTO, or listed in the helper's ledger. */
function isOwnedAddress(address: ObservedAddress, linkName: string | undefined, owned: Set<string>): boolean {
  // the helper has answered the ledger for its kernel: whatever it lists is untagged and its own
  const listed = linkName !== undefined && owned.has(`${linkName}|${addressText(address)}`);
  return isOurAddress(address, { tagsAddresses: false, listed });
}

/** What the metadata asks for, given the links its NICs matched: the kernel's other state aside. */
interface Desired {
  nics: NicPlan[];
  addresses: DesiredAddress[];
  routes: Map<string, { op: RouteReplace; wanted: WantedRoute }>;
  rules: Map<string, RuleAdd>;
  /** the rules in the order they are added: the suppress rule, then the others by priority */
  sortedRules: [string, RuleAdd][];
}

/** What a Planner remembers between plans. */
interface PlannerMemory {
  readonly canonical: CanonicalForms;
  /**
   * Every refresh and repair plans the same model object with the same config and links: the
   * desired state of the last plan is kept, and taken again while those are the same (its keys,
   * already hashed, make the comparisons cheaper too).
   */
  lastDesired?: { model: MetadataModel; config: PlannerConfig; neighbours: Neighbours; links: string; desired: Desired };
}

function desiredFor(
  memory: PlannerMemory,
  model: MetadataModel,
  config: PlannerConfig,
  neighbours: Neighbours,
  sortedNics: Nic[],
  nicLinks: (ObservedLink | undefined)[],
): Desired {
  const links = nicLinks.map((link) => (link ? `${link.index} ${link.name}` : '')).join('|');
  const last = memory.lastDesired;
  if (last && last.model === model && last.config === config && last.neighbours === neighbours && last.links === links) return last.desired;
  const desired = computeDesired(memory.canonical, config, neighbours, sortedNics, nicLinks);
  memory.lastDesired = { model, config, neighbours, links, desired };
  return desired;
}

/** The tool a NIC is left to, if any: its link is another tool's, or the table it would get holds another tool's objects. */
function leftAloneBy(neighbours: Neighbours, link: ObservedLink, table: number | undefined): LeftAlone | undefined {
  const byLink = neighbours.links.get(link.name);
  if (byLink) return byLink;
  const byTable = table === undefined ? undefined : neighbours.tables.get(table);
  return byTable && { tool: byTable.tool, why: `its table ${table} ${byTable.why}; cloud-network uses no table another tool holds` };
}

function computeDesired(c: CanonicalForms, config: PlannerConfig, neighbours: Neighbours, sortedNics: Nic[], nicLinks: (ObservedLink | undefined)[]): Desired {
  const supplementary = new Set(config.supplementary);
  const nics: NicPlan[] = [];
  const desiredAddresses: DesiredAddress[] = [];
  const desiredRoutes = new Map<string, { op: RouteReplace; wanted: WantedRoute }>();
  const desiredRules = new Map<string, RuleAdd>();
  const ruleFamilies = new Set<Family>();
  const addRule = (rule: RuleAdd, key = wantedRuleKey(c, rule)) => {
    desiredRules.set(key, rule);
    ruleFamilies.add(rule.family);
  };
  const addRoute = (op: RouteReplace, ifindex: number) => {
    // the op's texts are canonical already: the planner writes them from canonical forms
    const wanted: WantedRoute = { table: op.table, destination: op.destination, type: op.type, scope: op.scope, ifindex };
    if (op.gateway !== undefined) wanted.gateway = op.gateway;
    if (op.source !== undefined) wanted.source = op.source;
    desiredRoutes.set(wantedRouteKey(c, op), { op, wanted });
  };

  sortedNics.forEach((nic, i) => {
    const link = nicLinks[i];
    if (!link) {
      nics.push({ mac: nic.mac, addresses: [], problem: `no network interface with MAC ${nic.mac} (not attached yet?)` });
      return;
    }
    const policyRouted = !nic.primary || supplementary.has(link.name);
    const table = config.routeTableBase + nic.index;
    const nicPlan: NicPlan = { mac: nic.mac, link: { name: link.name, index: link.index }, addresses: [] };
    const leftAlone = leftAloneBy(neighbours, link, policyRouted ? table : undefined);
    if (leftAlone) {
      nics.push({ ...nicPlan, leftAlone });
      return;
    }
    if (policyRouted) nicPlan.table = table;
    nics.push(nicPlan);

    // Addresses: every IPv4 but the DHCP one, every IPv6.
    const ruleAddresses: { address: string; family: Family }[] = [];
    for (const ip of nic.ipv4) {
      const address = c.ip(ip.address)!;
      const prefixLength = nic.hostAddresses ? 32 : ip.prefixLength;
      nicPlan.addresses.push(`${address}/${prefixLength}`);
      if (policyRouted) ruleAddresses.push({ address, family: 'inet' });
      if (nic.primary && ip.primary) continue; // DHCP's address: never replaced, re-created or removed
      desiredAddresses.push({ link: link.name, ifindex: link.index, address, prefixLength });
    }
    for (const ip of nic.ipv6) {
      const address = c.ip(ip.address)!;
      nicPlan.addresses.push(`${address}/${ip.prefixLength}`);
      desiredAddresses.push({ link: link.name, ifindex: link.index, address, prefixLength: ip.prefixLength });
      if (policyRouted && nic.gateway6) ruleAddresses.push({ address, family: 'inet6' });
    }

    // Routed ranges are delivered locally; on a policy-routed NIC replies leave through it.
    for (const range of nic.routedRanges) {
      const destination = c.network(range)!;
      if (neighbours.allRanges || neighbours.ranges.has(destination)) {
        (nicPlan.rangesLeftAlone ??= []).push(destination);
        continue;
      }
      addRoute(
        { kind: 'route.replace', table: LOCAL_TABLE, destination, link: link.name, type: 'local', scope: 'host' },
        link.index,
      );
      if (policyRouted) {
        addRule({ kind: 'rule.add', priority: RULE_PRIORITY.from, table, family: familyOf(destination), from: destination });
      }
    }

    if (!policyRouted) return;

    // The NIC's own table.
    const gateway = c.ip(nic.gateway)!;
    if (nic.hostAddresses) {
      addRoute(
        { kind: 'route.replace', table, destination: `${gateway}/32`, link: link.name, type: 'unicast', scope: 'link' },
        link.index,
      );
    } else {
      const subnet = c.network(`${nic.subnet.address}/${nic.subnet.prefixLength}`)!;
      addRoute(
        { kind: 'route.replace', table, destination: subnet, link: link.name, type: 'unicast', scope: 'link' },
        link.index,
      );
    }
    addRoute(
      { kind: 'route.replace', table, destination: '0.0.0.0/0', link: link.name, gateway, type: 'unicast', scope: 'universe' },
      link.index,
    );
    if (nic.gateway6 && nic.ipv6.length > 0) {
      addRoute(
        {
          kind: 'route.replace',
          table,
          destination: '::/0',
          link: link.name,
          gateway: c.ip(nic.gateway6)!,
          type: 'unicast',
          scope: 'universe',
        },
        link.index,
      );
    }

    for (const { address, family } of ruleAddresses) {
      // the address is canonical, and so is its host prefix: its rules' keys need no parsing
      const host = `${address}/${hostLength(family)}`;
      addRule({ kind: 'rule.add', priority: RULE_PRIORITY.to, table, family, to: host }, ruleKey({ family, priority: RULE_PRIORITY.to, table, to: host }));
      addRule({ kind: 'rule.add', priority: RULE_PRIORITY.from, table, family, from: host }, ruleKey({ family, priority: RULE_PRIORITY.from, table, from: host }));
    }
  });

  // The suppress rule, per family that has policy rules.
  for (const family of ['inet', 'inet6'] as const) {
    if (ruleFamilies.has(family)) {
      addRule({ kind: 'rule.add', priority: RULE_PRIORITY.suppressMain, table: MAIN_TABLE, family, suppressPrefixLength: 0 });
    }
  }

  // Added highest priority number first (from, to, then the suppress rule). The kernel keeps its
  // rules in a list ordered by priority and walks it on every insertion up to the first rule with
  // a higher number: in ascending order each from rule would walk past every to rule and every
  // from rule before it; in descending order it stops at the first to rule (docs/performance.md,
  // "Rule insertion order"). Until the apply ends, the order does not matter to traffic: the
  // rules select only secondary IPs, which nothing uses before they are there, and the suppress
  // rule lets main's more specific routes win, which is main's behaviour without any rule.
  const sortedRules = [...desiredRules.entries()].sort(([, a], [, b]) => b.priority - a.priority);
  return { nics, addresses: desiredAddresses, routes: desiredRoutes, rules: desiredRules, sortedRules };
}

/**
 * Plans, remembering between plans what makes the next one quick (PlannerMemory). The model and
 * the config are never changed once made (providers and config loading make new ones), so an
 * object seen again asks for the same. The reconciler owns one; its plans are those of plan().
 */
export class Planner {
  private readonly memory: PlannerMemory = { canonical: new CanonicalForms() };

  /**
   * Computes the plan. `owned` lists addresses the helper's ledger holds, for kernels that do
   * not keep IFA_PROTO; addresses with our IFA_PROTO are recognised without it.
   */
  plan(model: MetadataModel, config: PlannerConfig, observed: KernelState, owned: OwnedAddress[] = [], neighbours: Neighbours = NO_NEIGHBOURS): Plan {
    return planWith(this.memory, model, config, observed, owned, neighbours);
  }
}

/** One plan from a fresh Planner, which remembers nothing: for a single plan (--dry-run, --cleanup). */
export function plan(model: MetadataModel, config: PlannerConfig, observed: KernelState, owned: OwnedAddress[] = [], neighbours: Neighbours = NO_NEIGHBOURS): Plan {
  return new Planner().plan(model, config, observed, owned, neighbours);
}

function planWith(
  memory: PlannerMemory,
  model: MetadataModel,
  config: PlannerConfig,
  observed: KernelState,
  owned: OwnedAddress[],
  neighbours: Neighbours,
): Plan {
  const c = memory.canonical;
  const linksByIndex = new Map(observed.links.map((l) => [l.index, l]));
  const ownedSet = new Set(owned.map((o) => `${o.link}|${c.prefix(o.address) ?? o.address}`));

  const linkOps: Operation[] = [];
  const addressAdds: Operation[] = [];
  const routeOps: Operation[] = [];
  const ruleAdds: Operation[] = [];

  const sortedNics = [...model.nics].sort((a, b) => a.index - b.index);
  const nicLinks = sortedNics.map((nic) => linkForNic(nic, observed.links));
  sortedNics.forEach((nic, i) => {
    const link = nicLinks[i];
    if (!link || neighbours.links.has(link.name)) return;
    if (!link.up) linkOps.push({ kind: 'link.set', link: link.name, up: true });
    if (nic.mtu !== undefined && nic.mtu !== link.mtu) linkOps.push({ kind: 'link.set', link: link.name, mtu: nic.mtu });
  });
  const { nics, addresses: desiredAddresses, routes: desiredRoutes, rules: desiredRules, sortedRules } = desiredFor(memory, model, config, neighbours, sortedNics, nicLinks);

  // --- compare with the kernel -------------------------------------------------------------

  const observedAddresses = new Map<string, ObservedAddress>();
  for (const a of observed.addresses) observedAddresses.set(`${a.ifindex}|${c.ip(a.address) ?? a.address}`, a);

  const wantedAddressKeys = new Set<string>();
  for (const want of desiredAddresses) {
    const key = `${want.ifindex}|${want.address}`;
    wantedAddressKeys.add(key);
    const have = observedAddresses.get(key);
    const text = `${want.address}/${want.prefixLength}`;
    if (!have) {
      addressAdds.push({ kind: 'address.add', link: want.link, address: text, noPrefixRoute: true });
    } else if (have.prefixLength !== want.prefixLength && isOwnedAddress(have, want.link, ownedSet)) {
      // ours with the wrong prefix (the subnet was resized): replace it
      addressAdds.push({ kind: 'address.remove', link: want.link, address: `${have.address}/${have.prefixLength}` });
      addressAdds.push({ kind: 'address.add', link: want.link, address: text, noPrefixRoute: true });
    }
    // present and not ours (configured by DHCP or by hand): leave it as it is
  }

  // our routes in the kernel, by netlink/objects/route.ts's key: another tool's never count as ours
  const ourRoutes = new Map<string, ObservedRoute[]>();
  for (const r of observed.routes) {
    if (r.table === MAIN_TABLE || !isOurRoute(r)) continue;
    const key = routeKey(r.table, r.family, r.destination);
    const list = ourRoutes.get(key);
    if (list) list.push(r);
    else ourRoutes.set(key, [r]);
  }
  for (const [key, { op, wanted }] of desiredRoutes) {
    if (!ourRoutes.get(key)?.some((r) => isRouteAsWanted(r, wanted))) routeOps.push(op);
  }

  // our rules in the kernel, each keyed once (a duplicate is listed, and removed, as often as it is there)
  const ourRules: { key: string; rule: ObservedRule }[] = [];
  for (const rule of observed.rules) if (isOurRule(rule)) ourRules.push({ key: ruleKey(rule), rule });
  const ourRuleKeys = new Set(ourRules.map(({ key }) => key));
  for (const [key, rule] of sortedRules) {
    if (!ourRuleKeys.has(key)) ruleAdds.push(rule);
  }

  // --- what we own that is no longer wanted --------------------------------------------------

  const ruleRemovals: Operation[] = [];
  for (const { key, rule } of ourRules) {
    if (desiredRules.has(key)) continue;
    ruleRemovals.push({
      kind: 'rule.remove',
      priority: rule.priority,
      table: rule.table,
      family: rule.family,
      ...(rule.from !== undefined && { from: rule.from }),
      ...(rule.to !== undefined && { to: rule.to }),
      ...(rule.suppressPrefixLength !== undefined && { suppressPrefixLength: rule.suppressPrefixLength }),
    });
  }

  const routeRemovals: Operation[] = [];
  for (const route of observed.routes) {
    if (!isOurRoute(route) || route.table === MAIN_TABLE) continue;
    if (route.type !== 'unicast' && route.type !== 'local') continue;
    if (desiredRoutes.has(routeKey(route.table, route.family, route.destination))) continue;
    const link = route.ifindex !== undefined ? linksByIndex.get(route.ifindex) : undefined;
    if (!link) continue; // its link is gone, and the kernel removed or will remove it with the link
    routeRemovals.push({
      kind: 'route.remove',
      table: route.table,
      destination: route.destination,
      link: link.name,
      type: route.type,
    });
  }

  const addressRemovals: Operation[] = [];
  for (const address of observed.addresses) {
    const link = linksByIndex.get(address.ifindex);
    if (!link || !isOwnedAddress(address, link.name, ownedSet)) continue;
    if (wantedAddressKeys.has(`${address.ifindex}|${c.ip(address.address) ?? address.address}`)) continue;
    addressRemovals.push({ kind: 'address.remove', link: link.name, address: `${address.address}/${address.prefixLength}` });
  }

  return {
    // links up first, then what is added (addresses before the routes and rules that use
    // them), then what is removed (rules before the routes they point at, addresses last)
    operations: [...linkOps, ...addressAdds, ...routeOps, ...ruleAdds, ...ruleRemovals, ...routeRemovals, ...addressRemovals],
    nics,
  };
}
