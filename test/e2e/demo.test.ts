// make demo's edges: the playground it leaves running and demo-clean, and Ctrl-C in the middle.
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../lib/cloud-env.js';
import { waitFor } from '../lib/netns.js';

const DEMO = [`--import=tsx`, join(REPO, 'test', 'demo.ts')];
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

function recordPath(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cn-play-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'playground.json');
}

test.serial('the playground stays up with what it prints working, and demo-clean removes all of it', async (t) => {
  const record = recordPath(t);
  const env = { ...process.env, CLOUD_NETWORK_PLAYGROUND_RECORD: record };
  // removes the playground however the test ends
  t.teardown(() => void spawnSync(process.execPath, [...DEMO, '--clean'], { cwd: REPO, env }));
  const kept = spawnSync(process.execPath, [...DEMO, '--keep'], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 });
  t.is(kept.status, 0, kept.stderr);
  const playground = JSON.parse(readFileSync(record, 'utf8')) as { namespaces: string[]; dir: string; pids: number[] };
  for (const ns of playground.namespaces) t.true(namespaces().includes(ns), ns);
  for (const pid of playground.pids) t.notThrows(() => process.kill(pid, 0), `pid ${pid} runs`);
  // the printed cnctl line answers
  const cnctl = kept.stdout.split('\n').find((line) => line.includes('/bin/cnctl') && line.endsWith('status network'))!;
  t.truthy(cnctl, kept.stdout);
  const [command, ...args] = cnctl.split(' ');
  t.regex(execFileSync(command!, args, { encoding: 'utf8' }), /Private Ip: 10\.4\.0\.4\/24/);
  t.regex(kept.stdout, /make demo-clean/);

  const clean = spawnSync(process.execPath, [...DEMO, '--clean'], { cwd: REPO, env, encoding: 'utf8' });
  t.is(clean.status, 0, clean.stderr);
  t.regex(clean.stdout, /removed the playground/);
  for (const ns of playground.namespaces) t.false(namespaces().includes(ns), ns);
  await waitFor(() => playground.pids.every((pid) => !alive(pid)), 'the playground\'s agent and helper to exit');
  t.false(existsSync(playground.dir));
  t.false(existsSync(record));
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test.serial('Ctrl-C in the middle of the demo says what it removes, removes it and exits 130', async (t) => {
  const demo = spawn(process.execPath, DEMO, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => demo.kill('SIGKILL'));
  let output = '';
  demo.stdout.on('data', (d: Buffer) => (output += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
  await waitFor(() => output.includes('are running'), () => `the demo to start its agent (${output})`, 60_000);
  const made = [...output.matchAll(/namespaces: vm=(\S+) cloud=(\S+);/g)].flatMap((m) => [m[1]!, m[2]!]);
  t.is(made.length, 2, output);
  demo.kill('SIGINT');
  t.is(await exited, 130, output);
  t.regex(output, /Ctrl-C: removing the namespaces \S+ and \S+, the IMDS simulator, \S+, the agent, the helper/);
  t.notRegex(output, /demo failed/);
  for (const ns of made) t.false(namespaces().includes(ns), ns);
});
