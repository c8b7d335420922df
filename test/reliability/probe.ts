// How the suite looks at a running agent from outside: its REST API (from inside the vm
// namespace, where it listens on loopback), its process, and the managed objects in the kernel.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { missingFromKernel, type CloudEnv, type Proc } from '../lib/cloud-env.js';
import { ip, waitFor } from '../lib/netns.js';
import type { StatusResource } from '../../protocol/rest.js';
import { CaseFailure } from './scoreboard.js';

const run = promisify(execFile);
export const API = 'http://127.0.0.1:5209';

/** GET on the agent's API from inside the vm namespace (node's fetch, no curl needed). */
export async function apiGet(env: CloudEnv, path: string): Promise<{ status: number; body: unknown }> {
  const script = `fetch(${JSON.stringify(API + path)}).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() })), (e) => { process.stderr.write(String(e.cause ?? e)); process.exit(1); })`;
  const { stdout } = await run('ip', ['netns', 'exec', env.vm, process.execPath, '-e', script], { timeout: 10_000 });
  const { status, text } = JSON.parse(stdout) as { status: number; text: string };
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status, body };
}

export async function status(env: CloudEnv): Promise<StatusResource> {
  const answer = await apiGet(env, '/api/v1/status');
  if (answer.status !== 200) throw new Error(`GET /api/v1/status answered ${answer.status}`);
  return answer.body as StatusResource;
}

/** Waits until the agent's status satisfies `predicate`; returns that status. */
export async function waitStatus(env: CloudEnv, predicate: (s: StatusResource) => boolean, what: string, timeoutMs = 30_000): Promise<StatusResource> {
  let last: StatusResource | undefined;
  try {
    return await waitFor(
      async () => {
        last = await status(env);
        return predicate(last) ? last : undefined;
      },
      what,
      timeoutMs,
      250,
    );
  } catch (error) {
    throw new CaseFailure(`${(error as Error).message}; last status: ${JSON.stringify(last && pick(last))}`);
  }
}

/** The status fields worth printing in a failure. */
export function pick(s: StatusResource): Partial<StatusResource> {
  const { reconciles, converged, lastError, metadataError, helperReachable, pendingOperations, linkErrors } = s;
  return { reconciles, converged, lastError, metadataError, helperReachable, pendingOperations, linkErrors };
}

/**
 * The managed objects in the vm's kernel, one string each: the scenario's addresses (the DHCP
 * address aside) and every route and rule with cloud-network's protocol number.
 */
export function managedObjects(env: CloudEnv): Set<string> {
  const objects = new Set<string>();
  const wanted = new Set<string>();
  env.scenario.nics.forEach((nic, i) => {
    for (const [j, address] of [...nic.ipv4, ...(nic.ipv6 ?? [])].entries()) if (i > 0 || j > 0) wanted.add(address);
  });
  for (const line of ip(env.vm, '-o', 'addr', 'show').split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet6?\s+([^/\s]+)\/(\d+)/.exec(line);
    if (m && wanted.has(m[2]!)) objects.add(`address ${m[2]}/${m[3]} dev ${m[1]}`);
  }
  for (const family of ['-4', '-6']) {
    for (const line of ip(env.vm, family, 'route', 'show', 'table', 'all', 'proto', '201').split('\n')) if (line.trim()) objects.add(`route ${line.trim()}`);
    for (const line of ip(env.vm, family, 'rule', 'show').split('\n')) if (line.includes('proto 201')) objects.add(`rule ${line.trim()}`);
  }
  return objects;
}

/** What was in `before` and is not in `after`. */
export function lostObjects(before: Set<string>, after: Set<string>): string[] {
  return [...before].filter((o) => !after.has(o));
}

/** Lines of `ip rule` / `ip -o addr` that appear twice in one listing (duplicates). */
export function duplicates(env: CloudEnv): string[] {
  const listings = [ip(env.vm, 'rule', 'show'), ip(env.vm, '-6', 'rule', 'show'), ip(env.vm, '-o', 'addr', 'show').replace(/valid_lft.*/g, '')];
  return listings.flatMap((listing) => {
    const lines = listing.split('\n').filter(Boolean);
    return lines.filter((line, i) => lines.indexOf(line) !== i);
  });
}

export async function waitKernelConverged(env: CloudEnv, what: string, timeoutMs = 30_000): Promise<void> {
  let last: string[] = [];
  try {
    await waitFor(
      () => {
        last = missingFromKernel(env);
        return last.length === 0;
      },
      what,
      timeoutMs,
      100,
    );
  } catch {
    throw new CaseFailure(`${what}: still missing after ${timeoutMs / 1000} s: ${last.slice(0, 5).join(', ')}${last.length > 5 ? ` and ${last.length - 5} more` : ''}`);
  }
}

/** Whether a process started with track() is still running. */
export function alive(proc: Proc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

/** Peak resident memory of a process in MiB (VmHWM), from /proc. */
export function peakMemoryMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
