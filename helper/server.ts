// The helper's connection handling: peer check, line framing, limits, JSON-RPC dispatch and
// the audit line of every request. Nothing a peer sends can stop the helper: every input
// path ends in an error response or a closed connection.
import type { Server, Socket } from 'node:net';
import { JSONRPCErrorException, JSONRPCServer, isJSONRPCID, type JSONRPCID, type JSONRPCResponse } from 'json-rpc-2.0';
import type { Log } from './log.js';
import { MAX_MESSAGE_BYTES } from '../protocol/constants.js';
import { LineSplitter, LineTooLongError } from '../protocol/framing.js';
import { RpcErrorCode } from '../protocol/errors.js';
import type { ApplyParams, ApplyResult, MethodName, OperationResult } from '../protocol/methods.js';
import { isMethodName, validateParams } from '../protocol/validate.js';
import type { Applier } from './applier.js';
import type { AuditLog } from './audit.js';
import { SerialQueue } from './serial.js';
import { checkPeer, peerCredentials, type PeerCredentials } from './peer.js';

export interface ServerLimits {
  maxConnections: number;
  /** a connection with no request in progress is closed after this long without data */
  idleMs: number;
  maxMessageBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxConnections: 8, idleMs: 30_000, maxMessageBytes: MAX_MESSAGE_BYTES };

export interface HelperServerOptions {
  applier: Applier;
  audit: AuditLog;
  log: Log;
  allowUser?: string;
  limits?: Partial<ServerLimits>;
}

interface Context {
  connection: number;
  peer: PeerCredentials;
}

interface Connection extends Context {
  socket: Socket;
  lines: string[];
  /** the promise of the loop that answers queued lines, while it runs */
  answering?: Promise<void>;
  busy: boolean;
  closing: boolean;
}

const METHOD_TEXT_LIMIT = 64;

function errorLine(id: JSONRPCID, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }) + '\n';
}

export class HelperServer {
  private readonly rpc: JSONRPCServer<Context>;
  private readonly queue = new SerialQueue();
  private readonly connections = new Set<Connection>();
  private readonly limits: ServerLimits;
  private nextConnection = 1;
  private stopping = false;
  private idleListeners: (() => void)[] = [];
  private busyListeners: (() => void)[] = [];

  constructor(private readonly options: HelperServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.rpc = new JSONRPCServer<Context>({
      errorListener: (message, data) => options.log.error({ err: data }, message),
    });
    this.rpc.addMethod('apply', (params: ApplyParams) => this.serially(() => options.applier.apply(params.operations)));
    this.rpc.addMethod('ownedAddresses', () => this.serially(() => options.applier.ownedAddresses()));
    this.rpc.addMethod('info', () => options.applier.info());
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Called whenever the last connection closes (for --idle-exit). */
  onIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  /** Called whenever a connection is accepted. */
  onBusy(listener: () => void): void {
    this.busyListeners.push(listener);
  }

  attach(server: Server): void {
    server.on('connection', (socket) => this.accept(socket));
    server.maxConnections = this.limits.maxConnections * 4; // a backstop; the limit proper is below, with an answer
  }

  /** Stops taking requests, lets the one in progress finish, answers what was queued, closes every connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.queue.idle();
    for (const connection of this.connections) connection.lines.length = 0;
    await Promise.all([...this.connections].map((c) => c.answering));
    for (const connection of this.connections) connection.socket.end();
  }

  /** The method's work, one request at a time across all connections. */
  private serially<T>(job: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      if (this.stopping) throw new JSONRPCErrorException('the helper is stopping (SIGTERM); the request was not carried out', RpcErrorCode.ShuttingDown);
      try {
        return await job();
      } catch (error) {
        if (error instanceof JSONRPCErrorException) throw error;
        throw new JSONRPCErrorException((error as Error).message, RpcErrorCode.InternalError);
      }
    });
  }

  /** refused sockets not closed yet (the refusal line still on its way) */
  private readonly refusing = new Set<Socket>();

  private refuse(socket: Socket, connection: number, peer: PeerCredentials | undefined, code: number, reason: string): void {
    this.options.audit.refusedConnection(connection, peer, reason);
    socket.on('error', () => undefined);
    // read and drop what the peer sent, so its end closes the socket at once
    socket.resume();
    socket.end(errorLine(null, code, `connection refused: ${reason}`));
    // Refused sockets count against the server's backstop until closed: a peer connecting in
    // a loop must not fill it and lock out the agent, so only a few may linger.
    this.refusing.add(socket);
    socket.once('close', () => this.refusing.delete(socket));
    if (this.refusing.size > this.limits.maxConnections) this.refusing.values().next().value?.destroy();
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  private accept(socket: Socket): void {
    const id = this.nextConnection++;
    const credentials = peerCredentials(socket);
    if (credentials instanceof Error) return this.refuse(socket, id, undefined, RpcErrorCode.PeerNotAllowed, `cannot tell who the peer is: ${credentials.message}`);
    const peer = credentials;
    if (this.stopping) return this.refuse(socket, id, peer, RpcErrorCode.ShuttingDown, 'the helper is stopping');
    const decision = checkPeer(peer, this.options.allowUser);
    if (!decision.allowed) return this.refuse(socket, id, peer, RpcErrorCode.PeerNotAllowed, decision.reason);
    if (this.connections.size >= this.limits.maxConnections) {
      return this.refuse(socket, id, peer, RpcErrorCode.TooManyConnections, `the helper already serves ${this.limits.maxConnections} connections; try again`);
    }
    const connection: Connection = { connection: id, peer, socket, lines: [], busy: false, closing: false };
    this.connections.add(connection);
    for (const listener of this.busyListeners) listener();
    this.options.log.debug({ connection: id, peer }, 'connection accepted');

    const splitter = new LineSplitter(this.limits.maxMessageBytes);
    socket.setTimeout(this.limits.idleMs);
    socket.on('timeout', () => {
      if (connection.busy) return; // a long apply is not idleness
      this.options.audit.connectionClosed(id, peer, `no request for ${this.limits.idleMs / 1000} s`);
      socket.destroy();
    });
    socket.on('error', (error) => this.options.log.debug({ connection: id, err: error.message }, 'connection error'));
    socket.on('close', () => {
      connection.closing = true;
      connection.lines.length = 0;
      this.connections.delete(connection);
      if (this.connections.size === 0) for (const listener of this.idleListeners) listener();
    });
    socket.on('data', (data: Buffer) => {
      if (connection.closing) return;
      let lines: string[];
      try {
        lines = splitter.push(data);
      } catch (error) {
        const message = error instanceof LineTooLongError ? error.message : `unreadable input: ${(error as Error).message}`;
        connection.closing = true;
        connection.lines.length = 0;
        this.options.audit.request({ connection: id, peer, method: '(oversized message)', durationMs: 0, error: { code: RpcErrorCode.MessageTooLarge, message } });
        socket.end(errorLine(null, RpcErrorCode.MessageTooLarge, `${message}; closing the connection`));
        setTimeout(() => socket.destroy(), 1_000).unref();
        return;
      }
      if (lines.length === 0 || this.stopping) return;
      connection.lines.push(...lines);
      connection.answering ??= this.answer(connection).finally(() => (connection.answering = undefined));
    });
  }

  /** Answers a connection's lines one after the other; reading pauses meanwhile, which bounds memory. */
  private async answer(connection: Connection): Promise<void> {
    const { socket } = connection;
    socket.pause();
    try {
      while (connection.lines.length > 0 && !connection.closing) {
        const line = connection.lines.shift()!;
        connection.busy = true;
        let response: string | undefined;
        try {
          response = await this.handle(line, connection);
        } catch (error) {
          // the last line of defence: a bug answers with an internal error, it does not crash
          this.options.log.error({ err: error, connection: connection.connection }, 'request handling failed');
          response = errorLine(null, RpcErrorCode.InternalError, 'internal error');
        } finally {
          connection.busy = false;
        }
        if (response === undefined || connection.closing || socket.destroyed) continue;
        if (!socket.write(response)) {
          await new Promise<void>((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
      }
    } finally {
      if (!socket.destroyed) socket.resume();
    }
  }

  /** One line in, at most one response line out. */
  private async handle(line: string, context: Context): Promise<string | undefined> {
    // process.hrtime: node:perf_hooks would load modules the helper needs nowhere else, for one clock
    const started = process.hrtime.bigint();
    const audit = (method: string, id: JSONRPCID | undefined, error?: { code: number; message: string }, extra: { operations?: ApplyParams['operations']; results?: OperationResult[] } = {}) =>
      this.options.audit.request({ ...context, method, id, durationMs: Number(process.hrtime.bigint() - started) / 1e6, ...(error ? { error } : {}), ...extra });
    const fail = (method: string, id: JSONRPCID, code: number, message: string) => {
      audit(method, id, { code, message });
      return errorLine(id, code, message);
    };

    if (line.trim() === '') return undefined;
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch (error) {
      return fail('(unparsable)', null, RpcErrorCode.ParseError, `parse error: ${(error as Error).message}`);
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return fail('(invalid)', null, RpcErrorCode.InvalidRequest, Array.isArray(request) ? 'invalid request: batches are not accepted; send one request per line' : 'invalid request: expected a JSON-RPC 2.0 request object');
    }
    const r = request as { jsonrpc?: unknown; method?: unknown; id?: unknown; params?: unknown };
    const id: JSONRPCID = isJSONRPCID(r.id) ? r.id : null;
    if (r.jsonrpc !== '2.0') return fail('(invalid)', id, RpcErrorCode.InvalidRequest, 'invalid request: "jsonrpc" must be "2.0"');
    if (typeof r.method !== 'string') return fail('(invalid)', id, RpcErrorCode.InvalidRequest, 'invalid request: "method" must be a string');
    if (r.id !== undefined && !isJSONRPCID(r.id)) return fail('(invalid)', null, RpcErrorCode.InvalidRequest, 'invalid request: "id" must be a string, a number or null');
    const methodText = r.method.length > METHOD_TEXT_LIMIT ? `${r.method.slice(0, METHOD_TEXT_LIMIT)}…` : r.method;
    if (r.id === undefined) {
      // a notification gets no answer by definition; the helper changes nothing nobody hears about
      audit(methodText, undefined, { code: RpcErrorCode.InvalidRequest, message: 'notification ignored: requests must carry an id' });
      return undefined;
    }
    if (!isMethodName(r.method)) return fail(methodText, id, RpcErrorCode.MethodNotFound, `method not found: ${JSON.stringify(methodText)}; the helper has apply, ownedAddresses and info`);
    const method: MethodName = r.method;
    // methods without parameters may omit them
    const params = r.params === undefined && method !== 'apply' ? {} : r.params;
    const valid = validateParams(method, params);
    if (!valid.ok) return fail(method, id, RpcErrorCode.InvalidParams, valid.error);

    const response = (await this.rpc.receive({ jsonrpc: '2.0', id, method, params: valid.value }, context)) as JSONRPCResponse | null;
    if (!response) return fail(method, id, RpcErrorCode.InternalError, 'internal error: no response');
    if ('error' in response && response.error) {
      audit(method, id, { code: response.error.code, message: response.error.message });
    } else if (method === 'apply') {
      audit(method, id, undefined, { operations: (valid.value as ApplyParams).operations, results: (response.result as ApplyResult).results });
    } else {
      audit(method, id);
    }
    return JSON.stringify(response) + '\n';
  }
}
