// The helper's kernel access over rtnetlink (netlink/): one socket for the helper's lifetime,
// answered synchronously (netlink/sync-socket.ts).
import type { PrefixParser } from '../protocol/ip.js';
import { readKernelState, type StatePart } from '../netlink/read.js';
import { SyncRtnlSocket } from '../netlink/sync-socket.js';
import { executeOperations, type ExactOperation } from '../netlink/write.js';
import type { KernelState } from '../netlink/types.js';
import type { KernelAccess, WriteResult } from './kernel.js';

export class NetlinkKernel implements KernelAccess {
  private socket?: SyncRtnlSocket;

  /** The socket is opened on first use and again after close, so a broken socket heals on the next request. */
  private get sock(): SyncRtnlSocket {
    this.socket ??= new SyncRtnlSocket();
    return this.socket;
  }

  read(parts?: ReadonlySet<StatePart>): Promise<KernelState> {
    return readKernelState(this.sock, parts);
  }

  async execute(operations: readonly ExactOperation[], linkIndexByName: ReadonlyMap<string, number>, parse?: PrefixParser): Promise<WriteResult[]> {
    // the applier has judged every rule.add absent against its read (policy.ts)
    const results = await executeOperations(this.sock, operations, linkIndexByName, { rulesCheckedAbsent: true, ...(parse && { parsePrefix: parse }) });
    return results.map((r) => ({ outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}) }));
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
