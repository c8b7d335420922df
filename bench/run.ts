// `make bench`: the agent and the helper, as built (dist/), measured in network namespaces
// against the IMDS simulator. Every figure is read from outside the agent: the kernel with
// `ip`, CPU and memory from /proc, netlink writes from the helper's audit lines, the API with
// wrk. Prints a table and writes the same figures to bench/results.json. Per size: cold
// converges (converge.ts), then on the last one's namespaces the steady state (steady-state.ts,
// changes.ts); report.ts has the figures' types and the table.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../test/lib/cloud-env.js';
import { TeardownStack } from '../test/lib/teardown-stack.js';
import { BENCH_SIZES, generateScenario } from '../test/imds-sim/generate.js';
import { coldConverge } from './converge.js';
import { floorCommands } from './floor.js';
import { formatTable, spread, type BenchOptions, type BenchResults, type SizeName, type SizeResult, type SteadyFigures } from './report.js';
import { steadyState, type SteadyOptions } from './steady-state.js';

export { formatTable, type BenchResults, type SizeName } from './report.js';

async function benchSize(size: SizeName, options: SteadyOptions & { repetitions: number; log: (line: string) => void }): Promise<SizeResult> {
  const { nics, ipsPerNic } = BENCH_SIZES[size];
  const { log } = options;
  const scenario = generateScenario('azure', nics, ipsPerNic);
  const floor = floorCommands(scenario);

  const converge: number[] = [];
  const nodeStart: number[] = [];
  const aboveNode: number[] = [];
  const helperApply: number[] = [];
  const floorMs: number[] = [];
  const floorNoListener: number[] = [];
  const ratio: number[] = [];
  let objects = { addresses: 0, routes: 0, rules: 0 };
  let result: SteadyFigures | undefined;

  for (let rep = 0; rep < options.repetitions; rep++) {
    const cleanup = new TeardownStack();
    try {
      const run = await coldConverge(cleanup, size, scenario, floor, rep, log);
      converge.push(run.convergeMs);
      nodeStart.push(run.nodeStartMs);
      aboveNode.push(run.convergeMs - run.nodeStartMs);
      floorMs.push(run.floorMs);
      floorNoListener.push(run.floorNoListenerMs);
      ratio.push(run.convergeMs / run.floorMs);
      helperApply.push(run.helperApplyMs);
      objects = run.objects;
      if (rep === options.repetitions - 1) result = await steadyState({ ...run, size, scenario, cleanup, log }, options);
    } finally {
      await cleanup.run();
    }
  }
  return {
    size,
    nics,
    ipsPerNic,
    objects,
    coldConvergeMs: spread(converge),
    nodeStartMs: spread(nodeStart),
    convergeAboveNodeMs: spread(aboveNode),
    helperApplyMs: spread(helperApply),
    floorMs: spread(floorMs),
    floorNoListenerMs: spread(floorNoListener),
    converge_over_floor: spread(ratio),
    ...result!,
  };
}

export async function runBench(options: BenchOptions): Promise<BenchResults> {
  if (!existsSync(join(REPO, 'dist', 'agent', 'main.js'))) throw new Error('dist/ is missing: run `make build` first');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // L, where the converge target is, gets the most runs: on a noisy two-CPU machine one run
  // in three can be 10-25 % off the other two, and a median of three is then one of those
  const defaults = { S: 5, M: 5, L: 7 } as const;
  const sizes: SizeResult[] = [];
  for (const size of options.sizes) {
    log(`size ${size}: ${BENCH_SIZES[size].nics} NICs × ${BENCH_SIZES[size].ipsPerNic} IPs`);
    sizes.push(
      await benchSize(size, {
        repetitions: options.repetitions?.[size] ?? defaults[size],
        refreshCycles: options.refreshCycles ?? 20,
        repairs: options.repairs ?? 20,
        changes: options.changes ?? 6,
        wrkSeconds: options.wrkSeconds ?? 3,
        log,
      }),
    );
  }
  return {
    date: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, kernel: (await import('node:os')).release(), node: process.version },
    runtime: 'built code: node dist/agent/main.js (unprivileged) and node dist/helper/main.js (CAP_NET_ADMIN, socket-activated, --idle-exit 2)',
    sizes,
  };
}

function parseSizes(text: string): SizeName[] {
  const sizes = text.split(/[ ,]+/).filter(Boolean).map((s) => s.toUpperCase());
  for (const s of sizes) if (!(s in BENCH_SIZES)) throw new Error(`unknown size ${s}: use S, M and/or L`);
  return sizes as SizeName[];
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const sizes = parseSizes(process.argv[2] || process.env.SIZES || 'S,M,L');
  const out = join(REPO, 'bench', 'results.json');
  runBench({ sizes }).then(
    (results) => {
      writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
      process.stdout.write(`\ncloud-network benchmarks (${results.runtime})\n${results.machine.cpus} CPUs, Linux ${results.machine.kernel}, Node ${results.machine.node}; median (min–max)\n\n${formatTable(results)}\n\nwritten to ${out}\n`);
      process.exit(0);
    },
    (error: Error) => {
      process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
      process.exit(1);
    },
  );
}

