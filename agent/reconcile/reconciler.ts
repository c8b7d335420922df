// The reconciler: one loop, one reconcile at a time. Every trigger (start, the refresh
// timer, a metadata change, SIGHUP, a kernel event) leads to the same step: fetch (or reuse)
// the metadata, read the kernel, plan, send the difference to the helper, record the result.
//
// The rules that keep a VM's network safe:
// - a failed, partial or invalid metadata fetch removes nothing: the last good model stays in
//   force and the kernel is still repaired against it;
// - a helper that is down is retried with backoff; the agent never exits because of it;
// - a reconcile that changes nothing writes nothing and logs nothing at Info.
import type Logger from 'bunyan';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Operation } from '../../protocol/operations.js';
import type { ApplyResult, OwnedAddressesResult } from '../../protocol/methods.js';
import type { KernelState } from '../../netlink/types.js';
import type { MetadataModel, ProviderName, ProviderSnapshot } from '../metadata/model.js';
import { plan, type Plan, type PlannerConfig } from '../plan/planner.js';
import { describeApplied } from './change-log.js';

/** Where the metadata comes from (a provider, already detected). */
export interface MetadataSource {
  readonly name: ProviderName;
  fetch(): Promise<ProviderSnapshot>;
}

export interface KernelReader {
  read(): Promise<KernelState>;
}

export interface HelperApi {
  apply(operations: Operation[]): Promise<ApplyResult>;
  ownedAddresses(): Promise<OwnedAddressesResult>;
}

export interface StateSink {
  write(snapshot: ProviderSnapshot, result: Plan, kernel: KernelState, status: ReconcileStatus): Promise<void>;
}

export type Trigger = 'start' | 'timer' | 'metadata' | 'signal' | 'kernel' | 'retry';

export interface OperationCounters {
  applied: Record<string, number>;
  failed: Record<string, number>;
}

/** What the agent knows about its own progress; the REST API and the state files show it. */
export interface ReconcileStatus {
  provider: ProviderName;
  startedAt: string;
  reconciling: boolean;
  reconciles: number;
  lastRefresh?: string;
  lastSuccess?: string;
  lastMetadataSuccess?: string;
  lastError?: string;
  metadataError?: string;
  helperReachable?: boolean;
  pendingOperations: number;
  /** the operations of the last plan that are not yet in the kernel */
  pending: Operation[];
  /** per link: the last operation error, cleared once the link converges */
  linkErrors: Record<string, string>;
  operations: OperationCounters;
  converged: boolean;
}

export interface ReconcileOutcome {
  converged: boolean;
  /** why not, when not */
  reason?: string;
}

export interface ReconcilerOptions {
  source: MetadataSource;
  kernel: KernelReader;
  helper: HelperApi;
  state: StateSink;
  log: Logger;
  config: PlannerConfig;
  /** first retry delay after a failure; doubles up to maxRetryMs */
  retryMs?: number;
  maxRetryMs?: number;
  /**
   * Whether kernel events reach noteKernelChange() (the daemon watches them). Only then may a
   * refresh whose metadata is unchanged skip reading the kernel: nothing changed on either side.
   */
  kernelWatched?: boolean;
  /**
   * Kernel events to pause while the helper applies (the daemon's watch): its own changes need
   * no events, the read after the apply sees them and anything else changed meanwhile.
   */
  kernelEvents?: { pause(): void; resume(): void };
  /**
   * Called when a reconcile that sent the helper a plan has ended, however the apply went: the
   * allocation-heavy kind (the request, the results and a log line per operation).
   * The daemon collects garbage once such work has stopped (idle-gc.ts).
   */
  afterApply?: () => void;
}

/**
 * However quiet the kernel events are, every this many skipped refreshes the kernel is read
 * anyway (an hour at the default RefreshTimer), in case an event was missed.
 */
export const MAX_SKIPPED_KERNEL_READS = 11;

export class Reconciler {
  readonly status: ReconcileStatus;
  private snapshot?: ProviderSnapshot;
  /** the model of the last converged reconcile, and as JSON; and whether the kernel changed since */
  private converged?: { model: MetadataModel; text: string };
  private kernelUnchanged = false;
  private skippedReads = 0;
  /** the helper's ledger as last read; undefined until read, and after an apply */
  private owned?: OwnedAddressesResult['addresses'];
  private lastPlan?: Plan;
  private config: PlannerConfig;
  private running?: Promise<void>;
  private queued?: { refetch: boolean; trigger: Trigger };
  private retryTimer?: NodeJS.Timeout;
  private retryDelay: number;
  private stopped = false;
  private readonly waiters: ((outcome: ReconcileOutcome) => void)[] = [];

  constructor(private readonly options: ReconcilerOptions) {
    this.config = options.config;
    this.retryDelay = options.retryMs ?? 1_000;
    this.status = initialStatus(options.source.name, new Date());
  }

  /** The last good metadata snapshot, if any. */
  get current(): ProviderSnapshot | undefined {
    return this.snapshot;
  }

  get currentPlan(): Plan | undefined {
    return this.lastPlan;
  }

  setConfig(config: PlannerConfig): void {
    // a changed planner config may plan differently: plan against a fresh read
    if (JSON.stringify(config) !== JSON.stringify(this.config)) this.converged = undefined;
    this.config = config;
  }

  /** A kernel event arrived (or events were lost): the next reconcile must read the kernel. */
  noteKernelChange(): void {
    this.kernelUnchanged = false;
  }

  /**
   * Asks for a reconcile. Requests that arrive while one runs are coalesced into one more
   * run (refetching if any of them asked to). Resolves when a run that started after this
   * request has finished.
   */
  request(trigger: Trigger, refetch: boolean): Promise<ReconcileOutcome> {
    const done = new Promise<ReconcileOutcome>((resolve) => this.waiters.push(resolve));
    if (this.stopped) return Promise.resolve({ converged: false, reason: 'the agent is stopping' });
    if (this.queued) {
      this.queued.refetch ||= refetch;
    } else {
      this.queued = { refetch, trigger };
    }
    if (!this.running) this.running = this.drain();
    return done;
  }

  /** Stops retries; a reconcile in flight is allowed to finish (awaited). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queued && !this.stopped) {
      const { refetch, trigger } = this.queued;
      this.queued = undefined;
      const waiters = this.waiters.splice(0);
      let outcome: ReconcileOutcome;
      try {
        outcome = await this.reconcile(trigger, refetch);
      } catch (error) {
        // a bug, not a condition: report it, keep the agent alive, retry later
        outcome = { converged: false, reason: `internal error: ${errorText(error)}` };
        this.options.log.error({ err: error }, 'reconcile failed unexpectedly; will retry');
      }
      this.status.converged = outcome.converged;
      if (outcome.converged) {
        this.retryDelay = this.options.retryMs ?? 1_000;
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      } else {
        this.scheduleRetry(refetch || !this.snapshot);
      }
      for (const resolve of waiters) resolve(outcome);
    }
    this.running = undefined;
  }

  private scheduleRetry(refetch: boolean): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay * (0.8 + Math.random() * 0.4);
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.maxRetryMs ?? 60_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.request('retry', refetch);
    }, delay);
    this.retryTimer.unref?.();
  }

  private async reconcile(trigger: Trigger, refetch: boolean): Promise<ReconcileOutcome> {
    const { log } = this.options;
    this.status.reconciling = true;
    this.status.reconciles++;
    this.status.lastRefresh = new Date().toISOString();
    // Without the helper's ledger this reconcile will ask for it; asking now, while the metadata
    // is fetched, overlaps the socket-activated helper's start-up (a Node process: ~0.2 s) with
    // the fetch. A converged agent has the ledger, so a no-change refresh still wakes nothing.
    const ownedEarly = this.owned || this.converged !== undefined ? undefined : settle(this.options.helper.ownedAddresses());
    let applying = false;
    // where the reconcile's time went, for its debug line (BENCH_TIMELINE in bench/run.ts reads it)
    const took = { metadataMs: 0, kernelReadMs: 0, planMs: 0 };
    try {
      if (refetch || !this.snapshot) {
        try {
          const started = performance.now();
          const snapshot = await this.options.source.fetch();
          took.metadataMs = Math.round(performance.now() - started);
          this.snapshot = snapshot;
          this.status.metadataError = undefined;
          this.status.lastMetadataSuccess = new Date().toISOString();
        } catch (error) {
          const message = `metadata from ${this.options.source.name} unavailable: ${errorText(error)}`;
          this.status.metadataError = message;
          if (!this.snapshot) {
            this.status.lastError = `${message}; nothing configured yet, will retry`;
            log.warn(this.status.lastError);
            return { converged: false, reason: this.status.lastError };
          }
          log.warn(`${message}; keeping the last known configuration`);
        }
      }
      const snapshot = this.snapshot!;

      // Nothing changed on either side since the last converged reconcile: the no-change
      // refresh costs one metadata fetch, not a kernel read and a plan.
      // providers hand back the same model object for an unchanged document: no need to compare
      const model = snapshot.model === this.converged?.model ? this.converged.text : JSON.stringify(snapshot.model);
      if (
        this.options.kernelWatched &&
        this.kernelUnchanged &&
        model === this.converged?.text &&
        !this.status.metadataError &&
        this.skippedReads < MAX_SKIPPED_KERNEL_READS
      ) {
        this.skippedReads++;
        return this.succeeded();
      }
      this.skippedReads = 0;
      this.converged = undefined;

      // The helper's ledger changes only when the helper applies something, so it is asked
      // once and again after each apply: a refresh that changes nothing does not wake a
      // socket-activated helper.
      if (!this.owned) {
        const answer = await (ownedEarly ?? settle(this.options.helper.ownedAddresses()));
        if ('error' in answer) return this.helperDown(answer.error);
        this.owned = answer.value.addresses;
        this.status.helperReachable = true;
      }
      this.kernelUnchanged = true; // events from here on clear it
      const readStarted = performance.now();
      const kernel = await this.options.kernel.read();
      took.kernelReadMs = Math.round(performance.now() - readStarted);
      // The read's last dump was decoded in this turn of the event loop and planning is the
      // longest stretch that follows: let the API requests that arrived meanwhile go first.
      await nextTurn();
      const planStarted = performance.now();
      const result = plan(snapshot.model, this.config, kernel, this.owned);
      took.planMs = Math.round(performance.now() - planStarted);
      this.lastPlan = result;
      for (const nic of result.nics) {
        if (nic.problem) log.debug(`NIC ${nic.mac}: ${nic.problem}`);
      }

      if (result.operations.length === 0) {
        this.status.pendingOperations = 0;
        this.status.pending = [];
        this.status.linkErrors = {};
        await this.options.state.write(snapshot, result, kernel, this.status);
        this.converged = { model: snapshot.model, text: model };
        return this.succeeded();
      }

      log.debug({ trigger, operations: result.operations.length, ...took }, 'applying plan');
      let applied: ApplyResult;
      applying = true;
      this.options.kernelEvents?.pause();
      try {
        applied = await this.options.helper.apply(result.operations);
        this.status.helperReachable = true;
      } catch (error) {
        this.owned = undefined; // the helper may have applied part of it before it went away
        this.status.pendingOperations = result.operations.length;
        return this.helperDown(error);
      } finally {
        // Before the read below: whatever changes from here on is an event again, and marks
        // the kernel changed (so does a watch that cannot be resumed); what changed until now,
        // the helper's work included, is in that read.
        this.kernelUnchanged = true;
        this.options.kernelEvents?.resume();
      }

      const linkIndex = new Map(kernel.links.map((l) => [l.name, l.index]));
      const problems: string[] = [];
      const linkErrors: Record<string, string> = {};
      for (const r of applied.results) {
        const op = result.operations[r.index];
        if (!op) continue;
        if (r.outcome === 'applied') {
          count(this.status.operations.applied, op.kind);
          log.info(describeApplied(op, 'link' in op ? linkIndex.get(op.link) : undefined));
        } else if (r.outcome === 'refused' || r.outcome === 'failed') {
          count(this.status.operations.failed, op.kind);
          const problem = `${r.outcome === 'refused' ? 'helper refused' : 'kernel refused'} ${op.kind}: ${r.reason ?? 'no reason given'}`;
          problems.push(problem);
          if ('link' in op) linkErrors[op.link] = problem;
          log.error(problem);
        }
      }
      this.status.linkErrors = linkErrors;

      // Check the kernel itself rather than trusting the replies.
      const after = await this.options.kernel.read();
      this.owned = undefined;
      try {
        this.owned = (await this.options.helper.ownedAddresses()).addresses;
      } catch (error) {
        return this.helperDown(error);
      }
      const remaining = plan(snapshot.model, this.config, after, this.owned);
      this.lastPlan = remaining;
      this.status.pendingOperations = remaining.operations.length;
      this.status.pending = remaining.operations;
      await this.options.state.write(snapshot, remaining, after, this.status);
      if (remaining.operations.length > 0) {
        const reason = problems[0] ?? `${remaining.operations.length} operations still pending after apply`;
        this.status.lastError = reason;
        return { converged: false, reason };
      }
      // the read after the apply showed the whole plan: the next quiet refresh need not read again
      this.converged = { model: snapshot.model, text: model };
      return this.succeeded();
    } finally {
      this.status.reconciling = false;
      if (applying) this.options.afterApply?.();
    }
  }

  private succeeded(): ReconcileOutcome {
    this.status.lastSuccess = new Date().toISOString();
    if (!this.status.metadataError) this.status.lastError = undefined;
    if (this.status.metadataError) return { converged: false, reason: this.status.metadataError };
    return { converged: true };
  }

  private helperDown(error: unknown): ReconcileOutcome {
    this.status.helperReachable = false;
    // the helper client's own errors already say "will retry"
    const text = errorText(error);
    const reason = /will retry$/.test(text) ? text : `${text}; will retry`;
    this.status.lastError = reason;
    this.options.log.warn(reason);
    return { converged: false, reason };
  }
}

/** The status of an agent that has not reconciled yet. */
export function initialStatus(provider: ProviderName, startedAt: Date): ReconcileStatus {
  return {
    provider,
    startedAt: startedAt.toISOString(),
    reconciling: false,
    reconciles: 0,
    pendingOperations: 0,
    pending: [],
    linkErrors: {},
    operations: { applied: {}, failed: {} },
    converged: false,
  };
}

function count(counter: Record<string, number>, kind: string): void {
  counter[kind] = (counter[kind] ?? 0) + 1;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A promise that never rejects, so it may wait unobserved (no unhandled rejection) until needed. */
function settle<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}
