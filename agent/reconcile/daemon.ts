// The long-running agent: the reconciler plus everything that triggers it (the refresh timer,
// metadata change notifications, kernel events, SIGHUP), and the pid file (written under the
// instance lock main.ts holds, removed by its own agent only). The REST API is
// started by main.ts once the first reconcile has ended, and closed through DaemonParts.close.
// Stopping the daemon leaves the network as it is.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Logger from 'bunyan';
import { PID_FILE } from '../../protocol/config-file.js';
import { configNotes, loadConfig, type Config } from '../process/config.js';
import type { Reconciler, ReloadOutcome } from './reconciler.js';
import { writeAtomically } from '../process/files.js';

/**
 * Kernel events are collected until they pause this long, so a burst (thousands of address
 * events from one apply, an interface going down) becomes one reconcile ...
 */
export const KERNEL_EVENT_QUIET_MS = 25;
/** ... but never longer than this after the first event, so a steady stream cannot stall repairs. */
export const KERNEL_EVENT_MAX_DELAY_MS = 150;

export interface KernelWatch {
  close(): void;
}

export interface DaemonParts {
  reconciler: Reconciler;
  log: Logger;
  config: Config;
  configPath: string;
  /** the file was named with --config: on SIGHUP its absence is refused, not read as the defaults */
  configNamed?: boolean;
  /** starts watching kernel events; calls back on any change or overflow */
  watchKernel(onChange: () => void): KernelWatch;
  /**
   * One metadata change long-poll (GCP): resolves true when the metadata changed, false when
   * the poll ended without a change. Undefined for clouds that are polled by the timer only.
   */
  waitForMetadataChange?: (signal: AbortSignal) => Promise<boolean>;
  /** applies a reloaded config to long-lived parts (log level, planner) */
  applyConfig(config: Config): void;
  /** closes the REST API and other resources */
  close(): Promise<void>;
}

export class Daemon {
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  /** when the first and the latest event not yet handed to the reconciler arrived */
  private firstEventAt?: number;
  private lastEventAt = 0;
  private watch?: KernelWatch;
  /** events are paused while the helper applies (pauseKernelEvents) */
  private eventsPaused = false;
  private readonly abort = new AbortController();
  private config: Config;
  private stopping = false;
  /** The reconcile start() begins: resolves when it has ended, however it went. */
  firstReconcile: Promise<void> = Promise.resolve();

  constructor(private readonly parts: DaemonParts) {
    this.config = parts.config;
  }

  get pidFile(): string {
    return join(this.config.system.stateDir, PID_FILE);
  }

  async start(): Promise<void> {
    const { reconciler, log } = this.parts;
    await writeAtomically(this.pidFile, `${process.pid}\n`);
    this.watch = this.parts.watchKernel(() => this.kernelChanged());
    process.on('SIGHUP', () => void this.reload());
    this.firstReconcile = reconciler.request('start', true).then((outcome) => {
      if (outcome.converged) log.info('configuration converged');
    });
    this.scheduleRefresh();
    if (this.parts.waitForMetadataChange) void this.followMetadata(this.parts.waitForMetadataChange);
  }

  /** Stops triggers, lets a reconcile in flight finish, leaves the kernel as it is. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.timer);
    clearTimeout(this.debounce);
    this.abort.abort();
    this.watch?.close();
    await this.parts.reconciler.stop();
    await this.parts.close();
    // only this agent's own pid file: another agent's must outlive this one
    const written = await readFile(this.pidFile, 'utf8').catch(() => '');
    if (written.trim() === String(process.pid)) await rm(this.pidFile, { force: true });
  }

  /**
   * Stops listening to kernel events while the helper applies a plan: its own changes would
   * come back as one event each (three per IP) and then as one more reconcile. Nothing
   * is missed: the reconciler reads the kernel after the apply, after resumeKernelEvents, so a
   * change made by anyone in between is in that read, and any later one is an event again.
   */
  pauseKernelEvents(): void {
    if (this.stopping || this.eventsPaused) return;
    this.eventsPaused = true;
    this.watch?.close();
    this.watch = undefined;
  }

  resumeKernelEvents(): void {
    if (this.stopping || !this.eventsPaused) return;
    try {
      this.watch = this.parts.watchKernel(() => this.kernelChanged());
      this.eventsPaused = false;
    } catch (error) {
      // unwatched, a quiet refresh must not skip the kernel read: count it as changed, try again
      this.parts.log.warn({ err: error }, 'cannot watch kernel events again; retrying in 1 s');
      this.parts.reconciler.noteKernelChange();
      setTimeout(() => this.resumeKernelEvents(), 1_000).unref();
    }
  }

  /**
   * Called once per event datagram, so a burst (another tool's thousands of changes) calls it
   * that often. An event only notes the time; one timer, re-armed when it fires early, decides
   * when the burst is over: re-arming a timer per event costs more than the burst's reconcile
   * (docs/performance.md, "Kernel events and repairs").
   */
  private kernelChanged(): void {
    if (this.stopping) return;
    this.parts.reconciler.noteKernelChange();
    const now = performance.now();
    this.lastEventAt = now;
    if (this.firstEventAt === undefined) {
      this.firstEventAt = now;
      this.armDebounce(KERNEL_EVENT_QUIET_MS);
    }
  }

  private armDebounce(delay: number): void {
    this.debounce = setTimeout(() => {
      const now = performance.now();
      const quietUntil = this.lastEventAt + KERNEL_EVENT_QUIET_MS;
      const deadline = this.firstEventAt! + KERNEL_EVENT_MAX_DELAY_MS;
      if (now < quietUntil && now < deadline) {
        this.armDebounce(Math.min(quietUntil, deadline) - now);
        return;
      }
      this.firstEventAt = undefined;
      void this.parts.reconciler.request('kernel', false);
    }, Math.max(0, delay));
  }

  private scheduleRefresh(): void {
    if (this.stopping) return;
    clearTimeout(this.timer);
    // ±10% jitter so a fleet started together does not hit its metadata services in step
    const delay = this.config.system.refreshTimerMs * (0.9 + Math.random() * 0.2);
    this.timer = setTimeout(() => {
      void this.parts.reconciler.request('timer', true).finally(() => this.scheduleRefresh());
    }, delay);
  }

  private async followMetadata(wait: (signal: AbortSignal) => Promise<boolean>): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const changed = await wait(this.abort.signal);
        failures = 0;
        if (changed && !this.stopping) await this.parts.reconciler.request('metadata', true);
      } catch (error) {
        if (this.stopping) return;
        failures++;
        // the timer still refreshes; back off so a broken long-poll does not spin
        const delay = Math.min(1_000 * 2 ** Math.min(failures, 6), 60_000);
        this.parts.log.debug({ err: error }, `metadata change watch failed; retrying in ${delay} ms`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** SIGHUP: re-read the config; a bad one is refused and the running one kept. Its outcome goes to the status (cnctl reload waits for it). */
  private async reload(): Promise<void> {
    const { log, reconciler } = this.parts;
    const number = ++reconciler.status.reloads;
    const ended = (outcome: ReloadOutcome['outcome'], detail: string) => {
      reconciler.status.lastReload = { number, at: new Date().toISOString(), outcome, detail };
    };
    let next: Config;
    try {
      next = await loadConfig(this.parts.configPath, { named: this.parts.configNamed === true });
    } catch (error) {
      const problem = `reload refused: ${(error as Error).message}; keeping the running configuration`;
      log.error(problem);
      reconciler.setConfigError(problem);
      ended('refused', problem);
      return;
    }
    reconciler.setConfigError(undefined);
    for (const note of configNotes(next)) log.warn(`${this.parts.configPath}: ${note}`);
    const restartNeeded = (['helperSocket', 'stateDir', 'provider'] as const).filter(
      (key) => next.system[key] !== this.config.system[key],
    );
    if (next.network.listen !== this.config.network.listen) restartNeeded.push('listen' as never);
    if (restartNeeded.length > 0) {
      log.warn(`reload: ${restartNeeded.join(', ')} changed; these take effect at the next restart`);
    }
    this.config = next;
    this.parts.applyConfig(next);
    log.info('configuration reloaded; refreshing now');
    const appliedBefore = totalOf(reconciler.status.operations.applied);
    const outcome = await reconciler.request('signal', true);
    const applied = totalOf(reconciler.status.operations.applied) - appliedBefore;
    const later = restartNeeded.length > 0 ? `; ${restartNeeded.join(', ')} take effect at the next restart` : '';
    if (!outcome.converged) ended('not-converged', `${outcome.reason ?? 'the kernel does not match the plan'}${later}`);
    else if (applied > 0) ended('applied', `${applied} ${applied === 1 ? 'change' : 'changes'} applied; the kernel matches the plan${later}`);
    else ended('unchanged', `nothing changed: the kernel already matched the plan${later}`);
    this.scheduleRefresh();
  }
}

function totalOf(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
