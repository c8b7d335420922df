// A metadata service that wants a session token on every GET: EC2's IMDSv2 and Alibaba Cloud's
// hardening mode. The token is PUT for by the provider (its own path, headers and checks), kept
// until a tenth of its lifetime (at most 5 minutes) before it expires, shared by concurrent
// callers, and renewed once when a GET is answered 401 (it expired, or the service restarted).
import type { MetadataClient } from '../client.js';
import { MetadataError } from '../errors.js';
import type { ProviderName } from '../model.js';

/** A token the service issued, and the client (the service's address) that issued it. */
export interface IssuedToken {
  value: string;
  client: MetadataClient;
}

export interface TokenSessionOptions {
  provider: ProviderName;
  /** the lifetime the provider asks for, 1–21600 s */
  ttlSeconds: number;
  now: () => number;
  /** the header each GET carries the token in */
  header: string;
  /** the PUT: resolves with a checked token, rejects with the provider's own error */
  issue: (signal: AbortSignal | undefined, retries: number | undefined) => Promise<IssuedToken>;
  /**
   * A GET found no service at the token's address (EC2: look for its other address): the token
   * is dropped with it. Without it, a token outlives a service that did not answer once.
   */
  unreachable?: () => void;
}

/** The longest token lifetime either service grants. */
export const MAX_TOKEN_TTL_S = 21_600;

export class TokenSession {
  private token?: IssuedToken & { renewAt: number };
  private pending?: Promise<IssuedToken>;

  constructor(private readonly options: TokenSessionOptions) {
    const { ttlSeconds } = options;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_S) {
      throw new Error(`${options.provider} metadata token TTL ${ttlSeconds} s is outside 1–${MAX_TOKEN_TTL_S}`);
    }
  }

  /** The kept token, or a new one; `retries` as the client's (a probe asks once). */
  async current(signal?: AbortSignal, retries?: number): Promise<IssuedToken> {
    if (this.token && this.options.now() < this.token.renewAt) return this.token;
    this.pending ??= this.renew(signal, retries).finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Whether the service issues a token at all (asked once): a provider's probe, the token then kept for its fetches. */
  async probe(signal?: AbortSignal): Promise<boolean> {
    try {
      await this.current(signal, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** A GET of an absolute path: its text, or undefined for 404; anything else is an error. */
  async get(path: string, signal?: AbortSignal): Promise<string | undefined> {
    const { provider, header, unreachable } = this.options;
    for (let renewed = false; ; renewed = true) {
      const { value, client } = await this.current(signal);
      const response = await client.request({ path, headers: { [header]: value }, signal }).catch((error: unknown) => {
        if (unreachable && error instanceof MetadataError && (error.kind === 'network' || error.kind === 'timeout')) {
          this.forget(value);
          unreachable();
        }
        throw error;
      });
      if (response.status === 200) return response.body;
      if (response.status === 404) return undefined;
      if (response.status === 401 && !renewed) {
        this.forget(value);
        continue;
      }
      throw new MetadataError(`${provider} metadata: GET ${path} answered ${response.status}${response.status === 401 ? ' even with a new token' : ''}`, {
        provider,
        kind: 'status',
        status: response.status,
        field: path.replace(/^\/latest\//, ''),
      });
    }
  }

  /** Drops the token if it is still the kept one (another caller may have renewed it already). */
  private forget(value: string): void {
    if (this.token?.value === value) this.token = undefined;
  }

  private async renew(signal: AbortSignal | undefined, retries: number | undefined): Promise<IssuedToken> {
    const asked = this.options.now();
    const token = await this.options.issue(signal, retries);
    // renewed a tenth of its lifetime (at most 5 minutes) early, so no GET carries a dying token
    const { ttlSeconds } = this.options;
    this.token = { ...token, renewAt: asked + ttlSeconds * 1000 - Math.min(300_000, ttlSeconds * 100) };
    return token;
  }
}
