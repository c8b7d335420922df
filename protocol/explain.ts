// What is wrong with params that failed their method's check (params-checks.ts): the field, as a
// JSON pointer such as /operations/3/address, and what was expected. Only invalid requests need
// this, so the helper loads it (and with it the schema library) only for one (validate.ts).
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { METHODS, type MethodName } from './methods.js';
import { OPERATION_KINDS } from './names.js';
import { Operation } from './operations.js';

const compiled = new Map<MethodName, TypeCheck<TSchema>>();
function checkOf(method: MethodName): TypeCheck<TSchema> {
  let check = compiled.get(method);
  if (!check) compiled.set(method, (check = TypeCompiler.Compile(METHODS[method].params)));
  return check;
}

// One checker per operation kind, so an invalid operation is reported by its own fields
// rather than as "does not match the union".
let operationChecks: Map<string, TypeCheck<TSchema>> | undefined;
function operationCheckOf(kind: string): TypeCheck<TSchema> | undefined {
  operationChecks ??= new Map(Operation.anyOf.map((schema) => [schema.properties.kind.const as string, TypeCompiler.Compile(schema)]));
  return operationChecks.get(kind);
}

function operationError(operations: unknown): string | undefined {
  if (!Array.isArray(operations)) return undefined;
  for (const [index, op] of operations.entries()) {
    const kind = typeof op === 'object' && op !== null ? (op as { kind?: unknown }).kind : undefined;
    const check = typeof kind === 'string' ? operationCheckOf(kind) : undefined;
    if (!check) {
      return `invalid params: /operations/${index}/kind: must be one of ${OPERATION_KINDS.join(', ')}`;
    }
    const error = check.Errors(op).First();
    if (error) return `invalid params: /operations/${index}${error.path || ''}: ${error.message}`;
  }
  return undefined;
}

/** The error for params that do not match the method's schema. */
export function explainInvalidParams(method: MethodName, params: unknown): string {
  if (method === 'apply' && typeof params === 'object' && params !== null) {
    const specific = operationError((params as { operations?: unknown }).operations);
    if (specific) return specific;
  }
  // The union of operations reports "expected union"; a more helpful message names the
  // operation's own field, so look for the deepest error first.
  let best: { path: string; message: string } | undefined;
  for (const error of checkOf(method).Errors(params)) {
    if (!best || error.path.length > best.path.length) best = { path: error.path, message: error.message };
    if (best.path.split('/').length > 4) break;
  }
  const where = best?.path || '(params)';
  return `invalid params: ${where}: ${best?.message ?? 'does not match the schema'}`;
}
