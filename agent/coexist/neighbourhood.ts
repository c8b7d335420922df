// The reconciler's view of the other network tools: the host's files and other tools' routes
// are read at start and on each refresh (refresh()), the rules and addresses come with every
// kernel read (survey()). A survey that finds what the last one found hands the planner the
// same Neighbours object, so a quiet reconcile plans from its remembered desired state.
import type { KernelState, ObservedRoute } from '../../netlink/types.js';
import { DEFAULT_TABLE_RANGE, RULE_PRIORITY } from '../../protocol/constants.js';
import { NO_HOST_FACTS, survey, type HostFacts, type Survey } from './tools.js';

export interface NeighbourhoodOptions {
  readHost(): Promise<HostFacts>;
  /** routes of the protocols other tools stamp (boot, static, ra, dhcp, guest-agent's) */
  readForeignRoutes(): Promise<ObservedRoute[]>;
  /** cloud-network's managed tables (the configured RouteTableBase's range) */
  tables?: { first: number; last: number };
}

export class Neighbourhood {
  private host: HostFacts = NO_HOST_FACTS;
  private foreignRoutes: ObservedRoute[] = [];
  private last?: { key: string; survey: Survey };

  constructor(private readonly options: NeighbourhoodOptions) {}

  /** Reads the host's files and other tools' routes again; true when they changed. */
  async refresh(): Promise<boolean> {
    const before = JSON.stringify([factsKey(this.host), this.foreignRoutes]);
    this.host = await this.options.readHost();
    this.foreignRoutes = await this.options.readForeignRoutes();
    return JSON.stringify([factsKey(this.host), this.foreignRoutes]) !== before;
  }

  survey(kernel: KernelState): Survey {
    const found = survey({
      kernel,
      foreignRoutes: this.foreignRoutes,
      host: this.host,
      tables: this.options.tables ?? DEFAULT_TABLE_RANGE,
      priorities: Object.values(RULE_PRIORITY),
    });
    const key = JSON.stringify([found.tools, found.collisions, [...found.neighbours.links], [...found.neighbours.tables], [...found.neighbours.ranges], found.neighbours.allRanges]);
    if (this.last?.key === key) return this.last.survey;
    this.last = { key, survey: found };
    return found;
  }
}

function factsKey(host: HostFacts): unknown {
  return [[...host.runningUnits], [...host.enabledUnits], host.runtimeNetworkFiles, [...host.networkdLinks], [...host.networkManagerDevices], host.networkdConf, [...host.present]];
}
