// Hostile clients of the REST API and a flood of kernel events, on one simulated Azure VM:
// the agent must keep answering, keep reconciling, and resynchronise after lost events.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missingFromKernel, REPO } from '../lib/cloud-env.js';
import { builtinScenario, convergedCloud, type Running } from '../lib/e2e.js';
import { ip, ipBatch, type Teardown } from '../lib/netns.js';
import { environmentOf } from '../lib/units.js';
import type { FloodReport, ProbeReport } from './api-siege-clients.js';
import { alive, apiGet, lostObjects, managedObjects, sleep, status, waitKernelConverged, waitStatus } from './probe.js';
import { CaseFailure, check, type CaseSpec, type Scoreboard, type Tally } from './scoreboard.js';

const run = promisify(execFile);

interface AbuseReport {
  slow: { clients: number; cutOff: number; servedMeanwhile: number };
  concurrent: { connections: number; ok: number; refused: number };
  headers: number[];
  methods: Record<string, number>;
  traversal: { tried: number; statuses: Record<string, number>; leaked: string[] };
  after: number;
}

/** The agent still reconciles: a managed rule removed by hand comes back. */
async function stillReconciles(running: Running): Promise<void> {
  const { env } = running;
  const address = env.scenario.nics[1]!.ipv4[0]!;
  ip(env.vm, 'rule', 'del', 'from', address, 'lookup', '20001', 'priority', '20200');
  await waitKernelConverged(env, 'a rule removed by hand to be repaired', 15_000);
}

function apiCase(running: Running): CaseSpec {
  return {
    name: 'slow clients, 1,000 connections, huge headers, other methods, path traversal',
    done: '40 clients trickling headers, 1,000 concurrent GETs, headers of 9 KiB to 1 MiB and 2,000 lines, 9 methods other than GET, 15 traversal paths',
    holds: 'no file is served, every write method refused; the API answers during and after; the agent keeps reconciling',
    run: async () => {
      const { env, agent } = running;
      const before = managedObjects(env);
      const { stdout } = await run('ip', ['netns', 'exec', env.vm, process.execPath, '--import=tsx', join(REPO, 'test', 'reliability', 'api-abuse.ts')], {
        cwd: REPO,
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const r = JSON.parse(stdout) as AbuseReport;
      const inputs = r.slow.clients + r.concurrent.connections + r.headers.length + Object.keys(r.methods).length + r.traversal.tried;
      const tally = { badInputs: inputs };
      check(alive(agent), 'the agent exited', tally);
      check(r.slow.cutOff === r.slow.clients && r.slow.servedMeanwhile === 5, `slow clients: ${JSON.stringify(r.slow)}`, tally);
      check(r.concurrent.ok > 0, `no concurrent GET was answered: ${JSON.stringify(r.concurrent)}`, tally);
      check(r.headers.every((s) => s === 431 || s === 0), `huge headers answered ${r.headers.join(', ')}`, tally);
      const allowedThrough = Object.entries(r.methods).filter(([, s]) => s >= 200 && s < 300);
      check(allowedThrough.length === 0, `methods answered 2xx: ${allowedThrough.map(([m]) => m).join(', ')}`, tally);
      check(r.traversal.leaked.length === 0, `file contents served for ${r.traversal.leaked.join(', ')}`, tally);
      const served = Object.entries(r.traversal.statuses).filter(([, s]) => s === 200);
      check(served.length === 0, `traversal paths answered 200: ${served.map(([p]) => p).join(', ')}`, tally);
      check(r.after === 200, `GET /api/v1/status after the abuse answered ${r.after}`, tally);
      await stillReconciles(running);
      const lost = lostObjects(before, managedObjects(env));
      check(lost.length === 0, `lost: ${lost.join('; ')}`, { ...tally, lost: lost.length });
      const methodText = [...new Set(Object.values(r.methods))].sort().join('/');
      const traversalText = [...new Set(Object.values(r.traversal.statuses))].sort().join('/');
      return {
        badInputs: inputs,
        detail: `slow: ${r.slow.cutOff}/${r.slow.clients} cut off, ${r.slow.servedMeanwhile}/5 GETs served meanwhile; 1,000 concurrent: ${r.concurrent.ok} answered 200, ${r.concurrent.refused} turned away (at most 256 open at once); huge headers: ${r.headers.join(', ')}; methods: ${methodText}; traversal: ${traversalText}, nothing leaked; a rule removed afterwards was repaired`,
      };
    },
  };
}

interface SiegeReport {
  tcpFlood: FloodReport;
  slowloris: { clients: number; cutOff: number };
  nobody: { flood: FloodReport; probes: ProbeReport } | { error: string };
}

interface RequestsReport {
  headers: number[];
  posts: Record<string, number>;
  pipelined: Record<string, number>;
}

interface ProbesReport {
  tcp: ProbeReport;
  socket: ProbeReport;
}

/** A test/reliability script in the vm namespace, its output collected; it may wait for a line on stdin. */
function inVm(env: Running['env'], script: string, args: string[], nice = 0): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const argv = ['ip', 'netns', 'exec', env.vm, process.execPath, '--import=tsx', join(REPO, 'test', 'reliability', script), ...args];
  const child = spawn('nice', ['-n', String(nice), ...argv], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, out: () => out, err: () => err, exited };
}

function lastJson<T>(text: string): T {
  return JSON.parse(text.trim().split('\n').pop()!) as T;
}

/** How long the siege lasts. */
const SIEGE_SECONDS = 12;
/** The longest a client that must be served may wait for its answer during the siege (#27). */
const ANSWER_BOUND_MS = 2_000;
/** The longest a managed address deleted by hand may stay missing during the siege (#27). */
const REPAIR_BOUND_MS = 5_000;
/**
 * How much the agent's resident memory may grow under the siege: the limits let clients hold
 * little, so what grows is what the churn of connections fills, V8's young generation (capped by
 * the unit) and malloc's arena.
 */
const RSS_GROWTH_BOUND_MIB = 40;

/** The niceness of the siege's attacking processes. */
const ATTACKERS_NICE = 10;

function residentMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** cnctl as installed, when `make build`'s bundle is newer than its sources; else its sources through tsx. */
function cnctlCommand(): { argv: string[]; built: boolean } {
  const bundle = join(REPO, 'dist', 'cnctl', 'main.js');
  const sources = ['cnctl', 'protocol'].flatMap((dir) => readdirSync(join(REPO, dir)).filter((f) => f.endsWith('.ts')).map((f) => join(REPO, dir, f)));
  const built = existsSync(bundle) && sources.every((file) => statSync(file).mtimeMs <= statSync(bundle).mtimeMs);
  return { argv: built ? [bundle] : ['--import=tsx', join(REPO, 'cnctl', 'main.ts')], built };
}

interface CnctlRun {
  /** ms from starting the program to its exit */
  wall: number;
  /** ms from opening its connection to the agent to its exit (cnctl-clock.cjs) */
  answer: number;
}

/** cnctl status --json from outside the vm namespace (so only the socket can answer), timed; or why it failed. */
function timedCnctl(configPath: string): Promise<CnctlRun | string> {
  const { argv } = cnctlCommand();
  const started = performance.now();
  const clock = join(REPO, 'test', 'reliability', 'cnctl-clock.cjs');
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', clock, ...argv, 'status', '--json', '--config', configPath], { cwd: REPO, timeout: 30_000 }, (error, stdout, stderr) => {
      const wall = performance.now() - started;
      const answer = Number(/^cnctl-clock (\d+)$/m.exec(stderr)?.[1] ?? NaN);
      if (error) return resolve(`exit ${error.code ?? error.signal}: ${stderr.trim().slice(0, 300)}`);
      try {
        resolve((JSON.parse(stdout) as { ready?: boolean }).ready ? { wall, answer } : `not ready: ${stdout.slice(0, 200)}`);
      } catch {
        resolve(`not JSON: ${stdout.slice(0, 200)}`);
      }
    });
  });
}

function statusText(statuses: Record<string, number>): string {
  return Object.entries(statuses)
    .map(([s, n]) => `${n}× ${s === '0' ? 'closed' : s}`)
    .join(', ');
}

function siegeCase(running: Running): CaseSpec {
  return {
    name: 'idle floods on TCP and the socket, slowloris, 1 MiB headers, bodies, pipelining: clients still answered',
    done: `for ${SIEGE_SECONDS} s at once: 1,000 idle TCP connections and 1,000 idle socket connections from the user nobody, each re-opened 1 s after the agent closes it; 100 slowloris clients sending a header line a second (reconnecting); 3 requests with 1 MiB of headers; 200 POSTs with 64 KiB bodies; 2,000 pipelined GETs on one connection; a managed address deleted by hand; the agent with its unit's Environment=, the attacking processes at nice ${ATTACKERS_NICE}`,
    holds: `a fresh TCP client and cnctl's client on the socket (root), each every 400 ms from another process, and the cnctl program (from its connect), are each answered within ${ANSWER_BOUND_MS / 1000} s; the deleted address is back within ${REPAIR_BOUND_MS / 1000} s; no POST answered 2xx; the agent lives and its resident memory grows by less than ${RSS_GROWTH_BOUND_MIB} MiB`,
    run: async () => {
      const { env, agent } = running;
      const pid = agent.child.pid!;
      const socket = join(env.stateDir, 'api.sock');
      check(existsSync(socket), `the agent serves no socket at ${socket}`);
      const before = managedObjects(env);
      const cnctl = cnctlCommand();
      const idleCnctl = await timedCnctl(env.configPath);
      if (typeof idleCnctl === 'string') throw new CaseFailure(`cnctl before the siege: ${idleCnctl}`);
      // ns the agent ran and ns it waited for a CPU while runnable: a busy machine shows in the second
      const sched = () => readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').slice(0, 2).map(Number) as [number, number];
      const schedBefore = sched();
      const rssBefore = residentMiB(pid);
      let rssMax = rssBefore;
      const sampler = setInterval(() => {
        if (alive(agent)) rssMax = Math.max(rssMax, residentMiB(pid));
      }, 100);

      // the attackers yield the CPU: the case is about what the agent lets connections hold, and
      // on a machine of two cores the floods' own processes would otherwise take the agent's time
      const siege = inVm(env, 'api-siege.ts', [socket, String(SIEGE_SECONDS)], ATTACKERS_NICE);
      // the hostile requests and the clients that must be answered start once the floods are in place
      const probe = inVm(env, 'api-siege-probe.ts', [socket, String(SIEGE_SECONDS - 2)]);
      const requests = inVm(env, 'api-siege-requests.ts', [], ATTACKERS_NICE);
      const all = [siege, probe, requests];
      const bound = setTimeout(() => all.forEach((p) => p.child.kill('SIGKILL')), (SIEGE_SECONDS + 60) * 1_000);
      let repairMs = -1;
      let cnctlRuns: (CnctlRun | string)[] = [];
      try {
        while (!siege.out().includes('siege\n')) {
          if (siege.child.exitCode !== null) throw new CaseFailure(`the siege driver exited early: ${siege.err().slice(-800)}`);
          await sleep(50);
        }
        for (const p of [probe, requests]) p.child.stdin!.end('go\n');
        // a drift, and the cnctl program now and then, while every listener is under siege
        const repair = async () => {
          await sleep(1_000);
          const address = env.scenario.nics[1]!.ipv4[1]!;
          const line = ip(env.vm, '-o', '-4', 'addr', 'show', 'dev', 'eth1').split('\n').find((l) => l.includes(` ${address}/`))!;
          const deleted = Date.now();
          ip(env.vm, 'addr', 'del', / inet (\S+)/.exec(line)![1]!, 'dev', 'eth1');
          while (missingFromKernel(env).length > 0 && Date.now() - deleted < 15_000) await sleep(100);
          if (missingFromKernel(env).length === 0) repairMs = Date.now() - deleted;
        };
        const cnctlNowAndThen = async () => {
          const runs: (CnctlRun | string)[] = [];
          for (let i = 0; i < 3; i++) {
            await sleep(1_000);
            runs.push(await timedCnctl(env.configPath));
          }
          return runs;
        };
        [, cnctlRuns] = await Promise.all([repair(), cnctlNowAndThen()]);
        await Promise.all(all.map((p) => p.exited));
      } finally {
        clearTimeout(bound);
        clearInterval(sampler);
      }
      check(siege.child.exitCode === 0, `the siege driver failed (${siege.child.exitCode}): ${siege.err().slice(-800)}`);
      check(probe.child.exitCode === 0, `the probes failed (${probe.child.exitCode}): ${probe.err().slice(-800)}`);
      check(requests.child.exitCode === 0, `the hostile requests failed (${requests.child.exitCode}): ${requests.err().slice(-800)}`);
      const r = { ...lastJson<SiegeReport>(siege.out()), ...lastJson<RequestsReport>(requests.out()) };
      const p = lastJson<ProbesReport>(probe.out());
      const schedAfter = sched();
      const [ranMs, waitedMs] = [0, 1].map((i) => Math.round((schedAfter[i]! - schedBefore[i]!) / 1e6));
      const tcpInputs = r.tcpFlood.opened + r.slowloris.clients + r.slowloris.cutOff + r.headers.length + 200 + 2_000;
      const nobody = 'error' in r.nobody ? undefined : r.nobody;
      const tally = { badInputs: tcpInputs + (nobody?.flood.opened ?? 0) };
      const cnctlTimes = cnctlRuns.filter((c): c is CnctlRun => typeof c !== 'string');
      const detail =
        `fresh TCP clients ${p.tcp.answered}/${p.tcp.count} answered, median ${p.tcp.medianMs} ms, slowest ${p.tcp.maxMs} ms; ` +
        `cnctl's client on the socket ${p.socket.answered}/${p.socket.count}, median ${p.socket.medianMs} ms, slowest ${p.socket.maxMs} ms; ` +
        `cnctl (${cnctl.built ? 'bundle' : 'tsx'}) answered in ${cnctlTimes.map((c) => c.answer).join('/')} ms, ran ${cnctlTimes.map((c) => Math.round(c.wall)).join('/')} ms (${idleCnctl.answer} and ${Math.round(idleCnctl.wall)} ms before); ` +
        `address repaired in ${repairMs} ms; RSS ${rssBefore.toFixed(0)} → at most ${rssMax.toFixed(0)} MiB; the agent ran ${ranMs} ms and waited ${waitedMs} ms for a CPU; ` +
        `TCP flood ${r.tcpFlood.opened} opened, ${r.tcpFlood.closedByServer} closed by the agent` +
        (nobody ? `; socket flood (nobody) ${nobody.flood.opened} opened, ${nobody.flood.closedByServer} closed, nobody's own client ${nobody.probes.answered}/${nobody.probes.count} answered (slowest ${nobody.probes.maxMs} ms)` : '') +
        `; slowloris ${r.slowloris.cutOff} cut off; 1 MiB headers ${r.headers.join('/')}; POSTs ${statusText(r.posts)}; pipelined ${statusText(r.pipelined)}`;
      // every failure carries the figures seen, so that one run tells what else went wrong
      const must = (condition: unknown, why: string, counts: Tally = tally): void => check(condition, `${why} [${detail}]`, counts);
      must(alive(agent), `the agent exited: ${agent.output().slice(-800)}`);
      must(nobody !== undefined, `the socket flood as nobody: ${'error' in r.nobody ? r.nobody.error : ''}`);
      const probes = (what: string, report: ProbeReport) =>
        must(
          report.count >= 10 && report.answered === report.count && report.maxMs < ANSWER_BOUND_MS,
          `${what}: ${report.answered}/${report.count} answered, slowest ${report.maxMs} ms; ${report.failures.join('; ')}`,
        );
      probes('fresh TCP clients', p.tcp);
      probes("cnctl's client on the socket", p.socket);
      must(cnctlTimes.length === cnctlRuns.length, `cnctl during the siege: ${cnctlRuns.filter((c) => typeof c === 'string').join('; ')}`);
      // the bound is on the answer: from cnctl's connect to its exit, whatever Node's start-up took
      must(cnctlTimes.every((c) => c.answer < ANSWER_BOUND_MS), `cnctl waited ${cnctlTimes.map((c) => c.answer).join(', ')} ms for its answer`);
      must(repairMs >= 0 && repairMs <= REPAIR_BOUND_MS, repairMs < 0 ? `the deleted address was not restored in 15 s: ${missingFromKernel(env).join(', ')}` : `the deleted address took ${repairMs} ms to come back`);
      must(r.headers.every((s) => s === 431 || s === 0), `1 MiB headers answered ${r.headers.join(', ')}`);
      const postsAllowed = Object.keys(r.posts).filter((s) => s.startsWith('2'));
      must(postsAllowed.length === 0, `POSTs answered ${statusText(r.posts)}`);
      // a connection is answered at most 100 requests (maxRequestsPerSocket), then 503
      const pipelinedOther = Object.keys(r.pipelined).filter((s) => !['200', '503', '408', '0'].includes(s));
      must((r.pipelined['200'] ?? 0) <= 100 && pipelinedOther.length === 0, `the pipelined GETs: ${statusText(r.pipelined)}`);
      // every user but root and the agent's may hold 8 idle connections on the socket: of nobody's first 1,000 all others were closed
      must(nobody!.flood.opened >= 1_000 && nobody!.flood.closedByServer >= 1_000 - 8, `the socket flood as nobody was not held to 8 connections: ${JSON.stringify(nobody!.flood)}`);
      must(rssMax - rssBefore < RSS_GROWTH_BOUND_MIB, `resident memory grew from ${rssBefore.toFixed(0)} to ${rssMax.toFixed(0)} MiB`);
      must((await apiGet(env, '/api/v1/status')).status === 200, 'GET /api/v1/status after the siege failed');
      const lost = lostObjects(before, managedObjects(env));
      must(lost.length === 0, `lost: ${lost.join('; ')}`, { ...tally, lost: lost.length });
      return { ...tally, detail };
    },
  };
}

function floodCase(running: Running): CaseSpec {
  return {
    name: '5,000 address changes in a burst',
    done: 'while a refresh runs, 2,500 /32 addresses are added to eth1 and removed again in one ip -batch, and a managed address is deleted in the middle',
    holds: 'the agent survives, resynchronises (the deleted managed address comes back), leaves the other tool\'s addresses alone, does not loop',
    run: async () => {
      const { env, agent } = running;
      const start = (await status(env)).reconciles;
      const before = managedObjects(env);
      const adds = Array.from({ length: 2_500 }, (_, i) => `addr add 10.99.${Math.floor(i / 250)}.${(i % 250) + 1}/32 dev eth1`);
      const dels = adds.map((c) => c.replace('addr add', 'addr del'));
      const managed = env.scenario.nics[1]!.ipv4[1]!;
      const prefix = ip(env.vm, '-o', '-4', 'addr', 'show', 'dev', 'eth1').split('\n').find((l) => l.includes(` ${managed}/`))!;
      const managedPrefix = / inet (\S+)/.exec(prefix)![1]!;
      agent.kill('SIGHUP');
      ipBatch(env.vm, [...adds, `addr del ${managedPrefix} dev eth1`, ...dels]);
      await waitKernelConverged(env, 'the agent to resynchronise after the flood', 30_000);
      await waitStatus(env, (s) => s.converged && !s.reconciling, 'the agent to settle');
      await sleep(1_000);
      const reconciles = (await status(env)).reconciles - start;
      check(alive(agent), 'the agent exited during the flood', { faults: 1, badInputs: 5_000 });
      check(reconciles <= 12, `${reconciles} reconciles for one burst: events are not coalesced`, { faults: 1, badInputs: 5_000 });
      const lost = lostObjects(before, managedObjects(env));
      check(lost.length === 0, `lost: ${lost.join('; ')}`, { faults: 1, badInputs: 5_000, lost: lost.length });
      const overflowed = /receive buffer overflow/.test(agent.output());
      return {
        faults: 1,
        badInputs: 5_000,
        detail: `${reconciles} reconciles for the burst; ${overflowed ? 'the event socket overflowed and the agent re-read everything' : 'no event was lost'}; ${managedPrefix} restored; ${before.size} managed objects intact`,
      };
    },
  };
}

export async function apiAndEventCases(board: Scoreboard, t: Teardown): Promise<void> {
  const running = await convergedCloud(t, builtinScenario('azure'));
  await board.run('REST API', apiCase(running));
  await board.run('event flood', floodCase(running));
}

/**
 * The siege of issue #27, on a VM of its own: its floods leave thousands of closed connections
 * behind. Its agent has its unit's Environment= (V8's young generation capped, one malloc
 * arena), so that its memory is the installed agent's.
 */
export async function apiSiegeCases(board: Scoreboard, t: Teardown): Promise<void> {
  const unit = environmentOf(readFileSync(join(REPO, 'systemd', 'cloud-network.service.in'), 'utf8'));
  const running = await convergedCloud(t, builtinScenario('azure'), {}, unit);
  await board.run('REST API', siegeCase(running));
}
