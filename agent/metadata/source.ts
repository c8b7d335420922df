// Where the reconciler's metadata comes from: the detected cloud's provider, with two shortcuts.
// The first request can leave at start-up (startEarly), so that the metadata service answers
// while the daemon sets itself up; the first fetch then takes that answer, or its failure, as
// its own. And a cloud that notifies (GCP) brings the new document with the notification, so
// the reconcile it triggers asks for nothing.
import type { ProviderName, ProviderSnapshot } from './model.js';
import type { FetchOptions, Provider } from './providers/index.js';

export class ProviderSource {
  readonly name: ProviderName;
  /**
   * One change long poll (clouds that notify, GCP): resolves true when the metadata changed,
   * false when the poll ended without a change. Undefined for clouds polled by the timer only.
   */
  readonly waitForChange?: (signal: AbortSignal) => Promise<boolean>;
  private early?: Promise<ProviderSnapshot>;
  /** a snapshot a change notification brought, returned by the next fetch() */
  private delivered?: ProviderSnapshot;
  private lastEtag = '';

  constructor(private readonly provider: Provider) {
    this.name = provider.name;
    if (provider.waitForChange) {
      const wait = provider.waitForChange.bind(provider);
      this.waitForChange = async (signal) => {
        const change = await wait(this.lastEtag, signal);
        // the first poll only learns the current ETag: the start-up reconcile fetched already
        const changed = change.changed && this.lastEtag !== '';
        this.lastEtag = change.etag;
        if (changed) this.delivered = change.snapshot;
        return changed;
      };
    }
  }

  /** Sends the first request now; the next fetch() takes its answer. */
  startEarly(): void {
    this.early = this.provider.fetch();
    this.early.catch(() => undefined); // not unhandled: the first fetch awaits it and reports the failure
  }

  async fetch(options?: FetchOptions): Promise<ProviderSnapshot> {
    const first = this.early;
    this.early = undefined;
    // a change notification already brought the new document: no second request for it
    const snapshot = this.delivered ?? (await (first ?? this.provider.fetch(undefined, options)));
    this.delivered = undefined;
    return snapshot;
  }
}
