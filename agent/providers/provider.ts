// The narrow interface every cloud implements: "is this my cloud?" and "what does the metadata
// say?", answered as the provider-neutral model. Nothing outside agent/providers/ knows a cloud.
import type { MetadataClientOptions } from '../metadata/client.js';
import type { ProviderName, ProviderSnapshot } from '../model.js';

export interface MetadataChange {
  /** the ETag of the document now current */
  etag: string;
  /** false when the long poll timed out with the content unchanged */
  changed: boolean;
  snapshot: ProviderSnapshot;
}

export interface Provider {
  readonly name: ProviderName;
  /** One short request with this cloud's header; true only for an answer only this cloud gives. */
  detectByProbe(signal?: AbortSignal): Promise<boolean>;
  /** The whole model, or a MetadataError: never a partial model. */
  fetch(signal?: AbortSignal): Promise<ProviderSnapshot>;
  /** Clouds that can notify (GCP): resolves when the document's ETag differs from lastEtag. */
  waitForChange?(lastEtag: string, signal?: AbortSignal): Promise<MetadataChange>;
}

/** Client settings shared by the providers; the provider name is filled in by each. */
export type ClientSettings = Omit<MetadataClientOptions, 'provider'>;
