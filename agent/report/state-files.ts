// State files under StateDir (default /run/cloud-network): the instance facts and one JSON
// file per link with its metadata and what was applied. Written atomically (temp file +
// rename), mode 0644, only when their content changes; files of links that are gone are
// removed. Nothing secret is ever written: only the neutral model and the plan.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KernelState } from '../../netlink/types.js';
import type { LinkResource } from '../../protocol/rest.js';
import type { ProviderSnapshot } from '../metadata/model.js';
import { looksSecret, withoutSecrets } from '../metadata/secret-filter.js';
import { writeAtomically } from '../process/files.js';
import type { Plan } from '../plan/planner.js';
import type { ReconcileStatus, StateSink } from '../reconcile/reconciler.js';

/** A link's state file holds what the REST API serves for the link (protocol/rest.ts). */
export type LinkState = LinkResource;

export function linkStates(snapshot: ProviderSnapshot, result: Plan, status: ReconcileStatus): LinkState[] {
  const states: LinkState[] = [];
  for (const nicPlan of result.nics) {
    const nic = snapshot.model.nics.find((n) => n.mac === nicPlan.mac);
    if (!nic || !nicPlan.link) continue;
    const pending = result.operations.some((op) => 'link' in op && op.link === nicPlan.link!.name);
    const error = status.linkErrors[nicPlan.link.name];
    states.push({
      name: nicPlan.link.name,
      ifindex: nicPlan.link.index,
      mac: nic.mac,
      nicIndex: nic.index,
      primary: nic.primary,
      table: nicPlan.table ?? null,
      addresses: nicPlan.addresses,
      privateIpv4: nic.ipv4.map((ip) => `${ip.address}/${ip.prefixLength}`),
      publicIpv4: nic.publicIpv4,
      ipv6: nic.ipv6.map((ip) => `${ip.address}/${ip.prefixLength}`),
      subnet: nic.subnet ? `${nic.subnet.address}/${nic.subnet.prefixLength}` : null,
      gateway: nic.gateway ?? null,
      mtu: nic.mtu ?? null,
      routedRanges: nic.routedRanges,
      state: nicPlan.leftAlone ? 'left-alone' : error ? 'error' : pending ? 'pending' : 'configured',
      error: error ?? null,
      managedBy: nicPlan.leftAlone ? { tool: nicPlan.leftAlone.tool, why: nicPlan.leftAlone.why } : null,
      rangesLeftAlone: nicPlan.rangesLeftAlone ?? [],
      details: shownDetails(nic.details),
    });
  }
  return states;
}

/**
 * A provider's details as the API and the state files show them: a copy, and without any key
 * that looks secret, for the same reason the documents go through withoutSecrets.
 */
export function shownDetails(details: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(details ?? {}).filter(([key, value]) => !looksSecret(key) && withoutSecrets(value) !== undefined));
}

export class StateFiles implements StateSink {
  private readonly written = new Map<string, string>();

  constructor(private readonly dir: string) {}

  async write(snapshot: ProviderSnapshot, result: Plan, _kernel: KernelState, status: ReconcileStatus): Promise<void> {
    const linksDir = join(this.dir, 'links');
    await mkdir(linksDir, { recursive: true, mode: 0o755 });
    const instance = snapshot.model.instance;
    await this.writeIfChanged(join(this.dir, 'instance.json'), { ...instance, details: shownDetails(instance.details) });
    const keep = new Set<string>();
    for (const link of linkStates(snapshot, result, status)) {
      const file = `${link.name}.json`;
      keep.add(file);
      await this.writeIfChanged(join(linksDir, file), link);
    }
    for (const file of await readdir(linksDir)) {
      if (file.endsWith('.json') && !keep.has(file)) {
        await rm(join(linksDir, file), { force: true });
        this.written.delete(join(linksDir, file));
      }
    }
  }

  private async writeIfChanged(path: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value, null, 2) + '\n';
    if (this.written.get(path) === text) return;
    if (!this.written.has(path)) {
      // after a restart: compare with what is on disk, so an unchanged file is not rewritten
      const onDisk = await readFile(path, 'utf8').catch(() => undefined);
      if (onDisk === text) {
        this.written.set(path, text);
        return;
      }
    }
    await writeAtomically(path, text);
    this.written.set(path, text);
  }
}
