// Everything after the cold converge, on the last run's namespaces and programs, one function
// per figure and in this order: the helper's memory once settled, the no-change refresh,
// repairs, the helper's idle exit and re-activation, the API, timer changes, the agent's memory,
// bulk changes; then, in namespaces of its own, GCP's long-poll changes.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { missingFromKernel, type CloudEnv } from '../test/lib/cloud-env.js';
import type { TeardownStack } from '../test/lib/teardown-stack.js';
import type { Service } from '../test/lib/units.js';
import type { Scenario } from '../test/imds-sim/scenario.js';
import { parsePrefix } from '../protocol/ip.js';
import { CONTEST_LIMIT } from '../agent/reconcile/contest.js';
import { bulkChanges, gcpLongPollChanges, timerChanges } from './changes.js';
import { hasAddress, ipOut, waitUntil } from './kernel.js';
import type { KernelWatch } from './kernel-watch.js';
import { apiProbe, applyAudits, cpuMs, HELPER_IDLE_EXIT_S, memoryMiB, nodeFloorMiB, type ActivatedHelper, type ApiProbe } from './processes.js';
import { spread, type SizeName, type SizeResult, type SteadyFigures, type WrkFigures } from './report.js';

const run = promisify(execFile);

interface AgentStatus {
  reconciles: number;
  reconciling: boolean;
  converged: boolean;
  reloads: number;
  lastReload: { number: number } | null;
}

/** The converged namespaces and programs every figure here works on. */
export interface Steady {
  size: SizeName;
  env: CloudEnv;
  watch: KernelWatch;
  scenario: Scenario;
  agent: Service;
  helper: ActivatedHelper;
  cleanup: TeardownStack;
  log: (line: string) => void;
}

/** What the figures share: the agent's pid and API, and the NIC whose addresses they remove. */
interface Context extends Steady {
  agentPid: number;
  api: ApiProbe;
  status(): Promise<AgentStatus>;
  /** eth1 (eth0 when there is one NIC), and its addresses' prefix length */
  victimNic: number;
  prefix: number;
}

export interface SteadyOptions {
  refreshCycles: number;
  repairs: number;
  changes: number;
  wrkSeconds: number;
}

export async function steadyState(steady: Steady, options: SteadyOptions): Promise<SteadyFigures> {
  const { size, log, scenario } = steady;
  const api = apiProbe(steady.cleanup, steady.env);
  const victimNic = scenario.nics.length > 1 ? 1 : 0;
  const c: Context = {
    ...steady,
    agentPid: steady.agent.pid()!,
    api,
    status: async () => (await api('/api/v1/status')).body as AgentStatus,
    victimNic,
    prefix: parsePrefix(scenario.nics[victimNic]!.subnet!)!.prefixLength,
  };
  const helperMemory = await settledHelperMemory(c);
  const refresh = await refreshCost(c, options.refreshCycles);
  log(`  ${size} refresh: ${JSON.stringify(refresh)}`);
  const repairs = await repairTimes(c, options.repairs);
  log(`  ${size} repair: median ${spread(repairs).median} ms`);
  const idle = await helperIdle(c);
  const apiFigures = await apiUnderLoad(c, options.wrkSeconds);
  log(`  ${size} api: idle ${JSON.stringify(apiFigures.idle)}, during reconciles ${JSON.stringify(apiFigures.duringReconcile)}`);
  await waitUntil(() => missingFromKernel(c.env).length === 0, 20_000, 'the kernel to be whole again after the churn', 100);
  const timer = await timerChanges(c.env, c.watch, scenario, victimNic, c.agentPid, options.changes);
  log(`  ${size} change (timer 2s): median ${spread(timer).median} ms`);
  const agentMemory = await steadyAgentMemory(c);
  const bulk = await bulkChanges(c.env, c.watch, victimNic, c.agentPid, options.changes);
  log(`  ${size} bulk change (${bulk.ips} IPs, SIGHUP): removed ${bulk.removeMs.median} ms, added back ${bulk.addBackMs.median} ms`);
  await steady.agent.stop();
  await steady.helper.stop();
  const gcp = await gcpLongPollChanges(size, options.changes);
  log(`  ${size} change (GCP long-poll): median ${spread(gcp).median} ms`);

  return {
    refresh,
    repairMs: spread(repairs),
    changeMs: { timer: { ...spread(timer), refreshTimer: '2s' }, gcpLongPoll: spread(gcp), bulk },
    memory: {
      ...agentMemory,
      helperPeakMiB: helperMemory.peak,
      helperSteadyMiB: helperMemory.rss,
      helperPrivateMiB: helperMemory.private,
      nodeFloorMiB: { agent: nodeFloorMiB('cloud-network.service.in'), helper: nodeFloorMiB('cloud-network-helper.service.in') },
      ...idle,
    },
    api: apiFigures,
  };
}

/**
 * The helper's memory once the converge has settled: the agent's client closes its idle helper
 * connection after 1 s, and then the helper collects garbage; the agent collects 1 s after its
 * last apply (agent/process/idle-gc.ts). The helper exits HELPER_IDLE_EXIT_S after that.
 */
async function settledHelperMemory(c: Context): Promise<ReturnType<typeof memoryMiB>> {
  await waitUntil(async () => (await c.status())?.converged === true && !(await c.status()).reconciling, 30_000, 'the agent to report converged', 50);
  await sleep(1_500);
  return memoryMiB(c.helper.helperPid());
}

/** The no-change refresh: SIGHUP refetches the metadata and re-plans; its netlink writes and CPU. */
async function refreshCost(c: Context, cycles: number): Promise<SizeResult['refresh']> {
  const auditsBefore = applyAudits(c.helper.lines);
  let polls = 0;
  const countedStatus = () => (polls++, c.status());
  const cpuBefore = cpuMs(c.agentPid);
  const cycleStart = performance.now();
  for (let i = 0; i < cycles; i++) {
    const before = (await countedStatus()).reconciles;
    process.kill(c.agentPid, 'SIGHUP');
    await sleep(100);
    await waitUntil(async () => {
      const s = await countedStatus();
      return s.reconciles > before && !s.reconciling;
    }, 30_000, 'a refresh cycle to finish', 50);
  }
  const cpuWithPolls = cpuMs(c.agentPid) - cpuBefore;
  const cyclesMs = performance.now() - cycleStart;
  // The status polls that detect the end of each cycle cost the agent CPU too: measure the same
  // number of polls over the same time without any refresh, and take that out.
  const idleBefore = cpuMs(c.agentPid);
  const idleStart = performance.now();
  for (let i = 0; i < polls; i++) {
    await c.status();
    await sleep(Math.max(0, (idleStart + ((i + 1) * cyclesMs) / polls) - performance.now()));
  }
  const observerCpu = cpuMs(c.agentPid) - idleBefore;
  const cpuPerCycle = (cpuWithPolls - observerCpu) / cycles;
  const newAudits = applyAudits(c.helper.lines).slice(auditsBefore.length);
  return {
    cycles,
    netlinkWrites: newAudits.reduce((sum, a) => sum + a.applied, 0),
    applyRequests: newAudits.length,
    agentCpuMsPerCycle: Math.round(cpuPerCycle * 10) / 10,
    observerCpuMsPerCycle: Math.round((observerCpu / cycles) * 10) / 10,
  };
}

/**
 * A managed address removed by hand, until it is back; 250 ms apart. The agent stops re-adding
 * an object removed more than CONTEST_LIMIT times a minute (the tug-of-war guard), so before an
 * address would be removed once more than that, a reload (SIGHUP) makes it count afresh.
 */
async function repairTimes(c: Context, repairs: number): Promise<number[]> {
  const ips = c.scenario.nics[c.victimNic]!.ipv4;
  const samples: number[] = [];
  const removals = new Map<string, number>();
  for (let i = 0; i < repairs; i++) {
    const address = ips[1 + (i % (ips.length - 1))]!;
    if ((removals.get(address) ?? 0) >= CONTEST_LIMIT) {
      await reloaded(c);
      removals.clear();
    }
    removals.set(address, (removals.get(address) ?? 0) + 1);
    const start = performance.now();
    await ipOut(c.env.vm, 'addr', 'del', `${address}/${c.prefix}`, 'dev', `eth${c.victimNic}`);
    const back = await c.watch.until(() => hasAddress(c.env, c.victimNic, address), 10_000, `${address} to be repaired`);
    samples.push(back - start);
    await sleep(250);
  }
  return samples;
}

/** SIGHUP, and the reload's refresh over. */
async function reloaded(c: Context): Promise<void> {
  const before = (await c.status()).reloads;
  process.kill(c.agentPid, 'SIGHUP');
  await waitUntil(async () => ((await c.status()).lastReload?.number ?? 0) > before, 30_000, 'the reload to end', 50);
}

/** No connection for --idle-exit seconds: is the helper gone, and does a repair start it again? */
async function helperIdle(c: Context): Promise<Pick<SizeResult['memory'], 'helperIdleMiB' | 'helperExitedWhenIdle' | 'helperReactivated' | 'reactivationRepairMs'>> {
  // the repairs just removed this address several times: a reload makes its removal count afresh
  await reloaded(c);
  await sleep((HELPER_IDLE_EXIT_S + 1.5) * 1000);
  const idlePid = c.helper.helperPid();
  const helperIdleMiB = memoryMiB(idlePid).rss;
  const helperExitedWhenIdle = idlePid === undefined;
  let helperReactivated = false;
  let reactivationRepairMs: number | null = null;
  if (helperExitedWhenIdle) {
    const activations = c.helper.activations();
    const address = c.scenario.nics[c.victimNic]!.ipv4[1]!;
    const start = performance.now();
    await ipOut(c.env.vm, 'addr', 'del', `${address}/${c.prefix}`, 'dev', `eth${c.victimNic}`);
    const back = await c.watch.until(() => hasAddress(c.env, c.victimNic, address), 20_000, `${address} to be repaired through a re-activated helper`);
    reactivationRepairMs = Math.round(back - start);
    helperReactivated = c.helper.activations() > activations;
  }
  return { helperIdleMiB, helperExitedWhenIdle, helperReactivated, reactivationRepairMs };
}

/** wrk on /api/v1/network, idle and during reconciles (SIGHUP every 100 ms, a repair every 300 ms). */
async function apiUnderLoad(c: Context, seconds: number): Promise<SizeResult['api']> {
  const idle = await wrk(c.env.vm, seconds);
  const reconcilesBefore = (await c.status()).reconciles;
  const ips = c.scenario.nics[c.victimNic]!.ipv4;
  let churning = true;
  const churn = (async () => {
    let i = 0;
    while (churning) {
      process.kill(c.agentPid, 'SIGHUP');
      if (i % 3 === 0) {
        const address = ips[1 + (i % (ips.length - 1))]!;
        await ipOut(c.env.vm, 'addr', 'del', `${address}/${c.prefix}`, 'dev', `eth${c.victimNic}`).catch(() => undefined);
      }
      i++;
      await sleep(100);
    }
  })();
  const busy = await wrk(c.env.vm, seconds);
  churning = false;
  await churn;
  return { idle, duringReconcile: { ...busy, reconciles: (await c.status()).reconciles - reconcilesBefore } };
}

async function wrk(ns: string, seconds: number): Promise<WrkFigures> {
  // one thread and 8 connections: the agent gets the other core
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'wrk', '-t1', '-c8', `-d${seconds}s`, '--latency', 'http://127.0.0.1:5209/api/v1/network'], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(stdout);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  const p99Ms = p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : NaN;
  const errorsMatch = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = Number(errorsMatch?.[1] ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
  if (!Number.isFinite(rps) || !Number.isFinite(p99Ms)) throw new Error(`cannot read wrk's output:\n${stdout}`);
  return { requestsPerSecond: Math.round(rps), p99Ms: Math.round(p99Ms * 100) / 100, errors };
}

/**
 * The agent's memory after all of the above, idle again for a few seconds (it collects garbage
 * 1 s after its last apply and then trims malloc), and how much of it is the JavaScript heap,
 * from its own /metrics.
 */
async function steadyAgentMemory(c: Context): Promise<Pick<SizeResult['memory'], 'agentPeakMiB' | 'agentSteadyMiB' | 'agentPrivateMiB' | 'agentHeapUsedMiB'>> {
  await sleep(3_000);
  const memory = memoryMiB(c.agentPid);
  const metricsText = String((await c.api('/metrics')).body ?? '');
  const heapBytes = Number(/^nodejs_heap_size_used_bytes (\d+)$/m.exec(metricsText)?.[1] ?? NaN);
  return { agentPeakMiB: memory.peak, agentSteadyMiB: memory.rss, agentPrivateMiB: memory.private, agentHeapUsedMiB: Math.round((heapBytes / 1048576) * 10) / 10 };
}
