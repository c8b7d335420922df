// Faults the simulator can inject, one at a time, for a number of requests or until cleared.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { SimProvider } from './scenario.js';

const Common = {
  /** affect only this many requests, then clear (default: until replaced or cleared) */
  count: Type.Optional(Type.Integer({ minimum: 1 })),
  /** affect only requests whose path starts with this (default: every metadata request) */
  path: Type.Optional(Type.String({ minLength: 1 })),
};

export const FaultSchema = Type.Union([
  /** wait this long before answering normally */
  Type.Object({ kind: Type.Literal('delay'), ms: Type.Integer({ minimum: 0, maximum: 600_000 }), ...Common }, { additionalProperties: false }),
  /** never answer; with `afterBytes`, send the headers and that many body bytes first */
  Type.Object({ kind: Type.Literal('hang'), afterBytes: Type.Optional(Type.Integer({ minimum: 0 })), ...Common }, { additionalProperties: false }),
  /** answer this status (500, 503, 410, ...) with a short body */
  Type.Object({ kind: Type.Literal('status'), status: Type.Integer({ minimum: 200, maximum: 599 }), body: Type.Optional(Type.String()), ...Common }, { additionalProperties: false }),
  /** 429 with Retry-After */
  Type.Object({ kind: Type.Literal('rateLimit'), retryAfter: Type.Integer({ minimum: 0 }), ...Common }, { additionalProperties: false }),
  /** the real answer's first half followed by garbage: invalid JSON and invalid text */
  Type.Object({ kind: Type.Literal('malformed'), ...Common }, { additionalProperties: false }),
  /** Content-Length of the whole answer, half of it sent, then the connection closed */
  Type.Object({ kind: Type.Literal('truncated'), ...Common }, { additionalProperties: false }),
  /** the socket destroyed before anything is sent */
  Type.Object({ kind: Type.Literal('close'), ...Common }, { additionalProperties: false }),
  /** the provider answers as if the VM had no NICs */
  Type.Object({ kind: Type.Literal('emptyNics'), ...Common }, { additionalProperties: false }),
  /** a 200 whose body streams `bytes` (default 100 MiB) without Content-Length */
  Type.Object({ kind: Type.Literal('hugeBody'), bytes: Type.Optional(Type.Integer({ minimum: 1 })), ...Common }, { additionalProperties: false }),
  /** GCP: the answer without its Metadata-Flavor header (not GCE, or a spoofer) */
  Type.Object({ kind: Type.Literal('noFlavorHeader'), ...Common }, { additionalProperties: false }),
  /**
   * a JSON answer (Azure's document, GCP's listing) with values replaced: each key is a JSON
   * pointer into the rendered body (`/network/interface/0/ipv4/subnet`), each value what goes
   * there; for documents the scenario schema cannot express (duplicate MACs, invalid addresses)
   */
  Type.Object({ kind: Type.Literal('corrupt'), set: Type.Record(Type.String({ pattern: '^/' }), Type.Unknown()), ...Common }, { additionalProperties: false }),
  /** EC2 and Alibaba: PUT /latest/api/token answers 403 */
  Type.Object({ kind: Type.Literal('tokenRefused'), ...Common }, { additionalProperties: false }),
]);
export type Fault = Static<typeof FaultSchema>;
export type FaultKind = Fault['kind'];

export const DEFAULT_HUGE_BODY_BYTES = 100 * 1024 * 1024;

const checkFault = TypeCompiler.Compile(FaultSchema);

/** Validates an untrusted fault (control request); null clears. Throws an Error naming the problem. */
export function parseFault(value: unknown): Fault | null {
  if (value === null) return null;
  if (checkFault.Check(value)) return value;
  const kind = (value as { kind?: unknown } | undefined)?.kind;
  const kinds = FaultSchema.anyOf.map((schema) => schema.properties.kind.const).join(', ');
  if (typeof kind !== 'string' || !kinds.split(', ').includes(kind)) throw new Error(`fault: kind must be one of ${kinds}, got ${JSON.stringify(kind)}`);
  const first = TypeCompiler.Compile(FaultSchema.anyOf.find((schema) => schema.properties.kind.const === kind)!).Errors(value).First();
  throw new Error(`fault ${kind}: ${first?.path || '/'}: ${first?.message ?? 'invalid'}`);
}

/** Whether `fault` concerns this request (some faults only make sense for one cloud or path). */
export function faultApplies(fault: Fault, provider: SimProvider, method: string, path: string): boolean {
  if (fault.path !== undefined && !path.startsWith(fault.path)) return false;
  const isTokenPut = (provider === 'ec2' || provider === 'aliyun') && method === 'PUT' && path === '/latest/api/token';
  if (fault.kind === 'tokenRefused') return isTokenPut;
  if (fault.kind === 'noFlavorHeader') return provider === 'gcp';
  // every other fault hits the token PUT too (an outage is an outage); `path` narrows it
  return true;
}

/** Sets `value` at a JSON pointer inside `document` (RFC 6901), creating nothing else; throws when the parent is missing. */
export function setAtPointer(document: unknown, pointer: string, value: unknown): void {
  const keys = pointer.slice(1).split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = keys.pop()!;
  let parent = document as Record<string, unknown>;
  for (const key of keys) {
    const next = parent?.[key];
    if (typeof next !== 'object' || next === null) throw new Error(`corrupt: ${pointer}: nothing at /${key}`);
    parent = next as Record<string, unknown>;
  }
  if (typeof parent !== 'object' || parent === null || ['__proto__', 'constructor', 'prototype'].includes(last)) throw new Error(`corrupt: cannot set ${pointer}`);
  parent[last] = value;
}
