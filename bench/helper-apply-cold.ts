// Profiling aid: the helper's first request of a process, as at the cold converge. One L-size
// apply (bench/l-operations.ts) through the real Applier: the policy, the picture of the kernel
// kept current rule by rule, the ledger written to a temporary directory; the kernel is a stand-in
// that reads as empty and answers "applied" at once, so no namespace is needed. The figure is the
// first apply of a fresh process under the helper unit's flags, which bench/helper-cpu.ts (judging
// and encoding alone, repeated) does not show: the code is cold, and the applier's own loop runs.
// Run it several times, each a new process:
//   node --jitless --max-semi-space-size=1 --import=tsx bench/helper-apply-cold.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Applier } from '../helper/applier.js';
import type { KernelAccess } from '../helper/kernel.js';
import { AddressLedger } from '../helper/ledger.js';
import type { Log } from '../helper/log.js';
import { links, operations, policy } from './l-operations.js';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };
const kernel: KernelAccess = {
  read: async () => ({ links, addresses: [], routes: [], rules: [] }),
  execute: async (ops) => ops.map(() => ({ outcome: 'applied' as const })),
  close() {},
};
const dir = mkdtempSync(join(tmpdir(), 'helper-apply-cold-'));
try {
  const ledger = await AddressLedger.open(join(dir, 'ledger.json'), quiet);
  const applier = new Applier({ kernel, ledger, policy, version: 'bench' });
  const started = performance.now();
  const { results } = await applier.apply(operations);
  const ms = performance.now() - started;
  const notApplied = results.filter((r) => r.outcome !== 'applied');
  if (notApplied.length > 0) throw new Error(`${notApplied.length} operations not applied, the first: ${JSON.stringify(notApplied[0])}`);
  process.stdout.write(`first apply of ${operations.length} operations, judged and recorded (no kernel): ${ms.toFixed(1)} ms\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
