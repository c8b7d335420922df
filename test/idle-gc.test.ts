// The agent's collection after allocation-heavy work (agent/idle-gc.ts).
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { exposedGc, IdleCollector } from '../agent/idle-gc.js';

test('a burst of work is followed by one collection, once the work has stopped', async (t) => {
  let collected = 0;
  const collector = new IdleCollector(() => void collected++, 40);
  for (let i = 0; i < 5; i++) {
    collector.noteWork();
    await sleep(5);
  }
  t.is(collected, 0, 'not while the work goes on');
  await sleep(200);
  t.is(collected, 1);
  t.is(collector.count, 1);
  collector.noteWork();
  await sleep(200);
  t.is(collected, 2, 'the next piece of work gets its own');
});

test('stopping cancels a pending collection', async (t) => {
  let collected = 0;
  const collector = new IdleCollector(() => void collected++, 20);
  collector.noteWork();
  collector.stop();
  await sleep(100);
  t.is(collected, 0);
});

test('without --expose-gc there is nothing to call and noting work does nothing', async (t) => {
  const saved = (globalThis as { gc?: unknown }).gc;
  delete (globalThis as { gc?: unknown }).gc;
  try {
    t.is(exposedGc(), undefined);
    const collector = new IdleCollector(exposedGc(), 10);
    collector.noteWork();
    await sleep(50);
    t.is(collector.count, 0);
  } finally {
    if (saved !== undefined) (globalThis as { gc?: unknown }).gc = saved;
  }
});

test('with --expose-gc the collector calls V8 gc', (t) => {
  const saved = (globalThis as { gc?: unknown }).gc;
  let calls = 0;
  (globalThis as { gc?: unknown }).gc = () => void calls++;
  try {
    exposedGc()!();
    t.is(calls, 1);
  } finally {
    if (saved === undefined) delete (globalThis as { gc?: unknown }).gc;
    else (globalThis as { gc?: unknown }).gc = saved;
  }
});
