// The one error type of metadata fetching. A fetch is all or nothing: every failure, from a
// refused connection to a NIC without a subnet, ends as a MetadataError and never as a smaller
// model, so the reconciler keeps the last good configuration instead of removing addresses.
import type { ProviderName } from './model.js';

export type MetadataErrorKind =
  /** connection refused/reset, DNS, socket errors */
  | 'network'
  /** no connection or no complete answer within the time allowed */
  | 'timeout'
  /** an HTTP status the request cannot use (after the retries allowed) */
  | 'status'
  /** the body is larger than the client accepts */
  | 'too-large'
  /** the connection closed before the body was complete */
  | 'truncated'
  /** the body is not the document it should be (bad JSON, wrong shape, bad value) */
  | 'malformed'
  /** the document lacks something the model needs (a subnet, any NIC) */
  | 'incomplete'
  /** the answer did not prove it came from the expected service (GCP Metadata-Flavor) */
  | 'not-genuine'
  /** the caller gave up (abort signal) */
  | 'aborted';

export interface MetadataErrorDetails {
  provider?: ProviderName;
  kind: MetadataErrorKind;
  /** the document field or path concerned */
  field?: string;
  /** the NIC concerned (MAC) */
  nic?: string;
  status?: number;
}

export class MetadataError extends Error {
  readonly provider?: ProviderName;
  readonly kind: MetadataErrorKind;
  readonly field?: string;
  readonly nic?: string;
  readonly status?: number;

  constructor(message: string, details: MetadataErrorDetails) {
    super(message);
    this.name = 'MetadataError';
    this.provider = details.provider;
    this.kind = details.kind;
    this.field = details.field;
    this.nic = details.nic;
    this.status = details.status;
  }
}

/** A document problem, phrased the same way by every provider. */
export function documentError(
  provider: ProviderName,
  kind: 'malformed' | 'incomplete',
  field: string,
  problem: string,
  nic?: string,
): MetadataError {
  const where = nic ? `NIC ${nic}: ` : '';
  return new MetadataError(`${provider} metadata: ${where}${field} ${problem}; the answer is not used`, { provider, kind, field, nic });
}
