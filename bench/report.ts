// The bench's figures: their types (what bench/results.json holds), the spread of a figure's
// samples, and the table `make bench` prints.
import type { BENCH_SIZES } from '../test/imds-sim/generate.js';

export type SizeName = keyof typeof BENCH_SIZES;

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** every sample, in the order taken */
  samples: number[];
}

export interface SizeResult {
  size: SizeName;
  nics: number;
  ipsPerNic: number;
  /** what the plan puts into the kernel */
  objects: { addresses: number; routes: number; rules: number };
  coldConvergeMs: Spread;
  /** `node -e 0` started as the agent is, measured before each converge (processes.ts nodeStartMs) */
  nodeStartMs: Spread;
  /** per run, the converge less that run's Node start: what cloud-network itself adds */
  convergeAboveNodeMs: Spread;
  /** the helper's own time for the apply request(s) of the cold converge, from its audit lines */
  helperApplyMs: Spread;
  /**
   * `ip -batch` with the bench's `ip monitor` listening, as it listens during the converge: the
   * kernel builds and delivers a notification per change for every listener, so the converge is
   * compared with the floor under the same load
   */
  floorMs: Spread;
  /** the same `ip -batch` with nothing listening */
  floorNoListenerMs: Spread;
  /** converge / floor (floorMs) per run, measured in the same namespaces */
  converge_over_floor: Spread;
  /** agentCpuMsPerCycle excludes observerCpuMsPerCycle: the status polls and idle timers over the same time, measured without refreshes */
  refresh: { cycles: number; netlinkWrites: number; applyRequests: number; agentCpuMsPerCycle: number; observerCpuMsPerCycle: number };
  repairMs: Spread;
  changeMs: {
    timer: Spread & { refreshTimer: string };
    gcpLongPoll: Spread;
    /** SIGHUP → the kernel without a NIC's secondary IPs (their addresses and rules), then → all back */
    bulk: { ips: number; removeMs: Spread; addBackMs: Spread };
  };
  memory: {
    agentPeakMiB: number;
    agentSteadyMiB: number;
    /** of the steady RSS, what the agent alone holds (not the shared node executable and libraries) */
    agentPrivateMiB: number;
    /** of the steady RSS, the V8 heap in use (nodejs_heap_size_used_bytes) */
    agentHeapUsedMiB: number;
    helperPeakMiB: number;
    helperSteadyMiB: number;
    helperPrivateMiB: number;
    /** a Node process that does nothing, with each unit's flags and environment (processes.ts nodeFloorMiB) */
    nodeFloorMiB: { agent: number; helper: number };
    /** the helper's RSS once idle for longer than --idle-exit (0 when it has exited) */
    helperIdleMiB: number;
    helperExitedWhenIdle: boolean;
    /** an address removed after the idle exit came back through a re-activated helper */
    helperReactivated: boolean;
    reactivationRepairMs: number | null;
  };
  api: { idle: WrkFigures; duringReconcile: WrkFigures & { reconciles: number } };
}


export type SteadyFigures = Pick<SizeResult, 'refresh' | 'repairMs' | 'changeMs' | 'memory' | 'api'>;

export interface WrkFigures {
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
}

export interface BenchResults {
  date: string;
  machine: { cpus: number; kernel: string; node: string };
  /** how the agent and the helper were started */
  runtime: string;
  sizes: SizeResult[];
}

export interface BenchOptions {
  sizes: SizeName[];
  /** repetitions of the cold converge / floor per size */
  repetitions?: Partial<Record<SizeName, number>>;
  refreshCycles?: number;
  repairs?: number;
  changes?: number;
  wrkSeconds?: number;
  log?: (line: string) => void;
}

export function spread(samples: number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const round = (n: number) => Math.round(n * 10) / 10;
  return { median: round(median), min: round(sorted[0] ?? NaN), max: round(sorted.at(-1) ?? NaN), samples: samples.map(round) };
}

/**
 * What a figure should be (issue targets, bench/README.md "Targets"), at the sizes a goal is set
 * for: the table prints it beside the figures and marks each figure it applies to.
 */
interface Goal {
  sizes: readonly SizeName[];
  text: string;
  met(s: SizeResult): boolean;
}

const ALL: readonly SizeName[] = ['S', 'M', 'L'];

export const GOALS: Record<string, Goal> = {
  'cold converge ms': { sizes: ['S', 'M'], text: 'S, M ≤ 120 (moonshot 80)', met: (s) => s.coldConvergeMs.median <= 120 },
  'converge / floor': { sizes: ['L'], text: 'L ≤ 2.0 (moonshot 1.5)', met: (s) => s.converge_over_floor.median <= 2 },
  'refresh: netlink writes': { sizes: ALL, text: '0', met: (s) => s.refresh.netlinkWrites === 0 },
  'refresh: agent CPU ms/cycle': { sizes: ALL, text: '≤ 20', met: (s) => s.refresh.agentCpuMsPerCycle <= 20 },
  'repair ms': { sizes: ALL, text: '≤ 250', met: (s) => s.repairMs.median <= 250 },
  'agent RSS MiB peak/steady': { sizes: ['S'], text: 'steady ≤ 45 at S; ≤ 80 at L', met: (s) => s.memory.agentSteadyMiB <= 45 },
  'helper RSS MiB peak/steady': { sizes: ['S'], text: 'steady ≤ 40 at S; ≤ 50 at L', met: (s) => s.memory.helperSteadyMiB <= 40 },
  'helper idle: RSS MiB, exited': { sizes: ALL, text: '0, yes', met: (s) => s.memory.helperIdleMiB === 0 && s.memory.helperExitedWhenIdle },
  'API req/s, p99 ms (idle)': { sizes: ALL, text: '≥ 2,000, ≤ 50', met: (s) => s.api.idle.requestsPerSecond >= 2000 && s.api.idle.p99Ms <= 50 },
  'API req/s, p99 ms (reconciling)': { sizes: ALL, text: '≥ 2,000, ≤ 50', met: (s) => s.api.duringReconcile.requestsPerSecond >= 2000 && s.api.duringReconcile.p99Ms <= 50 },
};

/** The L-only goals that share a row with an S goal. */
const L_GOALS: Record<string, (s: SizeResult) => boolean> = {
  'agent RSS MiB peak/steady': (s) => s.memory.agentSteadyMiB <= 80,
  'helper RSS MiB peak/steady': (s) => s.memory.helperSteadyMiB <= 50,
};

function fmt(s: Spread, digits = 0): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

export function formatTable(results: BenchResults): string {
  const rows: [string, ...string[]][] = [['', ...results.sizes.map((s) => `${s.size}: ${s.nics}×${s.ipsPerNic}`), 'goal']];
  // each figure a goal applies to is marked met (✓) or not (✗)
  const mark = (label: string, s: SizeResult): string => {
    const goal = GOALS[label];
    const lGoal = L_GOALS[label];
    if (lGoal && s.size === 'L') return lGoal(s) ? ' ✓' : ' ✗';
    if (!goal || !goal.sizes.includes(s.size)) return '';
    return goal.met(s) ? ' ✓' : ' ✗';
  };
  const add = (label: string, f: (s: SizeResult) => string) => rows.push([label, ...results.sizes.map((s) => f(s) + mark(label, s)), GOALS[label]?.text ?? '']);
  add('objects (addr/route/rule)', (s) => `${s.objects.addresses}/${s.objects.routes}/${s.objects.rules}`);
  add('cold converge ms', (s) => fmt(s.coldConvergeMs));
  add("  Node's own start ms (node -e 0)", (s) => fmt(s.nodeStartMs));
  add('  converge above it ms', (s) => fmt(s.convergeAboveNodeMs));
  add('  of which helper apply ms', (s) => fmt(s.helperApplyMs));
  add('ip -batch floor ms (ip monitor on)', (s) => fmt(s.floorMs, 1));
  add('  with nothing listening', (s) => fmt(s.floorNoListenerMs, 1));
  add('converge / floor', (s) => fmt(s.converge_over_floor, 1));
  add('refresh: netlink writes', (s) => `${s.refresh.netlinkWrites} in ${s.refresh.cycles} (${s.refresh.applyRequests} apply)`);
  add('refresh: agent CPU ms/cycle', (s) => `${s.refresh.agentCpuMsPerCycle.toFixed(1)} (+${s.refresh.observerCpuMsPerCycle.toFixed(1)} polls/idle)`);
  add('repair ms', (s) => fmt(s.repairMs));
  add(`change ms, timer`, (s) => `${fmt(s.changeMs.timer)} @${s.changeMs.timer.refreshTimer}`);
  add('change ms, GCP long-poll', (s) => fmt(s.changeMs.gcpLongPoll));
  add('bulk change ms: NIC IPs removed', (s) => `${fmt(s.changeMs.bulk.removeMs)} (${s.changeMs.bulk.ips} IPs)`);
  add('  and added back', (s) => fmt(s.changeMs.bulk.addBackMs));
  add('agent RSS MiB peak/steady', (s) => `${s.memory.agentPeakMiB}/${s.memory.agentSteadyMiB}`);
  add('  agent private / heap in use', (s) => `${s.memory.agentPrivateMiB}/${s.memory.agentHeapUsedMiB}`);
  add("  Node's own RSS MiB: agent / helper flags", (s) => `${s.memory.nodeFloorMiB.agent}/${s.memory.nodeFloorMiB.helper}`);
  add('  steady RSS above it: agent / helper', (s) => `${(s.memory.agentSteadyMiB - s.memory.nodeFloorMiB.agent).toFixed(1)}/${(s.memory.helperSteadyMiB - s.memory.nodeFloorMiB.helper).toFixed(1)}`);
  add('helper RSS MiB peak/steady', (s) => `${s.memory.helperPeakMiB}/${s.memory.helperSteadyMiB}`);
  add('  helper private MiB', (s) => `${s.memory.helperPrivateMiB}`);
  add('helper idle: RSS MiB, exited', (s) => `${s.memory.helperIdleMiB}, ${s.memory.helperExitedWhenIdle ? 'yes' : 'no'}`);
  add('helper re-activated repair ms', (s) => (s.memory.reactivationRepairMs === null ? 'n/a' : `${s.memory.reactivationRepairMs}${s.memory.helperReactivated ? '' : ' (not re-activated)'}`));
  add('API req/s, p99 ms (idle)', (s) => `${s.api.idle.requestsPerSecond}, ${s.api.idle.p99Ms}`);
  add('API req/s, p99 ms (reconciling)', (s) => `${s.api.duringReconcile.requestsPerSecond}, ${s.api.duringReconcile.p99Ms} (${s.api.duringReconcile.reconciles} reconciles)`);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
