// Hostile clients of the REST API and a flood of kernel events, on one simulated Azure VM:
// the agent must keep answering, keep reconciling, and resynchronise after lost events.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../lib/cloud-env.js';
import { builtinScenario, convergedCloud, type Running } from '../lib/e2e.js';
import { ip, ipBatch, type Teardown } from '../lib/netns.js';
import { alive, lostObjects, managedObjects, sleep, status, waitKernelConverged, waitStatus } from './probe.js';
import { check, type CaseSpec, type Scoreboard } from './scoreboard.js';

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
        detail: `slow: ${r.slow.cutOff}/${r.slow.clients} cut off, ${r.slow.servedMeanwhile}/5 GETs served meanwhile; 1,000 concurrent: ${r.concurrent.ok} answered 200, ${r.concurrent.refused} turned away (at most 64 open at once); huge headers: ${r.headers.join(', ')}; methods: ${methodText}; traversal: ${traversalText}, nothing leaked; a rule removed afterwards was repaired`,
      };
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
