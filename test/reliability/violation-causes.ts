// Names the likely cause of a foreign object's change from the operations of the request that
// changed it, so a fuzz run's report reads per hole, not per object. A guess from the evidence;
// the report keeps the evidence too.
import { canonicalIp, formatIp, networkOf, parseIp } from '../../protocol/ip.js';
import type { AddressRemove, Operation } from '../../protocol/operations.js';
import { derivedFrom, type AddressObject, type ForeignChange, type KernelObject, type RouteObject, type Snapshot } from './kernel-objects.js';

export const CAUSES: Record<number, string> = {
  1: 'address.remove ignores the prefix length (or removes twice)',
  2: "removing the helper's IPv4 primary deletes another tool's secondaries",
  3: "route.remove deletes the first matching route, not the helper's",
  4: 'route.replace drops a next hop another tool appended',
  5: "rule.remove deletes another tool's rule",
  6: "link.set mtu below 1280 deletes the link's IPv6",
  7: "removing a helper IPv6 address deletes another tool's route to its prefix",
  8: "stale ledger: another tool's re-added address removed",
  9: "removing a link's last IPv4 address makes the kernel flush every IPv4 route through it",
  0: 'not matched to a known cause',
};

export interface RequestEvidence {
  /** the operations the helper applied or tried (failed): "refused" and "already" changed nothing */
  carriedOut: Operation[];
  /** link + address of addresses another tool re-added untagged after the helper made them */
  readdedByOtherTool: ReadonlySet<string>;
  /** every foreign object this request changed, for kernel routes that went with their address */
  changed: ForeignChange[];
  /** the kernel before and after the request */
  before: Snapshot;
  after: Snapshot;
}

const ipOf = (prefix: string) => canonicalIp(prefix.split('/')[0]!) ?? prefix;

function networkText(ip: string, length: number): string {
  const parsed = parseIp(ip);
  return parsed ? `${formatIp(networkOf(parsed, length))}/${length}` : `${ip}/${length}`;
}

function lowersMtu(evidence: RequestEvidence, link: string | undefined): boolean {
  return evidence.carriedOut.some((op) => op.kind === 'link.set' && op.link === link && op.mtu !== undefined && op.mtu < 1280);
}

function addressCause(a: AddressObject, evidence: RequestEvidence): number {
  const removals = evidence.carriedOut.filter((op): op is AddressRemove => op.kind === 'address.remove' && op.link === a.link);
  const sameIp = removals.filter((op) => ipOf(op.address) === a.ip);
  if (sameIp.length > 0 && evidence.readdedByOtherTool.has(`${a.link} ${a.ip}/${a.prefixLength}`)) return 8;
  if (a.family === 'inet6' && lowersMtu(evidence, a.link)) return 6;
  if (sameIp.length > 0) return 1;
  const sameSubnet = removals.some((op) => networkText(ipOf(op.address), a.prefixLength) === networkText(a.ip, a.prefixLength));
  if (a.secondary && sameSubnet) return 2;
  return 0;
}

const ipv4On = (s: Snapshot, link: string) => s.objects.filter((o): o is AddressObject => o.kind === 'address' && o.family === 'inet' && o.link === link);

/**
 * Whether the link had IPv4 addresses and, at some point of the request, none: each is gone
 * afterwards, or was removed by IP, or was a secondary of a removed primary (promote_secondaries=0).
 */
function lostEveryIpv4Address(link: string, evidence: RequestEvidence): boolean {
  const had = ipv4On(evidence.before, link);
  const left = new Set(ipv4On(evidence.after, link).map((a) => a.identity));
  const removedIps = new Set(evidence.carriedOut.filter((op): op is AddressRemove => op.kind === 'address.remove' && op.link === link).map((op) => ipOf(op.address)));
  const removedPrimary = (a: AddressObject) => had.some((p) => !p.secondary && removedIps.has(p.ip) && networkText(p.ip, p.prefixLength) === networkText(a.ip, a.prefixLength));
  const removed = (a: AddressObject) => removedIps.has(a.ip) || (a.secondary && removedPrimary(a));
  return had.length > 0 && (had.every((a) => !left.has(a.identity)) || had.every(removed));
}

/** A kernel-made route goes with its address: the cause of the first of its addresses that changed too. */
function followedAddress(r: RouteObject, evidence: RequestEvidence): number {
  const changedAddresses = evidence.changed.map((c) => c.object).filter((o): o is AddressObject => o.kind === 'address');
  for (const a of derivedFrom(r, changedAddresses) ?? []) {
    const cause = addressCause(a, evidence);
    if (cause !== 0) return cause;
  }
  return 0;
}

const sameDestination = (op: Operation, r: RouteObject) =>
  (op.kind === 'route.remove' || op.kind === 'route.replace') && op.table === r.table && networkText(ipOf(op.destination), Number(op.destination.split('/')[1])) === r.destination;

function routeCause(r: RouteObject, evidence: RequestEvidence, link = r.nexthops[0]?.link): number {
  if (r.family === 'inet6' && lowersMtu(evidence, link)) return 6;
  if (evidence.carriedOut.some((op) => op.kind === 'route.remove' && sameDestination(op, r))) return 3;
  if (r.protocol === 'kernel') {
    const cause = followedAddress(r, evidence);
    if (cause !== 0) return cause;
  }
  if (r.family === 'inet' && link !== undefined && lostEveryIpv4Address(link, evidence)) return 9;
  const prefixOwnerRemoved = evidence.carriedOut.some((op) => op.kind === 'address.remove' && op.link === link && networkText(ipOf(op.address), Number(op.address.split('/')[1])) === r.destination);
  if (r.family === 'inet6' && prefixOwnerRemoved) return 7;
  return 0;
}

export function causeOf(object: KernelObject, evidence: RequestEvidence): number {
  switch (object.kind) {
    case 'address':
      return addressCause(object, evidence);
    case 'route':
      return routeCause(object, evidence);
    case 'nexthop': {
      const { route, nexthop } = object;
      if (evidence.carriedOut.some((op) => op.kind === 'route.replace' && sameDestination(op, route))) return 4;
      return routeCause(route, evidence, nexthop.link);
    }
    case 'rule':
      return evidence.carriedOut.some((op) => op.kind === 'rule.remove' && op.priority === object.priority) ? 5 : 0;
  }
}
