// The bench's eyes on a namespace's kernel: one `ip monitor` process whose event lines wake the
// checks, instead of a check every few milliseconds.
//
// Polling with `ip` every few milliseconds would keep one of two CPUs busy starting `ip`
// processes and reading their dumps while the agent and the helper it measures work on the
// other (docs/performance.md, "How the bench measures"). A check runs when the kernel reports a
// change, so the time it returns is that of the event line that made it pass; a slow poll (every
// FALLBACK_CHECK_MS) stays for events the monitor could have lost (a netlink overrun).
import { execFileSync, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TeardownStack } from '../test/lib/teardown-stack.js';

export type EventKind = 'ADDR' | 'ROUTE' | 'RULE';

const MONITOR_RECEIVE_BUFFER_BYTES = 8 << 20;

/** How often a check runs when no event has woken it. */
export const FALLBACK_CHECK_MS = 250;

// a rule only the bench makes, to see that the monitor is subscribed (priority 3: below every
// rule the agent manages, and documentation addresses)
const PROBE_RULE = ['priority', '3', 'from', '192.0.2.255', 'lookup', '252'];

export class KernelWatch {
  /** net count of changes per kind since the watch started: additions minus deletions */
  private readonly net: Record<EventKind, number> = { ADDR: 0, ROUTE: 0, RULE: 0 };
  private probeLines = 0;
  private lastEventAt = 0;
  /** an event arrived while no check was waiting for one */
  private pending = false;
  private wake?: () => void;
  /** the monitor's complaints (a receive buffer overrun loses events: the slow poll then decides) */
  readonly errors: string[] = [];

  private constructor(private readonly stopMonitor: () => void) {}

  /** Starts `ip -rcvbuf 8M -o monitor label address route rule` in `ns`; resolves once it sees the kernel's changes. */
  static async start(cleanup: TeardownStack, ns: string): Promise<KernelWatch> {
    // an 8 MiB receive buffer (capped by net.core.rmem_max): ip's default 1 MiB overruns in an
    // apply at L, and the converge would then be decided by the slow poll
    const child = spawn('ip', ['-n', ns, '-rcvbuf', String(MONITOR_RECEIVE_BUFFER_BYTES), '-o', 'monitor', 'label', 'address', 'route', 'rule'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const watch = new KernelWatch(() => void child.kill('SIGKILL'));
    cleanup.teardown(() => watch.stop());
    createInterface({ input: child.stdout }).on('line', (line) => watch.noteLine(line));
    createInterface({ input: child.stderr }).on('line', (line) => void watch.errors.push(line));
    // subscribed once a rule added and deleted now shows up, twice
    await watch.probe(ns, 'saw no change');
    return watch;
  }

  /**
   * Resolves once the monitor has reported every change made before the call: the kernel reports
   * changes in order, so a probe rule's addition and deletion come after all of them.
   */
  async caughtUp(ns: string): Promise<void> {
    await this.probe(ns, 'did not catch up');
  }

  /**
   * Starts counting afresh, once caughtUp(): a burst faster than the monitor reads (`ip -batch`)
   * overruns its receive buffer, and the counts miss what it lost.
   */
  resetCounts(): void {
    this.net.ADDR = this.net.ROUTE = this.net.RULE = 0;
    this.errors.length = 0;
  }

  private async probe(ns: string, failure: string): Promise<void> {
    const deadline = performance.now() + 5_000;
    this.probeLines = 0;
    while (this.probeLines < 2) {
      if (performance.now() > deadline) throw new Error(`ip monitor in ${ns} ${failure} within 5 s${this.errors.length ? `: ${this.errors.join('; ')}` : ''}`);
      this.probeLines = 0;
      execFileSync('ip', ['-n', ns, 'rule', 'add', ...PROBE_RULE]);
      execFileSync('ip', ['-n', ns, 'rule', 'del', ...PROBE_RULE]);
      await sleep(50);
    }
  }

  /** Net changes of this kind seen since the watch started. */
  count(kind: EventKind): number {
    return this.net[kind];
  }

  /**
   * Resolves with the time of the kernel event after which `check` passed: `check` runs now, then
   * after each event (one check at a time; events during a check wake one more), and every
   * FALLBACK_CHECK_MS regardless; it is told whether an event woke it. A pass on the first check
   * or found by the slow poll resolves with the time the check ended: the change happened at
   * some point before, which that check cannot tell, and the figure must not flatter.
   */
  async until(check: (woken: boolean) => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
    const calledAt = performance.now();
    const deadline = calledAt + timeoutMs;
    this.pending = false;
    let woken = false;
    for (;;) {
      const eventAt = this.lastEventAt;
      if (await check(woken)) return woken && eventAt >= calledAt ? eventAt : performance.now();
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this.errors.length ? ` (ip monitor: ${this.errors.at(-1)})` : ''}`);
      woken = await this.nextEvent(Math.min(FALLBACK_CHECK_MS, Math.max(0, deadline - performance.now())));
    }
  }

  stop(): void {
    this.stopMonitor();
  }

  /** true when an event arrived (now or since the last check), false when `ms` passed without one */
  private nextEvent(ms: number): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
    });
  }

  private noteLine(line: string): void {
    const m = /^\[(ADDR|ROUTE|RULE)\](Deleted )?/.exec(line);
    if (!m) return;
    if (m[1] === 'RULE' && line.includes(`from ${PROBE_RULE[3]} lookup ${PROBE_RULE[5]}`)) {
      this.probeLines++;
      return;
    }
    this.net[m[1] as EventKind] += m[2] ? -1 : 1;
    this.lastEventAt = performance.now();
    if (this.wake) this.wake();
    else this.pending = true;
  }
}
