// The names and limits of the protocol as plain values, without the schemas (methods.ts,
// operations.ts): what the helper needs at every request besides the checks themselves, so its
// bundle carries no schema library (protocol/validate.ts). The imports are of types only: this
// file loads no schema.
import type { MethodName } from './methods.js';
import type { OperationKind } from './operations.js';

/** The helper's JSON-RPC methods; methods.ts declares each one's params and result. */
export const METHOD_NAMES = ['apply', 'ownedAddresses', 'info'] as const;

/** The operations an `apply` may carry; operations.ts declares each one. */
export const OPERATION_KINDS = ['address.add', 'address.remove', 'route.replace', 'route.remove', 'rule.add', 'rule.remove', 'link.set'] as const;

/** Most operations one `apply` may carry (the L benchmark needs ~2,048 × 3). */
export const MAX_OPERATIONS_PER_REQUEST = 10_000;

// Checked by tsc: each list is exactly what the schemas declare.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const METHODS_LISTED: Same<(typeof METHOD_NAMES)[number], MethodName> = true;
const KINDS_LISTED: Same<(typeof OPERATION_KINDS)[number], OperationKind> = true;
void METHODS_LISTED;
void KINDS_LISTED;
