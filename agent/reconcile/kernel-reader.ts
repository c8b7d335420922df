// How the agent reads the kernel: over one rtnetlink socket for its lifetime (reading needs no
// capability), and only the routes a decision uses.
import { MAIN_TABLE, RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';
import { ALL_STATE_PARTS, readKernelState, readRoutes, type RouteFilter } from '../../netlink/read.js';
import { RtnlSocket } from '../../netlink/socket.js';
import type { KernelState, ObservedRoute } from '../../netlink/types.js';
import { GUEST_AGENT_PROTOCOL } from '../coexist/tools.js';
import type { KernelReader } from './reconciler.js';

/**
 * The planner looks at cloud-network's own routes only, and the Azure provider at main's
 * default route; the local table's two routes per address, most of a read at scale, stay in
 * the kernel.
 */
export const PLANNED_ROUTES: readonly RouteFilter[] = [{ protocol: RTPROT_CLOUD_NETWORK }, { table: MAIN_TABLE }];

/**
 * The protocols other network tools stamp on their routes (boot, static, ra, dhcp,
 * google-guest-agent's): read at each refresh to recognise them, each dump filtered by the
 * kernel, so the local table's routes of the addresses are not decoded.
 */
export const OTHER_TOOLS_PROTOCOLS: readonly number[] = [3, 4, 9, 16, GUEST_AGENT_PROTOCOL];

export class NetlinkKernelReader implements KernelReader {
  /** opened on the first read, so that the netlink package loads after the first metadata request has left */
  private opened?: RtnlSocket;
  private last?: KernelState;
  private reading?: Promise<KernelState>;

  private get socket(): RtnlSocket {
    return (this.opened ??= new RtnlSocket());
  }

  async read(): Promise<KernelState> {
    const reading = readKernelState(this.socket, ALL_STATE_PARTS, PLANNED_ROUTES);
    this.reading = reading;
    try {
      this.last = await reading;
      return this.last;
    } finally {
      if (this.reading === reading) this.reading = undefined;
    }
  }

  /** Routes of the protocols other tools use, in every table (coexist/neighbourhood.ts). */
  async readForeignRoutes(): Promise<ObservedRoute[]> {
    const routes: ObservedRoute[] = [];
    for (const protocol of OTHER_TOOLS_PROTOCOLS) routes.push(...(await readRoutes(this.socket, { protocol })));
    return routes;
  }

  /** The last read, the one under way, or one now if there was none (what a provider is given as kernelState). */
  async lastOrRead(): Promise<KernelState> {
    return this.last ?? (await (this.reading ?? this.read()));
  }

  close(): void {
    this.opened?.close();
  }
}
