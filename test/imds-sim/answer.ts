// What a simulated metadata service hands back for one request, before faults are applied.
import type { IncomingHttpHeaders } from 'node:http';
import type { Scenario } from './scenario.js';

export interface SimRequest {
  method: string;
  /** the URL path, not decoded further than the HTTP parser does */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** aborted when the client goes away (GCP wait_for_change stops waiting) */
  signal: AbortSignal;
  /** the scenario as this request sees it, read afresh on each call (faults may empty its NICs) */
  scenario(): Scenario;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function answer(status: number, body: string, contentType: string, headers: Record<string, string> = {}): Answer {
  return { status, body, headers: { 'Content-Type': contentType, ...headers } };
}

/** Azure and the control endpoint answer JSON. */
export function jsonAnswer(status: number, value: unknown, headers: Record<string, string> = {}): Answer {
  return answer(status, JSON.stringify(value), 'application/json; charset=utf-8', headers);
}

/**
 * JSON as EC2's identity document and OCI's older captures print it (Jackson's default pretty
 * printer): "key" : value, objects indented by two, arrays on one line ([ {, }, { ... } ]).
 */
export function jacksonJson(value: unknown, level = 0): string {
  if (Array.isArray(value)) return value.length === 0 ? '[ ]' : `[ ${value.map((item) => jacksonJson(item, level)).join(', ')} ]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return '{ }';
    const pad = '  '.repeat(level + 1);
    return `{\n${entries.map(([key, item]) => `${pad}${JSON.stringify(key)} : ${jacksonJson(item, level + 1)}`).join(',\n')}\n${'  '.repeat(level)}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function textAnswer(status: number, body: string, headers: Record<string, string> = {}): Answer {
  return answer(status, body, 'text/plain; charset=utf-8', headers);
}

/** A metadata service for one cloud. */
export interface ProviderService {
  handle(request: SimRequest): Answer | Promise<Answer>;
  /** the scenario changed (GCP releases wait_for_change requests whose content changed) */
  scenarioChanged(): void;
  close(): void;
}
