// `make install` into a throwaway DESTDIR, and a way to run what it installed at its real path
// (/usr/local) without touching the host: a private mount namespace binds DESTDIR/usr/local
// over /usr/local for one command only.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Teardown } from './netns.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const PREFIX = '/usr/local';
export const UNIT_DIR = `${PREFIX}/lib/systemd/system`;
/** Serialises builds and installs across ava's worker processes (make build writes dist/). */
const LOCK = join(tmpdir(), 'cloud-network-make-install.lock');

export interface StagedInstall {
  destdir: string;
  /** the staged copy of an installed path, e.g. staged('/usr/local/bin/cnctl') */
  staged(path: string): string;
  /** the manifest's lines: "file PATH", "dir PATH", "tree PATH", "config PATH SHA256" */
  manifest(): string[];
}

/**
 * Runs make install/uninstall on the current build: `-o dist/.built` stops make from rebuilding
 * (make test has just built; a rebuild per test would race other workers writing dist/).
 */
export function make(target: 'install' | 'uninstall', destdir: string, extra: string[] = []): string {
  return execFileSync('flock', [LOCK, 'make', '-s', '-o', 'dist/.built', '-C', REPO, target, `DESTDIR=${destdir}`, ...extra], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Installs into a new temporary DESTDIR, removed by the teardown (a test's, or an after hook's). */
export function stageInstall(t: Teardown, extra: string[] = []): StagedInstall {
  const destdir = mkdtempSync(join(tmpdir(), 'cn-destdir-'));
  t.teardown(() => rmSync(destdir, { recursive: true, force: true }));
  make('install', destdir, extra);
  const staged = (path: string): string => join(destdir, path);
  return {
    destdir,
    staged,
    manifest: () => readFileSync(staged(`${PREFIX}/lib/cloud-network/install-manifest.txt`), 'utf8').trim().split('\n'),
  };
}

/**
 * The shell command that runs `command` with the staged /usr/local in place of the host's,
 * and, with hideCheckout, an empty directory over the repository, so only the installed copy
 * can answer.
 */
function inPrefixScript(destdir: string, hideCheckout: boolean): string {
  const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  return [
    `mount --bind ${q(join(destdir, PREFIX))} ${PREFIX}`,
    ...(hideCheckout ? [`mount -t tmpfs -o size=1m,mode=0755 cn-hidden ${q(REPO)}`] : []),
    'exec "$@"',
  ].join(' && ');
}

function inPrefixArgs(destdir: string, command: string, args: string[], hideCheckout: boolean): string[] {
  return ['--mount', '--propagation', 'private', 'sh', '-c', inPrefixScript(destdir, hideCheckout), 'sh', command, ...args];
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs an installed program as if installed on this machine; never throws on exit status. */
export function runInstalled(
  destdir: string,
  command: string,
  args: string[],
  options: { hideCheckout?: boolean; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  try {
    const stdout = execFileSync('unshare', inPrefixArgs(destdir, command, args, options.hideCheckout ?? false), {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: '/',
      env: options.env ?? process.env,
    });
    return { status: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { status: number | null; stdout?: string; stderr?: string };
    return { status: e.status ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Spawns a long-running installed program (optionally inside a network namespace). */
export function spawnInstalled(destdir: string, command: string, args: string[], netns?: string): ChildProcess {
  const unshare = ['unshare', ...inPrefixArgs(destdir, command, args, true)];
  const argv = netns ? ['ip', 'netns', 'exec', netns, ...unshare] : unshare;
  return spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
}
