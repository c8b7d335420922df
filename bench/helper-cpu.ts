// Profiling aid: the helper's JavaScript for one L-size apply, without a kernel or a process
// start: the policy judging 5,632 operations (2,048 addresses, 3,584 rules) and netlink/write.ts
// encoding them into requests (the socket's batch answers "no error" at once); then judging
// their removal against a kernel that holds them all (a NIC or a whole configuration going
// away). Run it as the helper runs: node --jitless --import=tsx bench/helper-cpu.ts (add
// --cpu-prof for a profile).
import { performance } from 'node:perf_hooks';
import { executeOperations } from '../netlink/write.js';
import type { RtnlRequester } from '../netlink/wire.js';
import { KernelPicture } from '../helper/kernel-picture.js';
import { checkOperation, ruleShape } from '../helper/policy.js';
import { recordApplied } from '../helper/state-after.js';
import type { Operation, RuleAdd } from '../protocol/operations.js';
import { rememberingParsePrefix } from '../protocol/ip.js';
import type { KernelState } from '../netlink/types.js';
import { links, operations, policy } from './l-operations.js';

const empty = { links, addresses: [], routes: [], rules: [] } satisfies KernelState;
// the kernel after the apply, and the operations that take it all away again
const full = new KernelPicture(structuredClone(empty));
for (const op of operations) recordApplied(full, op, op.kind === 'rule.add' ? { decision: 'allow', rule: ruleShape(op) } : { decision: 'allow' });
const fullState: KernelState = { links, addresses: [...full.addresses()], routes: [], rules: operations.flatMap((op) => (op.kind === 'rule.add' ? [{ ...ruleShape(op), protocol: 201, action: 'lookup' as const }] : [])) };
const removals: Operation[] = operations.map((op) =>
  op.kind === 'address.add' ? { kind: 'address.remove', link: op.link, address: op.address } : { ...(op as RuleAdd), kind: 'rule.remove' },
);
const ledger = { has: () => false };
const socket = { batch: async (requests: readonly unknown[]) => requests.map(() => undefined) } as unknown as RtnlRequester;
const indexes = new Map(links.map((l) => [l.name, l.index]));

const judged: number[] = [];
const encoded: number[] = [];
const judgedRemovals: number[] = [];
for (let round = 0; round < 9; round++) {
  // as helper/applier.ts does: one parser per request, remembering each address for the encoder
  const parse = rememberingParsePrefix();
  const t0 = performance.now();
  // as the applier does: each approved operation is recorded, so the rules find their addresses
  const state = new KernelPicture(empty);
  for (const op of operations) {
    const verdict = checkOperation(op, state, ledger, policy, parse);
    if (verdict.decision !== 'allow') throw new Error(`refused: ${JSON.stringify(op)}: ${verdict.decision === 'refuse' ? verdict.reason : ''}`);
    recordApplied(state, op, verdict, parse);
  }
  const t1 = performance.now();
  const results = await executeOperations(socket, operations, indexes, { parsePrefix: parse });
  const encodedAt = performance.now();
  if (results.some((r) => r.outcome !== 'applied')) throw new Error('an operation was not encoded');
  const parseRemovals = rememberingParsePrefix();
  const picture = new KernelPicture(fullState);
  const t2 = performance.now();
  for (const op of removals) {
    const verdict = checkOperation(op, picture, ledger, policy, parseRemovals);
    if (verdict.decision !== 'allow') throw new Error(`refused: ${JSON.stringify(op)}: ${verdict.decision === 'refuse' ? verdict.reason : ''}`);
    recordApplied(picture, op, verdict, parseRemovals);
  }
  const t3 = performance.now();
  judged.push(t1 - t0);
  encoded.push(encodedAt - t1);
  judgedRemovals.push(t3 - t2);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(1);
process.stdout.write(`first round: judging ${judged[0]!.toFixed(1)} ms, encoding ${encoded[0]!.toFixed(1)} ms\n`);
process.stdout.write(`${operations.length} operations, median of ${judged.length} rounds: judging ${median(judged)} ms, encoding ${median(encoded)} ms; judging their removal ${median(judgedRemovals)} ms\n`);
