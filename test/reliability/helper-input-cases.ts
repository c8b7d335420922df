// Hostile input to the helper: at least 10,000 generated messages from an allowed peer (root)
// and more from a refused one (the user nobody, through a child process), with a valid request
// now and then. Must hold: the helper answers the next valid request every time, and the
// kernel differs from the start only by what the valid requests asked for.
import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { REPO } from '../lib/cloud-env.js';
import { createNamespace, ip, kernelDump, settledKernelDump, type Teardown } from '../lib/netns.js';
import { addNics, startHelper, type RunningHelper } from '../lib/helper-harness.js';
import { hostileMessages, policyViolations, type Violations } from './hostile-messages.js';
import { check, type CaseSpec, type Scoreboard } from './scoreboard.js';

const CATEGORY = 'helper input';
const INFO = JSON.stringify({ jsonrpc: '2.0', id: 'next', method: 'info' });
const CHUNK = 250;

/** Sends lines on one connection, then `info`; resolves with every answer line and whether `info` was answered. */
export function sendChunk(socketPath: string, lines: string[]): Promise<{ answers: string[]; answeredNext: boolean }> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const answers = buffer.split('\n').filter(Boolean);
      resolve({ answers, answeredNext: answers.some((a) => a.includes('"id":"next","result"')) });
    };
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('latin1');
      if (buffer.includes('"id":"next"')) socket.end();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.write([...lines, INFO].join('\n') + '\n');
  });
}

function validAdd(link: string, n: number): string {
  return JSON.stringify({ jsonrpc: '2.0', id: `valid-${n}`, method: 'apply', params: { operations: [{ kind: 'address.add', link, address: `10.88.${Math.floor(n / 250)}.${(n % 250) + 1}/32`, noPrefixRoute: true }] } });
}

async function allowedPeerCase(ns: string, helper: RunningHelper, v: Violations): Promise<{ badInputs: number; detail: string }> {
  const messages = hostileMessages(10_000, v);
  const before = await settledKernelDump(ns);
  let answeredNext = 0;
  let chunks = 0;
  let valid = 0;
  const validAnswers: string[] = [];
  const refusedPolicy = new Set<string>();
  for (let i = 0; i < messages.length; i += CHUNK) {
    const lines = messages.slice(i, i + CHUNK).map((m) => m.message);
    // one valid request in the middle of every chunk: it must be carried out
    lines.splice(CHUNK / 2, 0, validAdd(v.link, valid++));
    const result = await sendChunk(helper.socketPath, lines);
    chunks++;
    validAnswers.push(...result.answers.filter((a) => a.includes('"id":"valid-')));
    for (const a of result.answers) if (/"outcome":"refused"/.test(a)) refusedPolicy.add(/"id":"([^"]+)"/.exec(a)?.[1] ?? '');
    if (result.answeredNext) answeredNext++;
    else {
      // the connection was closed (an oversized or unframeable message): a fresh one must work
      const fresh = await sendChunk(helper.socketPath, []);
      check(fresh.answeredNext, `after chunk ${chunks} the helper no longer answers: ${helper.output().slice(-500)}`, { badInputs: i + lines.length });
    }
    check(helper.child.exitCode === null, `the helper exited: ${helper.output().slice(-500)}`, { badInputs: i + lines.length });
  }
  // every policy violation refused by name
  const names = policyViolations(v).map((p) => p.name);
  const neverRefused = names.filter((n) => !refusedPolicy.has(n));
  const schemaRefused = neverRefused.length; // the schema may refuse some first (priority 0, table 0, /33)
  // the kernel: as before, plus exactly the valid requests' addresses
  const applied = validAnswers.filter((a) => a.includes('"outcome":"applied"')).length;
  const after = kernelDump(ns);
  const added = ip(ns, '-o', '-4', 'addr', 'show', 'dev', v.link).split('\n').filter((l) => / 10\.88\./.test(l)).length;
  check(applied === valid && added === valid, `${valid} valid requests: ${applied} applied, ${added} addresses in the kernel`, { badInputs: messages.length });
  const withoutValid = after
    .split('\n')
    .filter((l) => !/ 10\.88\./.test(l))
    .join('\n');
  check(withoutValid === before, `the kernel changed beyond the valid requests:\n${diff(before, withoutValid)}`, { badInputs: messages.length });
  const kinds = new Map<string, number>();
  for (const m of messages) kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
  return {
    badInputs: messages.length,
    detail: `${messages.length} messages (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}) in ${chunks} connections; the next valid request answered after every one (${answeredNext} on the same connection); ${valid}/${valid} valid requests applied and nothing else changed; ${names.length - schemaRefused} policy violations refused by the policy, the rest by the schema`,
  };
}

function diff(a: string, b: string): string {
  const left = new Set(a.split('\n'));
  const right = new Set(b.split('\n'));
  return [...[...left].filter((l) => !right.has(l)).map((l) => `- ${l}`), ...[...right].filter((l) => !left.has(l)).map((l) => `+ ${l}`)].slice(0, 10).join('\n');
}

/** The same kind of messages from the user nobody: every connection refused, nothing changes. */
async function refusedPeerCase(ns: string, helper: RunningHelper, v: Violations): Promise<{ badInputs: number; detail: string }> {
  const messages = hostileMessages(2_000, v, 11).map((m) => m.message);
  for (let i = 0; i < 200; i++) messages.push(validAdd(v.link, 5_000 + i));
  const before = await settledKernelDump(ns);
  // the socket is 0660: open it up so the peer check itself is what refuses
  chmodSync(helper.socketPath, 0o666);
  const child = spawn(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, '--import=tsx', join(REPO, 'test', 'reliability', 'refused-peer.ts'), helper.socketPath],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(messages.join('\n') + '\n');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  check(code === 0, `the refused-peer client failed (${code}): ${err.slice(-500)}`, { badInputs: messages.length });
  const report = JSON.parse(out) as { connections: number; refused: number; reset: number; results: number; sample: string };
  check(report.results === 0, `${report.results} requests of the refused peer got a result`, { badInputs: messages.length });
  // every connection gets the refusal line: none is dropped unanswered by a full connection backstop
  check(report.refused === report.connections, `of ${report.connections} connections ${report.refused} were refused with a reason and ${report.reset} closed without one: ${report.sample}`, { badInputs: messages.length });
  check(kernelDump(ns) === before, 'the kernel changed', { badInputs: messages.length });
  const next = await sendChunk(helper.socketPath, []);
  check(next.answeredNext, `the helper did not answer root afterwards: ${next.answers.join(' ').slice(0, 300)}; helper: ${helper.output().slice(-800)}`, { badInputs: messages.length });
  return { badInputs: messages.length, detail: `${messages.length} messages (200 of them valid) on ${report.connections} connections as nobody: each refused with "${report.sample}", no request answered; kernel unchanged; root answered next` };
}

export async function helperInputCases(board: Scoreboard, t: Teardown): Promise<void> {
  const ns = createNamespace(t, 'relfuzz');
  addNics(ns);
  const v: Violations = {
    link: 'eth1',
    dhcp: { link: 'eth1', address: '10.4.1.99/24' },
    foreign: { link: 'eth2', address: '10.4.2.50/24' },
  };
  ip(ns, 'addr', 'add', v.dhcp.address, 'dev', v.dhcp.link, 'valid_lft', '3600', 'preferred_lft', '3600');
  ip(ns, 'addr', 'add', v.foreign.address, 'dev', v.foreign.link);
  ip(ns, 'addr', 'add', '10.4.1.5/24', 'dev', 'eth1');
  ip(ns, 'route', 'add', 'default', 'via', '10.4.1.1', 'dev', 'eth1');
  const helper = await startHelper(t, ns);
  const specs: CaseSpec[] = [
    {
      name: '10,000 hostile messages from an allowed peer',
      done: 'root sends random bytes, mutated valid requests, wrong types, huge numbers, deep nesting, odd methods and every policy violation (lo, table 254, priority 0, the DHCP address, the main default route, a foreign address, ...), 250 per connection with one valid request in each',
      holds: 'the helper answers the next valid request after every connection; the kernel differs only by the valid requests',
      run: () => allowedPeerCase(ns, helper, v),
    },
    {
      name: '2,200 messages from a refused peer',
      done: 'the user nobody (setpriv, a child process) sends hostile and valid requests on 0666 socket permissions',
      holds: 'every connection refused before any request is read; the kernel is unchanged; root is still served',
      run: () => refusedPeerCase(ns, helper, v),
    },
  ];
  for (const spec of specs) await board.run(CATEGORY, spec);
}
