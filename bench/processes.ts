// The programs the bench measures, started as their units start them (test/lib/units.ts), and
// what it reads of them from outside: CPU time and memory from /proc, the helper's audit lines,
// the agent's REST API from inside its namespace.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, serviceUser, type CloudEnv } from '../test/lib/cloud-env.js';
import type { TeardownStack } from '../test/lib/teardown-stack.js';
import { spawnTracked, unitEnvironment, type Service } from '../test/lib/units.js';

const TICK_MS = 1000 / 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s
export const HELPER_IDLE_EXIT_S = 2;

/** BENCH_CPU_PROF=DIR: the agent and the helper write V8 CPU profiles there (node --cpu-prof). */
function profileFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return [];
  mkdirSync(dir, { recursive: true, mode: 0o1777 });
  chmodSync(dir, 0o1777); // the agent runs as cloud-network
  return ['--cpu-prof', '--cpu-prof-interval', process.env.BENCH_CPU_PROF_INTERVAL ?? '1000', `--cpu-prof-dir=${dir}`];
}

export type ActivatedHelper = Service & { helperPid(): number | undefined; activations(): number; startNow(): void };

/** The helper as cloud-network.socket and cloud-network-helper.service run it: socket-activated, CAP_NET_ADMIN only, idle exit. */
export function startActivatedHelper(cleanup: TeardownStack, env: CloudEnv): ActivatedHelper {
  const user = serviceUser();
  const activator = spawnTracked(cleanup, 'ip', [
    'netns', 'exec', env.vm,
    'python3', join(REPO, 'bench', 'activator.py'), env.helperSocket, String(user.gid), '--',
    'setpriv', `--regid=${user.gid}`, '--clear-groups',
    '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin', '--bounding-set=-all,+net_admin', '--',
    process.execPath, ...profileFlags(), join(REPO, 'dist', 'helper', 'main.js'),
    '--allow-user', 'cloud-network',
    '--ledger', join(env.dir, 'helper', 'ledger.json'),
    '--idle-exit', String(HELPER_IDLE_EXIT_S),
  ], unitEnvironment('cloud-network-helper.service.in'));
  const helperPid = () => {
    let pid: number | undefined;
    for (const line of activator.lines) {
      const m = /^(activated|exited) (\d+)/.exec(line);
      if (m) pid = m[1] === 'activated' ? Number(m[2]) : undefined;
    }
    return pid;
  };
  const activations = () => activator.lines.filter((l) => l.startsWith('activated ')).length;
  // as cloud-network.service's Wants=cloud-network-helper.service does at boot
  const startNow = () => activator.tell('start');
  return { ...activator, helperPid, activations, startNow };
}

/** The command line that runs `node ARGS` as the agent's unit runs the agent: in the vm namespace, unprivileged. */
function asAgent(env: CloudEnv, nodeArgs: string[]): string[] {
  const user = serviceUser();
  return [
    'netns', 'exec', env.vm,
    'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
    process.execPath, ...nodeArgs,
  ];
}

export function startAgent(cleanup: TeardownStack, env: CloudEnv): Service {
  return spawnTracked(cleanup, 'ip', asAgent(env, [...profileFlags(), join(REPO, 'dist', 'agent', 'main.js'), '--config', env.configPath]), unitEnvironment('cloud-network.service.in'));
}

/**
 * Node's own start on this machine now: `node -e 0` started exactly as the agent is (same
 * namespace, user and unit environment), spawn to exit; the median of `times`.
 */
export function nodeStartMs(env: CloudEnv, times = 5): number {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    const run = spawnSync('ip', asAgent(env, ['-e', '0']), { env: unitEnvironment('cloud-network.service.in'), stdio: 'ignore' });
    if (run.status !== 0) throw new Error(`node -e 0 as the agent exited with ${run.status ?? run.signal}`);
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b)[times >> 1]!;
}


export type ApiProbe = (path: string) => Promise<{ status?: number; body?: any; error?: string }>;

/** GET on the agent's API from inside the vm namespace. */
export function apiProbe(cleanup: TeardownStack, env: CloudEnv): ApiProbe {
  const child = spawn('ip', ['netns', 'exec', env.vm, process.execPath, join(REPO, 'bench', 'api-probe.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanup.teardown(() => void child.kill('SIGKILL'));
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(line));
  return (path) =>
    new Promise((resolve) => {
      waiting.push((line) => resolve(JSON.parse(line)));
      child.stdin!.write(`${path}\n`);
    });
}

export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime (fields 14, 15)
}

/**
 * Node's own resident memory with a unit's flags and environment: `node -e` that only waits a
 * moment and reports its VmRSS, the floor under each program's RSS on this machine.
 */
export function nodeFloorMiB(unit: 'cloud-network.service.in' | 'cloud-network-helper.service.in'): number {
  const script = "setTimeout(() => process.stdout.write(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]), 300)";
  const run = spawnSync(process.execPath, ['-e', script], { env: unitEnvironment(unit), encoding: 'utf8' });
  const kib = Number(run.stdout);
  if (run.status !== 0 || !(kib > 0)) throw new Error(`node -e with ${unit}'s environment: ${run.stderr || run.stdout}`);
  return Math.round((kib / 1024) * 10) / 10;
}

/**
 * Peak and current RSS, and the private part of the current RSS: RSS also counts the pages of
 * the node executable and shared libraries (~46 MiB), which every Node process on the machine
 * shares with the others and with the page cache; private memory is what this process adds.
 */
export function memoryMiB(pid: number | undefined): { peak: number; rss: number; private: number } {
  if (pid === undefined || !existsSync(`/proc/${pid}/status`)) return { peak: 0, rss: 0, private: 0 };
  const kib = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  const mib = (k: number) => Math.round((k / 1024) * 10) / 10;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    // BENCH_SMAPS_DIR=DIR: every measured process's mappings, to see which of them hold the memory
    if (process.env.BENCH_SMAPS_DIR) writeFileSync(join(process.env.BENCH_SMAPS_DIR, `smaps-${pid}-${Date.now()}`), readFileSync(`/proc/${pid}/smaps`, 'utf8'));
    return { peak: mib(kib(status, 'VmHWM')), rss: mib(kib(status, 'VmRSS')), private: mib(kib(rollup, 'Private_Clean') + kib(rollup, 'Private_Dirty')) };
  } catch {
    return { peak: 0, rss: 0, private: 0 }; // exited in between
  }
}

/** The helper's audit records of `apply` requests, from its output. */
export function applyAudits(lines: string[]): { applied: number; durationMs: number }[] {
  const audits: { applied: number; durationMs: number }[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const record = JSON.parse(line) as { audit?: string; method?: string; outcomes?: { applied?: number }; durationMs?: number };
      if (record.audit === 'request' && record.method === 'apply') audits.push({ applied: record.outcomes?.applied ?? 0, durationMs: record.durationMs ?? 0 });
    } catch {
      /* not an audit line */
    }
  }
  return audits;
}
