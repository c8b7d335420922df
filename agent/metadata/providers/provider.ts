// The narrow interface every cloud implements: "is this my cloud?" and "what does the metadata
// say?", answered as the provider-neutral model. Nothing outside agent/providers/ knows a cloud:
// a fact one cloud's metadata leaves out (Azure's primary NIC, its NIC indexes) is found by that
// cloud's provider, from the context the agent hands every provider.
import type { KernelState } from '../../../netlink/types.js';
import type { MetadataClientOptions } from '../client.js';
import type { ProviderName, ProviderSnapshot } from '../model.js';

export interface MetadataChange {
  /** the ETag of the document now current */
  etag: string;
  /** false when the long poll timed out with the content unchanged */
  changed: boolean;
  snapshot: ProviderSnapshot;
}

/** The firmware's DMI strings that identify clouds; unreadable ones (product_uuid is root-only) are absent. */
export interface DmiStrings {
  sysVendor?: string;
  productName?: string;
  chassisAssetTag?: string;
  productUuid?: string;
  hypervisorUuid?: string;
}

export interface Provider {
  readonly name: ProviderName;
  /** What in the DMI strings names this cloud (for the log), or undefined. No network, no waiting. */
  detectByDmi(dmi: DmiStrings): string | undefined;
  /** One short request with this cloud's header; true only for an answer only this cloud gives. */
  detectByProbe(signal?: AbortSignal): Promise<boolean>;
  /**
   * The whole model, or a MetadataError: never a partial model. Each NIC's index stays the same
   * while the VM runs; an unchanged document comes back as the same snapshot object.
   */
  fetch(signal?: AbortSignal): Promise<ProviderSnapshot>;
  /** Clouds that can notify (GCP): resolves when the document's ETag differs from lastEtag. */
  waitForChange?(lastEtag: string, signal?: AbortSignal): Promise<MetadataChange>;
}

/**
 * What the older Go cloud-network-setup served under /api/cloud/ for this cloud, read from the
 * provider's document: path below /api/cloud/ → the value, or the reason it is not served.
 * The API filters secrets from each value again before it answers.
 */
export type GoToolPaths = Record<string, { value: unknown } | { notServed: string }>;

/** Client settings shared by the providers; the provider name is filled in by each. */
export type ClientSettings = Omit<MetadataClientOptions, 'provider'>;

/** What the agent hands every provider besides its client settings; each uses what its cloud needs. */
export interface ProviderContext {
  /** The kernel as the agent last read it (read now if never): Azure finds its primary NIC there. */
  kernelState?: () => Promise<KernelState>;
  /** A directory that lasts while the VM runs (StateDir, a tmpfs): Azure keeps its NIC indexes there. */
  stateDir?: string;
  /** Read StateDir but never write it (--dry-run). */
  stateReadOnly?: boolean;
}
