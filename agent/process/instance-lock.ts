// One agent at a time per StateDir: an exclusive flock(2) on StateDir/agent.lock, taken before
// the agent asks the metadata service or changes the kernel, and held until the process ends.
// The kernel drops the lock however the process ends, so it is never stale, unlike a pid file.
// The holder writes its pid into the file, so that whoever finds the lock taken can say who runs.
import { closeSync, constants, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PID_FILE } from '../../protocol/config-file.js';
import koffi from '../../netlink/ffi.js';

export const LOCK_FILE = 'agent.lock';

/** sys/file.h, asm-generic/errno-base.h */
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const EINTR = 4;

let flockCall: ((fd: number, operation: number) => number) | undefined;

function flock(fd: number, operation: number): { ok: true } | { ok: false; errno: number } {
  flockCall ??= koffi().load('libc.so.6').func('int flock(int fd, int operation)') as (fd: number, operation: number) => number;
  for (;;) {
    if (flockCall(fd, operation) === 0) return { ok: true };
    const errno = koffi().errno();
    if (errno !== EINTR) return { ok: false, errno };
  }
}

/** Another process holds the lock; its pid when it can be found. */
export interface LockHeld {
  heldBy: number | undefined;
}

export class InstanceLock {
  private constructor(
    private fd: number | undefined,
    readonly path: string,
  ) {}

  /**
   * Takes the lock of `stateDir`, creating the lock file when `create`; a lock file that this user
   * may not write is still locked, read-only. Returns LockHeld when another process has it, and
   * undefined when there is no lock file and `create` is false. Throws when the file cannot be
   * opened at all (a StateDir this user cannot write).
   */
  static acquire(stateDir: string, options: { create: boolean }): InstanceLock | LockHeld | undefined {
    const path = join(stateDir, LOCK_FILE);
    let fd: number;
    let writable = true;
    try {
      fd = openSync(path, constants.O_RDWR | (options.create ? constants.O_CREAT : 0), 0o644);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !options.create) return undefined;
      if (code !== 'EACCES' || !existsSync(path)) {
        throw new Error(`cannot open the agent's lock ${path} (${code ?? (error as Error).message}): the agent's user must be able to write StateDir ${stateDir}`);
      }
      fd = openSync(path, constants.O_RDONLY);
      writable = false;
    }
    const locked = flock(fd, LOCK_EX | LOCK_NB);
    if (!locked.ok) {
      closeSync(fd);
      if (locked.errno === EWOULDBLOCK) return { heldBy: lockHolder(path, stateDir) };
      throw new Error(`cannot lock ${path} (errno ${locked.errno})`);
    }
    if (writable) {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
    }
    return new InstanceLock(fd, path);
  }

  /** Lets the next agent in (the process's end does the same). */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

export function isHeld(result: InstanceLock | LockHeld | undefined): result is LockHeld {
  return result !== undefined && !(result instanceof InstanceLock);
}

/**
 * Who holds the lock: the kernel's own account in /proc/locks where it can be read (the agent's
 * unit hides it), else the pid the holder wrote into the lock file or its pid file, if that
 * process lives.
 */
function lockHolder(path: string, stateDir: string): number | undefined {
  const fromKernel = kernelLockHolder(path);
  if (fromKernel !== undefined) return fromKernel;
  for (const file of [path, join(stateDir, PID_FILE)]) {
    const pid = Number(readText(file)?.trim());
    if (Number.isSafeInteger(pid) && pid > 1 && alive(pid)) return pid;
  }
  return undefined;
}

function kernelLockHolder(path: string): number | undefined {
  const locks = readText('/proc/locks');
  if (locks === undefined) return undefined;
  let ino: bigint;
  let dev: bigint;
  try {
    const fd = openSync(path, constants.O_RDONLY);
    try {
      ({ ino, dev } = fstatSync(fd, { bigint: true }));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  // glibc's major()/minor() of st_dev, as /proc/locks prints them ("%02x:%02x:%lu")
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  for (const line of locks.split('\n')) {
    const match = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (match && BigInt(`0x${match[2]}`) === major && BigInt(`0x${match[3]}`) === minor && BigInt(match[4]!) === ino) return Number(match[1]);
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
