// The agent's helper client: a clear error when the helper is down, and a fresh connection on
// the next call once it is back.
import { createServer, type Socket } from 'node:net';
import test from 'ava';
import { HelperClient, HelperRequestError, HelperUnreachableError } from '../agent/helper-client.js';
import { createNamespace } from './lib/netns.js';
import { startHelper, uniqueDir } from './helper-harness.js';

test('an unreachable helper is an error naming the socket and the cause', async (t) => {
  const socketPath = `${uniqueDir(t)}/absent.sock`;
  const client = new HelperClient({ socketPath });
  const error = await t.throwsAsync(client.info(), { instanceOf: HelperUnreachableError });
  t.is(error?.message, `helper at ${socketPath} is not reachable: ENOENT; will retry`);
});

test('after the helper restarts, the next call connects again', async (t) => {
  const ns = createNamespace(t, 'client');
  const first = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: first.socketPath });
  t.teardown(() => client.close());
  t.is((await client.info()).protocolNumber, 201);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  await t.throwsAsync(client.info(), { instanceOf: HelperUnreachableError });
  await startHelper(t, ns, { socketPath: first.socketPath });
  t.is((await client.info()).protocolNumber, 201);
});

test('a request the helper refuses as invalid is a HelperRequestError with the code', async (t) => {
  const ns = createNamespace(t, 'client');
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.request('apply', { operations: [{ kind: 'link.set', link: 'a/b', up: true }] }), { instanceOf: HelperRequestError });
  t.is(error?.code, -32602);
  t.is((await client.info()).protocolNumber, 201);
});

test('flushed() waits until a large request has left for the socket', async (t) => {
  // a stand-in helper that reads nothing until told: the request stays in the client's buffer
  const socketPath = `${uniqueDir(t)}/slow.sock`;
  let received = 0;
  let peer: Socket | undefined;
  const server = createServer((socket) => {
    peer = socket;
    socket.pause();
    socket.on('data', (data) => (received += data.length));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => void server.close());
  const client = new HelperClient({ socketPath, timeoutMs: 5_000 });
  t.teardown(() => client.close());
  t.is(await client.flushed(), undefined, 'nothing written yet: flushed at once');

  // 4 MB: far more than a Unix socket's buffers hold
  const operations = Array.from({ length: 40_000 }, (_, i) => ({ kind: 'address.add' as const, link: 'eth0', address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/16`, noPrefixRoute: true, padding: 'x'.repeat(50) }));
  void client.apply(operations as never).catch(() => undefined);
  while (!peer) await new Promise((resolve) => setImmediate(resolve));
  let flushed = false;
  const flushing = client.flushed().then(() => (flushed = true));
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.false(flushed, 'the peer has read nothing, so the request cannot have left');

  const size = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'apply', params: { operations } }).length + 1;
  peer.resume();
  await flushing;
  t.true(flushed);
  // what the kernel still buffers is bounded; the rest has already reached the peer
  t.true(received > 0 && received <= size);
  t.true(size - received < 1 << 20, `${size - received} bytes still in the kernel`);
});
