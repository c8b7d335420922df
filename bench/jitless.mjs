import { spawn, execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { rmSync, mkdirSync } from 'node:fs';
const MDWE = 'my $nr = {x86_64=>157, aarch64=>167}->{(POSIX::uname())[4]} // die; syscall($nr, 65, 1, 0, 0, 0) == 0 or die "prctl: $!"; exec @ARGV or die';
// How much --jitless (needed for MemoryDenyWriteExecute=yes) costs the helper: time one apply of
// 3 x N operations (N addresses, a to and a from rule each, one route) in a throwaway network
// namespace, with the JIT and with --jitless under PR_SET_MDWE (what MemoryDenyWriteExecute=
// enforces), 5 rounds each. Usage (root): node bench/jitless.mjs [N=300]
const HELPER = new URL('../bin/cloud-network-helper', import.meta.url).pathname;
function rpc(path, method, params, id) {
  return new Promise((res, rej) => {
    const s = connect(path); let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n'));
    s.on('data', d => { buf += d; const i = buf.indexOf('\n'); if (i >= 0) { s.end(); res(JSON.parse(buf.slice(0, i))); } });
    s.on('error', rej);
  });
}
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function round(jitless, n) {
  const ns = `cn-bench-${process.pid}`;
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch {}
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'peer1']);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']); execFileSync('ip', ['-n', ns, 'link', 'set', 'peer1', 'up']);
  const dir = `${process.env.TMPDIR ?? '/tmp'}/cn-jitless-bench`; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir);
  const sock = `${dir}/h.sock`;
  const t0 = performance.now();
  const child = spawn('ip', ['netns', 'exec', ns, ...(jitless ? ['perl', '-MPOSIX', '-e', MDWE, 'node', '--jitless'] : ['node']), HELPER, '--socket', sock, '--ledger', `${dir}/ledger.json`], { stdio: 'ignore' });
  let info;
  for (;;) { try { info = await rpc(sock, 'info', {}, 1); break; } catch { await sleep(5); } }
  const startMs = performance.now() - t0;
  const ops = [];
  for (let i = 0; i < n; i++) {
    const ip = `10.9.${i >> 8}.${(i & 255) || 1}`;
    ops.push({ kind: 'address.add', link: 'eth1', address: `10.9.${Math.floor(i / 250)}.${(i % 250) + 2}/16`, noPrefixRoute: true });
    ops.push({ kind: 'rule.add', priority: 20100, table: 20001, family: 'inet', to: `10.9.${Math.floor(i / 250)}.${(i % 250) + 2}/32` });
    ops.push({ kind: 'rule.add', priority: 20200, table: 20001, family: 'inet', from: `10.9.${Math.floor(i / 250)}.${(i % 250) + 2}/32` });
  }
  ops.push({ kind: 'route.replace', table: 20001, destination: '10.9.0.0/16', link: 'eth1', type: 'unicast', scope: 'link' });
  const t1 = performance.now();
  const answer = await rpc(sock, 'apply', { operations: ops }, 2);
  const applyMs = performance.now() - t1;
  const outcomes = {}; for (const r of answer.result?.results ?? []) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  if (!answer.result) console.error(JSON.stringify(answer).slice(0, 300));
  child.kill('SIGKILL');
  execFileSync('ip', ['netns', 'del', ns]);
  return { startMs, applyMs, ops: ops.length, outcomes };
}
const n = Number(process.argv[2] ?? 100);
const results = { jit: [], jitless: [] };
for (let r = 0; r < 5; r++) for (const mode of ['jit', 'jitless']) results[mode].push(await round(mode === 'jitless', n));
const med = a => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const mode of ['jit', 'jitless']) console.log(mode, 'ops', results[mode][0].ops, 'start median ms', med(results[mode].map(x => x.startMs)).toFixed(0), 'apply median ms', med(results[mode].map(x => x.applyMs)).toFixed(0), JSON.stringify(results[mode][0].outcomes), results[mode].map(x=>x.applyMs.toFixed(0)).join(','));
