// cnctl wait: polls the agent's status until it has converged, or until the time is up, for
// scripts and for units ordered after cloud-network (ExecStartPre=cnctl wait). The agent not
// answering yet (still starting) is waited for like a reconcile in progress. cnctl reload waits
// here too, for the reload it asked for to end.
import { API_PATHS, statusProblems, type ReloadResource, type StatusResource } from '../protocol/rest.js';
import { AgentUnreachable, type AgentClient } from './client.js';

/** How often the status is asked for. */
export const POLL_MS = 500;

/** The time was up: the message says what was last seen. */
export class WaitTimeout extends Error {
  constructor(
    message: string,
    /** the agent never answered, or stopped answering: nothing to say about convergence */
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

export interface WaitOptions {
  /** 0: without limit */
  timeoutMs: number;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Resolves with the first converged status; rejects with WaitTimeout saying why not. */
export async function waitConverged(client: Pick<AgentClient, 'get'>, options: WaitOptions): Promise<StatusResource> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  const deadline = options.timeoutMs === 0 ? Infinity : started + options.timeoutMs;
  for (;;) {
    let last: { status: StatusResource } | { error: AgentUnreachable };
    try {
      const status = await client.get<StatusResource>(API_PATHS.status);
      if (status.converged) return status;
      last = { status };
    } catch (error) {
      if (!(error instanceof AgentUnreachable)) throw error;
      last = { error };
    }
    if (now() >= deadline) throw timedOut(last, (now() - started) / 1000);
    await sleep(Math.min(options.pollMs ?? POLL_MS, Math.max(0, deadline - now())));
  }
}

function timedOut(last: { status: StatusResource } | { error: AgentUnreachable }, seconds: number): WaitTimeout {
  const after = `after ${Math.round(seconds)} s`;
  if ('error' in last) return new WaitTimeout(`no answer from the agent ${after}: ${last.error.message}`, true);
  const { status } = last;
  const problems = statusProblems(status);
  const why = problems.length > 0 ? problems.join('; ') : status.reconciling || status.reconciles === 0 ? 'its first reconcile has not ended' : `${status.pending.length} operations pending`;
  return new WaitTimeout(`the agent has not converged ${after}: ${why}`, false);
}

/** The reload after `before` ended: how, or a WaitTimeout when it did not in time. */
export async function waitReload(client: Pick<AgentClient, 'get'>, before: number, options: WaitOptions): Promise<ReloadResource> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  const deadline = options.timeoutMs === 0 ? Infinity : started + options.timeoutMs;
  let taken = false;
  for (;;) {
    try {
      const status = await client.get<StatusResource>(API_PATHS.status);
      taken ||= status.reloads > before;
      if (status.lastReload && status.lastReload.number > before) return status.lastReload;
    } catch (error) {
      if (!(error instanceof AgentUnreachable)) throw error;
    }
    if (now() >= deadline) {
      const after = `after ${Math.round((now() - started) / 1000)} s`;
      throw new WaitTimeout(taken ? `the agent took the reload but had not finished its refresh ${after}` : `the agent had not taken the reload ${after}`, !taken);
    }
    await sleep(Math.min(options.pollMs ?? POLL_MS, Math.max(0, deadline - now())));
  }
}
