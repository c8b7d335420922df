// Start-up aid: cold converges only, no steady state (node --import=tsx bench/start-up.ts [SIZE] [RUNS]);
// with BENCH_TIMELINE=1 or BENCH_CPU_PROF=DIR it shows where one start's time goes.
import { TeardownStack } from '../test/lib/teardown-stack.js';
import { BENCH_SIZES, generateScenario } from '../test/imds-sim/generate.js';
import { coldConverge } from './converge.js';
import { floorCommands } from './floor.js';
import { spread, type SizeName } from './report.js';

const size = (process.argv[2] ?? 'S').toUpperCase() as SizeName;
const runs = Number(process.argv[3] ?? 5);
if (!(size in BENCH_SIZES) || !(runs > 0)) throw new Error('usage: bench/start-up.ts [S|M|L] [RUNS]');
const scenario = generateScenario('azure', BENCH_SIZES[size].nics, BENCH_SIZES[size].ipsPerNic);
const floor = floorCommands(scenario);
const converge: number[] = [];
const aboveNode: number[] = [];
const overFloor: number[] = [];
for (let rep = 0; rep < runs; rep++) {
  const cleanup = new TeardownStack();
  try {
    const run = await coldConverge(cleanup, size, scenario, floor, rep, (line) => process.stderr.write(`${line}\n`));
    converge.push(run.convergeMs);
    aboveNode.push(run.convergeMs - run.nodeStartMs);
    overFloor.push(run.convergeMs / run.floorMs);
  } finally {
    await cleanup.run();
  }
}
const s = spread(converge);
const a = spread(aboveNode);
const f = spread(overFloor);
process.stdout.write(`${size}: cold converge median ${s.median} ms (${s.min}–${s.max}), samples ${s.samples.join(' ')}; above Node's own start ${a.median} ms (${a.min}–${a.max}); converge / floor ${f.median} (${f.min}–${f.max})\n`);
process.exit(0);
