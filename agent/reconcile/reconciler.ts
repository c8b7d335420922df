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
import { errorText } from '../../protocol/cli.js';
import type { Operation } from '../../protocol/operations.js';
import type { ApplyResult, OwnedAddressesResult } from '../../protocol/methods.js';
import type { KernelState } from '../../netlink/types.js';
import type { MetadataModel, ProviderName, ProviderSnapshot } from '../metadata/model.js';
import { NO_NEIGHBOURS, Planner, type Plan, type PlannerConfig } from '../plan/planner.js';
import { describeApplied } from '../../netlink/describe.js';
import type { Collision, Survey, ToolReport } from '../coexist/tools.js';
import { Contest, type ContestedObject } from './contest.js';

/** Where the metadata comes from (a provider, already detected). */
export interface MetadataSource {
  readonly name: ProviderName;
  /** `thorough`: read everything again, not only what reveals a change (all but timer refreshes) */
  fetch(options?: { thorough?: boolean }): Promise<ProviderSnapshot>;
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
  /** why the helper could not be reached, while it cannot */
  helperError?: string;
  /** why the state files could not be written, until they are again */
  stateError?: string;
  /** why the last reload's configuration was refused (the previous one runs), until one is taken */
  configError?: string;
  /** always pending.length */
  pendingOperations: number;
  /** the operations of the last plan that are not yet in the kernel */
  pending: Operation[];
  /** per link: the last operation error, cleared once the link converges */
  linkErrors: Record<string, string>;
  operations: OperationCounters;
  converged: boolean;
  /** the other network tools found, and what cloud-network does beside each */
  tools: ToolReport[];
  /** cloud-network's tables and priorities that hold another tool's objects */
  collisions: Collision[];
  /** objects someone else kept removing, which cloud-network no longer re-adds until a reload */
  contested: ContestedObject[];
  /** reloads (SIGHUP) taken since the agent started */
  reloads: number;
  /** how the last reload ended, once it has */
  lastReload?: ReloadOutcome;
}

/** How a reload ended: its configuration refused, or taken and the refresh after it done. */
export interface ReloadOutcome {
  /** which reload (ReconcileStatus.reloads when it was taken) */
  number: number;
  /** when it ended */
  at: string;
  outcome: 'refused' | 'applied' | 'unchanged' | 'not-converged';
  /** the refusal, what was applied, or why the kernel does not match */
  detail: string;
}

/** The other network tools (agent/coexist/neighbourhood.ts). */
export interface NeighbourView {
  /** reads the host's files and other tools' routes again; true when they changed */
  refresh(): Promise<boolean>;
  survey(kernel: KernelState): Survey;
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
  /** the other network tools; without it the agent plans as if there were none */
  neighbours?: NeighbourView;
  /** the clock the tug-of-war limit counts with (contest.ts) */
  clock?: () => number;
}

/**
 * However quiet the kernel events are, every this many skipped refreshes the kernel is read
 * anyway (an hour at the default RefreshTimer), in case an event was missed.
 */
export const MAX_SKIPPED_KERNEL_READS = 11;

/** Where a reconcile's time went, for its debug line (BENCH_TIMELINE in bench/ reads it). */
interface Timings {
  metadataMs: number;
  kernelReadMs: number;
  planMs: number;
}

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
  private readonly planner = new Planner();
  private readonly contest: Contest;
  private surveyed = false;
  private config: PlannerConfig;
  private running?: Promise<void>;
  private queued?: { refetch: boolean; trigger: Trigger };
  private retryTimer?: NodeJS.Timeout;
  private retryDelay: number;
  private stopped = false;
  private readonly waiters: ((outcome: ReconcileOutcome) => void)[] = [];
  /** the Supplementary= names last found missing from the kernel, as warned about */
  private missingSupplementary = '';
  /** failed metadata fetches and helper requests since the last success, for the recovery's log line */
  private metadataFailures = 0;
  private helperFailures = 0;

  constructor(private readonly options: ReconcilerOptions) {
    this.config = options.config;
    this.retryDelay = options.retryMs ?? 1_000;
    this.status = initialStatus(options.source.name, new Date());
    this.contest = new Contest(options.clock);
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

  /** A reload's configuration was refused (undefined: one was taken); status shows it until then. */
  setConfigError(problem: string | undefined): void {
    this.status.configError = problem;
  }

  /** A reload: objects held back from a tug of war are re-added, and counted afresh. */
  private forgetContested(): void {
    if (this.contest.contested.length > 0) this.converged = undefined;
    this.contest.clear();
    this.status.contested = [];
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
    if (trigger === 'signal') this.forgetContested();
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

  /**
   * One reconcile, in its steps: fetch (or reuse) the metadata; stop there when nothing changed
   * on either side; have the helper's ledger; read the kernel and plan; if the plan is empty,
   * record that; else apply it, tally the helper's answers, and verify with a fresh read and plan.
   */
  private async reconcile(trigger: Trigger, refetch: boolean): Promise<ReconcileOutcome> {
    this.status.reconciling = true;
    this.status.reconciles++;
    this.status.lastRefresh = new Date().toISOString();
    // Without the helper's ledger this reconcile will ask for it; asking now, while the metadata
    // is fetched, overlaps the socket-activated helper's start-up (a Node process) with the
    // fetch. A converged agent has the ledger, so a no-change refresh still wakes nothing.
    const ownedEarly = this.owned || this.converged !== undefined ? undefined : settle(this.options.helper.ownedAddresses());
    let applying = false;
    const took: Timings = { metadataMs: 0, kernelReadMs: 0, planMs: 0 };
    try {
      // what other tools configured does not depend on the metadata: surveyed while it is fetched
      const surveying = refetch || !this.surveyed ? this.refreshNeighbours() : undefined;
      const snapshot = await this.fetchMetadata(refetch, trigger !== 'timer', took);
      await surveying;
      if (!snapshot) return { converged: false, reason: this.status.lastError ?? 'no metadata' };
      // providers hand back the same model object for an unchanged document: no need to compare
      const modelText = snapshot.model === this.converged?.model ? this.converged.text : JSON.stringify(snapshot.model);
      if (this.canSkip(modelText)) {
        this.skippedReads++;
        return this.succeeded();
      }
      this.skippedReads = 0;
      this.converged = undefined;
      const helperDown = await this.ensureLedger(ownedEarly);
      if (helperDown) {
        await this.planWhileHelperDown(snapshot, modelText, took);
        return helperDown;
      }
      const { kernel, result } = await this.readAndPlan(snapshot, modelText, took);
      if (result.operations.length === 0) return await this.matched(snapshot, modelText, result, kernel);
      applying = true;
      const applied = await this.apply(trigger, result, took);
      if ('converged' in applied) return applied;
      this.contest.placedBy(result.operations, applied.results);
    const problems = this.tally(applied, result.operations, kernel);
      return await this.verify(snapshot, modelText, problems);
    } finally {
      this.status.reconciling = false;
      if (applying) this.options.afterApply?.();
    }
  }

  /**
   * The metadata to plan with: fetched when asked to (or when there is none yet), else the last
   * good snapshot. A failed fetch keeps the last good snapshot in force; undefined when there is
   * none, with the reason in status.lastError.
   */
  private async fetchMetadata(refetch: boolean, thorough: boolean, took: Timings): Promise<ProviderSnapshot | undefined> {
    if (refetch || !this.snapshot) {
      try {
        const started = performance.now();
        const snapshot = await this.options.source.fetch({ thorough });
        took.metadataMs = Math.round(performance.now() - started);
        this.snapshot = snapshot;
        this.status.metadataError = undefined;
        this.status.lastMetadataSuccess = new Date().toISOString();
        if (this.metadataFailures > 0) {
          this.options.log.info(`metadata from ${this.options.source.name} available again after ${plural(this.metadataFailures, 'failure')}`);
          this.metadataFailures = 0;
        }
      } catch (error) {
        const message = `metadata from ${this.options.source.name} unavailable: ${errorText(error)}`;
        this.metadataFailures++;
        this.status.metadataError = message;
        if (!this.snapshot) {
          this.status.lastError = `${message}; nothing configured yet, will retry`;
          this.options.log.warn(this.status.lastError);
          return undefined;
        }
        this.options.log.warn(`${message}; keeping the last known configuration`);
      }
    }
    return this.snapshot;
  }

  /** At start and on each refresh: the other tools' files and routes; a change means a fresh read and plan. */
  private async refreshNeighbours(): Promise<void> {
    const neighbours = this.options.neighbours;
    if (!neighbours) return;
    this.surveyed = true;
    try {
      if (await neighbours.refresh()) this.converged = undefined;
    } catch (error) {
      this.options.log.debug({ err: error }, 'cannot read what other network tools configured; judging by the kernel alone');
    }
  }

  /** The plan against a kernel read: what other tools hold left alone, contested objects held back. */
  private planAgainst(snapshot: ProviderSnapshot, kernel: KernelState, modelText: string): Plan {
    const survey = this.options.neighbours?.survey(kernel);
    const result = this.planner.plan(snapshot.model, this.config, kernel, this.owned, survey?.neighbours ?? NO_NEIGHBOURS);
    const linkOfTable = new Map(result.nics.filter((n) => n.table !== undefined && n.link).map((n) => [n.table!, n.link!.name]));
    const { operations, newlyHeld } = this.contest.filter(result.operations, (op) => {
      const link = 'link' in op ? op.link : linkOfTable.get(op.table);
      return survey?.likelyRemover(link);
    }, modelText);
    for (const held of newlyHeld) {
      this.options.log.warn(
        `${held.object} was removed ${held.removals} times within a minute${held.likelyTool ? `, likely by ${held.likelyTool}` : ' by another tool'}; ` +
          'cloud-network stops re-adding it until the next reload (cnctl reload)',
      );
    }
    if (survey) {
      this.status.tools = survey.tools;
      this.status.collisions = survey.collisions;
    }
    this.status.contested = this.contest.contested;
    return operations.length === result.operations.length ? result : { ...result, operations };
  }

  /**
   * Nothing changed on either side since the last converged reconcile: the no-change refresh
   * costs one metadata fetch, not a kernel read and a plan. Only while kernel events are
   * watched, and not more than MAX_SKIPPED_KERNEL_READS times in a row.
   */
  private canSkip(modelText: string): boolean {
    return (
      this.options.kernelWatched === true &&
      this.kernelUnchanged &&
      modelText === this.converged?.text &&
      !this.status.metadataError &&
      !this.status.stateError &&
      this.skippedReads < MAX_SKIPPED_KERNEL_READS
    );
  }

  /**
   * The helper's ledger changes only when the helper applies something, so it is asked once and
   * again after each apply: a refresh that changes nothing does not wake a socket-activated
   * helper. Returns the outcome when the helper cannot be reached.
   */
  private async ensureLedger(ownedEarly: Promise<Settled<OwnedAddressesResult>> | undefined): Promise<ReconcileOutcome | undefined> {
    if (this.owned) return undefined;
    const answer = await (ownedEarly ?? settle(this.options.helper.ownedAddresses()));
    if ('error' in answer) return this.helperDown(answer.error);
    this.owned = answer.value.addresses;
    this.helperUp();
    return undefined;
  }

  /**
   * The helper cannot be asked for its ledger: the plan is made without it anyway, so that the
   * status lists what is pending (addresses are then judged ours by their protocol tag alone).
   */
  private async planWhileHelperDown(snapshot: ProviderSnapshot, modelText: string, took: Timings): Promise<void> {
    try {
      const { result } = await this.readAndPlan(snapshot, modelText, took);
      this.setPending(result.operations);
    } catch (error) {
      this.options.log.debug({ err: error }, 'no plan while the helper is down');
    }
  }

  private setPending(operations: Operation[]): void {
    this.status.pending = operations;
    this.status.pendingOperations = operations.length;
  }

  private async readAndPlan(snapshot: ProviderSnapshot, modelText: string, took: Timings): Promise<{ kernel: KernelState; result: Plan }> {
    this.kernelUnchanged = true; // events from here on clear it
    const readStarted = performance.now();
    const kernel = await this.options.kernel.read();
    took.kernelReadMs = Math.round(performance.now() - readStarted);
    this.options.log.debug(`kernel read: ${kernelSummary(kernel)} in ${took.kernelReadMs} ms`);
    // The read's last dump was decoded in this turn of the event loop and planning is the
    // longest stretch that follows: let the API requests that arrived meanwhile go first.
    await nextTurn();
    const planStarted = performance.now();
    const result = this.planAgainst(snapshot, kernel, modelText);
    took.planMs = Math.round(performance.now() - planStarted);
    this.lastPlan = result;
    this.options.log.debug(`plan: ${planSummary(result)} (${took.planMs} ms)`);
    for (const nic of result.nics) {
      if (nic.problem) this.options.log.debug(`NIC ${nic.mac}: ${nic.problem}`);
    }
    this.noteMissingSupplementary(kernel);
    return { kernel, result };
  }

  /** Supplementary= names no interface of the kernel: said once for each different set of names. */
  private noteMissingSupplementary(kernel: KernelState): void {
    const missing = this.config.supplementary.filter((name) => !kernel.links.some((link) => link.name === name));
    const key = missing.join(' ');
    if (key === this.missingSupplementary) return;
    this.missingSupplementary = key;
    if (missing.length === 0) return;
    const names = missing.join(', ');
    this.options.log.warn(
      `Supplementary= names ${names}, which ${missing.length === 1 ? 'is not an interface' : 'are not interfaces'} now; ` +
        `${missing.length === 1 ? 'its' : 'their'} addresses get rules once ${missing.length === 1 ? 'it appears' : 'they appear'} (ip link shows the names)`,
    );
  }

  /** The kernel matches the plan: nothing pending, no link in error; the state files follow. */
  private async matched(snapshot: ProviderSnapshot, modelText: string, result: Plan, kernel: KernelState): Promise<ReconcileOutcome> {
    this.setPending([]);
    this.status.linkErrors = {};
    await this.writeState(snapshot, result, kernel);
    this.converged = { model: snapshot.model, text: modelText };
    this.contest.settled(modelText);
    return this.succeeded();
  }

  /**
   * Sends the plan to the helper, with kernel events paused meanwhile. Returns the helper's
   * answer, or the outcome when the helper could not be asked or broke off.
   */
  private async apply(trigger: Trigger, result: Plan, took: Timings): Promise<ApplyResult | ReconcileOutcome> {
    this.options.log.debug({ trigger, operations: result.operations.length, ...took }, 'applying plan');
    this.options.kernelEvents?.pause();
    try {
      const applied = await this.options.helper.apply(result.operations);
      this.helperUp();
      return applied;
    } catch (error) {
      this.owned = undefined; // the helper may have applied part of it before it went away
      this.setPending(result.operations);
      return this.helperDown(error);
    } finally {
      // Before the read below: whatever changes from here on is an event again, and marks
      // the kernel changed (so does a watch that cannot be resumed); what changed until now,
      // the helper's work included, is in that read.
      this.kernelUnchanged = true;
      this.options.kernelEvents?.resume();
    }
  }

  /** Counts and logs each operation's outcome; returns the problems, and keeps each link's last. */
  private tally(applied: ApplyResult, operations: Operation[], kernel: KernelState): string[] {
    const { log } = this.options;
    const linkIndex = new Map(kernel.links.map((l) => [l.name, l.index]));
    const problems: string[] = [];
    const linkErrors: Record<string, string> = {};
    for (const r of applied.results) {
      const op = operations[r.index];
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
    return problems;
  }

  /**
   * Checks the kernel itself rather than trusting the replies: converged only when a fresh plan
   * against a fresh read (and the helper's ledger after the apply) is empty.
   */
  private async verify(snapshot: ProviderSnapshot, modelText: string, problems: string[]): Promise<ReconcileOutcome> {
    const readStarted = performance.now();
    const after = await this.options.kernel.read();
    this.options.log.debug(`kernel read after the apply: ${kernelSummary(after)} in ${Math.round(performance.now() - readStarted)} ms`);
    this.owned = undefined;
    try {
      this.owned = (await this.options.helper.ownedAddresses()).addresses;
    } catch (error) {
      return this.helperDown(error);
    }
    const remaining = this.planAgainst(snapshot, after, modelText);
    this.lastPlan = remaining;
    this.options.log.debug(`plan after the apply: ${planSummary(remaining)}`);
    this.setPending(remaining.operations);
    await this.writeState(snapshot, remaining, after);
    if (remaining.operations.length > 0) {
      const reason = problems[0] ?? `${remaining.operations.length} operations still pending after apply`;
      this.status.lastError = reason;
      return { converged: false, reason };
    }
    // the read after the apply showed the whole plan: the next quiet refresh need not read again
    this.converged = { model: snapshot.model, text: modelText };
    this.contest.settled(modelText);
    return this.succeeded();
  }

  private succeeded(): ReconcileOutcome {
    this.status.lastSuccess = new Date().toISOString();
    if (!this.status.metadataError) this.status.lastError = undefined;
    if (this.status.metadataError) return { converged: false, reason: this.status.metadataError };
    return { converged: true };
  }

  private helperDown(error: unknown): ReconcileOutcome {
    this.helperFailures++;
    this.status.helperReachable = false;
    // the helper client's own errors already say "will retry"
    const text = errorText(error);
    const reason = /will retry$/.test(text) ? text : `${text}; will retry`;
    this.status.lastError = reason;
    this.status.helperError = reason;
    this.options.log.warn(reason);
    return { converged: false, reason };
  }

  private helperUp(): void {
    if (this.helperFailures > 0) {
      this.options.log.info(`helper reachable again after ${plural(this.helperFailures, 'failed attempt')}`);
      this.helperFailures = 0;
    }
    this.status.helperReachable = true;
    this.status.helperError = undefined;
  }

  /**
   * The state files follow the kernel; a StateDir the agent cannot write (a root-owned file left
   * by an old root run) is reported in status and logged once per different error, and the
   * reconcile goes on: the kernel is what matters.
   */
  private async writeState(snapshot: ProviderSnapshot, result: Plan, kernel: KernelState): Promise<void> {
    try {
      await this.options.state.write(snapshot, result, kernel, this.status);
    } catch (error) {
      const problem = `state files not written: ${errorText(error)}; the kernel is configured, the files show an older state`;
      if (problem !== this.status.stateError) this.options.log.error(problem);
      this.status.stateError = problem;
      return;
    }
    if (this.status.stateError) {
      this.options.log.info('state files written again');
      this.status.stateError = undefined;
    }
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
    tools: [],
    collisions: [],
    contested: [],
    reloads: 0,
  };
}

/** "1 failure", "3 failures"; `many` for words whose plural is not "s" added */
function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What a kernel read found, in numbers ("2 links, 1 address, 0 routes, 0 rules"). */
function kernelSummary(kernel: KernelState): string {
  return [plural(kernel.links.length, 'link'), plural(kernel.addresses.length, 'address', 'addresses'), plural(kernel.routes.length, 'route'), plural(kernel.rules.length, 'rule')].join(', ');
}

/** A plan in numbers ("2 NICs (2 on a link), 5 operations: 5 to add or replace, 0 to remove"). */
function planSummary(plan: Plan): string {
  const removals = plan.operations.filter((op) => op.kind.endsWith('.remove')).length;
  const linked = plan.nics.filter((nic) => nic.link).length;
  return (
    `${plural(plan.nics.length, 'NIC')} (${linked} on a link), ${plural(plan.operations.length, 'operation')}: ` +
    `${plan.operations.length - removals} to add or replace, ${removals} to remove`
  );
}

function count(counter: Record<string, number>, kind: string): void {
  counter[kind] = (counter[kind] ?? 0) + 1;
}

type Settled<T> = { value: T } | { error: unknown };

/** A promise that never rejects, so it may wait unobserved (no unhandled rejection) until needed. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}
