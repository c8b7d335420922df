// The JSON-RPC methods of the helper. One declaration per method: params and result schemas,
// from which both the TypeScript types and the helper's runtime validators come.
// See protocol/README.md for the framing and the semantics of each method.
import { Type, type Static } from '@sinclair/typebox';
import { MAX_OPERATIONS_PER_REQUEST } from './names.js';
import { IpPrefix, LinkName, Operation } from './operations.js';

export { MAX_OPERATIONS_PER_REQUEST };

export const ApplyParams = Type.Object(
  {
    operations: Type.Array(Operation, { minItems: 0, maxItems: MAX_OPERATIONS_PER_REQUEST }),
  },
  { additionalProperties: false },
);

export const Outcome = Type.Union([
  /** the kernel now holds what was asked */
  Type.Literal('applied'),
  /** nothing to do: the kernel already held it (add) or did not hold it (remove) */
  Type.Literal('already'),
  /** the helper's policy refused it; `reason` says why */
  Type.Literal('refused'),
  /** the kernel refused it; `reason` names the error, e.g. ENODEV */
  Type.Literal('failed'),
]);

export const OperationResult = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  kind: Type.String(),
  outcome: Outcome,
  reason: Type.Optional(Type.String()),
});

export const ApplyResult = Type.Object({
  results: Type.Array(OperationResult),
});

export const OwnedAddressesParams = Type.Object({}, { additionalProperties: false });

/** The addresses the helper created and still owns (its ledger, reconciled with the kernel). */
export const OwnedAddressesResult = Type.Object({
  addresses: Type.Array(Type.Object({ link: LinkName, address: IpPrefix })),
});

export const HelperInfoParams = Type.Object({}, { additionalProperties: false });

export const HelperInfoResult = Type.Object({
  version: Type.String(),
  protocolNumber: Type.Integer(),
  tables: Type.Object({ first: Type.Integer(), last: Type.Integer() }),
  priorities: Type.Object({ first: Type.Integer(), last: Type.Integer() }),
});

export const METHODS = {
  apply: { params: ApplyParams, result: ApplyResult },
  ownedAddresses: { params: OwnedAddressesParams, result: OwnedAddressesResult },
  info: { params: HelperInfoParams, result: HelperInfoResult },
} as const;

export type MethodName = keyof typeof METHODS;
export type ApplyParams = Static<typeof ApplyParams>;
export type ApplyResult = Static<typeof ApplyResult>;
export type Outcome = Static<typeof Outcome>;
export type OperationResult = Static<typeof OperationResult>;
export type OwnedAddressesResult = Static<typeof OwnedAddressesResult>;
export type HelperInfoResult = Static<typeof HelperInfoResult>;
export type ParamsOf<M extends MethodName> = Static<(typeof METHODS)[M]['params']>;
export type ResultOf<M extends MethodName> = Static<(typeof METHODS)[M]['result']>;
