// Hostile and broken input: the helper answers with an error, closes the connection when it
// must, and always answers the next good request.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { HelperClient } from '../../agent/reconcile/helper-client.js';
import { MAX_MESSAGE_BYTES } from '../../protocol/constants.js';
import { createNamespace, ip, kernelDump, settledKernelDump } from '../lib/netns.js';
import { addNics, exchange, startHelper, type RunningHelper } from '../lib/helper-harness.js';

const INFO = JSON.stringify({ jsonrpc: '2.0', id: 'ok', method: 'info' }) + '\n';

async function setUp(t: import('ava').ExecutionContext, built = false): Promise<{ ns: string; helper: RunningHelper }> {
  const ns = createNamespace(t, 'input');
  addNics(ns);
  return { ns, helper: await startHelper(t, ns, { built }) };
}

async function stillServes(t: import('ava').ExecutionContext, helper: RunningHelper) {
  const { lines } = await exchange(helper.socketPath, INFO, 1);
  t.regex(lines[0] ?? '', /"id":"ok","result":\{"version"/);
  t.is(helper.child.exitCode, null);
}

test('malformed JSON gets -32700 and the same connection answers the next request', async (t) => {
  const { helper } = await setUp(t);
  const { lines, closed } = await exchange(helper.socketPath, '{"jsonrpc": "2.0", "id": 1, "method": \n' + INFO, 2);
  t.regex(lines[0]!, /"code":-32700/);
  t.regex(lines[1]!, /"id":"ok","result"/);
  t.false(closed);
});

// The bundle (`built`) checks params with functions generated at build time and loads what
// explains an invalid request from a file of its own (tools/build.mjs): both must answer alike.
for (const built of [false, true]) {
  test(`unknown methods get -32601 and invalid params -32602 naming the field (${built ? 'the built bundle' : 'the sources'})`, async (t) => {
    const { ns, helper } = await setUp(t, built);
    const requests = [
      { jsonrpc: '2.0', id: 1, method: 'shell', params: {} },
      { jsonrpc: '2.0', id: 2, method: '__proto__' },
      { jsonrpc: '2.0', id: 3, method: 'apply', params: { operations: [{ kind: 'address.add', link: 'eth1', address: 'x', noPrefixRoute: true }] } },
      { jsonrpc: '2.0', id: 4, method: 'apply', params: { operations: [], extra: 1 } },
      [{ jsonrpc: '2.0', id: 5, method: 'info' }],
      { jsonrpc: '2.0', id: 6, method: 'apply', params: { operations: [{ kind: 'address.add', link: 'eth1', address: '10.9.0.5/24', noPrefixRoute: true }] } },
    ];
    const { lines } = await exchange(helper.socketPath, requests.map((r) => JSON.stringify(r)).join('\n') + '\n', 6);
    t.regex(lines[0]!, /"id":1,"error":\{"code":-32601/);
    t.regex(lines[1]!, /"id":2,"error":\{"code":-32601/);
    t.regex(lines[2]!, /"id":3,"error":\{"code":-32602,"message":"invalid params: \/operations\/0\/address: /);
    t.regex(lines[3]!, /"id":4,"error":\{"code":-32602,"message":"invalid params: \/extra: /);
    t.regex(lines[4]!, /"code":-32600,"message":"invalid request: batches are not accepted/);
    t.regex(lines[5]!, /"id":6,"result":\{"results":\[\{"index":0,"kind":"address.add","outcome":"applied"/);
    t.regex(ip(ns, '-4', '-o', 'addr', 'show', 'dev', 'eth1'), / 10\.9\.0\.5\/24 /);
  });
}

test('an oversized message gets an error, then the connection is closed; the helper serves the next one', async (t) => {
  const { helper } = await setUp(t);
  const huge = Buffer.alloc(MAX_MESSAGE_BYTES + 1024, 0x61);
  // wait for more than the one answer: only the helper closing the connection ends the exchange
  const { lines, closed } = await exchange(helper.socketPath, huge, 2);
  t.is(lines.length, 1);
  t.regex(lines[0] ?? '', /"code":-32001,"message":"message longer than 4194304 bytes; closing the connection"/);
  t.true(closed);
  await stillServes(t, helper);
});

test('concurrent connections are served one request at a time, up to the connection limit', async (t) => {
  const { ns, helper } = await setUp(t);
  // idleCloseMs 0: the clients keep their connections open however long the machine takes
  const clients = Array.from({ length: 8 }, () => new HelperClient({ socketPath: helper.socketPath, timeoutMs: 30_000, idleCloseMs: 0 }));
  t.teardown(() => clients.forEach((c) => c.close()));
  const answers = await Promise.all(
    clients.map((client, n) =>
      client.apply(
        Array.from({ length: 50 }, (_, i) => ({ kind: 'address.add' as const, link: n % 2 ? 'eth1' : 'eth2', address: `10.${n}.${i}.5/24`, noPrefixRoute: true })),
      ),
    ),
  );
  t.true(answers.every((a) => a.results.length === 50 && a.results.every((r) => r.outcome === 'applied')), JSON.stringify(answers.flatMap((a) => a.results.filter((r) => r.outcome !== 'applied')).slice(0, 3)));
  t.is(ip(ns, '-4', '-o', 'addr', 'show').split('\n').filter((l) => / 10\.[0-7]\./.test(l)).length, 400);

  // eight connections are open (the clients keep theirs): a ninth is turned away with a reason
  const ninth = await exchange(helper.socketPath, INFO, 1);
  t.regex(ninth.lines[0] ?? '', /"code":-32002,"message":"connection refused: the helper already serves 8 connections/);
  clients.forEach((c) => c.close());
  await new Promise((resolve) => setTimeout(resolve, 200));
  await stillServes(t, helper);
});

function mutate(text: string): string {
  const bytes = Buffer.from(text);
  const n = 1 + Math.floor(Math.random() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(Math.random() * bytes.length);
    bytes[at] = [0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x30, 0x00, 0xff, 0x5c][Math.floor(Math.random() * 11)]!;
  }
  // no newline inside a message: it would only split it into two
  return bytes.toString('latin1').replace(/\n/g, ' ');
}

test('hundreds of random and mutated messages leave the helper running and the kernel unharmed', async (t) => {
  const { ns, helper } = await setUp(t);
  ip(ns, 'addr', 'add', '10.4.1.99/24', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
  const good = {
    jsonrpc: '2.0',
    id: 7,
    method: 'apply',
    params: { operations: [{ kind: 'address.remove', link: 'eth1', address: '10.4.1.99/24' }, { kind: 'rule.remove', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.99/32' }, { kind: 'link.set', link: 'lo', up: false }] },
  };
  const samples = [
    ...Array.from({ length: 150 }, () => mutate(JSON.stringify(good))),
    ...Array.from({ length: 100 }, () => randomBytes(1 + Math.floor(Math.random() * 300)).toString('latin1').replace(/\n/g, ' ')),
    '[]', 'null', '1e999', '"x"', '{}', '{"jsonrpc":"2.0","id":{},"method":"info"}', '{"jsonrpc":"2.0","id":1,"method":"constructor"}',
    '{"jsonrpc":"2.0","id":1,"method":"toString"}', '{"jsonrpc":"2.0","id":1,"method":"hasOwnProperty"}',
    '{"jsonrpc":"2.0","id":1,"method":"apply","params":null}', '{"jsonrpc":"2.0","id":1,"method":"apply","params":{"__proto__":{"operations":[]}}}',
    '{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":{"length":5}}}', '['.repeat(100_000) + ']'.repeat(100_000),
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'apply', params: { operations: Array(20_001).fill({ kind: 'link.set', link: 'eth1', mtu: 1500 }) } }),
  ];
  const before = await settledKernelDump(ns);
  // a few connections, each with a share of the garbage; the helper may close one, so each gets its own
  for (let i = 0; i < samples.length; i += 40) {
    const chunk = samples.slice(i, i + 40);
    await new Promise<void>((resolve) => {
      const socket = createConnection(helper.socketPath);
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.on('data', () => undefined);
      socket.write(chunk.join('\n') + '\n', () => socket.end());
    });
  }
  await stillServes(t, helper);
  t.is(kernelDump(ns), before);
  t.notRegex(helper.output(), /uncaught|unexpected error/i);
});
