// Network namespaces for tests. Every namespace gets a unique name, and is deleted when the
// test ends (pass or fail) and, as a last resort, when the test process exits.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const created = new Set<string>();

function deleteNamespace(name: string): void {
  try {
    // kill whatever still runs inside before deleting, so nothing keeps it alive
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).trim();
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* namespace already gone */
  }
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
  created.delete(name);
}

process.on('exit', () => {
  for (const name of [...created]) deleteNamespace(name);
});

export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** Creates a namespace named `cn-<purpose>-<random>` with loopback up; deleted at teardown. */
export function createNamespace(t: Teardown, purpose: string): string {
  const name = `cn-${purpose.slice(0, 8)}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  created.add(name);
  t.teardown(() => deleteNamespace(name));
  ip(name, 'link', 'set', 'lo', 'up');
  return name;
}

/** Leaves a namespace to outlive this process (the demo's playground): no teardown deletes it then. */
export function keepNamespace(name: string): void {
  created.delete(name);
}

/** Deletes a namespace and kills what runs in it (the playground's clean-up, from another process). */
export function removeNamespace(name: string): void {
  deleteNamespace(name);
}

/** Runs `ip` inside a namespace and returns its output. */
export function ip(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `ip -batch -` inside a namespace with the given commands. */
export function ipBatch(ns: string, commands: string[]): void {
  execFileSync('ip', ['-n', ns, '-batch', '-'], { input: commands.join('\n') + '\n' });
}

/** Runs any command inside a namespace. */
export function nsExec(ns: string, command: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8' });
}

/** Spawns a long-running process inside a namespace. */
export function nsSpawn(ns: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/**
 * A veth pair between two namespaces: `vmName` in `vm` (with `mac`), `cloudName` in `cloud`.
 * Both ends are brought up.
 */
export function vethPair(
  vm: string,
  vmName: string,
  cloud: string,
  cloudName: string,
  mac?: string,
): void {
  const tmpA = `cnv${randomBytes(4).toString('hex')}`;
  const tmpB = `cnc${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
  try {
    execFileSync('ip', ['link', 'set', tmpA, 'netns', vm, 'name', vmName]);
    execFileSync('ip', ['link', 'set', tmpB, 'netns', cloud, 'name', cloudName]);
  } catch (error) {
    try {
      execFileSync('ip', ['link', 'del', tmpA], { stdio: 'ignore' });
    } catch {
      /* moved already */
    }
    throw error;
  }
  if (mac) ip(vm, 'link', 'set', vmName, 'address', mac);
  ip(vm, 'link', 'set', vmName, 'up');
  ip(cloud, 'link', 'set', cloudName, 'up');
}

/**
 * kernelDump once IPv6 duplicate address detection is over: a "tentative" address turning
 * final (and gaining its local route) a moment later is the kernel's change, not ours, so a
 * "before" dump to compare with must not catch it half-way.
 */
export async function settledKernelDump(ns: string): Promise<string> {
  await waitFor(() => !ip(ns, '-6', 'addr', 'show').includes('tentative'), `IPv6 duplicate address detection to finish in ${ns}`);
  return kernelDump(ns);
}

/** A snapshot of a namespace's addresses, routes of every table and rules, for comparisons. */
export function kernelDump(ns: string): string {
  return [
    ip(ns, '-o', 'addr', 'show'),
    ip(ns, 'route', 'show', 'table', 'all'),
    ip(ns, '-6', 'route', 'show', 'table', 'all'),
    ip(ns, 'rule', 'show'),
    ip(ns, '-6', 'rule', 'show'),
    ip(ns, '-o', 'link', 'show'),
  ]
    .join('\n')
    // lifetimes and counters tick; they are not configuration
    .replace(/valid_lft \S+ preferred_lft \S+/g, '')
    .replace(/expires \S+/g, '');
}

/** Waits until `check` returns a truthy value, polling every `intervalMs`, up to `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string | (() => string),
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type { ChildProcess };
