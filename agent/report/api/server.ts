// The agent's read-only REST API, on Listen= (default 127.0.0.1:5209) and on a Unix socket in
// StateDir (api.sock, cnctl's way in). Every local user can reach it, so it serves nothing
// secret and bounds what one client can hold: header size, connections per listener and, on the
// socket, per class of user (root, the agent's own, everyone else), and how long a connection
// may sit without a complete request or leave an answer unread.
// The kernel holds back a TCP connection until its first bytes arrive, so that a client about to
// send its request is never taken for one of many connections that send nothing.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type Logger from 'bunyan';
import type { Metrics } from '../metrics.js';
import { deferAccept, peerCredentials } from '../../../netlink/libc.js';
import { isLoopback, parseListen } from '../../../protocol/rest.js';
import { connectionOf, ConnectionPool, type CloseReason, type PoolLimits } from './connections.js';
import type { AgentView } from './resources.js';
import { apiRoutes, errorAnswer, type Answer } from './routes.js';
import { pathOf, RouteTable } from './router.js';
import { listenOnSocket, PEER_CLASSES, peerClass, type PeerClass } from './unix-socket.js';

export type { AgentView } from './resources.js';

export interface ApiLimits {
  /** bytes of request line + headers (node's maxHeaderSize); more is answered 431 */
  maxHeaderSize: number;
  /** requests answered on one connection; the next is answered 503 and the connection closed */
  maxRequestsPerConnection: number;
  /** connections open at once on the TCP listener at which one waiting for a request gives way to a new one */
  maxIdleConnections: number;
  /** connections open at once on the TCP listener at all: past maxIdleConnections only those answering a request or with one arriving */
  maxConnections: number;
  /** the same two caps on the Unix socket, for each class of user: root, the agent's own user, everyone else */
  maxIdleConnectionsPerClass: number;
  maxConnectionsPerClass: number;
  /** ms from connecting to a complete request line and headers */
  headersTimeout: number;
  /** ms from an answer to the next complete request on a kept-alive connection */
  keepAliveTimeout: number;
  /** ms an answer may wait for its client to read it */
  responseTimeout: number;
  /** ms the kernel holds a TCP connection that has sent nothing before handing it over (TCP_DEFER_ACCEPT, whole seconds); 0 hands it over at once */
  deferAccept: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxHeaderSize: 8 * 1024,
  maxRequestsPerConnection: 100,
  maxIdleConnections: 64,
  maxConnections: 256,
  maxIdleConnectionsPerClass: 8,
  maxConnectionsPerClass: 32,
  headersTimeout: 3_000,
  keepAliveTimeout: 2_000,
  responseTimeout: 10_000,
  deferAccept: 3_000,
};

/**
 * Connections the kernel may hold for a listener before it accepts them (capped by
 * net.core.somaxconn): past Node's default of 511 a burst of connects has its handshakes dropped,
 * and each client caught in it waits for a retransmission, a second or more.
 */
export const LISTEN_BACKLOG = 4_096;

export interface ApiOptions {
  /** "127.0.0.1:5209", "[::1]:5209"; port 0 picks a free port */
  listen: string;
  /** the Unix socket's path (StateDir/api.sock); without it, TCP only */
  socketPath?: string;
  view: AgentView;
  metrics: Metrics;
  log: Logger;
  limits?: Partial<ApiLimits>;
}

export interface RunningApi {
  address: string;
  port: number;
  /** the Unix socket, when one was asked for */
  socketPath?: string;
  /** stops listening, drops open connections, removes the socket file */
  close(): Promise<void>;
}

const ALLOW = 'GET, HEAD';

export async function startApi(options: ApiOptions): Promise<RunningApi> {
  const { view, metrics, log } = options;
  const limits = { ...DEFAULT_API_LIMITS, ...options.limits };
  const listen = parseListen(options.listen);
  if (!isLoopback(listen.host)) {
    log.warn(
      `the REST API listens on ${options.listen}, which is not a loopback address: every host that can reach it ` +
        'can read this VM\'s network layout; set Listen=127.0.0.1:5209 unless that is intended',
    );
  }
  metrics.observe(() => view.status(), view.version);

  const routes = new RouteTable(apiRoutes(view, metrics));
  const localNames = new Set(['localhost', hostname().toLowerCase()]);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req.url ?? '');
    let answer: Answer;
    try {
      answer = answerTo(req, path, routes, localNames);
    } catch (error) {
      log.error({ err: error, path }, 'REST API request failed');
      answer = errorAnswer(500, `internal error while answering ${path}; see the agent's log`);
    }
    send(req, res, answer);
  };

  // Never listens itself: the listeners below hand it the connections their pools admit.
  const server: Server = createServer({ maxHeaderSize: limits.maxHeaderSize, keepAliveTimeout: limits.keepAliveTimeout }, onRequest);
  server.maxRequestsPerSocket = limits.maxRequestsPerConnection;
  server.prependListener('request', (req, res) => {
    const connection = connectionOf(req.socket);
    if (!connection) return;
    connection.requestStarted();
    res.once('close', () => connection.requestEnded());
  });
  // No "100 Continue": nothing here reads a body, so the client is not invited to send one.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // oversized headers, garbage: answer if the socket can still take it, then close
    if (socket.writable && !socket.writableEnded) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });

  const timeouts = { headersTimeout: limits.headersTimeout, keepAliveTimeout: limits.keepAliveTimeout, responseTimeout: limits.responseTimeout };
  const onClose = (listener: 'tcp' | 'socket', where: string, max: PoolLimits) => {
    let lastWarning = 0;
    return (reason: CloseReason) => {
      metrics.apiConnectionClosed(listener, reason);
      if (reason === 'timeout') return;
      // at most one line a minute per pool: a local user holding connections must not flood the log
      if (Date.now() - lastWarning < 60_000) return;
      lastWarning = Date.now();
      const action =
        reason === 'evicted'
          ? `${max.maxIdle} connections are open; closing idle ones (those that sent nothing first, then the longest waiting) to admit new ones`
          : `${max.maxConnections} connections are open, every one answering a request or with one arriving, so new ones are closed`;
      log.warn(`REST API on ${where}: ${action}`);
    };
  };
  const tcpLimits = { ...timeouts, maxIdle: limits.maxIdleConnections, maxConnections: limits.maxConnections };
  const tcpPool = new ConnectionPool(tcpLimits, onClose('tcp', options.listen, tcpLimits));
  // each class of user has a pool of its own on the socket, so no other user can take root's places
  const agentUid = process.getuid?.() ?? -1;
  const classLimits = { ...timeouts, maxIdle: limits.maxIdleConnectionsPerClass, maxConnections: limits.maxConnectionsPerClass };
  const socketPools = new Map<PeerClass, ConnectionPool>(
    options.socketPath ? PEER_CLASSES.map((c) => [c, new ConnectionPool(classLimits, onClose('socket', `${options.socketPath} (${classText(c, agentUid)})`, classLimits))]) : [],
  );

  const listeners: NetServer[] = [];
  const closeListeners = async () => {
    // a listener's close waits for its connections, so they are dropped after it stops accepting
    const closed = Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    tcpPool.closeAll();
    for (const pool of socketPools.values()) pool.closeAll();
    await closed;
  };

  if (options.socketPath) {
    const path = options.socketPath;
    try {
      listeners.push(
        await listenOnSocket(path, LISTEN_BACKLOG, (socket: Socket) => {
          const peer = peerCredentials(socket);
          if (peer instanceof Error) log.debug({ err: peer }, `REST API on ${path}: the peer's credentials are unknown`);
          if (socketPools.get(peerClass(peer, agentUid))!.admit(socket)) server.emit('connection', socket);
        }),
      );
    } catch (error) {
      throw new Error(`the REST API cannot listen on ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (StateDir= in the configuration)`);
    }
  }

  const tcp = createTcpServer({ noDelay: true }, (socket: Socket) => {
    if (tcpPool.admit(socket)) server.emit('connection', socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(new Error(`the REST API cannot listen on ${options.listen}: ${error.code ?? error.message} (check Listen= in the configuration)`));
      };
      tcp.once('error', onError);
      tcp.listen({ port: listen.port, host: listen.host, backlog: LISTEN_BACKLOG }, () => {
        tcp.off('error', onError);
        resolve();
      });
    });
  } catch (error) {
    await closeListeners();
    throw error;
  }
  listeners.push(tcp);
  if (limits.deferAccept > 0 && !deferAccept(tcp, Math.ceil(limits.deferAccept / 1000))) {
    log.warn(`REST API on ${options.listen}: cannot set TCP_DEFER_ACCEPT; connections that send nothing reach the API at once and may crowd out a client slow to send its request`);
  }
  for (const listener of listeners) listener.on('error', (error) => log.error({ err: error }, 'REST API server error'));
  const bound = tcp.address() as AddressInfo;
  log.info({ address: bound.address, port: bound.port, ...(options.socketPath && { socket: options.socketPath }) }, 'REST API listening');

  return {
    address: bound.address,
    port: bound.port,
    ...(options.socketPath && { socketPath: options.socketPath }),
    close: closeListeners,
  };
}

/** The checks every request passes, then its route's answer, or 404. */
function answerTo(req: IncomingMessage, path: string, routes: RouteTable<Answer>, localNames: Set<string>): Answer {
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    return { ...errorAnswer(405, `the API is read-only: ${method} is not allowed (allowed: ${ALLOW})`), headers: { Allow: ALLOW, Connection: 'close' } };
  }
  // Nothing reads a body; refuse one rather than let it sit in the connection.
  if (req.headers['transfer-encoding'] || Number(req.headers['content-length'] || '0') > 0) {
    return { ...errorAnswer(413, 'request bodies are not accepted'), headers: { Connection: 'close' } };
  }
  // A web page cannot read the API through DNS rebinding: only IP literals and local names.
  const host = hostOf(req.headers.host ?? '');
  if (host && !isIpLiteral(host) && !localNames.has(host)) {
    return errorAnswer(421, `Host ${JSON.stringify(host)} is not served here: use the agent's IP address`);
  }
  const found = routes.find(path);
  if (found) return found.route.answer(found.param);
  return errorAnswer(404, `no resource at ${path} (try /api/v1/status, /api/v1/system, /api/v1/network, /metrics)`);
}

/** Writes the answer with the headers every answer carries; HEAD gets them without the body. */
function send(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
  res.statusCode = answer.status;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', answer.type);
  res.setHeader('Content-Length', Buffer.byteLength(answer.body));
  res.end(req.method === 'HEAD' ? undefined : answer.body);
}

/** A class of user as log lines name it. */
function classText(c: PeerClass, agentUid: number): string {
  return c === 'root' ? 'root' : c === 'agent' ? `the agent's own user, uid ${agentUid}` : 'every other user';
}

function hostOf(header: string): string {
  if (!header) return '';
  const bracketed = /^\[([^\]]+)\]/.exec(header);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return header.replace(/:\d*$/, '').toLowerCase();
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
