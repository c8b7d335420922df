// How the daemon turns kernel events into reconcile requests, with a recording reconciler.
import test from 'ava';
import bunyan from 'bunyan';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type Config } from '../../agent/process/config.js';
import { Daemon, KERNEL_EVENT_MAX_DELAY_MS } from '../../agent/reconcile/daemon.js';
import type { Reconciler } from '../../agent/reconcile/reconciler.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function daemonWithEvents(t: import('ava').ExecutionContext) {
  const stateDir = await mkdtemp(join(tmpdir(), 'cn-daemon-'));
  const requests: string[] = [];
  let changes = 0;
  const reconciler = {
    request: async (trigger: string) => {
      requests.push(trigger);
      return { converged: true };
    },
    noteKernelChange: () => void changes++,
    stop: async () => undefined,
  } as unknown as Reconciler;
  let emit!: () => void;
  let watches = 0;
  let closed = 0;
  const config: Config = { ...DEFAULT_CONFIG, system: { ...DEFAULT_CONFIG.system, stateDir, refreshTimerMs: 3_600_000 } };
  const daemon = new Daemon({
    reconciler,
    log: bunyan.createLogger({ name: 'test', level: 'fatal' }),
    config,
    configPath: join(stateDir, 'none.toml'),
    watchKernel: (onChange) => {
      watches++;
      emit = onChange;
      return { close: () => void closed++ };
    },
    applyConfig: () => undefined,
    close: async () => undefined,
  });
  await daemon.start();
  t.teardown(async () => {
    await daemon.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
  return { daemon, requests, emit: () => emit(), changes: () => changes, watches: () => ({ opened: watches, closed }) };
}

test('a burst of kernel events becomes one reconcile request', async (t) => {
  const d = await daemonWithEvents(t);
  await sleep(20); // the start-up request
  d.requests.length = 0;
  for (let i = 0; i < 5_000; i++) d.emit();
  await sleep(KERNEL_EVENT_MAX_DELAY_MS * 3);
  t.deepEqual(d.requests, ['kernel']);
  t.is(d.changes(), 5_000);
});

test('a steady stream of kernel events cannot hold reconciles off until it ends', async (t) => {
  const d = await daemonWithEvents(t);
  await sleep(20);
  d.requests.length = 0;
  // an event every 5 ms never leaves a quiet gap, for four times the longest wait
  const until = performance.now() + KERNEL_EVENT_MAX_DELAY_MS * 4;
  while (performance.now() < until) {
    d.emit();
    await sleep(5);
  }
  const duringStream = d.requests.length;
  await sleep(KERNEL_EVENT_MAX_DELAY_MS * 2);
  t.true(duringStream >= 2, `${duringStream} requests while events kept coming`);
  t.true(d.requests.every((trigger) => trigger === 'kernel'));
});

test('events after a quiet gap start a new burst: two bursts, two reconcile requests', async (t) => {
  const d = await daemonWithEvents(t);
  await sleep(20);
  d.requests.length = 0;
  for (let i = 0; i < 100; i++) d.emit();
  // far longer than the quiet time (KERNEL_EVENT_QUIET_MS) that ends a burst
  await sleep(KERNEL_EVENT_MAX_DELAY_MS * 2);
  t.deepEqual(d.requests, ['kernel'], 'the first burst ended after its quiet time');
  for (let i = 0; i < 100; i++) d.emit();
  await sleep(KERNEL_EVENT_MAX_DELAY_MS * 2);
  t.deepEqual(d.requests, ['kernel', 'kernel']);
});

test('pausing kernel events closes the watch, resuming opens a new one whose events count', async (t) => {
  const d = await daemonWithEvents(t);
  await sleep(20);
  d.requests.length = 0;
  t.deepEqual(d.watches(), { opened: 1, closed: 0 });
  d.daemon.pauseKernelEvents();
  d.daemon.pauseKernelEvents(); // twice is once
  t.deepEqual(d.watches(), { opened: 1, closed: 1 });
  d.daemon.resumeKernelEvents();
  d.daemon.resumeKernelEvents();
  t.deepEqual(d.watches(), { opened: 2, closed: 1 });
  d.emit();
  await sleep(KERNEL_EVENT_MAX_DELAY_MS * 2);
  t.deepEqual(d.requests, ['kernel']);
});
