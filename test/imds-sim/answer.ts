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
