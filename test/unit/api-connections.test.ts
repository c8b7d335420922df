// The REST API's connections: deadlines for connections that send nothing or too little, the
// connection waiting longest giving way at a cap, the classes of user on the Unix socket (read
// with SO_PEERCRED), and the socket file's life: its mode, a stale one replaced, a live one kept.
import test, { type ExecutionContext } from 'ava';
import bunyan from 'bunyan';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionOf, ConnectionPool, type CloseReason } from '../../agent/report/api/connections.js';
import { startApi, type ApiLimits, type RunningApi } from '../../agent/report/api/server.js';
import { peerClass } from '../../agent/report/api/unix-socket.js';
import { Metrics } from '../../agent/report/metrics.js';
import { bytesWaiting } from '../../netlink/libc.js';
import { FakeView, fixture } from '../lib/api-fixtures.js';

interface Log {
  log: bunyan;
  warnings: () => string[];
}

function quietLog(): Log {
  const ring = new bunyan.RingBuffer({ limit: 100 });
  const log = bunyan.createLogger({ name: 'api-connections-test', streams: [{ type: 'raw', stream: ring, level: 'trace' }] });
  return { log, warnings: () => (ring.records as { level: number; msg: string }[]).filter((r) => r.level === bunyan.WARN).map((r) => r.msg) };
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'api-conn-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Served {
  api: RunningApi;
  log: Log;
  metrics: Metrics;
  view: FakeView;
}

async function serve(t: ExecutionContext, limits: Partial<ApiLimits> = {}, socketPath?: string): Promise<Served> {
  const log = quietLog();
  const metrics = new Metrics();
  const view = new FakeView(fixture('azure')).converge();
  const api = await startApi({ listen: '127.0.0.1:0', view, metrics, log: log.log, limits, ...(socketPath && { socketPath }) });
  t.teardown(() => api.close());
  return { api, log, metrics, view };
}

type Target = { port: number } | { path: string };

const tcp = (api: RunningApi): Target => ({ port: api.port });
const unix = (api: RunningApi): Target => ({ path: api.socketPath! });

function open(target: Target): Socket {
  return 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
}

/** A client connection; `closed` resolves with what the server sent before closing it. */
interface Held {
  socket: Socket;
  closed: Promise<string>;
  isClosed(): boolean;
}

/** Connects and sends `first` (nothing by default); resolves once connected. */
function hold(target: Target, first = '', read = true): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = open(target);
    let received = '';
    let closedNow = false;
    if (read) socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const closed = new Promise<string>((done) =>
      socket.on('close', () => {
        closedNow = true;
        done(received);
      }),
    );
    socket.on('error', () => {});
    socket.once('error', reject);
    socket.once('connect', () => {
      if (first) socket.write(first);
      resolve({ socket, closed, isClosed: () => closedNow });
    });
  });
}

/** Holds `n` connections that send nothing, one after the other so that their order is known. */
async function holdIdle(t: ExecutionContext, target: Target, n: number): Promise<Held[]> {
  const held: Held[] = [];
  for (let i = 0; i < n; i++) {
    held.push(await hold(target));
    await sleep(15);
  }
  t.teardown(() => held.forEach((h) => h.socket.destroy()));
  return held;
}

function get(target: Target, path = '/api/v1/status'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.path };
    const req = httpRequest({ ...where, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


/** Resolves with how long `held` took to be closed, or rejects after `withinMs`. */
async function closedWithin(held: Held, withinMs: number, started = Date.now()): Promise<number> {
  const timeout = sleep(withinMs).then(() => {
    throw new Error(`still open after ${withinMs} ms`);
  });
  await Promise.race([held.closed, timeout]);
  return Date.now() - started;
}

test('a connection that sends nothing is closed once the headers timeout has passed', async (t) => {
  // handed over at once, as the kernel does once TCP_DEFER_ACCEPT's wait is over
  const { api } = await serve(t, { headersTimeout: 300, deferAccept: 0 });
  const started = Date.now();
  const [idle] = await holdIdle(t, tcp(api), 1);
  const took = await closedWithin(idle!, 3_000, started);
  t.true(took >= 250, `closed after ${took} ms`);
  t.is(await idle!.closed, '', 'it asked nothing, so it gets no answer');
});

test('a request trickled in slower than the headers timeout is answered 408 and closed', async (t) => {
  const { api } = await serve(t, { headersTimeout: 300 });
  const slow = await hold(tcp(api), 'GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  t.regex(await slow.closed, /^HTTP\/1\.1 408 /);
});

test('a kept-alive connection is closed once it has waited the keep-alive timeout for its next request', async (t) => {
  const { api } = await serve(t, { keepAliveTimeout: 300 });
  const client = await hold(tcp(api), 'GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const answered = Date.now();
  const took = await closedWithin(client, 3_000, answered);
  t.regex(await client.closed, /^HTTP\/1\.1 200 /);
  t.true(took >= 250, `closed after ${took} ms`);
});

test('at the connection cap the connection waiting longest for a request gives way, and the new client is answered', async (t) => {
  const { api, log, metrics } = await serve(t, { maxIdleConnections: 4, headersTimeout: 30_000, deferAccept: 0 });
  const idle = await holdIdle(t, tcp(api), 4);
  const answer = await get(tcp(api));
  t.is(answer.status, 200);
  await closedWithin(idle[0]!, 2_000);
  await sleep(100);
  t.deepEqual(
    idle.map((h) => h.isClosed()),
    [true, false, false, false],
    'only the oldest idle connection was closed',
  );
  t.true(log.warnings().some((w) => /4 connections are open; closing idle ones/.test(w)), log.warnings().join('\n'));
  t.regex(metrics.render(), /^cloud_network_api_connections_closed_total\{listener="tcp",reason="evicted"\} 1$/m);
});

test('on TCP, a client slow to send its request is not pushed out by connections that send nothing, opened after it', async (t) => {
  const { api, metrics } = await serve(t, { maxIdleConnections: 4, maxConnections: 8, headersTimeout: 30_000 });
  const client = await hold(tcp(api));
  const idle = await holdIdle(t, tcp(api), 40);
  await sleep(200);
  client.socket.write('GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  t.regex(await client.closed, /^HTTP\/1\.1 200 /);
  // the kernel holds the silent ones back: none has reached the API to be closed yet
  t.false(idle.some((h) => h.isClosed()));
  t.notRegex(metrics.render(), /cloud_network_api_connections_closed_total\{listener="tcp",reason="evicted"\} [1-9]/);
});

test('trickling clients give way to a new client too: a request not yet complete does not hold a place', async (t) => {
  const { api } = await serve(t, { maxIdleConnections: 3, headersTimeout: 30_000 });
  const slow: Held[] = [];
  for (let i = 0; i < 3; i++) {
    slow.push(await hold(tcp(api), 'GET /api/v1/status HTTP/1.1\r\nX-Slow: '));
    await sleep(15);
  }
  t.teardown(() => slow.forEach((h) => h.socket.destroy()));
  await sleep(100);
  t.is((await get(tcp(api))).status, 200);
  await closedWithin(slow[0]!, 2_000);
});

/** A view whose document is larger than a socket's buffers, so an unread answer stays unsent. */
function withLargeDocument(view: FakeView): void {
  view.current = { ...view.current!, document: { padding: 'x'.repeat(4 * 1024 * 1024) } };
}

test('a connection whose answer is being sent never gives way; when every one is, new ones come in up to the hard cap', async (t) => {
  const dir = await tempDir(t);
  const { api, log, view } = await serve(t, { maxIdleConnectionsPerClass: 2, maxConnectionsPerClass: 3, responseTimeout: 3_000 }, join(dir, 'api.sock'));
  withLargeDocument(view);
  // three clients, one after the other, ask for the large document and read none of it once its
  // first bytes are there: the third comes in over the cap of 2, as the first two are answering
  const readers: Held[] = [];
  t.teardown(() => readers.forEach((h) => h.socket.destroy()));
  for (let i = 0; i < 3; i++) {
    const reader = await hold(unix(api), 'GET /api/v1/document HTTP/1.1\r\nHost: localhost\r\n\r\n', false);
    readers.push(reader);
    await once(reader.socket, 'readable');
  }
  const refused = await get(unix(api)).then(
    () => 'answered',
    (error: NodeJS.ErrnoException) => error.code,
  );
  t.true(refused === 'ECONNRESET' || refused === 'EPIPE', `the fourth connection: ${refused}`);
  t.true(log.warnings().some((w) => /3 connections are open, every one answering a request or with one arriving, so new ones are closed/.test(w)), log.warnings().join('\n'));
  // an answer left unread past the response timeout is cut off: read now, it ends short
  await sleep(3_500);
  const received = await Promise.all(
    readers.map(async (h) => {
      let bytes = 0;
      h.socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      await closedWithin(h, 3_000);
      return bytes;
    }),
  );
  for (const bytes of received) t.true(bytes < 4 * 1024 * 1024, `${bytes} bytes received`);
  view.current = fixture('azure').snapshot;
  t.is((await get(unix(api))).status, 200);
});

test('the Unix socket has mode 0666, serves the same API, and is removed when the API closes', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'api.sock');
  const { api } = await serve(t, {}, path);
  const stats = lstatSync(path);
  t.true(stats.isSocket());
  t.is(stats.mode & 0o777, 0o666);
  const overSocket = await get(unix(api), '/api/v1/network');
  const overTcp = await get(tcp(api), '/api/v1/network');
  t.is(overSocket.status, 200);
  t.is(overSocket.body, overTcp.body);
  await api.close();
  t.false(existsSync(path), 'the socket file is gone');
});

test('on the socket each class of user has its own cap, read with SO_PEERCRED: that class\'s longest-waiting connection gives way', async (t) => {
  const dir = await tempDir(t);
  // the TCP listener's cap of 1 is not the socket's
  const { api, log } = await serve(t, { maxIdleConnectionsPerClass: 3, maxIdleConnections: 1, headersTimeout: 30_000 }, join(dir, 'api.sock'));
  const idle = await holdIdle(t, unix(api), 3);
  t.is((await get(unix(api))).status, 200);
  await closedWithin(idle[0]!, 2_000);
  await sleep(100);
  t.deepEqual(
    idle.map((h) => h.isClosed()),
    [true, false, false],
  );
  // the test's connections come from the API's own process: root's class, or the agent's user's
  const uid = process.getuid!();
  const who = uid === 0 ? 'root' : `the agent's own user, uid ${uid}`;
  t.true(log.warnings().some((w) => w.endsWith(`api.sock (${who}): 3 connections are open; closing idle ones (those that sent nothing first, then the longest waiting) to admit new ones`)), log.warnings().join('\n'));
  // the TCP listener has its own cap, untouched by the socket's
  t.is((await get(tcp(api))).status, 200);
});

/** A socket file left behind by a process killed while listening on it. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', () => reject(new Error('the listener exited early')));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

test('a stale socket file from a crashed agent is replaced', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'api.sock');
  await staleSocket(path);
  t.true(lstatSync(path).isSocket(), 'the killed listener left its socket file');
  const { api } = await serve(t, {}, path);
  t.is((await get(unix(api))).status, 200);
});

test('a socket another process still answers on is not taken: the second API fails and the first keeps serving', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'api.sock');
  const first = await serve(t, {}, path);
  const second = startApi({ listen: '127.0.0.1:0', socketPath: path, view: new FakeView(fixture('azure')), metrics: new Metrics(), log: quietLog().log });
  const error = await t.throwsAsync(second);
  t.regex(error.message, /cannot listen on .*api\.sock: another process .* answers on/);
  t.is((await get(unix(first.api))).status, 200);
});

test('a file in the socket\'s place that is not a socket is left alone, and the API does not start', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'api.sock');
  await writeFile(path, 'not a socket');
  const error = await t.throwsAsync(startApi({ listen: '127.0.0.1:0', socketPath: path, view: new FakeView(fixture('azure')), metrics: new Metrics(), log: quietLog().log }));
  t.regex(error.message, /is not a socket/);
  t.is(readFileSync(path, 'utf8'), 'not a socket');
});

test('bytesWaiting reads from the kernel what a connection has received and the process not read', async (t) => {
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer({ pauseOnConnect: true }, resolve);
    server.listen(0, '127.0.0.1', () => {
      const client = connect((server.address() as { port: number }).port, '127.0.0.1', () => client.write('GET / HTTP/1.1\r\n'));
      t.teardown(() => {
        client.destroy();
        server.close();
      });
    });
  });
  const socket = await accepted;
  t.teardown(() => socket.destroy());
  let waiting = 0;
  for (let i = 0; i < 100 && waiting === 0; i++) {
    await sleep(10);
    waiting = bytesWaiting(socket);
  }
  t.is(waiting, 16);
  t.is(socket.bytesRead, 0);
});

/** Enough of a socket for the pool: it is destroyed, closes, and reports bytes read. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  bytesRead = 0;
  writable = true;
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit('close'));
    }
    return this;
  }
  end(): this {
    return this.destroy();
  }
}

test('a connection whose request has arrived but not been read is not closed for room; one that sent nothing goes first; requests come in over the cap', (t) => {
  const closed: CloseReason[] = [];
  const arrived = new Set<FakeSocket>();
  const pool = new ConnectionPool(
    { maxIdle: 3, maxConnections: 5, headersTimeout: 60_000, keepAliveTimeout: 60_000, responseTimeout: 60_000 },
    (reason) => closed.push(reason),
    (socket) => (arrived.has(socket as unknown as FakeSocket) ? 60 : 0),
  );
  const admit = (socket = new FakeSocket()) => ({ socket, admitted: pool.admit(socket as unknown as Socket) });
  // a trickling client (bytes read), then a client whose request waits in the kernel, then a silent one
  const trickling = new FakeSocket();
  trickling.bytesRead = 20;
  admit(trickling);
  const client = new FakeSocket();
  arrived.add(client);
  admit(client);
  const silent = admit().socket;
  // a burst accepted before the client's request is read: connections that sent nothing go first
  const burst = [admit(), admit()];
  t.deepEqual(
    burst.map((b) => b.admitted),
    [true, true],
  );
  t.true(silent.destroyed);
  t.true(burst[0]!.socket.destroyed);
  t.false(trickling.destroyed);
  t.false(client.destroyed);
  for (let i = 0; i < 5; i++) t.true(admit().admitted);
  t.false(client.destroyed);
  // with nobody silent left, the trickling one gives way
  for (let i = 0; i < 2; i++) arrived.add(admit().socket);
  t.true(trickling.destroyed);
  t.false(client.destroyed);
  // when every connection has a request arriving (or is answering one), new ones come in over
  // the cap of 3, up to the hard cap of 5, past which they are closed
  for (let i = 0; i < 2; i++) {
    const more = new FakeSocket();
    arrived.add(more);
    t.true(admit(more).admitted);
  }
  t.is(pool.size, 5);
  const late = new FakeSocket();
  arrived.add(late);
  t.deepEqual(closed.filter((r) => r === 'refused'), []);
  t.false(admit(late).admitted);
  t.true(late.destroyed);
  t.false(client.destroyed);
  pool.closeAll();
});

test('SO_PEERCRED as PrivateUsers= shows it: root, the agent\'s own user, and every other user (uid 65534) are the three classes', (t) => {
  const peer = (uid: number) => ({ pid: 1234, uid, gid: uid });
  t.is(peerClass(peer(0), 998), 'root');
  t.is(peerClass(peer(998), 998), 'agent');
  t.is(peerClass(peer(65534), 998), 'others');
  // without the namespace (or with PrivateUsers=identity) other users keep their uids and still share one class
  t.is(peerClass(peer(1000), 998), 'others');
  t.is(peerClass(new Error('getsockopt(SO_PEERCRED) failed'), 998), 'others');
  // an agent run as root has no class of its own
  t.is(peerClass(peer(0), 0), 'root');
});
