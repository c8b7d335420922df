// The reconciler's decisions, with a modelled kernel and helper. The namespace tests
// (test/agent-*.test.ts) prove the same promises on the real kernel.
import test from 'ava';
import bunyan from 'bunyan';
import { Reconciler, type HelperApi, type KernelReader, type MetadataSource, type StateSink } from '../../agent/reconcile/reconciler.js';
import type { MetadataModel, ProviderSnapshot } from '../../agent/metadata/model.js';
import type { KernelState } from '../../netlink/types.js';
import type { Operation } from '../../protocol/operations.js';
import { applied } from '../lib/fake-kernel.js';
import { NO_NEIGHBOURS } from '../../agent/plan/planner.js';

const model: MetadataModel = {
  instance: { provider: 'ec2', id: 'i-1', name: 'vm', region: 'eu-west-1', zone: 'eu-west-1a', size: 't3', image: 'ami-1', details: {} },
  nics: [
    {
      mac: '02:00:00:00:00:01',
      index: 0,
      primary: true,
      ipv4: [{ address: '172.31.16.10', prefixLength: 20, primary: true }],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '172.31.16.0', prefixLength: 20 },
      gateway: '172.31.16.1',
      routedRanges: [],
      hostAddresses: false,
      details: {},
    },
    {
      mac: '02:00:00:00:00:02',
      index: 1,
      primary: false,
      ipv4: [
        { address: '172.31.32.10', prefixLength: 20, primary: true },
        { address: '172.31.32.11', prefixLength: 20, primary: false },
      ],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '172.31.32.0', prefixLength: 20 },
      gateway: '172.31.32.1',
      routedRanges: [],
      hostAddresses: false,
      details: {},
    },
  ],
};

class World implements MetadataSource, KernelReader, HelperApi, StateSink {
  readonly name = 'ec2' as const;
  kernel: KernelState = {
    links: [
      { index: 2, name: 'eth0', mac: '02:00:00:00:00:01', up: true, mtu: 9001, loopback: false },
      { index: 3, name: 'eth1', mac: '02:00:00:00:00:02', up: true, mtu: 9001, loopback: false },
    ],
    addresses: [
      { ifindex: 2, family: 'inet', address: '172.31.16.10', prefixLength: 20, dynamic: true, noPrefixRoute: false, scope: 0 },
    ],
    routes: [],
    rules: [],
  };
  metadata: MetadataModel | Error = model;
  helperUp = true;
  fetches = 0;
  helperCalls = 0;
  applies: Operation[][] = [];

  async fetch(): Promise<ProviderSnapshot> {
    this.fetches++;
    if (this.metadata instanceof Error) throw this.metadata;
    return { model: this.metadata, document: {}, sshKeys: [] };
  }
  reads = 0;
  async read(): Promise<KernelState> {
    this.reads++;
    return this.kernel;
  }
  async apply(operations: Operation[]) {
    this.helperCalls++;
    if (!this.helperUp) throw new Error('helper at /tmp/x.sock is not reachable: ECONNREFUSED');
    this.applies.push(operations);
    this.kernel = applied(this.kernel, operations);
    return { results: operations.map((op, index) => ({ index, kind: op.kind, outcome: 'applied' as const })) };
  }
  async ownedAddresses(): Promise<{ addresses: { link: string; address: string }[] }> {
    this.helperCalls++;
    if (!this.helperUp) throw new Error('helper at /tmp/x.sock is not reachable: ECONNREFUSED');
    return { addresses: [] };
  }
  stateFails?: Error;
  stateWrites = 0;
  async write(): Promise<void> {
    this.stateWrites++;
    if (this.stateFails) throw this.stateFails;
  }
}

/** A logger that keeps every record at Debug and above, for tests that read the log. */
function recordingLog(): { log: bunyan; records: { level: number; msg: string }[] } {
  const records: { level: number; msg: string }[] = [];
  const log = bunyan.createLogger({ name: 'test', streams: [{ type: 'raw', level: 'debug', stream: { write: (r: object) => records.push(r as { level: number; msg: string }) } as never }] });
  return { log, records };
}

function reconciler(
  world: World,
  kernelWatched = false,
  kernelEvents?: { pause(): void; resume(): void },
  afterApply?: () => void,
  options: { log?: bunyan; supplementary?: string[] } = {},
) {
  const log = options.log ?? bunyan.createLogger({ name: 'test', level: 'fatal' });
  return new Reconciler({
    ...(kernelEvents && { kernelEvents }),
    ...(afterApply && { afterApply }),
    source: world,
    kernel: world,
    helper: world,
    state: world,
    log,
    config: { routeTableBase: 20000, supplementary: options.supplementary ?? [] },
    retryMs: 60_000,
    kernelWatched,
  });
}

test('converges, then a refresh that changes nothing sends nothing to the helper', async (t) => {
  const world = new World();
  const r = reconciler(world);
  t.deepEqual(await r.request('start', true), { converged: true });
  t.is(world.applies.length, 1);
  t.deepEqual(await r.request('timer', true), { converged: true });
  t.is(world.applies.length, 1);
  await r.stop();
});

test('a refresh that changes nothing does not wake the helper', async (t) => {
  const world = new World();
  const r = reconciler(world);
  await r.request('start', true);
  const calls = world.helperCalls;
  await r.request('timer', true);
  await r.request('kernel', false);
  t.is(world.helperCalls, calls);
  await r.stop();
});

test('the first reconcile asks the helper for its ledger while the metadata is still being fetched', async (t) => {
  const world = new World();
  // the fetch completes only when released: the ledger request must not wait for it, so the
  // socket-activated helper starts while the IMDS answers
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fetch = world.fetch.bind(world);
  world.fetch = async () => {
    await released;
    return fetch();
  };
  const r = reconciler(world);
  const outcome = r.request('start', true);
  await new Promise((resolve) => setImmediate(resolve));
  t.is(world.helperCalls, 1, 'ownedAddresses was asked before the metadata arrived');
  release();
  t.deepEqual(await outcome, { converged: true });
  // converged: the next refresh wakes nothing early
  const calls = world.helperCalls;
  await r.request('timer', true);
  t.is(world.helperCalls, calls);
  await r.stop();
});

test('a ledger that answers late and is not empty is planned with: its address no longer listed is removed', async (t) => {
  const world = new World();
  // an address the helper made on a kernel without IFA_PROTO: only its ledger says it is ours
  world.kernel.addresses.push({ ifindex: 3, family: 'inet', address: '172.31.32.99', prefixLength: 20, dynamic: false, noPrefixRoute: true, scope: 0 });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  world.ownedAddresses = async () => {
    world.helperCalls++;
    await released;
    return { addresses: [{ link: 'eth1', address: '172.31.32.99/20' }] };
  };
  const r = reconciler(world);
  const outcome = r.request('start', true);
  for (let i = 0; i < 10 && world.reads === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  release();
  await outcome;
  t.true(
    world.applies[0]!.some((op) => op.kind === 'address.remove' && op.address === '172.31.32.99/20'),
    JSON.stringify(world.applies[0]),
  );
  await r.stop();
});

test('an IMDS outage removes nothing and is reported', async (t) => {
  const world = new World();
  const r = reconciler(world);
  await r.request('start', true);
  const before = JSON.stringify(world.kernel);
  world.metadata = new Error('503 Service Unavailable');
  const outcome = await r.request('timer', true);
  t.false(outcome.converged);
  t.regex(r.status.metadataError!, /503/);
  t.is(JSON.stringify(world.kernel), before);
  await r.stop();
});

test('during an outage a removed address is still repaired from the last good metadata', async (t) => {
  const world = new World();
  const r = reconciler(world);
  await r.request('start', true);
  world.metadata = new Error('connection refused');
  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.filter((a) => a.address !== '172.31.32.11') };
  await r.request('kernel', false);
  t.true(world.kernel.addresses.some((a) => a.address === '172.31.32.11'));
  await r.stop();
});

test('a helper that is down is reported, and the next try converges', async (t) => {
  const world = new World();
  world.helperUp = false;
  const r = reconciler(world);
  const outcome = await r.request('start', true);
  t.false(outcome.converged);
  t.false(r.status.helperReachable);
  t.regex(outcome.reason!, /not reachable/);
  world.helperUp = true;
  t.deepEqual(await r.request('retry', false), { converged: true });
  t.true(r.status.helperReachable);
  await r.stop();
});

test('a helper error that already says "will retry" is reported without saying it twice', async (t) => {
  const world = new World();
  const r = reconciler(world);
  const original = world.ownedAddresses.bind(world);
  world.ownedAddresses = async () => {
    throw new Error('helper at /tmp/x.sock is not reachable: ENOENT; will retry');
  };
  const outcome = await r.request('start', true);
  t.is(outcome.reason, 'helper at /tmp/x.sock is not reachable: ENOENT; will retry');
  t.is(r.status.lastError, outcome.reason);
  world.ownedAddresses = original;
  await r.stop();
});

test('kernel events re-plan from cached metadata without asking the IMDS', async (t) => {
  const world = new World();
  const r = reconciler(world);
  await r.request('start', true);
  const fetches = world.fetches;
  await r.request('kernel', false);
  t.is(world.fetches, fetches);
  await r.stop();
});

test('a burst of requests is coalesced into at most one more run', async (t) => {
  const world = new World();
  const r = reconciler(world);
  const first = r.request('start', true);
  const burst = Array.from({ length: 100 }, () => r.request('signal', true));
  await Promise.all([first, ...burst]);
  t.true(world.fetches <= 2, `fetched ${world.fetches} times`);
  await r.stop();
});

test('metadata that no longer lists an IP removes its address and rules', async (t) => {
  const world = new World();
  const r = reconciler(world);
  await r.request('start', true);
  world.metadata = { ...model, nics: [model.nics[0]!, { ...model.nics[1]!, ipv4: [model.nics[1]!.ipv4[0]!] }] };
  await r.request('metadata', true);
  t.false(world.kernel.addresses.some((a) => a.address === '172.31.32.11'));
  t.false(world.kernel.rules.some((rule) => rule.from === '172.31.32.11/32'));
  t.true(world.kernel.addresses.some((a) => a.address === '172.31.32.10'));
  await r.stop();
});

test('with kernel events watched, a refresh with unchanged metadata and no kernel event skips the kernel read', async (t) => {
  const world = new World();
  const r = reconciler(world, true);
  await r.request('start', true);
  await r.request('timer', true); // converged by reading: now known to be clean
  const reads = world.reads;
  t.deepEqual(await r.request('timer', true), { converged: true });
  t.is(world.reads, reads);
  await r.stop();
});

test('a kernel event, changed metadata or a reload makes the next refresh read the kernel again', async (t) => {
  const world = new World();
  const r = reconciler(world, true);
  await r.request('start', true);
  await r.request('timer', true);
  // someone removes a managed address: the event marks the kernel changed
  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.filter((a) => a.address !== '172.31.32.11') };
  r.noteKernelChange();
  await r.request('timer', true);
  t.true(world.kernel.addresses.some((a) => a.address === '172.31.32.11'), 'repaired');
  await r.request('timer', true);
  const reads = world.reads;
  world.metadata = { ...model, nics: [model.nics[0]!, { ...model.nics[1]!, ipv4: [model.nics[1]!.ipv4[0]!] }] };
  await r.request('timer', true);
  t.true(world.reads > reads, 'changed metadata is planned against a fresh read');
  t.false(world.kernel.addresses.some((a) => a.address === '172.31.32.11'));
  const before = world.reads;
  r.setConfig({ routeTableBase: 20000, supplementary: ['eth0'] });
  await r.request('signal', true);
  t.true(world.reads > before, 'a reload reads the kernel');
  await r.stop();
});

test('without a kernel watch every refresh reads the kernel', async (t) => {
  const world = new World();
  const r = reconciler(world, false);
  await r.request('start', true);
  await r.request('timer', true);
  const reads = world.reads;
  await r.request('timer', true);
  t.true(world.reads > reads);
  await r.stop();
});

test('even without kernel events the kernel is read again after MAX_SKIPPED_KERNEL_READS quiet refreshes', async (t) => {
  const { MAX_SKIPPED_KERNEL_READS } = await import('../../agent/reconcile/reconciler.js');
  const world = new World();
  const r = reconciler(world, true);
  await r.request('start', true);
  const reads = world.reads;
  for (let i = 0; i < MAX_SKIPPED_KERNEL_READS; i++) await r.request('timer', true);
  t.is(world.reads, reads);
  await r.request('timer', true);
  t.true(world.reads > reads);
  await r.stop();
});

test('kernel events are paused while the helper applies and resumed before the kernel is read again', async (t) => {
  const world = new World();
  const log: string[] = [];
  const events = { pause: () => void log.push('pause'), resume: () => void log.push('resume') };
  const apply = world.apply.bind(world);
  world.apply = async (operations) => {
    log.push('apply');
    return apply(operations);
  };
  const read = world.read.bind(world);
  world.read = async () => {
    log.push('read');
    return read();
  };
  const r = reconciler(world, true, events);
  t.deepEqual(await r.request('start', true), { converged: true });
  t.deepEqual(log, ['read', 'pause', 'apply', 'resume', 'read']);

  // and resumed when the helper fails too
  log.length = 0;
  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.slice(0, 1) };
  world.helperUp = false;
  r.noteKernelChange();
  const outcome = await r.request('kernel', false);
  t.false(outcome.converged);
  t.deepEqual(log.filter((step) => step !== 'read'), ['pause', 'apply', 'resume']);
  await r.stop();
});

test('every reconcile that sent the helper a plan, applied or not, is reported as allocation-heavy work; one that only read is not', async (t) => {
  const world = new World();
  let reported = 0;
  const r = reconciler(world, true, undefined, () => void reported++);
  await r.request('start', true);
  t.is(reported, 1);
  const reads = world.reads;
  r.noteKernelChange(); // an event: the next refresh reads and plans, and finds nothing to do
  await r.request('timer', true);
  t.true(world.reads > reads);
  t.is(reported, 1);

  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.slice(0, 1) };
  world.helperUp = false;
  r.noteKernelChange();
  t.false((await r.request('kernel', false)).converged);
  t.is(reported, 2, 'an apply the helper did not answer counts too');
  await r.stop();
});

test('after an apply that the read after it confirmed, a quiet refresh does not read again; a change during the read after it or a lost watch does', async (t) => {
  const world = new World();
  const r = reconciler(world, true, { pause: () => undefined, resume: () => undefined });
  await r.request('start', true);
  const reads = world.reads;
  t.deepEqual(await r.request('timer', true), { converged: true });
  t.is(world.reads, reads, 'the read after the apply showed the whole plan');

  // an event that arrives while the read after an apply runs marks the kernel changed again
  const other = new World();
  const read = other.read.bind(other);
  let r2: ReturnType<typeof reconciler>;
  let afterApply = false;
  other.read = async () => {
    if (afterApply) r2.noteKernelChange();
    return read();
  };
  const apply = other.apply.bind(other);
  other.apply = async (operations) => {
    afterApply = true;
    return apply(operations);
  };
  r2 = reconciler(other, true, { pause: () => undefined, resume: () => undefined });
  await r2.request('start', true);
  const before = other.reads;
  await r2.request('timer', true);
  t.true(other.reads > before);

  // a watch that cannot be resumed counts as a change (the daemon notes one when resuming fails)
  const third = new World();
  let r3: ReturnType<typeof reconciler>;
  r3 = reconciler(third, true, { pause: () => undefined, resume: () => r3.noteKernelChange() });
  await r3.request('start', true);
  const before3 = third.reads;
  await r3.request('timer', true);
  t.true(third.reads > before3);
  await Promise.all([r.stop(), r2.stop(), r3.stop()]);
});

test('a Supplementary= name that is no interface now is a warning, said once, and again when the names change', async (t) => {
  const world = new World();
  const { log, records } = recordingLog();
  const r = reconciler(world, false, undefined, undefined, { log, supplementary: ['eth0', 'eth7'] });
  t.deepEqual(await r.request('start', true), { converged: true });
  await r.request('timer', true);
  const warnings = () => records.filter((rec) => rec.level === 40 && /Supplementary=/.test(rec.msg)).map((rec) => rec.msg);
  t.deepEqual(warnings(), ['Supplementary= names eth7, which is not an interface now; its addresses get rules once it appears (ip link shows the names)']);
  r.setConfig({ routeTableBase: 20000, supplementary: ['eth8', 'eth9'] });
  await r.request('signal', true);
  t.is(warnings().length, 2);
  t.regex(warnings()[1]!, /names eth8, eth9, which are not interfaces now/);
  await r.stop();
});

test('state files that cannot be written are reported in status and logged once; the kernel is still configured, and a later write clears it', async (t) => {
  const world = new World();
  world.stateFails = Object.assign(new Error("EACCES: permission denied, open '/run/cloud-network/links/eth1.json.7.tmp'"), { code: 'EACCES' });
  const { log, records } = recordingLog();
  const r = reconciler(world, true, undefined, undefined, { log });
  t.deepEqual(await r.request('start', true), { converged: true });
  t.regex(r.status.stateError!, /^state files not written: EACCES: permission denied, open '\/run\/cloud-network\/links\/eth1\.json\.7\.tmp'; the kernel is configured/);
  t.true(world.kernel.addresses.some((a) => a.address === '172.31.32.11'));
  // a quiet refresh is not skipped while the files are stale: it tries again, and logs nothing new
  const writes = world.stateWrites;
  await r.request('timer', true);
  t.is(world.stateWrites, writes + 1);
  t.is(records.filter((rec) => rec.level === 50 && /state files not written/.test(rec.msg)).length, 1);
  world.stateFails = undefined;
  await r.request('timer', true);
  t.is(r.status.stateError, undefined);
  t.true(records.some((rec) => rec.level === 30 && rec.msg === 'state files written again'));
  await r.stop();
});

test('with the helper down the status lists what is pending, as many operations as it counts, and why the helper is not reached', async (t) => {
  const world = new World();
  world.helperUp = false;
  const r = reconciler(world);
  t.false((await r.request('start', true)).converged);
  t.true(r.status.pending.length > 0);
  t.is(r.status.pendingOperations, r.status.pending.length);
  t.true(r.status.pending.some((op) => op.kind === 'address.add' && op.address === '172.31.32.11/20'), JSON.stringify(r.status.pending));
  t.regex(r.status.helperError!, /not reachable: ECONNREFUSED; will retry/);
  // down in the middle of an apply: the same
  world.helperUp = true;
  t.true((await r.request('retry', false)).converged);
  t.is(r.status.helperError, undefined);
  t.is(r.status.pendingOperations, 0);
  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.filter((a) => a.address !== '172.31.32.11') };
  world.helperUp = false;
  await r.request('kernel', false);
  t.deepEqual(r.status.pending.map((op) => op.kind), ['address.add']);
  t.is(r.status.pendingOperations, 1);
  await r.stop();
});

test('recovery is logged: the metadata available again after its failures, the helper reachable again', async (t) => {
  const world = new World();
  const { log, records } = recordingLog();
  const r = reconciler(world, false, undefined, undefined, { log });
  await r.request('start', true);
  world.metadata = new Error('HTTP 500');
  for (let i = 0; i < 3; i++) await r.request('timer', true);
  world.metadata = model;
  await r.request('timer', true);
  world.helperUp = false;
  world.kernel = { ...world.kernel, addresses: world.kernel.addresses.filter((a) => a.address !== '172.31.32.11') };
  await r.request('kernel', false);
  await r.request('retry', false);
  world.helperUp = true;
  await r.request('retry', false);
  const info = records.filter((rec) => rec.level === 30).map((rec) => rec.msg);
  t.true(info.includes('metadata from ec2 available again after 3 failures'), info.join('\n'));
  t.true(info.includes('helper reachable again after 2 failed attempts'), info.join('\n'));
  await r.stop();
});

test('at Debug a reconcile shows each kernel read and the plan in numbers', async (t) => {
  const world = new World();
  const { log, records } = recordingLog();
  const r = reconciler(world, false, undefined, undefined, { log });
  await r.request('start', true);
  const debug = records.filter((rec) => rec.level === 20).map((rec) => rec.msg);
  t.true(debug.some((m) => /^kernel read: 2 links, 1 address, 0 routes, 0 rules in \d+ ms$/.test(m)), debug.join('\n'));
  t.true(debug.some((m) => /^plan: 2 NICs \(2 on a link\), \d+ operations: \d+ to add or replace, 0 to remove \(\d+ ms\)$/.test(m)), debug.join('\n'));
  t.true(debug.some((m) => /^kernel read after the apply: 2 links, 3 addresses, 2 routes, 5 rules in \d+ ms$/.test(m)), debug.join('\n'));
  t.true(debug.includes('plan after the apply: 2 NICs (2 on a link), 0 operations: 0 to add or replace, 0 to remove'), debug.join('\n'));
  await r.stop();
});

test("other tools' configuration is surveyed while the metadata is fetched, not after", async (t) => {
  const world = new World();
  let surveyed = false;
  let surveyedBeforeMetadata: boolean | undefined;
  const fetch = world.fetch.bind(world);
  // the metadata arrives once the survey has begun, or after 2 s
  world.fetch = async () => {
    const started = Date.now();
    while (!surveyed && Date.now() - started < 2_000) await new Promise((resolve) => setTimeout(resolve, 5));
    surveyedBeforeMetadata = surveyed;
    return fetch();
  };
  const r = new Reconciler({
    source: world,
    kernel: world,
    helper: world,
    state: world,
    log: bunyan.createLogger({ name: 'test', level: 'fatal' }),
    config: { routeTableBase: 20000, supplementary: [] },
    retryMs: 60_000,
    kernelWatched: false,
    neighbours: {
      refresh: async () => {
        surveyed = true;
        return false;
      },
      survey: () => ({ tools: [], collisions: [], neighbours: NO_NEIGHBOURS, likelyRemover: () => undefined }),
    },
  });
  t.deepEqual(await r.request('start', true), { converged: true });
  t.true(surveyedBeforeMetadata);
  await r.stop();
});
