// cnctl reload: asks the agent to re-read its configuration and refresh the metadata now.
// Under systemd through `systemctl reload cloud-network.service` (polkit decides who may);
// otherwise, or when a state directory is named explicitly, by SIGHUP to the pid in
// <StateDir>/agent.pid.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PID_FILE } from '../protocol/config-file.js';

export const SERVICE = 'cloud-network.service';

/** The reload could not be asked for: cnctl exits 1 with this message, 3 when no agent runs. */
export class ReloadError extends Error {
  constructor(
    message: string,
    /** there is no agent to signal (no pid file, no such process) */
    readonly notRunning = false,
  ) {
    super(message);
  }
}

export interface ReloadOptions {
  stateDir: string;
  /** true when the user named the state directory: signal that agent, not the service */
  explicitStateDir: boolean;
  /** where systemd's runtime directory is (tests point it elsewhere) */
  systemdDir?: string;
}

/** Returns what was done, for the user. */
export async function reload(options: ReloadOptions): Promise<string> {
  const underSystemd = existsSync(options.systemdDir ?? '/run/systemd/system');
  if (underSystemd && !options.explicitStateDir) return reloadService();
  return signalAgent(options.stateDir);
}

async function reloadService(): Promise<string> {
  const { code, stderr } = await run('systemctl', ['reload', SERVICE]);
  if (code === 0) return `asked ${SERVICE} to reload its configuration and refresh the metadata`;
  const detail = stderr.trim() || `systemctl exited with ${code}`;
  if (/access denied|authentication|not authorized|permission/i.test(detail)) {
    throw new ReloadError(
      `not allowed to reload ${SERVICE}: ${detail}. Run as root, or as a user the cloud-network polkit rule allows.`,
    );
  }
  throw new ReloadError(`systemctl reload ${SERVICE} failed: ${detail}. Check systemctl status ${SERVICE}.`);
}

export async function signalAgent(stateDir: string): Promise<string> {
  const pidFile = join(stateDir, PID_FILE);
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ReloadError(`no agent pid file at ${pidFile}: is the agent running, and is its StateDir ${stateDir} (--state-dir)?`, true);
    }
    throw new ReloadError(`cannot read ${pidFile}: ${code ?? (error as Error).message}`);
  }
  // Only a plain positive pid: 0 and negative numbers would signal whole process groups.
  const pid = /^\s*(\d+)\s*$/.exec(text) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new ReloadError(`${pidFile} does not hold a process id (it says ${JSON.stringify(text.slice(0, 40))}); restart the agent to rewrite it`);
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') {
      throw new ReloadError(`no process with pid ${pid} (from ${pidFile}): the agent is not running; the pid file is stale`, true);
    }
    if (code === 'EPERM') {
      const owner = await stat(`/proc/${pid}`).then((s) => ` (it runs as uid ${s.uid})`, () => '');
      throw new ReloadError(
        `not allowed to signal the agent (pid ${pid})${owner}: run as root or as the agent's own user, ` +
          `or use systemctl reload ${SERVICE} where polkit allows it`,
      );
    }
    throw new ReloadError(`cannot signal the agent (pid ${pid}): ${code ?? (error as Error).message}`);
  }
  return `sent SIGHUP to the agent (pid ${pid}): it re-reads its configuration and refreshes the metadata`;
}

function run(command: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => resolve({ code: 127, stderr: `cannot run ${command}: ${error.code ?? error.message}` }));
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}
