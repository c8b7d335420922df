// Executing the helper's operations on the kernel. No policy here: the helper has already
// decided that an operation is allowed; this layer only performs it and reports, per operation,
// whether it changed the kernel ('applied'), found it already so ('already'), or failed.
import type { AddressAdd, AddressRemove, LinkSet, Operation, RouteRemove, RouteReplace, RuleAdd, RuleRemove } from '../protocol/operations.js';
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { formatIp, networkOf, parseIp, parsePrefix, type ParsedIp, type ParsedPrefix, type PrefixParser } from '../protocol/ip.js';
import { describeAttempt } from './describe.js';
import { NLM_F, RTM } from './messages.js';
import { addressPayload, IFA_F_NOPREFIXROUTE, type ObservedAddress } from './objects/address.js';
import { linkIsAlready, linkSetPayload, type ObservedLink } from './objects/link.js';
import { isRouteAsWanted, ROUTE_TYPE_NUMBER, routePayload, SCOPE_NUMBER, type ObservedRoute } from './objects/route.js';
import { rulePayload } from './objects/rule.js';
import { readLinks, readRoutes } from './read.js';
import { NetlinkError, type BatchRequest, type RtnlRequester } from './wire.js';

export type Outcome = 'applied' | 'already' | 'failed';

export interface OperationResult {
  outcome: Outcome;
  /** errno name when the kernel refused (ENODEV, EEXIST, EPERM, …) */
  code?: string;
  /** what failed, where, and why, for a person */
  reason?: string;
}

const RT_SCOPE_NOWHERE = 255;

const EXPLANATIONS: Record<string, string> = {
  ENODEV: 'the interface does not exist',
  EPERM: 'permission denied (CAP_NET_ADMIN is required)',
  EACCES: 'permission denied (CAP_NET_ADMIN is required)',
  EEXIST: 'a conflicting entry already exists',
  ENETUNREACH: 'the gateway is not reachable through that interface',
  ENETDOWN: 'the interface is down',
  EINVAL: 'the kernel rejected the request as invalid',
  EADDRNOTAVAIL: 'the address is not configured there',
  ESRCH: 'no such route',
  ENOENT: 'no such entry',
  ENOBUFS: 'the netlink receive buffer overflowed, so the outcome is unknown; re-read the kernel state',
  ETIMEDOUT: 'the kernel did not answer in time; re-read the kernel state',
  ECLOSED: 'the netlink socket was closed',
};

function failed(op: Operation, code: string, detail?: string): OperationResult {
  const explanation = EXPLANATIONS[code] ?? 'the kernel refused it';
  return {
    outcome: 'failed',
    code,
    reason: `${describeAttempt(op)} failed: ${code}, ${explanation}${detail ? ` (${detail})` : ''}`,
  };
}

/** A request ready to send, and the errno names that mean the kernel already is as asked. */
interface Prepared {
  request: BatchRequest;
  alreadyCodes: readonly string[];
}

/** What an operation becomes before anything is sent: a request, or already its result. */
type Preparation = Prepared | OperationResult;

/**
 * An operation, and for a removal the object the caller judged (the helper's policy): the delete
 * then names every field of it the kernel compares, so the kernel removes that object and no other.
 */
export interface ExactOperation {
  op: Operation;
  target?: ObservedAddress | ObservedRoute;
}

function prepared(type: number, payload: Uint8Array[], flags: number, alreadyCodes: readonly string[]): Prepared {
  return { request: { type, payload, flags }, alreadyCodes };
}

function outcomeOf(op: Operation, preparation: Prepared, error: NetlinkError | undefined): OperationResult {
  if (!error) return { outcome: 'applied' };
  if (preparation.alreadyCodes.includes(error.code)) return { outcome: 'already' };
  return failed(op, error.code, error.kernelMessage);
}

/** How executeOperations may rely on its caller. */
export interface ExecuteOptions {
  /**
   * The caller has established, against a fresh read, that none of the rules it adds exists
   * (the helper's policy does). They are then added without NLM_F_EXCL, whose duplicate check
   * compares each new rule with every rule the kernel holds (docs/performance.md, "rule
   * insertion"). Without this, a rule that exists is reported as already there.
   */
  rulesCheckedAbsent?: boolean;
  /** reads the operations' addresses and ranges (default parsePrefix): the helper's has parsed them already while judging */
  parsePrefix?: PrefixParser;
}

interface Context {
  sock: RtnlRequester;
  linkIndexByName: ReadonlyMap<string, number>;
  options: ExecuteOptions;
  /** present while executing a segment of route operations */
  routes?: ObservedRoute[];
  /** present while executing a segment of link operations */
  links?: ObservedLink[];
}

function linkIndex(context: Context, op: Operation & { link: string }): number | OperationResult {
  const index = context.linkIndexByName.get(op.link);
  return index ?? failed(op, 'ENODEV', `no interface named ${op.link}`);
}

function prefixOf(context: Context, op: Operation, text: string): ParsedPrefix | OperationResult {
  return (context.options.parsePrefix ?? parsePrefix)(text) ?? failed(op, 'EINVAL', `${text} is not an address with a prefix length`);
}

function isResult(value: unknown): value is OperationResult {
  return typeof value === 'object' && value !== null && 'outcome' in value;
}

function addAddress(context: Context, op: AddressAdd): Preparation {
  const index = linkIndex(context, op);
  if (isResult(index)) return index;
  const prefix = prefixOf(context, op, op.address);
  if (isResult(prefix)) return prefix;
  // permanent (no IFA_CACHEINFO), scope global. IFA_PROTO marks it ours; kernels before 5.18
  // parse address requests leniently and ignore the unknown attribute, so no fallback is needed.
  const payload = addressPayload(prefix, index, { flags: op.noPrefixRoute ? IFA_F_NOPREFIXROUTE : 0, protocol: RTPROT_CLOUD_NETWORK });
  return prepared(RTM.NEWADDR, [payload], NLM_F.CREATE | NLM_F.EXCL, ['EEXIST']);
}

function removeAddress(context: Context, op: AddressRemove, target: ObservedAddress | undefined): Preparation {
  const index = linkIndex(context, op);
  if (isResult(index)) return index;
  const prefix = prefixOf(context, op, op.address);
  if (isResult(prefix)) return prefix;
  // IFA_ADDRESS with the prefix length makes IPv4's delete compare the prefix length and peer too
  const peer = target?.peer === undefined ? prefix : parseIp(target.peer);
  if (!peer || peer.family !== prefix.family) return failed(op, 'EINVAL', `${target?.peer} is not a peer of ${op.address}`);
  return prepared(RTM.DELADDR, [addressPayload(prefix, index, undefined, peer)], 0, ['EADDRNOTAVAIL', 'ENOENT', 'ESRCH']);
}

/** A gateway or source address of the route's family, or why not. */
function routeAddress(op: Operation, text: string | undefined, family: ParsedPrefix['family']): ParsedIp | undefined | OperationResult {
  if (text === undefined) return undefined;
  const ip = parseIp(text);
  if (!ip || ip.family !== family) return failed(op, 'EINVAL', `${text} is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
  return ip;
}

function replaceRoute(context: Context, op: RouteReplace): Preparation {
  const index = linkIndex(context, op);
  if (isResult(index)) return index;
  const destination = prefixOf(context, op, op.destination);
  if (isResult(destination)) return destination;
  const gateway = routeAddress(op, op.gateway, destination.family);
  if (isResult(gateway)) return gateway;
  const source = routeAddress(op, op.source, destination.family);
  if (isResult(source)) return source;
  const wanted = {
    table: op.table,
    destination: `${formatIp(networkOf(destination, destination.prefixLength))}/${destination.prefixLength}`,
    type: op.type,
    scope: op.scope,
    ifindex: index,
    ...(gateway && { gateway: formatIp(gateway) }),
    ...(source && { source: formatIp(source) }),
  };
  if (context.routes?.some((route) => isRouteAsWanted(route, wanted))) return { outcome: 'already' };
  const fields = { table: op.table, protocol: RTPROT_CLOUD_NETWORK, scope: SCOPE_NUMBER[op.scope], type: ROUTE_TYPE_NUMBER[op.type], ifindex: index };
  return prepared(RTM.NEWROUTE, routePayload(destination, { ...fields, ...(gateway && { gateway }), ...(source && { source }) }), NLM_F.CREATE | NLM_F.REPLACE, []);
}

/**
 * A route delete with our protocol and, from `target`, everything else the kernel compares: its
 * scope, TOS, metric, gateway and preferred source. Without a target, the type, device and
 * protocol alone (scope nowhere matches any).
 */
function removeRoute(context: Context, op: RouteRemove, target: ObservedRoute | undefined): Preparation {
  const index = linkIndex(context, op);
  if (isResult(index)) return index;
  const destination = prefixOf(context, op, op.destination);
  if (isResult(destination)) return destination;
  const fields = { table: op.table, protocol: RTPROT_CLOUD_NETWORK, scope: RT_SCOPE_NOWHERE, type: ROUTE_TYPE_NUMBER[op.type], ifindex: index };
  if (!target) return prepared(RTM.DELROUTE, routePayload(destination, fields), 0, ['ESRCH', 'ENOENT']);
  const gateway = routeAddress(op, target.gateway, destination.family);
  if (isResult(gateway)) return gateway;
  const source = routeAddress(op, target.source, destination.family);
  if (isResult(source)) return source;
  const exact = {
    ...fields,
    scope: SCOPE_NUMBER[target.scope],
    ...(target.tos !== undefined && { tos: target.tos }),
    ...(target.metric !== undefined && { metric: target.metric }),
    ...(gateway && { gateway }),
    ...(source && { source }),
  };
  return prepared(RTM.DELROUTE, routePayload(destination, exact), 0, ['ESRCH', 'ENOENT']);
}

/** A rule's selector: a prefix of the rule's own family. */
function selectorOf(context: Context, op: RuleAdd | RuleRemove, text: string): ParsedPrefix | OperationResult {
  const prefix = prefixOf(context, op, text);
  if (isResult(prefix) || prefix.family === op.family) return prefix;
  return failed(op, 'EINVAL', `${formatIp(prefix)} is not in family ${op.family}`);
}

function ruleRequest(context: Context, op: RuleAdd | RuleRemove, withProtocol: boolean): Uint8Array[] | OperationResult {
  const from = op.from === undefined ? undefined : selectorOf(context, op, op.from);
  if (isResult(from)) return from;
  const to = op.to === undefined ? undefined : selectorOf(context, op, op.to);
  if (isResult(to)) return to;
  return [rulePayload(op.family, op.priority, op.table, from, to, op.suppressPrefixLength, withProtocol ? RTPROT_CLOUD_NETWORK : undefined)];
}

function addRule(context: Context, op: RuleAdd): Preparation {
  const payload = ruleRequest(context, op, true);
  if (isResult(payload)) return payload;
  // without NLM_F_EXCL the kernel happily adds a duplicate rule: only when the caller ruled that out
  if (context.options.rulesCheckedAbsent) return prepared(RTM.NEWRULE, payload, NLM_F.CREATE, []);
  return prepared(RTM.NEWRULE, payload, NLM_F.CREATE | NLM_F.EXCL, ['EEXIST']);
}

function removeRule(context: Context, op: RuleRemove): Preparation {
  // with FRA_PROTOCOL the kernel removes only a rule of ours, never another tool's of the same selector
  const payload = ruleRequest(context, op, true);
  if (isResult(payload)) return payload;
  return prepared(RTM.DELRULE, payload, 0, ['ENOENT']);
}

function setLink(context: Context, op: LinkSet): Preparation {
  const index = linkIndex(context, op);
  if (isResult(index)) return index;
  const current = context.links?.find((link) => link.index === index);
  if (!current) return failed(op, 'ENODEV', `no interface named ${op.link}`);
  if (linkIsAlready(current, op)) return { outcome: 'already' };
  // only what differs: an MTU already right is not sent again
  const change = { ...(op.up !== undefined && current.up !== op.up && { up: op.up }), ...(op.mtu !== undefined && current.mtu !== op.mtu && { mtu: op.mtu }) };
  return prepared(RTM.SETLINK, linkSetPayload(index, change), 0, []);
}

function prepare(context: Context, { op, target }: ExactOperation): Preparation {
  switch (op.kind) {
    case 'address.add':
      return addAddress(context, op);
    case 'address.remove':
      return removeAddress(context, op, target as ObservedAddress | undefined);
    case 'route.replace':
      return replaceRoute(context, op);
    case 'route.remove':
      return removeRoute(context, op, target as ObservedRoute | undefined);
    case 'rule.add':
      return addRule(context, op);
    case 'rule.remove':
      return removeRule(context, op);
    case 'link.set':
      return setLink(context, op);
  }
}

function objectKind(op: Operation): string {
  return op.kind.slice(0, op.kind.indexOf('.'));
}

/**
 * Executes operations in order. Consecutive operations on the same object kind form a segment,
 * sent as one batch (RtnlSocket.batch: a few datagrams, the kernel handles their messages in
 * order). A segment starts only after the previous one is answered, and segments of routes or
 * links first re-read those, so that "already so" is judged against the kernel as the earlier
 * segments left it. Results come back in the order of `ops`.
 *
 * `linkIndexByName` maps interface names to ifindexes; when absent the links are read once.
 */
export async function executeOperations(
  sock: RtnlRequester,
  ops: readonly (Operation | ExactOperation)[],
  linkIndexByName?: ReadonlyMap<string, number>,
  options: ExecuteOptions = {},
): Promise<OperationResult[]> {
  const items = ops.map((item): ExactOperation => ('op' in item ? item : { op: item }));
  const results: OperationResult[] = [];
  let indexes = linkIndexByName;
  for (let start = 0; start < items.length; ) {
    const kind = objectKind(items[start]!.op);
    let end = start + 1;
    while (end < items.length && objectKind(items[end]!.op) === kind) end++;
    const segment = items.slice(start, end);
    start = end;
    const context: Context = { sock, linkIndexByName: indexes ?? new Map(), options };
    try {
      if (kind === 'link' || !indexes) {
        context.links = await readLinks(sock);
        if (!indexes) indexes = new Map(context.links.map((link) => [link.name, link.index]));
        context.linkIndexByName = indexes;
      }
      // only our routes can be "already so" (sameRoute asks for our protocol)
      if (segment.some(({ op }) => op.kind === 'route.replace')) context.routes = await readRoutes(sock, { protocol: RTPROT_CLOUD_NETWORK });
    } catch (error) {
      // cannot judge "already" without reading: report every operation of the segment
      const code = error instanceof NetlinkError ? error.code : 'EIO';
      const detail = `reading the kernel state first failed: ${error instanceof Error ? error.message : String(error)}`;
      results.push(...segment.map(({ op }) => failed(op, code, detail)));
      continue;
    }
    const preparations = segment.map((item) => prepare(context, item));
    const toSend = preparations.filter((preparation): preparation is Prepared => !isResult(preparation));
    const errors = await sock.batch(toSend.map((preparation) => preparation.request));
    let sent = 0;
    segment.forEach(({ op }, index) => {
      const preparation = preparations[index]!;
      results.push(isResult(preparation) ? preparation : outcomeOf(op, preparation, errors[sent++]));
    });
  }
  return results;
}
