// cnctl's HTTP client for the agent's REST API: GET a resource, parse the JSON, and turn every
// way that can fail into one message that says which address, what happened, what to check.
import { request } from 'node:http';
import type { ErrorResource } from '../protocol/rest.js';

export const REQUEST_TIMEOUT_MS = 5_000;

/** The agent could not be reached, or answered with an error (its HTTP status, when it answered). */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/** Nothing answered at the agent's address: cnctl exits 3, as for an agent that does not run. */
export class AgentUnreachable extends AgentError {}

export class AgentClient {
  constructor(
    /** "http://127.0.0.1:5209" */
    readonly baseUrl: string,
    /** where the address came from, for messages: "--url", "Listen= in /etc/…" */
    private readonly source = '--url',
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  async get<T>(path: string): Promise<T> {
    const url = new URL(path, this.baseUrl);
    const { status, body } = await this.fetch(url);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new AgentError(
        `${url.origin} answered ${path} with something that is not JSON (HTTP ${status}): ` +
          `is another service listening there? The address comes from ${this.source}.`,
      );
    }
    if (status >= 200 && status < 300) return parsed as T;
    throw new AgentError(this.describeError(url, path, status, parsed as Partial<ErrorResource>), status);
  }

  private describeError(url: URL, path: string, status: number, body: Partial<ErrorResource>): string {
    if (status === 503 && body.status) {
      const why = body.status.metadataError ?? body.status.lastError ?? 'the first fetch has not finished';
      return (
        `the agent at ${url.origin} has no metadata yet: ${why}. ` +
        'It keeps retrying by itself; see its log (journalctl -u cloud-network) and `cnctl status`.'
      );
    }
    return `the agent at ${url.origin} answered ${path} with HTTP ${status}: ${body.error ?? 'no reason given'}`;
  }

  private fetch(url: URL): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers: { Accept: 'application/json' }, timeout: this.timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (error) => reject(this.unreachable(url, error)));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => reject(this.unreachable(url, error)));
      req.end();
    });
  }

  private unreachable(url: URL, error: NodeJS.ErrnoException): AgentError {
    const what =
      error.code === 'ECONNREFUSED'
        ? 'connection refused (nothing listens there)'
        : error.code === 'ETIMEDOUT'
          ? `no answer within ${this.timeoutMs / 1000} s`
          : error.code === 'ECONNRESET'
            ? 'the connection was closed before an answer (too many connections to the agent?)'
            : error.code === 'ENOTFOUND'
              ? `the host name ${url.hostname} does not resolve`
              : (error.code ?? error.message);
    return new AgentUnreachable(
      `cannot reach the cloud-network agent at ${url.origin}: ${what}. ` +
        `Check that the agent runs (systemctl status cloud-network) and that this is its address ` +
        (this.source === '--url' ? '(given with --url).' : `(from ${this.source}; override with --url).`),
    );
  }
}
