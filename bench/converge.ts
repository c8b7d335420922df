// The cold converge: the floor, then the agent and the helper started together as at boot,
// timed until the whole plan is in the kernel (bench/README.md, "What runs").
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCloudEnv, missingFromKernel, type CloudEnv } from '../test/lib/cloud-env.js';
import type { TeardownStack } from '../test/lib/teardown-stack.js';
import type { Service } from '../test/lib/units.js';
import type { Scenario } from '../test/imds-sim/scenario.js';
import { ipBatchMs, undoFloor } from './floor.js';
import { kernelCounts, waitForCounts, waitUntil, type Counts } from './kernel.js';
import { KernelWatch } from './kernel-watch.js';
import { applyAudits, nodeStartMs as measureNodeStart, startActivatedHelper, startAgent, type ActivatedHelper } from './processes.js';
import type { SizeName } from './report.js';

/** One cold converge and its floor, and what the steady-state figures go on to measure. */
export interface ConvergeRun {
  convergeMs: number;
  /** `node -e 0` started as the agent is, just before the converge: Node's own share of it */
  nodeStartMs: number;
  /** the floor with the converge's `ip monitor` listening, and with nothing listening */
  floorMs: number;
  floorNoListenerMs: number;
  /** the helper's own time for its apply requests */
  helperApplyMs: number;
  /** what the plan puts into the kernel */
  objects: Counts;
  env: CloudEnv;
  watch: KernelWatch;
  agent: Service;
  helper: ActivatedHelper;
}

/** Runs the floor and one cold converge in fresh namespaces, which `cleanup` removes. */
export async function coldConverge(
  cleanup: TeardownStack,
  size: SizeName,
  scenario: Scenario,
  floor: { apply: string[]; undo: string[] },
  rep: number,
  log: (line: string) => void,
): Promise<ConvergeRun> {
  const env = await createCloudEnv(cleanup, scenario, `bench${size}`);
  const applyFile = join(env.dir, 'floor.batch');
  const undoFile = join(env.dir, 'floor-undo.batch');
  writeFileSync(applyFile, floor.apply.join('\n') + '\n');
  writeFileSync(undoFile, floor.undo.join('\n') + '\n');

  // the floor, then back to the DHCP-only start: first with nothing listening, then with the
  // monitor that watches the converge (its notifications are part of the kernel's work)
  const before = await kernelCounts(env.vm);
  const floorNoListenerMs = ipBatchMs(env.vm, applyFile);
  const expected = await kernelCounts(env.vm);
  await undoFloor(env.vm, undoFile, before);
  const watch = await KernelWatch.start(cleanup, env.vm);
  const floorMs = ipBatchMs(env.vm, applyFile);
  await undoFloor(env.vm, undoFile, before);
  // the converge starts once the monitor has reported every change of the floor and its
  // undoing, counting afresh (the floor's burst can overrun the monitor's buffer)
  await watch.caughtUp(env.vm);
  watch.resetCounts();
  const objects = { addresses: expected.addresses - before.addresses, routes: expected.routes - before.routes, rules: expected.rules - before.rules };
  const nodeStartMs = measureNodeStart(env);

  // cold converge as at boot: nothing running but the socket; the agent and the helper
  // start together (cloud-network.service Wants= the helper's service)
  env.writeConfig({ refreshTimer: '300s', ...(process.env.BENCH_TIMELINE ? { logLevel: 'Debug', logFormat: 'json' } : { logLevel: 'Info' }) });
  const helper = startActivatedHelper(cleanup, env);
  await waitUntil(() => helper.lines.includes('listening'), 10_000, 'the socket activator');
  const start = performance.now();
  const startWall = Date.now();
  helper.startNow();
  const agent = startAgent(cleanup, env);
  let seen: number;
  try {
    seen = await waitForCounts(watch, env.vm, before, expected, 120_000, `the ${size} plan in the kernel`);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- agent ---\n${agent.output().slice(-3000)}\n--- helper ---\n${helper.output().slice(-3000)}`);
  }
  const convergeMs = seen - start;
  const missing = missingFromKernel(env);
  if (missing.length > 0) throw new Error(`the counts matched but ${missing.slice(0, 5).join(', ')} is missing`);
  await sleep(300);
  const helperApplyMs = applyAudits(helper.lines).reduce((sum, a) => sum + a.durationMs, 0);
  log(`  ${size} run ${rep + 1}: converge ${convergeMs.toFixed(0)} ms (Node's own start ${nodeStartMs.toFixed(0)} ms), floor ${floorMs.toFixed(1)} ms, helper apply ${helperApplyMs.toFixed(0)} ms`);
  if (process.env.BENCH_TIMELINE) log(timeline(startWall, convergeMs, { agent: agent.lines, helper: helper.lines }));
  if (watch.errors.length > 0) log(`  ${size} run ${rep + 1}: ip monitor reported ${watch.errors.join('; ')} (the slow poll decided)`);
  return { convergeMs, nodeStartMs, floorMs, floorNoListenerMs, helperApplyMs, objects, env, watch, agent, helper };
}

/**
 * BENCH_TIMELINE=1: the agent's (at debug level) and the helper's log lines of a cold converge on
 * one time axis, milliseconds from the agent's spawn (log times have millisecond resolution).
 */
function timeline(startWall: number, convergeMs: number, programs: Record<string, string[]>): string {
  const entries: { at: number; line: string }[] = [{ at: Math.round(convergeMs), line: 'bench: the whole plan is in the kernel' }];
  for (const [program, lines] of Object.entries(programs)) {
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line) as Record<string, unknown> & { time: string; msg: string };
        // one line per object the apply changed: the bench's own line says when all are there
        if (record.msg.startsWith('Successfully ')) continue;
        // durations a record carries (the agent's 'applying plan': metadataMs, kernelReadMs, planMs)
        const durations = Object.entries(record).filter(([key, value]) => key.endsWith('Ms') && typeof value === 'number');
        const detail = durations.length > 0 ? ` (${durations.map(([key, value]) => `${key} ${value}`).join(', ')})` : '';
        entries.push({ at: Date.parse(record.time) - startWall, line: `${program}: ${record.msg}${detail}` });
      } catch {
        // not a log record
      }
    }
  }
  entries.sort((a, b) => a.at - b.at);
  return entries.filter((e) => e.at <= convergeMs + 50).map((e) => `    ${String(e.at).padStart(5)} ms  ${e.line}`).join('\n');
}
