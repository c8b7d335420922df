// The test side of netlink-runner.ts: starts it inside a namespace and sends it commands.
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { nsSpawn, type Teardown } from './netns.js';

const runnerPath = fileURLToPath(new URL('./netlink-runner.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface NetlinkRunner {
  send<T = unknown>(command: Record<string, unknown>): Promise<T>;
  /** true while the runner process has not exited */
  alive(): boolean;
  process: ChildProcess;
}

/** Which socket the runner requests with: the agent's (netlink/socket.ts) or the helper's (netlink/sync-socket.ts). */
export type RunnerSocket = 'agent' | 'helper';

export function startRunner(t: Teardown, ns: string, socket: RunnerSocket = 'agent'): NetlinkRunner {
  const child = nsSpawn(ns, process.execPath, ['--import=tsx', runnerPath, socket], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let exited = false;
  let stderr = '';
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.on('exit', (code, signal) => {
    exited = true;
    for (const { reject } of waiting.values()) {
      reject(new Error(`netlink runner exited (code ${code}, signal ${signal}): ${stderr}`));
    }
    waiting.clear();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const reply = JSON.parse(line) as { id: number; result?: unknown; error?: string };
    const entry = waiting.get(reply.id);
    if (!entry) return;
    waiting.delete(reply.id);
    if (reply.error !== undefined) entry.reject(new Error(reply.error));
    else entry.resolve(reply.result);
  });
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  let nextId = 1;
  return {
    process: child,
    alive: () => !exited,
    send<T>(command: Record<string, unknown>): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        if (exited) {
          reject(new Error(`netlink runner already exited: ${stderr}`));
          return;
        }
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.stdin!.write(`${JSON.stringify({ id, ...command })}\n`);
      });
    },
  };
}
