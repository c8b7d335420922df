// The HTTP client every provider uses to talk to its metadata service. Plain node:http with no
// agent: HTTP_PROXY and friends are never consulted (every cloud says IMDS must not be proxied),
// and nothing is sent that the caller did not ask for (no X-Forwarded-For, which IMDS rejects).
// Each request has a connect timeout, a whole-request timeout and a body limit; transient
// answers (410, 429, 5xx) and broken connections are retried with exponential backoff and
// jitter, honouring Retry-After, through a gate that keeps the provider under its rate limit.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { ProviderName } from './model.js';
import { MetadataError } from './errors.js';
import { RequestGate, sleep as realSleep, type Sleep } from './rate-limit.js';

export const DEFAULT_IMDS_URL = 'http://169.254.169.254';

/** Tests and the demo point the agent at a local simulator with CLOUD_NETWORK_IMDS_URL; else the cloud's own address. */
export function imdsBaseUrl(cloudUrl = DEFAULT_IMDS_URL): string {
  return process.env.CLOUD_NETWORK_IMDS_URL || cloudUrl;
}

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Statuses that mean "try again later" on every cloud. */
const RETRYABLE_STATUS = new Set([410, 429, 500, 502, 503, 504]);

export interface MetadataClientOptions {
  provider: ProviderName;
  /** default: CLOUD_NETWORK_IMDS_URL or http://169.254.169.254 (a provider whose cloud answers elsewhere passes its own) */
  baseUrl?: string;
  connectTimeoutMs?: number;
  /** the whole request, from connect to the last body byte */
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
  /** retries after the first attempt */
  retries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** a Retry-After longer than this is cut to it */
  maxRetryAfterMs?: number;
  requestsPerSecond?: number;
  /** request starts that may leave together (default 1: evenly spaced) */
  burst?: number;
  concurrency?: number;
  /** injectable for tests: records the delays instead of waiting them */
  sleep?: Sleep;
  random?: () => number;
  /** called once per attempt with the HTTP status or why there was none (the agent's metrics) */
  onResponse?: (provider: ProviderName, outcome: number | 'timeout' | 'network-error') => void;
  /** one line per attempt and per wait before a retry (the agent's log at Debug) */
  debug?: (line: string) => void;
}

export interface MetadataRequest {
  method?: 'GET' | 'PUT';
  /** path and query, e.g. "/metadata/instance?api-version=2021-02-01" */
  path: string;
  headers?: Record<string, string>;
  /** overrides requestTimeoutMs (GCP long polls) */
  timeoutMs?: number;
  /** overrides the client's retries (a probe tries once) */
  retries?: number;
  signal?: AbortSignal;
  /** called once the request has been handed to the kernel: work that can wait for the answer starts then */
  onSent?: () => void;
}

export interface MetadataResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export class MetadataClient {
  readonly baseUrl: URL;
  readonly provider: ProviderName;
  private readonly gate: RequestGate;
  private readonly options: Required<Omit<MetadataClientOptions, 'baseUrl' | 'provider' | 'onResponse' | 'debug'>>;
  private readonly onResponse: NonNullable<MetadataClientOptions['onResponse']>;
  private readonly debug: NonNullable<MetadataClientOptions['debug']>;

  constructor(options: MetadataClientOptions) {
    this.provider = options.provider;
    this.baseUrl = new URL(options.baseUrl ?? imdsBaseUrl());
    if (this.baseUrl.protocol !== 'http:') {
      throw new Error(`metadata URL ${this.baseUrl.href}: only http:// is supported (the metadata services speak plain HTTP)`);
    }
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      maxBodyBytes: options.maxBodyBytes ?? MAX_BODY_BYTES,
      retries: options.retries ?? 4,
      backoffMs: options.backoffMs ?? 250,
      maxBackoffMs: options.maxBackoffMs ?? 8_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      requestsPerSecond: options.requestsPerSecond ?? 50,
      burst: options.burst ?? 1,
      concurrency: options.concurrency ?? 8,
      sleep: options.sleep ?? realSleep,
      random: options.random ?? Math.random,
    };
    this.onResponse = options.onResponse ?? (() => {});
    this.debug = options.debug ?? (() => {});
    this.gate = new RequestGate(this.options.requestsPerSecond, this.options.concurrency, Date.now, this.options.burst);
  }

  /**
   * Sends the request, retrying transient failures. Resolves with any final answer that is not
   * transient (200, 401, 404, ...: the caller judges it); rejects with a MetadataError when no
   * usable answer came within the retries.
   */
  async request(request: MetadataRequest): Promise<MetadataResponse> {
    const retries = request.retries ?? this.options.retries;
    const what = `${this.provider} metadata: ${request.method ?? 'GET'} ${request.path}`;
    for (let attempt = 0; ; attempt++) {
      let failure: MetadataError;
      let retryAfterMs = 0;
      await this.gate.acquire(request.signal).catch((reason) => {
        throw this.aborted(what, reason);
      });
      const started = performance.now();
      const took = () => `${Math.round(performance.now() - started)} ms${attempt > 0 ? ` (attempt ${attempt + 1})` : ''}`;
      try {
        const response = await this.once(request, what).catch((error: unknown) => {
          if (error instanceof MetadataError && error.kind !== 'aborted') {
            this.onResponse(this.provider, error.kind === 'timeout' ? 'timeout' : 'network-error');
          }
          if (error instanceof MetadataError) this.debug(`${error.message} after ${took()}`);
          throw error;
        });
        this.onResponse(this.provider, response.status);
        this.debug(`${what}: ${response.status}, ${Buffer.byteLength(response.body)} bytes in ${took()}`);
        if (!RETRYABLE_STATUS.has(response.status)) return response;
        failure = new MetadataError(`${what} answered ${response.status}${attempt > 0 ? ` after ${attempt + 1} attempts` : ''}`, {
          provider: this.provider,
          kind: 'status',
          status: response.status,
        });
        retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      } catch (error) {
        if (!(error instanceof MetadataError) || !isTransient(error)) throw error;
        failure = error;
      } finally {
        this.gate.release();
      }
      if (attempt >= retries) throw failure;
      const exponential = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** attempt);
      // "equal jitter": at least half the backoff, so retries never bunch up at zero
      const backoff = exponential / 2 + (this.options.random() * exponential) / 2;
      const delay = Math.max(backoff, Math.min(retryAfterMs, this.options.maxRetryAfterMs));
      const honoured =
        retryAfterMs === 0
          ? ''
          : ` (Retry-After ${Math.round(retryAfterMs / 1000)} s${retryAfterMs > this.options.maxRetryAfterMs ? `, cut to ${Math.round(this.options.maxRetryAfterMs / 1000)} s` : ''})`;
      this.debug(`${what}: retry ${attempt + 1} of ${retries} in ${Math.round(delay)} ms${honoured}`);
      await this.options.sleep(Math.round(delay), request.signal).catch((reason) => {
        throw this.aborted(what, reason);
      });
    }
  }

  private aborted(what: string, reason: unknown): MetadataError {
    const why = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
    return new MetadataError(`${what} was cancelled (${why})`, { provider: this.provider, kind: 'aborted' });
  }

  private once(request: MetadataRequest, what: string): Promise<MetadataResponse> {
    const { maxBodyBytes, connectTimeoutMs } = this.options;
    const timeoutMs = request.timeoutMs ?? this.options.requestTimeoutMs;
    const url = new URL(request.path, this.baseUrl);
    const provider = this.provider;
    return new Promise((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (error: MetadataError | undefined, response?: MetadataResponse) => {
        if (settled) return;
        settled = true;
        timers.forEach(clearTimeout);
        request.signal?.removeEventListener('abort', onAbort);
        if (error) {
          req.destroy();
          reject(error);
        } else resolve(response!);
      };
      const fail = (kind: MetadataError['kind'], message: string) => finish(new MetadataError(`${what}: ${message}`, { provider, kind }));
      const onAbort = () => finish(this.aborted(what, request.signal?.reason));

      const req = http.request({
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 80,
        path: url.pathname + url.search,
        method: request.method ?? 'GET',
        headers: { ...request.headers, ...(request.method === 'PUT' ? { 'Content-Length': '0' } : {}) },
        // no agent: a fresh connection that no proxy setting or pooled socket can redirect
        agent: false,
      });
      timers.push(setTimeout(() => fail('timeout', `no complete answer within ${timeoutMs} ms`), timeoutMs));
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connectTimer = setTimeout(() => fail('timeout', `no connection to ${url.host} within ${connectTimeoutMs} ms`), connectTimeoutMs);
        timers.push(connectTimer);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      if (request.onSent) req.once('finish', request.onSent);
      req.on('error', (error) => fail('network', `${(error as NodeJS.ErrnoException).code ?? error.message} (${url.host})`));
      req.on('response', (res) => {
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBodyBytes) {
          return fail('too-large', `the answer declares ${declared} bytes, more than the ${maxBodyBytes} accepted`);
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes) return fail('too-large', `the answer exceeds the ${maxBodyBytes} bytes accepted; stopped reading`);
          chunks.push(chunk);
        });
        res.on('aborted', () => fail('truncated', `the connection closed after ${size} bytes, before the answer was complete`));
        res.on('error', () => fail('truncated', `the connection broke after ${size} bytes, before the answer was complete`));
        res.on('close', () => {
          if (!res.complete) fail('truncated', `the connection closed after ${size} bytes, before the answer was complete`);
        });
        res.on('end', () => {
          if (!res.complete) return fail('truncated', `the answer ended after ${size} bytes, before it was complete`);
          finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      if (request.signal) {
        if (request.signal.aborted) return onAbort();
        request.signal.addEventListener('abort', onAbort, { once: true });
      }
      req.end();
    });
  }
}

function isTransient(error: MetadataError): boolean {
  return error.kind === 'network' || error.kind === 'timeout' || error.kind === 'truncated';
}

/** Retry-After as seconds or an HTTP date; 0 when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return 0;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? 0 : Math.max(0, date - now);
}
