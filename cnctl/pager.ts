// Long output through a pager, as systemctl and networkctl do: only when standard output is a
// terminal, never with --no-pager, and with the pager the environment names
// (CNCTL_PAGER, then SYSTEMD_PAGER, then PAGER; empty or "cat" means none), else less.
import { spawn } from 'node:child_process';

/** The pager command, or undefined when the output goes straight to standard output. */
export function pagerCommand(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv, noPager: boolean): string | undefined {
  if (noPager || stdout.isTTY !== true) return undefined;
  const named = env.CNCTL_PAGER ?? env.SYSTEMD_PAGER ?? env.PAGER;
  if (named !== undefined && (named.trim() === '' || named.trim() === 'cat')) return undefined;
  return named ?? 'less';
}

/**
 * Writes the text through the pager and resolves once the pager has exited. less gets FRX unless
 * LESS is set (quit when the text fits one screen, keep colours, leave it on the screen).
 * Resolves false when the pager cannot be started, so that the caller prints the text itself.
 */
export function page(command: string, text: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'inherit', 'inherit'],
      env: { ...env, LESS: env.LESS ?? 'FRX' },
    });
    let started = true;
    child.on('error', () => {
      started = false;
      resolve(false);
    });
    // a pager quit early (q in less) closes its input: the rest of the text is not wanted
    child.stdin.on('error', () => undefined);
    child.on('exit', (code) => {
      // sh reports a pager it cannot find with 127
      if (started) resolve(code !== 127);
    });
    child.stdin.end(text);
  });
}
