// Profiling aid: one L-size run (BENCH_CPU_PROF=DIR node --import=tsx bench/profile-l.ts).
import { runBench } from './run.js';

const r = await runBench({ sizes: ['L'], repetitions: { L: 1 }, refreshCycles: 20, repairs: 3, changes: 1, wrkSeconds: 1 });
process.stdout.write(`${JSON.stringify(r.sizes[0]!.refresh)} ${JSON.stringify(r.sizes[0]!.memory)}\n`);
process.exit(0);
