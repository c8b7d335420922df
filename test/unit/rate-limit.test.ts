// The request gate: a steady rate of request starts, with an optional burst of starts that
// may leave together, and a bound on requests in flight.
import test from 'ava';
import { RequestGate } from '../../agent/metadata/rate-limit.js';

/** Whether the promise has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('a burst of N lets N starts leave at once and holds the next one to the rate', async (t) => {
  // one start per 1,000 s: anything held waits far longer than the test
  const gate = new RequestGate(0.001, 10, () => 1_000_000, 4);
  for (let i = 0; i < 4; i++) t.true(await settled(gate.acquire()), `start ${i + 1} of the burst`);
  const held = new AbortController();
  const fifth = gate.acquire(held.signal);
  t.false(await settled(fifth), 'the fifth start waits for the rate');
  held.abort(new Error('test over'));
  await t.throwsAsync(fifth);
});

test('without a burst, a second start waits for the rate', async (t) => {
  const gate = new RequestGate(0.001, 10, () => 1_000_000);
  t.true(await settled(gate.acquire()));
  const held = new AbortController();
  const second = gate.acquire(held.signal);
  t.false(await settled(second));
  held.abort(new Error('test over'));
  await t.throwsAsync(second);
});

test('requests in flight are bounded: a start waits for a release', async (t) => {
  const gate = new RequestGate(1_000_000, 2, () => 1_000_000, 8);
  await gate.acquire();
  await gate.acquire();
  const third = gate.acquire();
  t.false(await settled(third));
  gate.release();
  t.true(await settled(third));
});
