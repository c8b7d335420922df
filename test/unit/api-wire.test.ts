// The REST API as a client sees it on the wire: every header of an answer, its body byte for
// byte, and how the path of a request is read (trailing slash, case, escapes, query string,
// method), over raw TCP against the real server on a loopback port.
import test, { type ExecutionContext } from 'ava';
import bunyan from 'bunyan';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { startApi, type RunningApi } from '../../agent/report/api/server.js';
import { Metrics } from '../../agent/report/metrics.js';
import { FakeView, fixture } from '../lib/api-fixtures.js';

interface WireAnswer {
  status: number;
  /** every header but Date, by lower-case name */
  headers: Record<string, string>;
  body: string;
}

interface Served {
  api: RunningApi;
  records: { level: number; msg: string; path?: string; err?: { message: string } }[];
}

async function serve(t: ExecutionContext, view: FakeView): Promise<Served> {
  const ring = new bunyan.RingBuffer({ limit: 100 });
  const log = bunyan.createLogger({ name: 'api-wire-test', streams: [{ type: 'raw', stream: ring, level: 'trace' }] });
  const api = await startApi({ listen: '127.0.0.1:0', view, metrics: new Metrics(), log });
  t.teardown(() => api.close());
  return { api, records: ring.records as Served['records'] };
}

/** Sends `text` as is and resolves with every byte the server sent until it closed the connection. */
function exchange(api: RunningApi, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(api.port, '127.0.0.1', () => socket.end(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** The answers in `raw`, in order; an answer to HEAD has no body whatever its Content-Length. */
function parse(raw: Buffer, head = false): WireAnswer[] {
  const answers: WireAnswer[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`not an HTTP answer: ${rest.toString('latin1')}`);
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (name !== 'date') headers[name] = line.slice(colon + 1).trim();
    }
    const length = head ? 0 : Number(headers['content-length'] ?? 0);
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.subarray(end + 4, end + 4 + length).toString('utf8') });
    rest = rest.subarray(end + 4 + length);
  }
  return answers;
}

/** One request on its own connection, closed after the answer. */
async function request(api: RunningApi, method: string, target: string, headers = ''): Promise<WireAnswer> {
  const answers = parse(await exchange(api, `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`), method === 'HEAD');
  if (answers.length !== 1) throw new Error(`${method} ${target}: ${answers.length} answers`);
  return answers[0]!;
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** The headers of every JSON answer on a connection the client asked to close. */
function jsonHeaders(body: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
}

const NO_RESOURCE = (path: string) => json({ error: `no resource at ${path} (try /api/v1/status, /api/v1/system, /api/v1/network, /metrics)` });

test('a JSON answer has exactly Cache-Control, X-Content-Type-Options, Content-Type with charset and Content-Length, and its body is the resource indented by two, with a newline', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const keys = await request(api, 'GET', '/api/v1/ssh-keys');
  const body = json({ provider: 'azure', sshKeys: ['ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQazure azureuser'] });
  t.deepEqual(keys, { status: 200, headers: jsonHeaders(body), body });

  const missing = await request(api, 'GET', '/api/v2/a"b');
  t.deepEqual(missing, { status: 404, headers: jsonHeaders(NO_RESOURCE('/api/v2/a"b')), body: NO_RESOURCE('/api/v2/a"b') });

  const link = await request(api, 'GET', '/api/v1/network/eth1');
  t.is(link.body, json(JSON.parse(link.body)));
  t.deepEqual(link.headers, jsonHeaders(link.body));

  // a kept-alive connection: Node's own Connection and Keep-Alive headers, nothing else added
  const [first, second] = parse(await exchange(api, 'GET /api/v1/ssh-keys HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/v1/ssh-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  t.deepEqual(first, { status: 200, headers: { ...jsonHeaders(body), connection: 'keep-alive', 'keep-alive': 'timeout=2, max=100' }, body });
  t.deepEqual(second, keys);
});

test('/metrics answers the Prometheus text format 0.0.4 with charset and the same two guarding headers', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const metrics = await request(api, 'GET', '/metrics');
  t.is(metrics.status, 200);
  t.deepEqual(metrics.headers, {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': String(Buffer.byteLength(metrics.body)),
    connection: 'close',
  });
  t.true(metrics.body.startsWith('# HELP cloud_network_info '), metrics.body.slice(0, 80));
});

test('before the first fetch a metadata resource answers 503 with Retry-After: 5, and HEAD the same headers without a body', async (t) => {
  const view = new FakeView(fixture('azure'));
  const { api } = await serve(t, view);
  const get = await request(api, 'GET', '/api/v1/network/eth1');
  t.is(get.status, 503);
  t.like(JSON.parse(get.body), { error: 'no metadata yet', status: { ready: false } });
  t.deepEqual(get.headers, jsonHeaders(get.body, { 'retry-after': '5' }));
  t.deepEqual(await request(api, 'HEAD', '/api/v1/network/eth1'), { ...get, body: '' });
  t.deepEqual(await request(api, 'HEAD', '/api/cloud/system'), { ...get, body: '' });
});

test('HEAD answers with exactly the status and headers GET would, Content-Length included, and no body', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  for (const path of ['/api/v1/status', '/api/v1/network', '/api/v1/network/eth1/', '/api/v1/network/eth7', '/api/cloud/credentials', '/nothing']) {
    const get = await request(api, 'GET', path);
    t.deepEqual(await request(api, 'HEAD', path), { ...get, body: '' }, path);
  }
  const raw = await exchange(api, 'HEAD /api/v1/ssh-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  t.true(raw.toString('latin1').endsWith('\r\n\r\n'), 'nothing after the headers');
});

test('one trailing slash names the same resource as none on exact paths and /:link; two do not; under /api/cloud/ it is part of the path', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  for (const path of ['/api/v1/status', '/api/v1/system', '/api/v1/network', '/api/v1/network/eth1', '/api/v1/ssh-keys', '/api/v1/document', '/metrics']) {
    const plain = await request(api, 'GET', path);
    const slashed = await request(api, 'GET', `${path}/`);
    t.is(slashed.status, 200, `${path}/`);
    if (path !== '/metrics') t.is(slashed.body, plain.body, `${path}/`);
    t.is((await request(api, 'GET', `${path}//`)).body, NO_RESOURCE(`${path}//`));
  }
  t.is((await request(api, 'GET', '/api/cloud/system/')).body, json({ error: 'no /api/cloud/system/ on azure (paths: system, network)' }));
  t.is((await request(api, 'GET', '/api/cloud/')).body, NO_RESOURCE('/api/cloud/'));
  t.is((await request(api, 'GET', '/api/cloud')).body, NO_RESOURCE('/api/cloud'));
  t.is((await request(api, 'GET', '/api/v1/network/eth1/x')).body, NO_RESOURCE('/api/v1/network/eth1/x'));
});

test('paths match in any case; a link name is compared as sent', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const status = await request(api, 'GET', '/api/v1/status');
  t.is((await request(api, 'GET', '/API/V1/Status')).body, status.body);
  t.is((await request(api, 'GET', '/Metrics')).status, 200);
  t.is((await request(api, 'GET', '/API/CLOUD/system')).status, 200);
  t.is((await request(api, 'GET', '/API/V1/NETWORK/eth1')).status, 200);
  t.is((await request(api, 'GET', '/api/v1/network/ETH1')).body, json({ error: 'no configured link named "ETH1" (links: eth0, eth1)' }));
});

test('a link name and an /api/cloud/ path are percent-decoded; a malformed escape stays as sent and is answered 404 naming it', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const eth1 = await request(api, 'GET', '/api/v1/network/eth1');
  t.is((await request(api, 'GET', '/api/v1/network/eth%31')).body, eth1.body);
  const notLink = (name: string) => json({ error: `no configured link named ${JSON.stringify(name)} (links: eth0, eth1)` });
  for (const [sent, read] of [['%ZZ', '%ZZ'], ['%', '%'], ['%E2%82', '%E2%82'], ['eth%3', 'eth%3'], ['a%2Fb', 'a/b'], ['%C3%A9', 'é'], ['eth1;x', 'eth1;x']]) {
    const answer = await request(api, 'GET', `/api/v1/network/${sent}`);
    t.deepEqual(answer, { status: 404, headers: jsonHeaders(notLink(read!)), body: notLink(read!) }, sent);
  }
  t.is((await request(api, 'GET', '/api/cloud/sys%74em')).status, 200);
  t.is((await request(api, 'GET', '/api/cloud/%ZZ')).body, json({ error: 'no /api/cloud/%ZZ on azure (paths: system, network)' }));
  t.is((await request(api, 'GET', '/api/cloud/a%2Fb')).body, json({ error: 'no /api/cloud/a/b on azure (paths: system, network)' }));
  // the 404 for an unknown path names it as sent
  t.is((await request(api, 'GET', '/api/v2/%ZZ')).body, NO_RESOURCE('/api/v2/%ZZ'));
  t.is((await request(api, 'GET', '/api/v1/status')).status, 200, 'the API still answers');
});

test('the query string and a fragment are ignored, malformed escapes in them too; an absolute-form target is read for its path', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const status = await request(api, 'GET', '/api/v1/status');
  const eth1 = await request(api, 'GET', '/api/v1/network/eth1');
  t.deepEqual(await request(api, 'GET', '/api/v1/status?x=1&y'), status);
  t.deepEqual(await request(api, 'GET', '/api/v1/status/?'), status);
  t.deepEqual(await request(api, 'GET', '/api/v1/network/eth1?x=%ZZ'), eth1);
  t.deepEqual(await request(api, 'GET', '/api/v1/status#x'), status);
  t.is((await request(api, 'GET', '/nothing?x=1')).body, NO_RESOURCE('/nothing'));
  t.deepEqual(await request(api, 'GET', `http://127.0.0.1:${api.port}/api/v1/status?x`), status);
  t.is((await request(api, 'GET', '*')).body, NO_RESOURCE('*'));
});

test('a method other than GET and HEAD answers 405 with Allow: GET, HEAD and closes the connection; one HTTP does not know gets 400', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  for (const [method, path] of [['POST', '/api/v1/status'], ['PROPFIND', '/api/v1/status'], ['TRACE', '/nothing'], ['OPTIONS', '*'], ['DELETE', '/api/v1/network/%ZZ']]) {
    const body = json({ error: `the API is read-only: ${method} is not allowed (allowed: GET, HEAD)` });
    // a second request behind it on the same connection is never answered
    const answers = parse(await exchange(api, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    t.deepEqual(answers, [{ status: 405, headers: { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', allow: 'GET, HEAD', ...jsonHeaders(body) }, body }], method);
  }
  const unknown = await exchange(api, 'FOO /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  t.is(unknown.toString('latin1'), 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

test('a request body, by Content-Length or chunked, is refused with 413 and the connection closed, on any path; Content-Length: 0 is no body', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const body = json({ error: 'request bodies are not accepted' });
  const refused = { status: 413, headers: jsonHeaders(body), body };
  const next = 'GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  t.deepEqual(parse(await exchange(api, `GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\n\r\n{"x":1}${next}`)), [refused]);
  t.deepEqual(parse(await exchange(api, `GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n${next}`)), [refused]);
  t.is((await request(api, 'GET', '/api/v1/status', 'Content-Length: 0\r\n')).status, 200);
});

test('a Host that is not an IP literal, localhost or this host\'s name is answered 421 on a connection kept open; 404 and 503 keep it open too', async (t) => {
  const { api } = await serve(t, new FakeView(fixture('azure')).converge());
  const body = json({ error: 'Host "attacker.example" is not served here: use the agent\'s IP address' });
  const [misdirected, after] = parse(await exchange(api, 'GET /nothing HTTP/1.1\r\nHost: Attacker.Example:5209\r\n\r\nGET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  t.deepEqual(misdirected, { status: 421, headers: { ...jsonHeaders(body), connection: 'keep-alive', 'keep-alive': 'timeout=2, max=100' }, body });
  t.is(after?.status, 404);
  for (const host of ['LOCALHOST:1', '[::1]:5209', '10.0.0.1', hostname().toUpperCase(), '']) {
    t.is((await exchange(api, `GET /api/v1/status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).toString('latin1').slice(0, 12), 'HTTP/1.1 200', host);
  }
  const cold = await serve(t, new FakeView(fixture('azure')));
  const [unavailable, later] = parse(await exchange(cold.api, 'GET /api/v1/system HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  t.is(unavailable?.status, 503);
  t.is(unavailable?.headers.connection, 'keep-alive');
  t.is(later?.status, 200);
});

test('a handler that throws is answered 500 naming the path, with one error line in the log; the other routes still answer', async (t) => {
  const view = new FakeView(fixture('azure')).converge();
  view.status = () => {
    throw new Error('the view broke');
  };
  const { api, records } = await serve(t, view);
  const body = json({ error: "internal error while answering /api/v1/status; see the agent's log" });
  t.deepEqual(await request(api, 'GET', '/api/v1/status?x=1'), { status: 500, headers: jsonHeaders(body), body });
  const failed = records.filter((r) => r.level === bunyan.ERROR);
  t.is(failed.length, 1);
  t.like(failed[0], { msg: 'REST API request failed', path: '/api/v1/status', err: { message: 'the view broke' } });
  t.is((await request(api, 'GET', '/api/v1/system')).status, 200);
});
