// cnctl's HTTP client for the agent's REST API: GET a resource over the agent's Unix socket or
// TCP, parse the JSON, and turn every way that can fail into one message that says which
// address, what happened, what to check.
import { request, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
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

/** Where the API is: the agent's Unix socket, or an http:// URL (Listen=, --url). */
export type AgentAddress = { socket: string } | { url: string };

/** Nothing answered at the agent's address: cnctl exits 3, as for an agent that does not run. */
export class AgentUnreachable extends AgentError {}

export class AgentClient {
  constructor(
    readonly address: AgentAddress,
    /** where the address came from, for messages: "--url", "Listen= in /etc/…" */
    private readonly source = '--url',
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  /** The address as messages name it: the socket's path or the URL's origin. */
  get where(): string {
    return 'socket' in this.address ? this.address.socket : new URL(this.address.url).origin;
  }

  async get<T>(path: string): Promise<T> {
    const { status, body } = await this.fetch(path);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new AgentError(
        `${this.where} answered ${path} with something that is not JSON (HTTP ${status}): ` +
          `is another service listening there? The address comes from ${this.source}.`,
      );
    }
    if (status >= 200 && status < 300) return parsed as T;
    throw new AgentError(this.describeError(path, status, parsed as Partial<ErrorResource>), status);
  }

  private describeError(path: string, status: number, body: Partial<ErrorResource>): string {
    if (status === 503 && body.status) {
      const why = body.status.metadataError ?? body.status.lastError ?? 'the first fetch has not finished';
      return (
        `the agent at ${this.where} has no metadata yet: ${why}. ` +
        'It keeps retrying by itself; see its log (journalctl -u cloud-network) and `cnctl status`.'
      );
    }
    return `the agent at ${this.where} answered ${path} with HTTP ${status}: ${body.error ?? 'no reason given'}`;
  }

  private fetch(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const options: RequestOptions = { method: 'GET', headers: { Accept: 'application/json' }, timeout: this.timeoutMs };
      const answered = (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (error) => reject(this.unreachable(error)));
      };
      const req: ClientRequest =
        'socket' in this.address
          ? request({ ...options, socketPath: this.address.socket, path }, answered)
          : request(new URL(path, this.address.url), options, answered);
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => reject(this.unreachable(error)));
      req.end();
    });
  }

  private unreachable(error: NodeJS.ErrnoException): AgentError {
    const socket = 'socket' in this.address;
    const what =
      error.code === 'ECONNREFUSED'
        ? socket
          ? 'connection refused (nothing listens on the socket: the agent stopped without removing it)'
          : 'connection refused (nothing listens there)'
        : error.code === 'ENOENT' && socket
          ? 'no such socket'
          : error.code === 'EACCES'
            ? 'permission denied'
            : error.code === 'ETIMEDOUT'
              ? `no answer within ${this.timeoutMs / 1000} s`
              : error.code === 'ECONNRESET'
                ? 'the connection was closed before an answer (too many connections to the agent?)'
                : error.code === 'ENOTFOUND' && !socket
                  ? `the host name ${new URL(this.address.url).hostname} does not resolve`
                  : (error.code ?? error.message);
    return new AgentUnreachable(
      `cannot reach the cloud-network agent at ${this.where}: ${what}. ` +
        `Check that the agent runs (systemctl status cloud-network) and that this is its address ` +
        (this.source === '--url' || this.source === '--socket' ? `(given with ${this.source}).` : `(from ${this.source}; override with --socket or --url).`),
    );
  }
}
