// The kernel of the vm namespace, seen from outside with `ip`: counts of what the plan puts
// there, and waiting for the kernel (through the KernelWatch) or for anything else.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { CloudEnv } from '../test/lib/cloud-env.js';
import type { KernelWatch } from './kernel-watch.js';

const run = promisify(execFile);

export interface Counts {
  addresses: number;
  routes: number;
  rules: number;
}

const lineCount = (text: string) => text.split('\n').filter(Boolean).length;

export async function ipOut(ns: string, ...args: string[]): Promise<string> {
  return (await run('ip', ['-n', ns, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

/** Cheap counts: addresses, IPv4 routes of every table, IPv4 rules. */
export async function kernelCounts(ns: string): Promise<Counts> {
  const [addresses, routes, rules] = await Promise.all([
    ipOut(ns, '-o', 'addr', 'show'),
    ipOut(ns, '-4', 'route', 'show', 'table', 'all'),
    ipOut(ns, '-4', 'rule', 'show'),
  ]);
  return { addresses: lineCount(addresses), routes: lineCount(routes), rules: lineCount(rules) };
}

export const sameCounts = (a: Counts, b: Counts) => a.addresses === b.addresses && a.routes === b.routes && a.rules === b.rules;

/**
 * Resolves with the time of the kernel event after which the counts were `expected` (watched
 * since they were `before`). The rules come last in a plan: the counts are dumped only once the
 * monitor has seen as many rules added as are missing, or on the watch's slow poll.
 */
export async function waitForCounts(watch: KernelWatch, ns: string, before: Counts, expected: Counts, timeoutMs: number, what: string): Promise<number> {
  let last: Counts | undefined;
  try {
    return await watch.until(async (woken) => {
      // the first check and every slow poll dump whatever the monitor has seen
      if (woken && watch.count('RULE') < expected.rules - before.rules) return false;
      last = await kernelCounts(ns);
      return sameCounts(last, expected);
    }, timeoutMs, what);
  } catch (error) {
    throw new Error(`${(error as Error).message}: expected ${JSON.stringify(expected)}, saw ${JSON.stringify(last)}`);
  }
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 5): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return performance.now();
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Whether eth`nic` in the vm namespace holds `address`, as `ip` shows it. */
export async function hasAddress(env: CloudEnv, nic: number, address: string): Promise<boolean> {
  return (await ipOut(env.vm, '-o', 'addr', 'show', 'dev', `eth${nic}`)).includes(` ${address}/`);
}

