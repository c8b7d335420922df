// The agent's collection after an apply (agent/process/idle-gc.ts) with glibc's malloc_trim
// (agent/process/malloc-trim.ts): what a collection freed but malloc kept resident goes back.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectAndTrim, TRIM_DELAY_MS } from '../../agent/process/idle-gc.js';
import { REPO } from '../lib/cloud-env.js';

// In a process of its own with --expose-gc: 1,500 buffers of 64 KiB (malloc's heap, below its
// mmap threshold) under one small one that stays, then dropped and collected.
const CHILD = `
const { readFileSync } = require('node:fs');
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
(async () => {
  const { loadMallocTrim } = await import(${JSON.stringify(join(REPO, 'agent', 'process', 'malloc-trim.ts'))});
  let held = [];
  for (let i = 0; i < 1500; i++) held.push(Buffer.allocUnsafeSlow(64 * 1024).fill(1));
  const kept = Buffer.allocUnsafeSlow(1024).fill(2);
  held = null;
  gc();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const collected = rss();
  const trim = loadMallocTrim();
  trim();
  process.stdout.write(JSON.stringify({ collected, trimmed: rss(), kept: kept.length }));
})();
`;

test('malloc_trim gives back the pages of buffers a collection freed, which glibc kept resident', (t) => {
  const run = spawnSync(process.execPath, ['--expose-gc', '--import=tsx', '-e', CHILD], { cwd: REPO, encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  const { collected, trimmed } = JSON.parse(run.stdout) as { collected: number; trimmed: number };
  // ~94 MiB of freed buffers: still resident after the collection, gone after the trim
  t.true(collected - trimmed > 60, `RSS ${collected.toFixed(1)} MiB after the collection, ${trimmed.toFixed(1)} MiB after malloc_trim`);
});

test('the trim follows the collection, once V8 has had time to free the buffers', async (t) => {
  const steps: string[] = [];
  const collect = collectAndTrim(() => void steps.push('collect'), () => void steps.push('trim'))!;
  collect();
  t.deepEqual(steps, ['collect']);
  await sleep(TRIM_DELAY_MS + 100);
  t.deepEqual(steps, ['collect', 'trim']);
});

test('without a collector nothing is scheduled; without malloc_trim the collection runs alone', (t) => {
  t.is(collectAndTrim(undefined, () => undefined), undefined);
  const collect = () => undefined;
  t.is(collectAndTrim(collect, undefined), collect);
});
