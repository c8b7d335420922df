// An event burst while JavaScript is busy overflows the watcher's receive buffer. That must be
// reported as an overflow, not abort the process, and a re-read afterwards must match the kernel.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespace, ip, ipBatch, waitFor } from '../lib/netns.js';
import { startRunner } from '../lib/netlink-client.js';
import type { KernelState } from '../../netlink/types.js';

interface WatchStats {
  events: number;
  overflows: number;
  errors: number;
  receiveBufferBytes: number;
}

interface IpAddrJson {
  ifindex: number;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

test('5,000 address changes while the watcher is blocked: it survives, reports an overflow, and a re-read matches ip', async (t) => {
  const ns = createNamespace(t, 'nlflood');
  ip(ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p');
  ip(ns, 'link', 'set', 'eth1', 'up');
  ip(ns, 'link', 'set', 'eth1p', 'up');
  const scratch = mkdtempSync(join(tmpdir(), 'cn-flood-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const release = join(scratch, 'release');

  const runner = startRunner(t, ns);
  // the size an unprivileged agent gets with a default net.core.rmem_max
  const watching = await runner.send<WatchStats>({ cmd: 'watch', receiveBufferBytes: 256 * 1024 });
  t.is(watching.overflows, 0);

  // the runner answers, then spins without returning to the event loop until `release` exists
  t.is(await runner.send<string>({ cmd: 'busy-until', path: release, maxIterations: 12_000 }), 'busy');
  const commands: string[] = [];
  for (let i = 0; i < 5000; i++) commands.push(`addr add 10.30.${i >> 8}.${i & 0xff}/16 dev eth1`);
  ipBatch(ns, commands);
  writeFileSync(release, '');

  const stats = await waitFor(async () => {
    const current = await runner.send<WatchStats>({ cmd: 'stats' });
    return current.overflows > 0 ? current : undefined;
  }, 'the watcher to report an overflow');
  t.true(runner.alive());
  t.true(stats.overflows >= 1);
  t.is(stats.errors, 0);

  // watching goes on after the overflow
  let last = -1;
  await waitFor(
    async () => {
      const { events } = await runner.send<WatchStats>({ cmd: 'stats' });
      const settled = events === last;
      last = events;
      return settled;
    },
    'the event backlog to drain',
    20_000,
    200,
  );
  const before = (await runner.send<WatchStats>({ cmd: 'stats' })).events;
  ip(ns, 'addr', 'add', '10.31.0.1/16', 'dev', 'eth1');
  await waitFor(async () => (await runner.send<WatchStats>({ cmd: 'stats' })).events > before, 'an event after the overflow');

  const state = await runner.send<KernelState>({ cmd: 'read' });
  const listed = (JSON.parse(ip(ns, '-j', 'addr', 'show')) as IpAddrJson[]).flatMap((link) =>
    link.addr_info.map((a) => `${link.ifindex} ${a.local}/${a.prefixlen}`),
  );
  t.deepEqual(state.addresses.map((a) => `${a.ifindex} ${a.address}/${a.prefixLength}`).sort(), listed.sort());
  t.true(listed.length > 5000);
});
