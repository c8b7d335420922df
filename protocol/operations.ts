// The operations the agent may ask the helper to perform on the kernel.
// Each schema is the single declaration of an operation: the TypeScript type is derived
// from it (Static<>), and the helper validates every request against it at runtime.
import { Type, type Static } from '@sinclair/typebox';
import { MTU_RANGE } from './constants.js';
import { OPERATION_KINDS } from './names.js';

/** Interface names as the kernel allows them: 1–15 bytes, no '/', no whitespace, not "." or "..". */
export const LinkName = Type.String({
  minLength: 1,
  maxLength: 15,
  pattern: '^(?!\\.{1,2}$)[^/\\s:]+$',
  description: 'interface name, e.g. eth1',
});

/** A bare IPv4 or IPv6 address in text form; the helper checks it further (helper/unicast.ts). */
export const IpAddress = Type.String({ minLength: 2, maxLength: 45, pattern: '^[0-9a-fA-F.:]+$' });

/** An address or network with a prefix length, e.g. 10.4.0.0/24 or 0.0.0.0/0. */
export const IpPrefix = Type.String({ minLength: 4, maxLength: 49, pattern: '^[0-9a-fA-F.:]+/[0-9]{1,3}$' });

export const RouteTable = Type.Integer({ minimum: 1, maximum: 0xffffffff });
export const RulePriority = Type.Integer({ minimum: 1, maximum: 0xffffffff });

export const AddressAdd = Type.Object(
  {
    kind: Type.Literal('address.add'),
    link: LinkName,
    /** e.g. 10.4.0.5/24 */
    address: IpPrefix,
    /** IFA_F_NOPREFIXROUTE: no prefix route in main (the subnet route lives in the NIC's table). */
    noPrefixRoute: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const AddressRemove = Type.Object(
  {
    kind: Type.Literal('address.remove'),
    link: LinkName,
    address: IpPrefix,
  },
  { additionalProperties: false },
);

export const RouteReplace = Type.Object(
  {
    kind: Type.Literal('route.replace'),
    table: RouteTable,
    /** destination network, 0.0.0.0/0 or ::/0 for a default route */
    destination: IpPrefix,
    link: LinkName,
    gateway: Type.Optional(IpAddress),
    /** unicast: a normal route; local: a range delivered to this host (GCP alias ranges) */
    type: Type.Union([Type.Literal('unicast'), Type.Literal('local')]),
    /** link: on-link (no gateway), universe: via a gateway, host: local routes */
    scope: Type.Union([Type.Literal('universe'), Type.Literal('link'), Type.Literal('host')]),
    /** preferred source address */
    source: Type.Optional(IpAddress),
  },
  { additionalProperties: false },
);

export const RouteRemove = Type.Object(
  {
    kind: Type.Literal('route.remove'),
    table: RouteTable,
    destination: IpPrefix,
    link: LinkName,
    type: Type.Union([Type.Literal('unicast'), Type.Literal('local')]),
  },
  { additionalProperties: false },
);

/**
 * A policy rule. Exactly one of: `from` (a source host address or routed range),
 * `to` (a destination host address or routed range), or `suppressPrefixLength`
 * (the `lookup main suppress_prefixlength 0` rule).
 */
const RuleFields = {
  priority: RulePriority,
  table: RouteTable,
  family: Type.Union([Type.Literal('inet'), Type.Literal('inet6')]),
  from: Type.Optional(IpPrefix),
  to: Type.Optional(IpPrefix),
  suppressPrefixLength: Type.Optional(Type.Integer({ minimum: 0, maximum: 128 })),
};

export const RuleAdd = Type.Object(
  { kind: Type.Literal('rule.add'), ...RuleFields },
  { additionalProperties: false },
);

export const RuleRemove = Type.Object(
  { kind: Type.Literal('rule.remove'), ...RuleFields },
  { additionalProperties: false },
);

export const LinkSet = Type.Object(
  {
    kind: Type.Literal('link.set'),
    link: LinkName,
    up: Type.Optional(Type.Boolean()),
    mtu: Type.Optional(Type.Integer({ minimum: MTU_RANGE.min, maximum: MTU_RANGE.max })),
  },
  { additionalProperties: false },
);

export const Operation = Type.Union([
  AddressAdd,
  AddressRemove,
  RouteReplace,
  RouteRemove,
  RuleAdd,
  RuleRemove,
  LinkSet,
]);

export type AddressAdd = Static<typeof AddressAdd>;
export type AddressRemove = Static<typeof AddressRemove>;
export type RouteReplace = Static<typeof RouteReplace>;
export type RouteRemove = Static<typeof RouteRemove>;
export type RuleAdd = Static<typeof RuleAdd>;
export type RuleRemove = Static<typeof RuleRemove>;
export type LinkSet = Static<typeof LinkSet>;
export type Operation = Static<typeof Operation>;
export type OperationKind = Operation['kind'];

export { OPERATION_KINDS };
