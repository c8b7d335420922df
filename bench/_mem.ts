import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TeardownStack } from '../test/lib/teardown-stack.js';
import { BENCH_SIZES, generateScenario } from '../test/imds-sim/generate.js';
import { coldConverge } from '../bench/converge.js';
import { floorCommands } from '../bench/floor.js';

function breakdown(pid: number): string {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  const by: Record<string, { rss: number; priv: number }> = {};
  let cur = '';
  for (const l of smaps) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) { cur = m[1] || '[anon]'; by[cur] ??= { rss: 0, priv: 0 }; continue; }
    const r = /^Rss:\s+(\d+)/.exec(l); if (r) by[cur]!.rss += Number(r[1]);
    const p = /^Private_(Clean|Dirty):\s+(\d+)/.exec(l); if (p) by[cur]!.priv += Number(p[2]);
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return status.match(/VmRSS.*|VmHWM.*/g)!.join(' ') + '\n' + Object.entries(by).sort((a, b) => b[1].rss - a[1].rss).slice(0, 10).map(([k, v]) => `  rss ${(v.rss / 1024).toFixed(1)} priv ${(v.priv / 1024).toFixed(1)} ${k}`).join('\n');
}
const size = (process.argv[2] ?? 'S') as 'S';
const scenario = generateScenario('azure', BENCH_SIZES[size].nics, BENCH_SIZES[size].ipsPerNic);
const cleanup = new TeardownStack();
try {
  const run = await coldConverge(cleanup, size, scenario, floorCommands(scenario), 0, (l) => process.stderr.write(l + '\n'));
  await sleep(Number(process.argv[3] ?? 4000));
  process.stdout.write('agent ' + breakdown(run.agent.pid()!) + '\n');
  const hp = run.helper.helperPid();
  if (hp) process.stdout.write('helper ' + breakdown(hp) + '\n');
} finally {
  await cleanup.run();
}
process.exit(0);
