// Runtime validation of JSON-RPC params against the method declarations in methods.ts.
import { createRequire } from 'node:module';
import type { MethodName, ParamsOf } from './methods.js';
import { METHOD_NAMES } from './names.js';
import { PARAMS_CHECKS } from './params-checks.js';

export function isMethodName(name: string): name is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(name);
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

// explain.ts, and the schema library with it, loads on the first invalid request: a valid one
// needs only the check. In the helper's bundle it is its own file beside main.js
// (dist/helper/explain.js, tools/build.mjs).
const requireBeside = createRequire(import.meta.url);
let explain: typeof import('./explain.js').explainInvalidParams | undefined;

/**
 * Checks `params` against the method's schema. On failure the error names the field
 * (a JSON pointer such as /operations/3/address) and what was expected.
 */
export function validateParams<M extends MethodName>(method: M, params: unknown): Validation<ParamsOf<M>> {
  if (PARAMS_CHECKS[method](params)) return { ok: true, value: params as ParamsOf<M> };
  explain ??= (requireBeside('./explain.js') as typeof import('./explain.js')).explainInvalidParams;
  return { ok: false, error: explain(method, params) };
}
