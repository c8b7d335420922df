// The helper's kernel access over rtnetlink (netlink/): one socket for the helper's lifetime.
import type { Operation } from '../protocol/operations.js';
import { readKernelState, type StatePart } from '../netlink/read.js';
import { RtnlSocket } from '../netlink/socket.js';
import { executeOperations } from '../netlink/write.js';
import type { KernelState } from '../netlink/types.js';
import type { KernelAccess, WriteResult } from './kernel.js';

export class NetlinkKernel implements KernelAccess {
  private socket?: RtnlSocket;

  constructor(private readonly onError: (error: Error) => void) {}

  /** The socket is opened on first use and again after close, so a broken socket heals on the next request. */
  private get sock(): RtnlSocket {
    this.socket ??= new RtnlSocket({ onError: this.onError });
    return this.socket;
  }

  read(parts?: ReadonlySet<StatePart>): Promise<KernelState> {
    return readKernelState(this.sock, parts);
  }

  async execute(operations: readonly Operation[], linkIndexByName: ReadonlyMap<string, number>): Promise<WriteResult[]> {
    const results = await executeOperations(this.sock, operations, linkIndexByName);
    return results.map((r) => ({ outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}) }));
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
