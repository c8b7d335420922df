// Run inside the vm namespace by api-cases.ts: abuses the agent's REST API on 127.0.0.1:5209
// with raw sockets and prints what came back as one JSON object.
import { connect, type Socket } from 'node:net';

const HOST = '127.0.0.1';
const PORT = 5209;

/** One raw request; resolves with the status line's code (0: closed without an answer) and the body. */
function raw(request: string | Buffer, timeoutMs = 15_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(PORT, HOST);
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const done = () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(request);
  });
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

/** Clients that send their headers one byte every 200 ms, longer than headersTimeout. */
async function slowClients(n: number): Promise<{ clients: number; cutOff: number; servedMeanwhile: number }> {
  const request = get('/api/v1/status');
  let cutOff = 0;
  const clients = Array.from({ length: n }, () =>
    new Promise<void>((resolve) => {
      const socket: Socket = connect(PORT, HOST);
      let i = 0;
      const timer = setInterval(() => {
        if (i < request.length - 4 && !socket.destroyed) socket.write(request[i++]!);
      }, 200);
      const finish = () => {
        clearInterval(timer);
        cutOff++;
        resolve();
      };
      socket.on('error', () => undefined);
      socket.on('close', finish);
      // never finishes its headers; a 20 s bound in case the server never cuts it off
      setTimeout(() => socket.destroy(), 20_000).unref();
    }),
  );
  // served while the slow ones hold their connections
  let servedMeanwhile = 0;
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 500));
    if ((await raw(get('/api/v1/status'))).status === 200) servedMeanwhile++;
  }
  await Promise.all(clients);
  return { clients: n, cutOff, servedMeanwhile };
}

async function concurrent(n: number): Promise<{ connections: number; ok: number; refused: number }> {
  const answers = await Promise.all(Array.from({ length: n }, () => raw(get('/api/v1/status'))));
  return { connections: n, ok: answers.filter((a) => a.status === 200).length, refused: answers.filter((a) => a.status !== 200).length };
}

async function hugeHeaders(): Promise<number[]> {
  const statuses: number[] = [];
  for (const size of [9 * 1024, 64 * 1024, 1024 * 1024]) {
    statuses.push((await raw(`GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`)).status);
  }
  const many = Array.from({ length: 2_000 }, (_, i) => `X-H${i}: v`).join('\r\n');
  statuses.push((await raw(`GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\n\r\n`)).status);
  return statuses;
}

async function methods(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'BREW']) {
    const body = method === 'POST' || method === 'PUT' ? '{"listen":"0.0.0.0:5209"}' : '';
    const target = method === 'CONNECT' ? '127.0.0.1:22' : '/api/v1/status';
    out[method] = (await raw(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)).status;
  }
  return out;
}

const TRAVERSALS = [
  '/../../../../etc/passwd',
  '/api/v1/../../etc/passwd',
  '/api/v1/network/..%2f..%2f..%2fetc%2fpasswd',
  '/api/v1/network/%2e%2e/%2e%2e/etc/shadow',
  '/api/v1/network/....//....//etc/passwd',
  '//etc/passwd',
  '/api/v1/network/eth0%00.json',
  '/api/v1/network/' + '../'.repeat(50) + 'proc/self/environ',
  '/api/v1/network/%252e%252e%252fetc%252fpasswd',
  '/api/v1/network/..\\..\\etc\\passwd',
  '/api/v1/status/../../../run/cloud-network/agent.pid',
  '/api/v1/ssh-keys/../../../../etc/passwd',
  '/metrics/../../etc/passwd',
  'http://127.0.0.1/etc/passwd',
  '*',
];

async function traversal(): Promise<{ tried: number; statuses: Record<string, number>; leaked: string[] }> {
  const statuses: Record<string, number> = {};
  const leaked: string[] = [];
  for (const path of TRAVERSALS) {
    const answer = await raw(get(path));
    statuses[path] = answer.status;
    if (/root:|PATH=|BEGIN|nologin/.test(answer.text)) leaked.push(path);
  }
  return { tried: TRAVERSALS.length, statuses, leaked };
}

const report = {
  slow: await slowClients(40),
  concurrent: await concurrent(1_000),
  headers: await hugeHeaders(),
  methods: await methods(),
  traversal: await traversal(),
  after: (await raw(get('/api/v1/status'))).status,
};
process.stdout.write(JSON.stringify(report));
