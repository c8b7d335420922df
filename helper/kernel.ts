// What the helper's applier needs from the kernel: a read of the network state (the parts asked
// for), and the execution of operations it approved. netlink-kernel.ts implements it with
// netlink/; the tests give the applier a modelled kernel instead.
import type { PrefixParser } from '../protocol/ip.js';
import type { KernelState } from '../netlink/types.js';
import type { ExactOperation } from '../netlink/write.js';
import type { StatePart } from '../netlink/read.js';

export interface WriteResult {
  /** applied: the kernel changed; already: it held (or lacked) the object; failed: it refused */
  outcome: 'applied' | 'already' | 'failed';
  /** for failed: what failed and the kernel's error, e.g. "... failed: ENODEV, ..." */
  reason?: string;
}

export interface KernelAccess {
  /** The links and the parts asked for (default all); a part not asked for is an empty list. */
  read(parts?: ReadonlySet<StatePart>): Promise<KernelState>;
  /**
   * Executes `operations` in order (batched: a few datagrams); one result per operation, in order.
   * A removal with a target names exactly that object. `parse` reads their addresses, as
   * judging them did (default parsePrefix).
   */
  execute(operations: readonly ExactOperation[], linkIndexByName: ReadonlyMap<string, number>, parse?: PrefixParser): Promise<WriteResult[]>;
  close(): void;
}
