// make reliability: faults survived, bad input refused, nothing lost. Runs every category in
// throwaway network namespaces, prints one result per case as it finishes and a scoreboard at
// the end, removes everything it created (also on failure or Ctrl-C), and exits 1 when any
// case failed. `--only metadata,api-siege` runs some categories; `--seed N` (or
// CLOUD_NETWORK_FUZZ_SEED=N) repeats a policy fuzz run.
import { TeardownStack } from '../lib/teardown-stack.js';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Teardown } from '../lib/netns.js';
import { Scoreboard } from './scoreboard.js';
import { metadataCases } from './metadata-cases.js';
import { processCases } from './process-cases.js';
import { helperInputCases } from './helper-input-cases.js';
import { apiAndEventCases, apiSiegeCases } from './api-cases.js';
import { policyFuzzCases } from './policy-fuzz.js';
import { seedFrom } from './seeded-random.js';

interface SuiteOptions {
  fuzzSeed: number;
}

type Category = (board: Scoreboard, t: Teardown, options: SuiteOptions) => Promise<void>;

const CATEGORIES: Record<string, Category> = {
  metadata: metadataCases,
  processes: processCases,
  'helper-input': helperInputCases,
  'api-events': apiAndEventCases,
  'api-siege': apiSiegeCases,
  'policy-fuzz': (board, t, options) => policyFuzzCases(board, t, options.fuzzSeed),
};

// each category gets its own teardown stack, run when it ends

const live = new Set<TeardownStack>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stdout.write(`\n${signal}: removing the suite's namespaces\n`);
    void Promise.all([...live].map((c) => c.run())).then(() => process.exit(130));
  });
}

async function runCategory(board: Scoreboard, name: string, category: Category, options: SuiteOptions): Promise<void> {
  const cleanups = new TeardownStack();
  live.add(cleanups);
  try {
    await category(board, cleanups, options);
  } catch (error) {
    board.fail(name, { name: 'setting up or running the category', done: '-', holds: 'the category runs to its end' }, error instanceof Error ? error.message : String(error));
  } finally {
    await cleanups.run();
    live.delete(cleanups);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, seed: { type: 'string' } } });
  const names = values.only ? values.only.split(',') : Object.keys(CATEGORIES);
  const unknown = names.filter((n) => !(n in CATEGORIES));
  if (unknown.length > 0) {
    process.stderr.write(`reliability: unknown categories ${unknown.join(', ')} (known: ${Object.keys(CATEGORIES).join(', ')})\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('reliability: run as root (it creates network namespaces)\n');
    return 2;
  }
  execFileSync('ip', ['-V'], { stdio: 'ignore' });
  const options: SuiteOptions = { fuzzSeed: seedFrom(values.seed ?? process.env.CLOUD_NETWORK_FUZZ_SEED) };
  const board = new Scoreboard();
  const started = Date.now();
  for (const name of names) await runCategory(board, name, CATEGORIES[name]!, options);
  process.stdout.write(board.summary());
  process.stdout.write(`run time: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  const totals = board.totals();
  return totals.failed === 0 && totals.lost === 0 && totals.cases > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`reliability: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
