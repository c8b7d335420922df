// Runtime validation of JSON-RPC params against the method declarations in methods.ts.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { METHODS, type MethodName, type ParamsOf } from './methods.js';
import { Operation, OPERATION_KINDS } from './operations.js';

const compiled = new Map<MethodName, TypeCheck<TSchema>>();
for (const name of Object.keys(METHODS) as MethodName[]) {
  compiled.set(name, TypeCompiler.Compile(METHODS[name].params));
}

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

// One checker per operation kind, so an invalid operation is reported by its own fields
// rather than as "does not match the union".
const operationChecks = new Map<string, TypeCheck<TSchema>>(
  Operation.anyOf.map((schema) => [schema.properties.kind.const as string, TypeCompiler.Compile(schema)]),
);

function operationError(operations: unknown): string | undefined {
  if (!Array.isArray(operations)) return undefined;
  for (const [index, op] of operations.entries()) {
    const kind = typeof op === 'object' && op !== null ? (op as { kind?: unknown }).kind : undefined;
    const check = typeof kind === 'string' ? operationChecks.get(kind) : undefined;
    if (!check) {
      return `invalid params: /operations/${index}/kind: must be one of ${OPERATION_KINDS.join(', ')}`;
    }
    const error = check.Errors(op).First();
    if (error) return `invalid params: /operations/${index}${error.path || ''}: ${error.message}`;
  }
  return undefined;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Checks `params` against the method's schema. On failure the error names the field
 * (a JSON pointer such as /operations/3/address) and what was expected.
 */
export function validateParams<M extends MethodName>(method: M, params: unknown): Validation<ParamsOf<M>> {
  const check = compiled.get(method)!;
  if (check.Check(params)) return { ok: true, value: params as ParamsOf<M> };
  if (method === 'apply' && typeof params === 'object' && params !== null) {
    const specific = operationError((params as { operations?: unknown }).operations);
    if (specific) return { ok: false, error: specific };
  }
  // The union of operations reports "expected union"; a more helpful message names the
  // operation's own field, so look for the deepest error first.
  let best: { path: string; message: string } | undefined;
  for (const error of check.Errors(params)) {
    if (!best || error.path.length > best.path.length) best = { path: error.path, message: error.message };
    if (best.path.split('/').length > 4) break;
  }
  const where = best?.path || '(params)';
  return { ok: false, error: `invalid params: ${where}: ${best?.message ?? 'does not match the schema'}` };
}
