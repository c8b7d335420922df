// `make bench` at size S, once, with few repetitions: the benchmark runs end to end and every
// figure is present. Times are printed by `make bench`, never asserted.
import test from 'ava';
import { formatTable, runBench, type BenchResults } from './run.js';

/** Paths of every leaf that is not a finite, non-negative number (or an allowed null/boolean). */
function malformedLeaves(value: unknown, path = ''): string[] {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? [] : [`${path} = ${value}`];
  if (typeof value === 'boolean' || typeof value === 'string') return [];
  if (value === null) return path.endsWith('reactivationRepairMs') ? [] : [`${path} = null`];
  if (Array.isArray(value)) return value.length === 0 ? [`${path} is empty`] : value.flatMap((v, i) => malformedLeaves(v, `${path}[${i}]`));
  if (typeof value === 'object') return Object.entries(value as object).flatMap(([k, v]) => malformedLeaves(v, `${path}.${k}`));
  return [`${path} is ${typeof value}`];
}

test.serial('the benchmark runs size S end to end and reports every figure', async (t) => {
  t.timeout(110_000);
  const results: BenchResults = await runBench({
    sizes: ['S'],
    repetitions: { S: 1 },
    refreshCycles: 3,
    repairs: 3,
    changes: 2,
    wrkSeconds: 1,
    log: (line) => t.log(line),
  });
  t.is(results.sizes.length, 1);
  const s = results.sizes[0]!;
  t.is(s.size, 'S');
  // 2 NICs × 64 IPs: 127 addresses besides the DHCP one, 1 + 2 × 64 rules, a table of two routes
  // (the kernel adds local routes of its own for the addresses)
  t.is(s.objects.addresses, 127);
  t.is(s.objects.rules, 129);
  t.true(s.objects.routes >= 2);
  t.deepEqual(malformedLeaves(results), []);
  for (const spread of [s.coldConvergeMs, s.nodeStartMs, s.convergeAboveNodeMs, s.floorMs, s.converge_over_floor, s.repairMs, s.changeMs.timer, s.changeMs.gcpLongPoll, s.changeMs.bulk.removeMs, s.changeMs.bulk.addBackMs]) {
    t.true(spread.samples.length > 0);
    t.true(spread.min <= spread.median && spread.median <= spread.max);
  }
  t.is(s.repairMs.samples.length, 3);
  t.is(s.refresh.cycles, 3);
  t.is(s.changeMs.bulk.ips, 63 + 2, "eth1's 63 secondary IPs and the two the timer changes added");
  const table = formatTable(results);
  for (const row of ['cold converge ms', "Node's own start ms", 'converge above it ms', 'goal', 'ip -batch floor ms', 'converge / floor', 'refresh: netlink writes', 'repair ms', 'change ms, GCP long-poll', 'bulk change ms: NIC IPs removed', 'agent RSS MiB', 'agent private / heap in use', "Node's own RSS MiB", 'steady RSS above it', 'helper RSS MiB', 'helper private MiB', 'API req/s']) {
    t.true(table.includes(row), `the table has a row "${row}"`);
  }
});
