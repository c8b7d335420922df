// What the REST API serves, built from the agent's view: the shapes are the contract's
// (protocol/rest.ts), which tsc holds these builders to. Nothing here reads a provider's
// document except through withoutSecrets.
import { describeOperation } from '../../../netlink/describe.js';
import type { DocumentResource, NetworkResource, SshKeysResource, StatusResource, SystemResource } from '../../../protocol/rest.js';
import type { ProviderSnapshot } from '../../metadata/model.js';
import { withoutSecrets } from '../../metadata/secret-filter.js';
import type { Plan } from '../../plan/planner.js';
import type { ReconcileStatus } from '../../reconcile/reconciler.js';
import { linkStates, shownDetails } from '../state-files.js';

/** What the API needs from the agent; agent/main.ts implements it over the Reconciler. */
export interface AgentView {
  /** the reconciler's status (Reconciler.status) */
  status(): ReconcileStatus;
  /** the last good snapshot (Reconciler.current); undefined before the first fetch succeeded */
  snapshot(): ProviderSnapshot | undefined;
  /** the last plan (Reconciler.currentPlan); undefined until the helper answered once */
  plan(): Plan | undefined;
  readonly version: string;
}

export function statusResource(view: AgentView): StatusResource {
  const s = view.status();
  return {
    version: view.version,
    provider: s.provider,
    ready: view.snapshot() !== undefined,
    startedAt: s.startedAt,
    reconciling: s.reconciling,
    reconciles: s.reconciles,
    converged: s.converged,
    lastRefresh: s.lastRefresh ?? null,
    lastSuccess: s.lastSuccess ?? null,
    lastMetadataSuccess: s.lastMetadataSuccess ?? null,
    lastError: s.lastError ?? null,
    metadataError: s.metadataError ?? null,
    helperReachable: s.helperReachable ?? null,
    helperError: s.helperError ?? null,
    stateError: s.stateError ?? null,
    configError: s.configError ?? null,
    pendingOperations: s.pending.length,
    pending: s.pending.map(describeOperation),
    linkErrors: { ...s.linkErrors },
    operations: { applied: { ...s.operations.applied }, failed: { ...s.operations.failed } },
    tools: s.tools.map((tool) => ({ ...tool, evidence: [...tool.evidence], links: [...tool.links] })),
    leftAlone: leftAloneOf(view.plan()),
    collisions: s.collisions.map((c) => c.what),
    contested: s.contested.map((c) => ({ object: c.object, removals: c.removals, likelyTool: c.likelyTool ?? null, since: c.since })),
    reloads: s.reloads,
    lastReload: s.lastReload ?? null,
  };
}

/** The links the last plan leaves to another tool, as status shows them. */
function leftAloneOf(plan: Plan | undefined): Record<string, string> {
  const left: Record<string, string> = {};
  for (const nic of plan?.nics ?? []) {
    if (nic.link && nic.leftAlone) left[nic.link.name] = `managed by ${nic.leftAlone.tool}, left alone: ${nic.leftAlone.why}`;
  }
  return left;
}

export function systemResource(snapshot: ProviderSnapshot): SystemResource {
  const { provider, id, name, region, zone, size, image, details } = snapshot.model.instance;
  return { provider, id, name, region, zone, size, image, details: shownDetails(details) };
}

export function networkResource(snapshot: ProviderSnapshot, plan: Plan | undefined, status: ReconcileStatus): NetworkResource {
  const links = plan ? linkStates(snapshot, plan, status) : [];
  const linked = new Set(links.map((l) => l.mac));
  const unmatched = snapshot.model.nics
    .filter((nic) => !linked.has(nic.mac))
    .map((nic) => ({
      mac: nic.mac,
      primary: nic.primary,
      problem:
        plan?.nics.find((p) => p.mac === nic.mac)?.problem ??
        (plan ? 'no network interface with this MAC' : 'not planned yet: the agent has not read the kernel state (is the helper reachable?)'),
    }));
  return { provider: snapshot.model.instance.provider, links, unmatched };
}

export function sshKeysResource(snapshot: ProviderSnapshot): SshKeysResource {
  return { provider: snapshot.model.instance.provider, sshKeys: [...snapshot.sshKeys] };
}

export function documentResource(snapshot: ProviderSnapshot): DocumentResource {
  return { provider: snapshot.model.instance.provider, document: withoutSecrets(snapshot.document) ?? null };
}
