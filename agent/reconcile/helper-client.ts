// The agent's side of the helper protocol: one Unix-socket connection, JSON-RPC requests typed
// by protocol/methods.ts, a timeout per request, and a fresh connection on the next call after
// the previous one broke. The helper being down is an error value with a clear message; the
// reconciler retries.
import { createConnection, type Socket } from 'node:net';
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from 'json-rpc-2.0';
import { DEFAULT_HELPER_SOCKET, MAX_MESSAGE_BYTES } from '../../protocol/constants.js';
import { LineSplitter } from '../../protocol/framing.js';
import type { Operation } from '../../protocol/operations.js';
import type { ApplyResult, MethodName, OwnedAddressesResult, ParamsOf, ResultOf } from '../../protocol/methods.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/**
 * An idle connection is closed after this long: the helper exits (--idle-exit) only when no
 * connection is open, and socket activation starts it again on the next request.
 */
export const DEFAULT_IDLE_CLOSE_MS = 1_000;

/** The helper could not be reached or the connection broke; the next call connects again. */
export class HelperUnreachableError extends Error {
  constructor(
    readonly socketPath: string,
    readonly code: string,
  ) {
    super(`helper at ${socketPath} is not reachable: ${code}; will retry`);
    this.name = 'HelperUnreachableError';
  }
}

/** The helper answered with a JSON-RPC error (invalid params, refused peer, ...). */
export class HelperRequestError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`helper refused ${method}: ${message} (code ${code})`);
    this.name = 'HelperRequestError';
  }
}

export interface HelperClientOptions {
  socketPath?: string;
  timeoutMs?: number;
  /** close the connection after this long without a request in flight; 0 keeps it open */
  idleCloseMs?: number;
}

export class HelperClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private socket?: Socket;
  private connecting?: Promise<Socket>;
  private rpc?: JSONRPCClient;
  private lastBreak?: string;
  private readonly idleCloseMs: number;
  private inFlight = 0;
  private idleTimer?: NodeJS.Timeout;
  private earlyLedger?: Promise<OwnedAddressesResult>;

  constructor(options: HelperClientOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_HELPER_SOCKET;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.idleCloseMs = options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
  }

  /** Sends one request; rejects with HelperUnreachableError, HelperRequestError or a timeout error. */
  async request<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    this.inFlight++;
    clearTimeout(this.idleTimer);
    try {
      return await this.send(method, params);
    } finally {
      if (--this.inFlight === 0 && this.idleCloseMs > 0) {
        this.idleTimer = setTimeout(() => this.disconnect('closed after being idle'), this.idleCloseMs);
        this.idleTimer.unref();
      }
    }
  }

  private async send<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const rpc = await this.connect();
    try {
      return (await rpc.timeout(this.timeoutMs, (id) => ({
        jsonrpc: '2.0',
        id,
        error: { code: -32000, message: `no answer within ${this.timeoutMs / 1000} s` },
      })).request(method, params)) as ResultOf<M>;
    } catch (error) {
      if (error instanceof HelperUnreachableError) throw error;
      // the connection broke while waiting (rejectAllPendingRequests)
      if (!(error instanceof JSONRPCErrorException) && rpc !== this.rpc) {
        throw new HelperUnreachableError(this.socketPath, this.lastBreak ?? 'ECONNRESET');
      }
      if (error instanceof JSONRPCErrorException) {
        if (error.code === -32000 && /no answer within/.test(error.message)) {
          // an answer may still come; it would confuse the next request, so start over
          this.disconnect();
          throw new HelperUnreachableError(this.socketPath, `ETIMEDOUT (${error.message})`);
        }
        throw new HelperRequestError(method, error.code, error.message);
      }
      throw error;
    }
  }

  apply(operations: Operation[]): Promise<ApplyResult> {
    return this.request('apply', { operations });
  }

  /**
   * Asks for the ledger now, which starts a socket-activated helper while the agent sets itself
   * up and the metadata service answers; the next ownedAddresses() takes this answer.
   */
  askLedgerEarly(): void {
    this.earlyLedger = this.request('ownedAddresses', {});
    this.earlyLedger.catch(() => undefined); // not unhandled: the next ownedAddresses() reports it
  }

  ownedAddresses(): Promise<OwnedAddressesResult> {
    const early = this.earlyLedger;
    this.earlyLedger = undefined;
    return early ?? this.request('ownedAddresses', {});
  }

  info(): Promise<ResultOf<'info'>> {
    return this.request('info', {});
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.disconnect();
  }

  private disconnect(reason = 'ECONNRESET'): void {
    this.lastBreak = reason;
    const rpc = this.rpc;
    this.rpc = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    rpc?.rejectAllPendingRequests(`helper at ${this.socketPath} is not reachable: ${reason}; will retry`);
  }

  private async connect(): Promise<JSONRPCClient> {
    if (this.rpc && this.socket && !this.socket.destroyed) return this.rpc;
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.socketPath);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => reject(new HelperUnreachableError(this.socketPath, error.code ?? error.message)));
    }).finally(() => (this.connecting = undefined));
    const socket = await this.connecting;
    const rpc = new JSONRPCClient((payload) => {
      if (socket.destroyed) throw new HelperUnreachableError(this.socketPath, 'ECONNRESET');
      socket.write(JSON.stringify(payload) + '\n');
    });
    const splitter = new LineSplitter(MAX_MESSAGE_BYTES);
    socket.on('data', (data: Buffer) => {
      let lines: string[];
      try {
        lines = splitter.push(data);
      } catch {
        return this.disconnect('EMSGSIZE (answer too large)');
      }
      for (const line of lines) {
        let response: JSONRPCResponse;
        try {
          response = JSON.parse(line) as JSONRPCResponse;
        } catch {
          continue; // not JSON: nothing it could answer
        }
        if (response.id === null && 'error' in response && response.error) {
          // an error for the connection as a whole (refused peer, too many connections): fail every pending request
          const error = response.error;
          this.disconnect(`${error.message} (code ${error.code})`);
          continue;
        }
        rpc.receive(response);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) this.disconnect('ECONNRESET (the helper closed the connection)');
    });
    this.socket = socket;
    this.rpc = rpc;
    return rpc;
  }
}
