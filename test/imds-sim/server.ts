// The simulator: one HTTP server answering as the scenario's cloud, with faults, statistics and
// a control interface (in-process API, /__sim/* with X-Sim-Control: 1, or a Unix socket).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { answer, jsonAnswer, type Answer, type ProviderService } from './answer.js';
import { AliyunImds } from './aliyun.js';
import { AzureImds } from './azure.js';
import { Ec2Imds } from './ec2.js';
import { DEFAULT_HUGE_BODY_BYTES, faultApplies, parseFault, setAtPointer, type Fault } from './faults.js';
import { etagOf, GcpImds } from './gcp.js';
import { OciImds } from './oci.js';
import { parseScenario, type Scenario, type SimProvider } from './scenario.js';

export interface SimulatorOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** default 0 (a free port) */
  port?: number;
  /** more addresses to answer on, with the same scenario (EC2's IPv4 and IPv6 addresses) */
  alsoListen?: { host: string; port: number }[];
  scenario: Scenario;
  /** answer as this cloud whatever the scenario says */
  provider?: SimProvider;
  /** also serve the control endpoints (without X-Sim-Control) on this Unix socket */
  controlSocket?: string;
  /** milliseconds since the epoch; tests pass a fake one to expire EC2 tokens or fill Azure's second */
  clock?: () => number;
  /** Azure's throttle, default 5 (the real limit) */
  azureRequestsPerSecond?: number;
}

export interface SimStats {
  /** metadata requests received (control requests excluded) */
  requests: number;
  /** per URL path (no query), e.g. "/latest/meta-data/mac" */
  byPath: Record<string, number>;
  byProvider: Record<SimProvider, number>;
  /** the metadata requests in the order they arrived (the last REQUEST_LOG_LIMIT) */
  log: SimRequestRecord[];
  /** PUT /latest/api/token requests (EC2, Alibaba), and how many of them got a token */
  tokenPuts: number;
  tokensIssued: number;
  /** 429 answers: Azure's throttle and the rateLimit fault */
  rateLimited: number;
  /** requests a fault was applied to */
  faulted: number;
  /** GCP wait_for_change requests held right now */
  waiting: number;
  /** requests the hang fault holds right now */
  hanging: number;
}

export interface SimRequestRecord {
  /** milliseconds since the simulator started */
  at: number;
  method: string;
  /** path and query */
  url: string;
  /** the address family the request arrived on */
  family: 'ipv4' | 'ipv6';
  /** the status answered; 0 when the request got no answer (a fault closed or held it) */
  status: number;
}

export const REQUEST_LOG_LIMIT = 10_000;

export interface RunningSimulator {
  url: string;
  host: string;
  port: number;
  controlSocket?: string;
  /** validated; throws an Error naming the bad field. GCP waiters see the change. */
  setScenario(scenario: Scenario): void;
  scenario(): Scenario;
  /** validated; null clears */
  setFault(fault: Fault | null): void;
  fault(): Fault | null;
  stats(): SimStats;
  resetStats(): void;
  close(): Promise<void>;
}

const CONTROL_PREFIX = '/__sim/';
const CONTROL_HEADER = 'x-sim-control';
const MAX_CONTROL_BODY = 16 * 1024 * 1024;

function emptyStats(): SimStats {
  return { requests: 0, byPath: {}, byProvider: { azure: 0, ec2: 0, gcp: 0, oci: 0, aliyun: 0 }, log: [], tokenPuts: 0, tokensIssued: 0, rateLimited: 0, faulted: 0, waiting: 0, hanging: 0 };
}

function send(res: ServerResponse, method: string, reply: Answer): void {
  if (res.destroyed) return;
  const body = Buffer.from(reply.body);
  res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(body.length) });
  res.end(method === 'HEAD' ? undefined : body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CONTROL_BODY) {
        reject(new Error(`control request body exceeds ${MAX_CONTROL_BODY} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

function listen(server: Server, target: { host: string; port: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startImdsSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const clock = options.clock ?? Date.now;
  let scenario = parseScenario(structuredClone(options.scenario));
  let fault: Fault | null = null;
  let stats = emptyStats();
  const hanging = new Set<ServerResponse>();

  const gcp = new GcpImds({ onWaitersChanged: (count) => (stats.waiting = count) });
  const services: Record<SimProvider, ProviderService> = {
    azure: new AzureImds({ clock, requestsPerSecond: options.azureRequestsPerSecond ?? 5, onRateLimited: () => stats.rateLimited++ }),
    ec2: new Ec2Imds({ clock, onTokenIssued: () => stats.tokensIssued++ }),
    gcp,
    oci: new OciImds(),
    aliyun: new AliyunImds({ clock, onTokenIssued: () => stats.tokensIssued++ }),
  };
  const started = Date.now();
  const provider = (): SimProvider => options.provider ?? scenario.provider;

  /** Takes the current fault for this request, counting it down. */
  function takeFault(method: string, path: string): Fault | null {
    if (!fault || !faultApplies(fault, provider(), method, path)) return null;
    const taken = fault;
    if (fault.count !== undefined) fault = fault.count <= 1 ? null : { ...fault, count: fault.count - 1 };
    stats.faulted++;
    return taken;
  }

  /** An error answer dressed as the current cloud would (GCP always says Metadata-Flavor). */
  function faultAnswer(status: number, body: string, headers: Record<string, string> = {}): Answer {
    return answer(status, body, 'text/plain; charset=utf-8', provider() === 'gcp' ? { 'Metadata-Flavor': 'Google', ETag: etagOf(body), ...headers } : headers);
  }

  function hang(res: ServerResponse): void {
    hanging.add(res);
    stats.hanging = hanging.size;
    res.on('close', () => {
      hanging.delete(res);
      stats.hanging = hanging.size;
    });
  }

  function streamHugeBody(res: ServerResponse, reply: Answer, bytes: number): void {
    res.writeHead(200, reply.headers);
    const filler = Buffer.alloc(64 * 1024, 'a');
    const opening = Buffer.from(reply.headers['Content-Type']?.includes('json') ? '{"filler":"' : '');
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes && !res.destroyed) {
        const chunk = sent === 0 ? Buffer.concat([opening, filler]) : filler;
        const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += piece.length;
        if (!res.write(piece)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  }

  async function serveMetadata(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const cloud = provider();
    stats.requests++;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    stats.byProvider[cloud]++;
    if ((cloud === 'ec2' || cloud === 'aliyun') && method === 'PUT' && path === '/latest/api/token') stats.tokenPuts++;
    const record: SimRequestRecord = { at: Date.now() - started, method, url: url.pathname + url.search, family: req.socket.localFamily === 'IPv6' ? 'ipv6' : 'ipv4', status: 0 };
    stats.log.push(record);
    if (stats.log.length > REQUEST_LOG_LIMIT) stats.log.splice(0, stats.log.length - REQUEST_LOG_LIMIT);
    res.once('finish', () => (record.status = res.statusCode));

    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const injected = takeFault(method, path);
    switch (injected?.kind) {
      case 'close':
        req.socket.destroy();
        return;
      case 'hang':
        if (injected.afterBytes === undefined) return hang(res);
        break;
      case 'delay':
        await sleep(injected.ms, gone.signal);
        if (gone.signal.aborted) return;
        break;
      case 'status':
        return send(res, method, faultAnswer(injected.status, injected.body ?? `simulated ${injected.status}\n`));
      case 'rateLimit':
        stats.rateLimited++;
        return send(res, method, faultAnswer(429, 'Too Many Requests\n', { 'Retry-After': String(injected.retryAfter) }));
      case 'tokenRefused':
        return send(res, method, faultAnswer(403, ''));
    }

    const reply = await services[cloud].handle({
      method,
      path,
      query: url.searchParams,
      headers: req.headers,
      signal: gone.signal,
      scenario: () => (injected?.kind === 'emptyNics' ? { ...scenario, nics: [] } : scenario),
    });
    if (gone.signal.aborted) return;

    const body = Buffer.from(reply.body);
    switch (injected?.kind) {
      case 'noFlavorHeader':
        delete reply.headers['Metadata-Flavor'];
        break;
      case 'corrupt': {
        if (reply.status !== 200 || !reply.headers['Content-Type']?.includes('json')) break;
        const document = JSON.parse(reply.body) as unknown;
        for (const [pointer, value] of Object.entries(injected.set)) setAtPointer(document, pointer, value);
        return send(res, method, { ...reply, body: JSON.stringify(document) });
      }
      case 'malformed': {
        const garbage = Buffer.concat([body.subarray(0, Math.floor(body.length / 2)), Buffer.from('\u0000<<simulated garbage>>{"')]);
        return send(res, method, { ...reply, body: garbage.toString('utf8') });
      }
      case 'truncated':
        res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(body.length + 1) });
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
        return;
      case 'hang':
        res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(body.length) });
        res.write(body.subarray(0, Math.min(injected.afterBytes ?? 0, body.length)));
        return hang(res);
      case 'hugeBody':
        return streamHugeBody(res, reply, injected.bytes ?? DEFAULT_HUGE_BODY_BYTES);
    }
    send(res, method, reply);
  }

  function setScenario(next: Scenario): void {
    scenario = parseScenario(structuredClone(next));
    for (const service of Object.values(services)) service.scenarioChanged();
  }

  function setFault(next: Fault | null): void {
    fault = parseFault(next === null ? null : structuredClone(next));
  }

  async function serveControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const route = `${method} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /__sim/stats':
          return send(res, method, jsonAnswer(200, stats));
        case 'POST /__sim/stats/reset':
          stats = { ...emptyStats(), waiting: gcp.waiting, hanging: hanging.size };
          return send(res, method, jsonAnswer(200, stats));
        case 'GET /__sim/scenario':
          return send(res, method, jsonAnswer(200, scenario));
        case 'POST /__sim/scenario':
          setScenario(JSON.parse(await readBody(req)) as Scenario);
          return send(res, method, jsonAnswer(200, { provider: provider(), nics: scenario.nics.length }));
        case 'GET /__sim/fault':
          return send(res, method, jsonAnswer(200, fault));
        case 'POST /__sim/fault':
          setFault(JSON.parse(await readBody(req)) as Fault | null);
          return send(res, method, jsonAnswer(200, fault));
        default:
          return send(res, method, jsonAnswer(404, { error: `no control endpoint ${route}; see test/imds-sim/README.md` }));
      }
    } catch (error) {
      send(res, method, jsonAnswer(400, { error: `${route}: ${(error as Error).message}; nothing changed` }));
    }
  }

  function crashSafe(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>) {
    return (req: IncomingMessage, res: ServerResponse): void => {
      const url = new URL(req.url ?? '/', 'http://imds.invalid');
      handler(req, res, url).catch((error: unknown) => {
        if (!res.headersSent) send(res, req.method ?? 'GET', answer(500, `simulator error: ${(error as Error).message}\n`, 'text/plain'));
        else res.destroy();
      });
    };
  }

  const handler = crashSafe((req, res, url) => {
    // the control interface is invisible without its header: a client sees a plain metadata 404
    if (url.pathname.startsWith(CONTROL_PREFIX) && req.headers[CONTROL_HEADER] === '1') return serveControl(req, res, url);
    return serveMetadata(req, res, url);
  });
  const server = createServer(handler);
  const host = options.host ?? '127.0.0.1';
  await listen(server, { host, port: options.port ?? 0 });
  const port = (server.address() as AddressInfo).port;
  const extraServers: Server[] = [];
  for (const target of options.alsoListen ?? []) {
    const extra = createServer(handler);
    extraServers.push(extra);
    try {
      await listen(extra, target);
    } catch (error) {
      for (const s of [server, ...extraServers]) s.close();
      throw new Error(`cannot listen on ${target.host}:${target.port}: ${(error as Error).message}`);
    }
  }

  let controlServer: Server | undefined;
  if (options.controlSocket) {
    const path = options.controlSocket;
    try {
      unlinkSync(path);
    } catch {
      /* no stale socket */
    }
    controlServer = createServer(
      crashSafe((req, res, url) => {
        if (url.pathname.startsWith(CONTROL_PREFIX)) return serveControl(req, res, url);
        return Promise.resolve(send(res, req.method ?? 'GET', jsonAnswer(404, { error: 'the control socket serves only /__sim/*' })));
      }),
    );
    try {
      await listen(controlServer, { path });
    } catch (error) {
      server.close();
      throw new Error(`cannot listen on control socket ${path}: ${(error as Error).message}`);
    }
  }

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    ...(options.controlSocket && { controlSocket: options.controlSocket }),
    setScenario,
    scenario: () => structuredClone(scenario),
    setFault,
    fault: () => fault,
    stats: () => structuredClone(stats),
    resetStats: () => {
      stats = { ...emptyStats(), waiting: gcp.waiting, hanging: hanging.size };
    },
    close: async () => {
      for (const service of Object.values(services)) service.close();
      const closing = [server, ...extraServers, ...(controlServer ? [controlServer] : [])].map(
        (s) => new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
      );
      await Promise.all(closing);
      if (options.controlSocket) {
        try {
          unlinkSync(options.controlSocket);
        } catch {
          /* already removed by close */
        }
      }
    },
  };
}
