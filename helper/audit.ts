// The audit log: one JSON line per request and per refused connection, on stdout, where
// journald keeps it (journalctl -u cloud-network-helper). Operators read it to see who changed
// what: the peer's pid/uid/gid, the method, every operation that changed or was refused, and
// how long the request took.
import type { Operation } from '../protocol/operations.js';
import { describeOperation } from '../netlink/describe.js';
import type { OperationResult } from '../protocol/methods.js';
import type { Log } from './log.js';
import type { PeerCredentials } from './peer.js';

/** Most operations written out in one audit line; beyond, only counts (journald splits very long lines). */
export const MAX_AUDITED_OPERATIONS = 500;

export interface AuditedRequest {
  connection: number;
  peer: PeerCredentials;
  method: string;
  id?: string | number | null;
  durationMs: number;
  /** the JSON-RPC error, when the request failed as a whole */
  error?: { code: number; message: string };
  operations?: Operation[];
  results?: OperationResult[];
}

export class AuditLog {
  constructor(readonly log: Log) {}

  request(entry: AuditedRequest): void {
    const record: Record<string, unknown> = {
      audit: 'request',
      connection: entry.connection,
      peer: entry.peer,
      method: entry.method,
      requestId: entry.id,
      durationMs: Math.round(entry.durationMs * 10) / 10,
    };
    if (entry.error) record.error = entry.error;
    if (entry.results && entry.operations) {
      const counts: Record<string, number> = { applied: 0, already: 0, refused: 0, failed: 0 };
      const listed: { index: number; op: string; outcome: string; reason?: string }[] = [];
      for (const result of entry.results) counts[result.outcome] = (counts[result.outcome] ?? 0) + 1;
      // changes and refusals first: they are what an audit is for; 'already' only if room is left
      const ordered = [...entry.results.filter((r) => r.outcome !== 'already'), ...entry.results.filter((r) => r.outcome === 'already')];
      for (const result of ordered.slice(0, MAX_AUDITED_OPERATIONS)) {
        const op = entry.operations[result.index];
        if (op) listed.push({ index: result.index, op: describeOperation(op), outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}) });
      }
      record.outcomes = counts;
      record.operations = listed;
      if (entry.results.length > listed.length) record.operationsNotListed = entry.results.length - listed.length;
    }
    const from = `${entry.method} from pid ${entry.peer.pid} uid ${entry.peer.uid}`;
    const notDone = entry.results?.filter((r) => r.outcome === 'refused' || r.outcome === 'failed').length ?? 0;
    // a refusal or a failure is a warning in the journal; the record is the same either way
    if (entry.error) this.log.warn(record, `${entry.method}: error ${entry.error.code}: ${entry.error.message}`);
    else if (notDone > 0) this.log.warn(record, `${from}: ${notDone} operations refused or failed`);
    else this.log.info(record, from);
  }

  refusedConnection(connection: number, peer: PeerCredentials | undefined, reason: string): void {
    this.log.warn({ audit: 'refused-connection', connection, peer }, `connection refused: ${reason}`);
  }

  connectionClosed(connection: number, peer: PeerCredentials, why: string): void {
    this.log.info({ audit: 'connection-closed', connection, peer }, `connection closed: ${why}`);
  }
}
