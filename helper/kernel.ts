// What the helper needs from the kernel: a full read of the network state, and the execution
// of one operation. The real implementation is netlink/ (read.ts, write.ts); the helper's policy
// and server depend only on this interface.
import type { Operation } from '../protocol/operations.js';
import type { KernelState } from '../netlink/types.js';

export interface WriteResult {
  /** applied: the kernel changed; already: it held (or lacked) the object; failed: it refused */
  outcome: 'applied' | 'already' | 'failed';
  /** for failed: the kernel's error, e.g. "ENODEV: no such device" */
  reason?: string;
}

export interface KernelAccess {
  read(): Promise<KernelState>;
  execute(operation: Operation): Promise<WriteResult>;
  close(): void;
}
