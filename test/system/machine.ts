// A Debian machine booted under systemd as PID 1 for the system test, on a host that has no
// systemd running: the host's root as the lower layer of an overlay whose upper layer belongs
// to the run (so the host's /etc and /usr never change), new PID, mount, UTS, IPC and cgroup
// namespaces, a network namespace that plays the VM's, and a cgroup of its own. test/system/
// boot.sh does the mounting inside and becomes systemd; commands run in the machine through
// nsenter. Every boot of one run shares the upper layer, as a VM keeps its disk across reboots.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Teardown } from '../lib/netns.js';

const BOOT = fileURLToPath(new URL('boot.sh', import.meta.url));
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What outlives a boot: the overlay's layers, the firmware strings, the machine's cgroup. */
export interface MachineDisk {
  /** a tmpfs of the run's own: upper/, work/, root/, firmware/, console */
  dir: string;
  /** the machine's cgroup, as the host sees it */
  cgroup: string;
}

export interface Result {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Where the host mounts cgroup2 (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). */
function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.startsWith('cgroup2 ')) return left!.split(' ')[4]!;
  }
  throw new Error('no cgroup2 file system is mounted on the host: systemd needs one for the machine (mount -t cgroup2 none /sys/fs/cgroup/unified)');
}

/** Kills every process in a cgroup tree and removes it, deepest first. */
export function removeCgroupTree(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(path, entry.name));
  }
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      writeFileSync(join(path, 'cgroup.kill'), '1');
    } catch {
      for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot remove cgroup ${path}: ${(error as Error).message}`);
      execFileSync('sleep', ['0.1']);
    }
  }
}

/**
 * The run's disk and cgroup, removed at teardown. `firmware` holds the machine's DMI strings
 * (/sys/class/dmi/id/NAME), as a cloud's hypervisor sets them.
 */
export function createDisk(t: Teardown, firmware: Record<string, string>): MachineDisk {
  const dir = mkdtempSync('/tmp/cn-system-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=2g', 'cn-system', dir]);
  t.teardown(() => {
    spawnSync('umount', ['--lazy', dir]);
    rmdirSync(dir);
  });
  for (const sub of ['upper', 'work', 'root', 'firmware/dmi/id']) mkdirSync(join(dir, sub), { recursive: true });
  for (const [name, value] of Object.entries(firmware)) writeFileSync(join(dir, 'firmware/dmi/id', name), `${value}\n`);
  writeFileSync(join(dir, 'console'), '');
  const cgroup = join(cgroup2Mount(), `cn-system-${randomBytes(3).toString('hex')}`);
  mkdirSync(cgroup);
  t.teardown(() => removeCgroupTree(cgroup));
  return { dir, cgroup };
}

export class Machine {
  private readonly exited: Promise<string>;
  /** how the machine's init ended, once it has */
  ended?: string;

  private constructor(
    private readonly launcher: ChildProcess,
    /** systemd's process id as the host sees it */
    readonly pid: number,
    readonly netns: string,
  ) {
    this.exited = new Promise<string>((resolve) => {
      if (launcher.exitCode !== null || launcher.signalCode !== null) resolve(`exit ${launcher.exitCode ?? launcher.signalCode}`);
      else launcher.once('exit', (code, signal) => resolve(signal ? `init killed by ${signal}` : `exit ${code}`));
    }).then((how) => {
      this.ended = how;
      return how;
    });
  }

  /**
   * Boots the machine in network namespace `netns` (first: prepares /etc, see boot.sh), with an
   * empty directory over `hide` (the checkout: only the package's files may answer); resolves
   * once systemd runs, before the boot is over. A teardown kills it if it still runs then.
   */
  static async boot(t: Teardown, disk: MachineDisk, netns: string, first: boolean, hide: string): Promise<Machine> {
    const launcher = spawn(
      'sh',
      [
        '-c',
        'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" unshare --pid --fork --mount --uts --ipc --cgroup --propagation private bash "$3" "$4" "$5" "$6"',
        'sh',
        disk.cgroup,
        netns,
        BOOT,
        disk.dir,
        first ? 'first' : 'again',
        hide,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    launcher.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    // the launcher execs unshare, whose one child runs boot.sh and then becomes systemd
    let pid: number | undefined;
    for (const deadline = Date.now() + 20_000; pid === undefined; await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (launcher.exitCode !== null || launcher.signalCode !== null) throw new Error(`the machine did not start: ${output.trim()}`);
      if (Date.now() > deadline) throw new Error(`systemd did not start in the machine within 20 s: ${output.trim()}`);
      try {
        const child = Number(readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim().split(' ')[0]);
        if (child && readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'systemd') pid = child;
      } catch {
        /* between the exec and the fork */
      }
    }
    const machine = new Machine(launcher, pid, netns);
    t.teardown(() => machine.kill());
    return machine;
  }

  get running(): boolean {
    return this.launcher.exitCode === null && this.launcher.signalCode === null;
  }

  /**
   * Runs a command in the machine, as root or as `user`, with a clean environment; never throws
   * on its exit status. `cgroupNamespace: false` keeps the host's view of cgroups, which may
   * move a process into one of the machine's cgroups.
   */
  exec(argv: string[], options: { user?: string; input?: string | Buffer; timeoutMs?: number; cgroupNamespace?: boolean } = {}): Result {
    const namespaces = ['--mount', '--uts', '--ipc', '--net', '--pid', ...(options.cgroupNamespace === false ? [] : ['--cgroup'])];
    const asUser = options.user ? ['setpriv', `--reuid=${options.user}`, `--regid=${options.user}`, '--init-groups', '--'] : [];
    const result = spawnSync(
      'nsenter',
      ['--target', String(this.pid), ...namespaces, '--root', '--wd', '--', 'env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', ...asUser, ...argv],
      { input: options.input, encoding: 'utf8', timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return { status: result.status, signal: result.signal, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  /** Runs a command in the machine and returns its stdout; throws with its output if it fails. */
  run(argv: string[], options: { user?: string; input?: string | Buffer; timeoutMs?: number; cgroupNamespace?: boolean } = {}): string {
    const result = this.exec(argv, options);
    if (result.status !== 0) {
      throw new Error(`\`${argv.join(' ')}\` in the machine ${result.signal ? `was killed by ${result.signal}` : `exited ${result.status}`}: ${(result.stderr || result.stdout).trim()}`);
    }
    return result.stdout;
  }

  /** systemd's state once the boot is over ("running", "degraded", ...). */
  async waitBooted(timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // "offline" (no /run/systemd/system yet) or nothing (not listening yet) early in the boot
      const state = this.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(deadline - Date.now(), 1) }).stdout.trim();
      const up = state !== '' && state !== 'offline';
      if (up || Date.now() > deadline || !this.running) return up ? state : this.running ? `unreachable (${state || 'no answer'})` : `not running (${this.ended ?? 'ended'})`;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** `systemctl reboot` or `poweroff` in the machine; resolves with how its init ended. */
  async shutdown(verb: 'reboot' | 'poweroff', timeoutMs = 90_000): Promise<string> {
    this.exec(['systemctl', verb, '--no-block']);
    const timer = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
    const how = await Promise.race([this.exited, timer]);
    if (how === 'timeout') {
      await this.kill();
      throw new Error(`the machine did not ${verb} within ${timeoutMs / 1000} s; killed`);
    }
    return how;
  }

  /** Ends the machine at once: its PID namespace, and with it every process and mount in it. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.killNow();
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  }

  /** kill() for an exit handler, which cannot wait. */
  killNow(): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
