// Running the real helper for tests: a child process inside a test namespace, listening on a
// unique socket file under /tmp (a path, so the test in the host namespace can connect).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ip, waitFor, type Teardown } from './netns.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningHelper {
  socketPath: string;
  ledgerPath: string;
  child: ChildProcess;
  /** everything the helper wrote to stdout and stderr so far */
  output(): string;
  exited: Promise<number | null>;
}

export interface HelperStart {
  /** extra helper options */
  args?: string[];
  /** a command put before node inside the namespace, e.g. setpriv … */
  wrapper?: string[];
  /** owner of the temporary directory holding the ledger (for a helper that is not root) */
  uid?: number;
  /** listen here instead of a fresh path (to restart a helper in place) */
  socketPath?: string;
  /** run the bundle `make build` wrote (dist/helper/main.js) under --jitless, as the unit does, instead of the sources */
  built?: boolean;
}

export function uniqueDir(t: Teardown, uid?: number): string {
  const dir = `/tmp/cnh-${randomBytes(4).toString('hex')}`;
  mkdirSync(dir, { mode: 0o755 });
  if (uid !== undefined) execFileSync('chown', [String(uid), dir]);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startHelper(t: Teardown, ns: string, options: HelperStart = {}): Promise<RunningHelper> {
  const dir = uniqueDir(t, options.uid);
  const socketPath = options.socketPath ?? `${dir}/helper.sock`;
  const ledgerPath = `${dir}/ledger.json`;
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, ...(options.wrapper ?? []), process.execPath, ...(options.built ? ['--jitless', 'dist/helper/main.js'] : ['--import=tsx', 'helper/main.ts']), '--socket', socketPath, '--ledger', ledgerPath, ...(options.args ?? [])],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // its "listening" line comes after the socket's group is set: the socket accepts connections
  // a moment before that, and a test that looks at the socket then sees the wrong group
  await waitFor(() => output.includes(' listening"') && existsSync(socketPath) && connects(socketPath), `the helper listening on ${socketPath} (output: ${output})`);
  return { socketPath, ledgerPath, child, output: () => output, exited };
}

export function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sends raw lines on one connection and collects the answer lines until `expect` of them came or the helper closed. */
export function exchange(path: string, payload: string | Buffer, expect: number): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    let closed = false;
    let weEnded = false;
    const finish = () => {
      const lines = buffer.split('\n').filter(Boolean);
      resolve({ lines, closed });
    };
    socket.on('data', (d: Buffer) => {
      buffer += d.toString();
      if (buffer.split('\n').filter(Boolean).length >= expect && !closed && !weEnded) {
        weEnded = true;
        socket.end();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    // closed: the helper ended the connection before we did
    socket.on('end', () => (closed = !weEnded));
    socket.on('close', finish);
    socket.write(payload);
  });
}

/** A namespace with two veth NICs, eth1 and eth2 (their peers eth1p, eth2p stay in it too), up. */
export function addNics(ns: string): void {
  for (const name of ['eth1', 'eth2']) {
    ip(ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    ip(ns, 'link', 'set', name, 'up');
    ip(ns, 'link', 'set', `${name}p`, 'up');
  }
}
