// The kernel state after an approved operation, so the rest of a request is judged against what
// the kernel will then hold without dumping everything again after every operation.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { formatIp, parseIp, parsePrefix, type PrefixParser } from '../protocol/ip.js';
import type { Operation } from '../protocol/operations.js';
import type { ObservedAddress, ObservedRoute, ObservedRule } from '../netlink/types.js';
import { isOurRoute } from '../netlink/objects/route.js';
import type { KernelPicture, RuleShape } from './kernel-picture.js';
import type { Verdict } from './policy.js';

type Allowed = Extract<Verdict, { decision: 'allow' }>;

/** Whether an IPv4 address joins a subnet that a primary address on its link already holds. */
function joinsAsSecondary(state: KernelPicture, address: ObservedAddress): boolean {
  return state.sameSubnet(address).some((a) => !a.secondary);
}

/**
 * Updates `state` in place to what the kernel holds once `op`, approved with `verdict`, is
 * applied; `parse` reads its addresses. Returns false when the kernel's answer is not foreseeable
 * here (a primary address removed: its subnet's secondaries go or are promoted, as the link's
 * promote_secondaries says), so that the caller reads the kernel again before judging more.
 */
export function recordApplied(state: KernelPicture, op: Operation, verdict: Allowed, parse: PrefixParser = parsePrefix): boolean {
  const link = 'link' in op ? state.link(op.link) : undefined;
  switch (op.kind) {
    case 'address.add': {
      const p = parse(op.address);
      if (!p || !link) return true;
      const address: ObservedAddress = {
        ifindex: link.index,
        family: p.family,
        address: formatIp(p),
        prefixLength: p.prefixLength,
        protocol: RTPROT_CLOUD_NETWORK,
        dynamic: false,
        noPrefixRoute: op.noPrefixRoute,
        scope: 0,
      };
      if (joinsAsSecondary(state, address)) address.secondary = true;
      state.addAddress(address);
      return true;
    }
    case 'address.remove': {
      const target = verdict.target as ObservedAddress | undefined;
      if (!target) return true;
      state.removeAddress(target);
      return target.family !== 'inet' || target.secondary === true;
    }
    case 'route.replace': {
      const d = parse(op.destination);
      if (!d || !link) return true;
      const destination = `${formatIp(d)}/${d.prefixLength}`;
      // the policy approved it only where every route to the destination is our own
      state.removeRoutes(op.table, d.family, destination, isOurRoute);
      const route: ObservedRoute = {
        table: op.table,
        family: d.family,
        destination,
        ifindex: link.index,
        protocol: RTPROT_CLOUD_NETWORK,
        type: op.type,
        scope: d.family === 'inet6' ? 'universe' : op.scope, // the kernel reports every IPv6 route as universe
      };
      if (op.gateway) route.gateway = formatIp(parseIp(op.gateway)!);
      if (op.source) route.source = formatIp(parseIp(op.source)!);
      state.addRoute(route);
      return true;
    }
    case 'route.remove': {
      const target = verdict.target as ObservedRoute | undefined;
      if (target) state.removeRoutes(target.table, target.family, target.destination, (r) => r === target);
      return true;
    }
    case 'rule.add':
      if (verdict.rule) recordRuleAdded(state, verdict.rule);
      return true;
    case 'rule.remove':
      if (verdict.rule) state.removeOurRule(verdict.rule);
      return true;
    case 'link.set':
      if (!link) return true;
      if (op.up !== undefined) link.up = op.up;
      if (op.mtu !== undefined) link.mtu = op.mtu;
      return true;
  }
}

/** A rule cloud-network added, as the kernel now reports it. */
export function recordRuleAdded(state: KernelPicture, shape: RuleShape): void {
  // assigned rather than spread: once per rule of an apply, under --jitless
  const rule: ObservedRule = { family: shape.family, priority: shape.priority, table: shape.table, protocol: RTPROT_CLOUD_NETWORK, action: 'lookup' };
  if (shape.from !== undefined) rule.from = shape.from;
  if (shape.to !== undefined) rule.to = shape.to;
  if (shape.suppressPrefixLength !== undefined) rule.suppressPrefixLength = shape.suppressPrefixLength;
  state.addRule(rule);
}
