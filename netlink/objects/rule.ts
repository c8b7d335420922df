// A routing policy rule as cloud-network sees it: its identity (family, priority, table and
// selector), what it reads of one (fib_rule_hdr and its attributes), the request that adds or
// removes one, which rules a delete reaches, and whether a rule is cloud-network's own.
import { MAIN_TABLE, RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';
import type { RuleAdd, RuleRemove } from '../../protocol/operations.js';
import type { Family, ParsedPrefix } from '../../protocol/ip.js';
import { attributeBits, hasAttributesBesides, indexAttributes, indexedIp, indexedU32, indexedU8 } from '../attributes.js';
import { putU32 } from '../bytes.js';
import { familyName, familyNumber } from '../families.js';

export interface ObservedRule {
  family: Family;
  priority: number;
  table: number;
  /** CIDR of FRA_SRC when present */
  from?: string;
  /** CIDR of FRA_DST when present */
  to?: string;
  suppressPrefixLength?: number;
  /** FRA_PROTOCOL; 0 when absent */
  protocol: number;
  /** 'lookup' for FR_ACT_TO_TBL; other actions are observed but never managed */
  action: 'lookup' | 'other';
  /**
   * Set when the rule also selects on, or does, something cloud-network's rules never do (tos,
   * not, iif/oif, fwmark, uidrange, ports, another action): it is then not the rule
   * cloud-network would add, even where family, priority, table and from/to are the same.
   */
  otherSelectors?: true;
}

/** A rule's identity (selectors canonical, as the kernel reports them: 10.0.0.5/32): what it selects, at which priority, into which table. */
export type RuleShape = Pick<ObservedRule, 'family' | 'priority' | 'table' | 'from' | 'to' | 'suppressPrefixLength'>;

export const FRA = { DST: 1, SRC: 2, PRIORITY: 6, SUPPRESS_PREFIXLEN: 14, TABLE: 15, PROTOCOL: 21 } as const;
export const FR_ACT_TO_TBL = 1;
const RT_TABLE_UNSPEC = 0;
const SUPPRESS_PREFIXLEN_UNSET = 0xffffffff;
const FIB_RULE_HDR_BYTES = 12;

/** The kernel reports an unset suppress_prefixlength as -1 (0xffffffff unsigned). */
function suppressOf(value: number | undefined): number | undefined {
  return value === undefined || value < 0 || value === SUPPRESS_PREFIXLEN_UNSET ? undefined : value;
}

/** The one key of a rule's shape: equal keys, the same rule (as cloud-network adds it). */
export function ruleKey(rule: RuleShape): string {
  return `${rule.family} ${rule.priority} ${rule.table} ${rule.from ?? ''} ${rule.to ?? ''} ${suppressOf(rule.suppressPrefixLength) ?? ''}`;
}

/**
 * The key of the rules a delete naming `rule`'s one selector reaches: the kernel compares only
 * the fields a delete sets, so `from X` also reaches `from X to Y`, and the suppress rule every
 * rule with that suppress_prefixlength at its priority and table.
 */
export function reachKey(rule: RuleShape): string | undefined {
  const place = `${rule.family} ${rule.priority} ${rule.table}`;
  if (rule.from !== undefined) return `from ${place} ${rule.from}`;
  if (rule.to !== undefined) return `to ${place} ${rule.to}`;
  const suppress = suppressOf(rule.suppressPrefixLength);
  return suppress === undefined ? undefined : `suppress ${place} ${suppress}`;
}

/** Calls `each` with every reachKey under which a delete can reach `rule` (a rule with both from and to answers to both). */
export function forReachKeys(rule: ObservedRule, each: (key: string) => void): void {
  const place = `${rule.family} ${rule.priority} ${rule.table}`;
  if (rule.from !== undefined) each(`from ${place} ${rule.from}`);
  if (rule.to !== undefined) each(`to ${place} ${rule.to}`);
  const suppress = suppressOf(rule.suppressPrefixLength);
  if (suppress !== undefined) each(`suppress ${place} ${suppress}`);
}

/** Whether a rule is one cloud-network adds: our protocol, a lookup, nothing else selected. */
export function isOurRule(rule: ObservedRule): boolean {
  return rule.protocol === RTPROT_CLOUD_NETWORK && rule.action === 'lookup' && !rule.otherSelectors;
}

/** Whether a rule is exactly ours of this shape. */
export function isOurRuleOfShape(rule: ObservedRule, shape: RuleShape): boolean {
  return isOurRule(rule) && rule.from === shape.from && rule.to === shape.to && suppressOf(rule.suppressPrefixLength) === suppressOf(shape.suppressPrefixLength);
}

/** The rule attributes the kernel reports for a rule made only of what cloud-network uses (and FRA_UNSPEC). */
const PLAIN_RULE_ATTRIBUTES = attributeBits([0, FRA.DST, FRA.SRC, FRA.PRIORITY, FRA.SUPPRESS_PREFIXLEN, FRA.TABLE, FRA.PROTOCOL]);

export function decodeRule(data: Buffer): ObservedRule | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, FIB_RULE_HDR_BYTES);
  const rule: ObservedRule = {
    family,
    priority: indexedU32(data, FRA.PRIORITY) ?? 0,
    table: indexedU32(data, FRA.TABLE) ?? data.readUInt8(4),
    protocol: indexedU8(data, FRA.PROTOCOL) ?? 0,
    action: data.readUInt8(7) === FR_ACT_TO_TBL ? 'lookup' : 'other',
  };
  const dstLength = data.readUInt8(1);
  const srcLength = data.readUInt8(2);
  const from = indexedIp(data, family, FRA.SRC);
  if (from) rule.from = `${from}/${srcLength}`;
  const to = indexedIp(data, family, FRA.DST);
  if (to) rule.to = `${to}/${dstLength}`;
  const suppress = indexedU32(data, FRA.SUPPRESS_PREFIXLEN);
  if (suppress !== undefined && suppress !== SUPPRESS_PREFIXLEN_UNSET) rule.suppressPrefixLength = suppress;
  // a tos, the flags (not), another action, or any attribute besides the plain ones (iif, oif,
  // fwmark, uidrange, ports, ...): the kernel reports those only when they are set
  if (data[3] !== 0 || data.readUInt32LE(8) !== 0 || data[7] !== FR_ACT_TO_TBL || hasAttributesBesides(PLAIN_RULE_ATTRIBUTES)) rule.otherSelectors = true;
  return rule;
}

/**
 * A fib_rule_hdr (family, the selectors' lengths, the table when it fits a byte, the lookup
 * action), then FRA_PRIORITY, FRA_TABLE, and FRA_SRC, FRA_DST, FRA_SUPPRESS_PREFIXLEN and
 * FRA_PROTOCOL when given, in that order. Written with plain stores: an apply sends thousands.
 */
export function rulePayload(
  family: Family,
  priority: number,
  table: number,
  from: ParsedPrefix | undefined,
  to: ParsedPrefix | undefined,
  suppressPrefixLength: number | undefined,
  protocol: number | undefined,
): Uint8Array {
  const fromBytes = from?.bytes;
  const toBytes = to?.bytes;
  const out = new Uint8Array(
    28 + (fromBytes ? 4 + fromBytes.length : 0) + (toBytes ? 4 + toBytes.length : 0) + (suppressPrefixLength === undefined ? 0 : 8) + (protocol === undefined ? 0 : 8),
  );
  out[0] = familyNumber(family);
  out[1] = to ? to.prefixLength : 0;
  out[2] = from ? from.prefixLength : 0;
  out[4] = table <= 255 ? table : RT_TABLE_UNSPEC; // like iproute2: a larger table only in FRA_TABLE
  out[7] = FR_ACT_TO_TBL;
  out[12] = 8;
  out[14] = FRA.PRIORITY;
  putU32(out, 16, priority);
  out[20] = 8;
  out[22] = FRA.TABLE;
  putU32(out, 24, table);
  let at = 28;
  // an IPv4 or IPv6 selector is 4 or 16 bytes: the next attribute needs no padding
  if (fromBytes) {
    out[at] = 4 + fromBytes.length;
    out[at + 2] = FRA.SRC;
    out.set(fromBytes, at + 4);
    at += 4 + fromBytes.length;
  }
  if (toBytes) {
    out[at] = 4 + toBytes.length;
    out[at + 2] = FRA.DST;
    out.set(toBytes, at + 4);
    at += 4 + toBytes.length;
  }
  if (suppressPrefixLength !== undefined) {
    out[at] = 8;
    out[at + 2] = FRA.SUPPRESS_PREFIXLEN;
    putU32(out, at + 4, suppressPrefixLength);
    at += 8;
  }
  if (protocol !== undefined) {
    out[at] = 5; // nla_len counts the one byte of value, not the padding
    out[at + 2] = FRA.PROTOCOL;
    out[at + 4] = protocol;
  }
  return out;
}

/** How a rule operation reads (addressWording in address.ts says where each is used). */
export const ruleWording = {
  command: (op: RuleAdd | RuleRemove) => {
    const selector = op.from !== undefined ? ` from ${op.from}` : op.to !== undefined ? ` to ${op.to}` : '';
    const suppress = op.suppressPrefixLength !== undefined ? ` suppress_prefixlength ${op.suppressPrefixLength}` : '';
    const table = op.table === MAIN_TABLE ? 'main' : String(op.table);
    return `ip ${op.family === 'inet6' ? '-6 ' : ''}rule ${op.kind === 'rule.add' ? 'add' : 'del'} priority ${op.priority}${selector} lookup ${table}${suppress} proto ${RTPROT_CLOUD_NETWORK}`;
  },
  applied: (op: RuleAdd | RuleRemove) => {
    const verb = op.kind === 'rule.add' ? 'added' : 'removed';
    if (op.suppressPrefixLength !== undefined) {
      return `Successfully ${verb} routing policy rule 'lookup main suppress_prefixlength ${op.suppressPrefixLength}' priority='${op.priority}'`;
    }
    const direction = op.from ? `'from' address='${op.from}'` : `'to' address='${op.to}'`;
    return `Successfully ${verb} routing policy rule ${direction} in route table='${op.table}' priority='${op.priority}'`;
  },
  attempt: (op: RuleAdd | RuleRemove) =>
    `${op.kind === 'rule.add' ? 'adding' : 'removing'} ${op.family} rule priority ${op.priority}${op.from ? ` from ${op.from}` : ''}${op.to ? ` to ${op.to}` : ''} lookup ${op.table}${op.suppressPrefixLength !== undefined ? ` suppress_prefixlength ${op.suppressPrefixLength}` : ''}`,
};
