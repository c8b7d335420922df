// The agent's read-only REST API on Listen= (default 127.0.0.1:5209). Every local user can
// reach it, so it serves nothing secret and bounds what one client can hold: header size,
// connection count, and how long a connection may sit idle or trickle a request.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import Koa from 'koa';
import type Logger from 'bunyan';
import type { Metrics } from '../metrics.js';
import { isLoopback, parseListen } from '../../../protocol/rest.js';
import type { AgentView } from './resources.js';
import { apiRouter, sendError } from './routes.js';

export type { AgentView } from './resources.js';

export interface ApiLimits {
  /** bytes of request line + headers (node's maxHeaderSize) */
  maxHeaderSize: number;
  /** open connections at once; further ones are closed at once (server.maxConnections) */
  maxConnections: number;
  /** ms to receive the complete headers */
  headersTimeout: number;
  /** ms to receive the complete request */
  requestTimeout: number;
  /** ms an idle keep-alive connection stays open */
  keepAliveTimeout: number;
  /** ms between node's checks of the two timeouts above */
  connectionsCheckingInterval: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxHeaderSize: 8 * 1024,
  maxConnections: 64,
  headersTimeout: 5_000,
  requestTimeout: 10_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
};

export interface ApiOptions {
  /** "127.0.0.1:5209", "[::1]:5209"; port 0 picks a free port */
  listen: string;
  view: AgentView;
  metrics: Metrics;
  log: Logger;
  limits?: Partial<ApiLimits>;
}

export interface RunningApi {
  address: string;
  port: number;
  /** stops listening and drops open connections */
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

  const app = new Koa();
  const router = apiRouter(view, metrics);
  const localNames = new Set(['localhost', hostname().toLowerCase()]);

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      log.error({ err: error, path: ctx.path }, 'REST API request failed');
      sendError(ctx, 500, `internal error while answering ${ctx.path}; see the agent's log`);
    }
  });

  app.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', ALLOW);
      ctx.set('Connection', 'close');
      sendError(ctx, 405, `the API is read-only: ${ctx.method} is not allowed (allowed: ${ALLOW})`);
      return;
    }
    // Nothing reads a body; refuse one rather than let it sit in the connection.
    const length = Number(ctx.get('Content-Length') || '0');
    if (ctx.get('Transfer-Encoding') || length > 0) {
      ctx.set('Connection', 'close');
      sendError(ctx, 413, 'request bodies are not accepted');
      return;
    }
    // A web page cannot read the API through DNS rebinding: only IP literals and local names.
    const host = hostOf(ctx.get('Host'));
    if (host && !isIpLiteral(host) && !localNames.has(host)) {
      sendError(ctx, 421, `Host ${JSON.stringify(host)} is not served here: use the agent's IP address`);
      return;
    }
    await next();
  });

  app.use(router.routes());

  app.use((ctx) => {
    if (ctx.body === undefined || ctx.body === null) {
      sendError(ctx, 404, `no resource at ${ctx.path} (try /api/v1/status, /api/v1/system, /api/v1/network, /metrics)`);
    }
  });

  const server: Server = createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      connectionsCheckingInterval: limits.connectionsCheckingInterval,
    },
    app.callback(),
  );
  server.maxConnections = limits.maxConnections;
  server.maxRequestsPerSocket = 100;
  let lastDropWarning = 0;
  server.on('drop', () => {
    // at most one line a minute: a local user holding every connection must not flood the log
    if (Date.now() - lastDropWarning < 60_000) return;
    lastDropWarning = Date.now();
    log.warn(`REST API: ${limits.maxConnections} connections are open; closing new ones until some finish or time out`);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // oversized headers, timeouts, garbage: answer if the socket can still take it, then close
    if (socket.writable && !socket.writableEnded) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new Error(`the REST API cannot listen on ${options.listen}: ${error.code ?? error.message} (check Listen= in the configuration)`));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => log.error({ err: error }, 'REST API server error'));
  const bound = server.address() as AddressInfo;
  log.info({ address: bound.address, port: bound.port }, 'REST API listening');

  return {
    address: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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
