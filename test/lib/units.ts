// Running a program as its systemd unit would: with the unit's environment and nothing of the
// caller's, as a child process stopped at teardown. The bench starts the agent and the helper
// this way, and test/system/systemd.test.ts holds it to the units.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from './cloud-env.js';
import type { TeardownStack } from './teardown-stack.js';

/** The PATH systemd gives a system service (its built-in default on a merged-/usr system). */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

/**
 * The environment a systemd unit gives its program: systemd's PATH and the unit's
 * `Environment=` (NODE_OPTIONS, e.g. the helper's --jitless, and MALLOC_ARENA_MAX), and nothing
 * of the caller's own environment, as a service inherits nothing from the shell that started it:
 * a shell's NODE_EXTRA_CA_CERTS, for one, makes Node read a CA bundle before it runs any code.
 */
export function unitEnvironment(unit: string): Record<string, string> {
  return { PATH: SERVICE_PATH, ...environmentOf(readFileSync(join(REPO, 'systemd', unit), 'utf8')) };
}

/**
 * The variables of a unit's `Environment=` lines, read as systemd reads them: assignments
 * separated by spaces, each double-quoted when its value holds a space; a word that is not
 * `NAME=value` is ignored (systemd logs and skips it).
 */
export function environmentOf(unitText: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [, line] of unitText.matchAll(/^Environment=(.*)$/gm)) {
    for (const [, quoted, bare] of line!.matchAll(/"([^"]*)"|(\S+)/g)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(quoted ?? bare!);
      if (m) variables[m[1]!] = m[2]!;
    }
  }
  return variables;
}

/** The words of a unit's NODE_OPTIONS. */
export function nodeOptionsOf(unitText: string): string[] {
  const text = environmentOf(unitText).NODE_OPTIONS;
  return text ? text.trim().split(/\s+/) : [];
}

export interface Service {
  pid(): number | undefined;
  output(): string;
  lines: string[];
  stop(): Promise<void>;
}

/**
 * Starts a program as a service with exactly `environment` (unitEnvironment(): what its unit
 * gives it), none of the caller's own, and stops it at teardown.
 */
export function spawnTracked(cleanup: TeardownStack, command: string, args: string[], environment: Record<string, string>): Service & { exited: Promise<void>; tell(line: string): void } {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: environment });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => lines.push(line));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  cleanup.teardown(stop);
  return { pid: () => child.pid, output: () => lines.join('\n'), lines, stop, exited, tell: (line) => void child.stdin!.write(`${line}\n`) };
}
