// The network tools cloud images run beside cloud-network, how each is recognised and what
// cloud-network does beside it (README "Living with other tools" is the same table in prose).
// A pure function of the kernel's state and of what the agent read of /etc and /run
// (host.ts): no I/O, so every recognition is tested on plain data. Tools, not clouds: nothing
// here knows which cloud the VM runs on.
//
// The numbers each tool uses, from its own source:
// - amazon-ec2-net-utils (lib/lib.sh, create_rules and create_if_overrides): table and rule
//   priority 10000 + 100 × network-card + device-number, written as systemd-networkd drop-ins
//   under /run/systemd/network/70-IFACE.network.d/ (07- in Debian's package), rules only for
//   non-primary interfaces, one per address (From=, Priority= = Table=);
// - nm-cloud-setup (src/nm-cloud-setup/main.c, _nmc_mangle_connection): per interface index i,
//   rules from each address at 30200 + i (table 30200 + i, the subnet route) and 30400 + i
//   (table 30400 + i, the default route), and `lookup main suppress_prefixlength 0` at 30350;
// - systemd-networkd: no tables or priorities of its own (rules without Priority= get the
//   kernel's, 32765 downwards), but it removes the routes and rules it did not make when it
//   configures a link unless ManageForeignRoutes=no / ManageForeignRoutingPolicyRules=no
//   (networkd.conf; the drop-in cloud-network ships), and the addresses it did not make on the
//   links it manages unless KeepConfiguration= says otherwise (.network);
// - google-guest-agent (google_guest_agent/addresses.go, cfg.go ethernet_proto_id): alias
//   ranges and forwarded IPs as `local` routes in the local table with protocol 66.
import { LOCAL_TABLE, RTPROT_CLOUD_NETWORK, RTPROT_KERNEL } from '../../protocol/constants.js';
import type { KernelState, ObservedLink, ObservedRoute, ObservedRule } from '../../netlink/types.js';
import type { LeftAlone, Neighbours } from '../plan/planner.js';

export const EC2_NET_UTILS = 'amazon-ec2-net-utils';
export const NM_CLOUD_SETUP = 'nm-cloud-setup';
export const NETWORKD = 'systemd-networkd';
export const GUEST_AGENT = 'google-guest-agent';

/** amazon-ec2-net-utils' table and priority base, and the network cards its formula leaves room for. */
const EC2_NET_UTILS_BASE = 10_000;
const EC2_NET_UTILS_SPAN = 100 * 100;
/** nm-cloud-setup's two per-interface table and priority bases and its suppress rule. */
const NM_CLOUD_SETUP_BASES = [30_200, 30_400] as const;
const NM_CLOUD_SETUP_SUPPRESS = 30_350;
const NM_CLOUD_SETUP_SPAN = 100;
/**
 * The protocols systemd-networkd (for amazon-ec2-net-utils' drop-ins) and NetworkManager give the
 * routes they add: static for configured routes, dhcp for those from a lease. The Go
 * cloud-network-setup's routes in tables 9999 + ifindex (boot) are neither.
 */
const NETWORK_DAEMON_PROTOCOLS = new Set([4, 16]);
/** google-guest-agent's route protocol (its ethernet_proto_id default). */
export const GUEST_AGENT_PROTOCOL = 66;

/** What the agent read of the file system (host.ts); paths are absolute, as on the host. */
export interface HostFacts {
  /** units systemd runs or ran this boot (/run/systemd/units/invocation:UNIT) */
  runningUnits: ReadonlySet<string>;
  /** units enabled in /etc/systemd/system/*.wants/ */
  enabledUnits: ReadonlySet<string>;
  /** file names in /run/systemd/network/ (networkd's runtime configuration) */
  runtimeNetworkFiles: readonly string[];
  /** ifindex → networkd's state file of the link (/run/systemd/netif/links/IFINDEX) */
  networkdLinks: ReadonlyMap<number, string>;
  /** ifindex → NetworkManager's device state (/run/NetworkManager/devices/IFINDEX) */
  networkManagerDevices: ReadonlyMap<number, string>;
  /** networkd.conf and its drop-ins, in the order networkd reads them */
  networkdConf: readonly { path: string; text: string }[];
  /** marker paths that exist (tool runtime directories) */
  present: ReadonlySet<string>;
}

export const NO_HOST_FACTS: HostFacts = {
  runningUnits: new Set(),
  enabledUnits: new Set(),
  runtimeNetworkFiles: [],
  networkdLinks: new Map(),
  networkManagerDevices: new Map(),
  networkdConf: [],
  present: new Set(),
};

/** What cloud-network does beside a tool. */
export type Stance = 'yield' | 'coexist';

/** One tool found on this machine. */
export interface ToolReport {
  tool: string;
  stance: Stance;
  /** what showed that it is here */
  evidence: string[];
  /** the links it manages */
  links: string[];
  /** who owns what, in a sentence */
  note: string;
}

/** A table or priority of cloud-network's that holds another tool's objects. */
export interface Collision {
  what: string;
  tool: string;
}

export interface Survey {
  tools: ToolReport[];
  collisions: Collision[];
  /** what the planner leaves alone */
  neighbours: Neighbours;
  /** the tool that likely removes objects on a link, for the tug-of-war warning */
  likelyRemover(link: string | undefined): string | undefined;
}

export interface SurveyInput {
  kernel: KernelState;
  /** routes of other tools' protocols, read at refresh (the reconciler's read has only ours and main's) */
  foreignRoutes: readonly ObservedRoute[];
  host: HostFacts;
  /** cloud-network's managed tables and its rule priorities */
  tables: { first: number; last: number };
  priorities: readonly number[];
}

const PROTOCOLS: Record<number, string> = { 2: 'kernel', 3: 'boot', 4: 'static', 9: 'ra', 16: 'dhcp', [GUEST_AGENT_PROTOCOL]: 'google-guest-agent' };
const protocolText = (protocol: number) => (PROTOCOLS[protocol] ? `protocol ${PROTOCOLS[protocol]} (${protocol})` : `protocol ${protocol}`);

const isForeign = (object: { protocol: number }) => object.protocol !== RTPROT_CLOUD_NETWORK && object.protocol !== RTPROT_KERNEL;

/** Gathers, per tool, evidence and links; one per tool at most. */
class Findings {
  private readonly byTool = new Map<string, { evidence: Set<string>; links: Set<string> }>();

  note(tool: string, evidence: string, link?: string): void {
    let found = this.byTool.get(tool);
    if (!found) this.byTool.set(tool, (found = { evidence: new Set(), links: new Set() }));
    found.evidence.add(evidence);
    if (link !== undefined) found.links.add(link);
  }

  get(tool: string): { evidence: string[]; links: string[] } | undefined {
    const found = this.byTool.get(tool);
    return found && { evidence: [...found.evidence], links: [...found.links].sort() };
  }
}

/** The link an address is on, by IP. */
function linkOfAddress(kernel: KernelState, selector: string | undefined): ObservedLink | undefined {
  if (selector === undefined) return undefined;
  const ip = selector.slice(0, selector.indexOf('/'));
  const address = kernel.addresses.find((a) => a.address === ip);
  return address && kernel.links.find((l) => l.index === address.ifindex);
}

const linkByIndex = (kernel: KernelState, index: number | undefined) => (index === undefined ? undefined : kernel.links.find((l) => l.index === index));

/** Whether a number is one of a tool's per-interface numbers: base + offset with offset < span. */
const inBlock = (value: number, base: number, span: number) => value >= base && value < base + span;

const isEc2NetUtilsNumber = (n: number) => inBlock(n, EC2_NET_UTILS_BASE, EC2_NET_UTILS_SPAN) && (n - EC2_NET_UTILS_BASE) % 100 < 32;
const isNmCloudSetupNumber = (n: number) => NM_CLOUD_SETUP_BASES.some((base) => inBlock(n, base, NM_CLOUD_SETUP_SPAN));

/** The tool whose layout a rule matches: `from ADDRESS lookup T` at priority T, in its numbers. */
function ruleLayout(rule: ObservedRule): string | undefined {
  if (!isForeign(rule) || rule.action !== 'lookup') return undefined;
  if (rule.priority === NM_CLOUD_SETUP_SUPPRESS && rule.suppressPrefixLength === 0) return NM_CLOUD_SETUP;
  if (rule.from === undefined || rule.priority !== rule.table) return undefined;
  if (isEc2NetUtilsNumber(rule.priority)) return EC2_NET_UTILS;
  if (isNmCloudSetupNumber(rule.priority)) return NM_CLOUD_SETUP;
  return undefined;
}

function routeLayout(route: ObservedRoute): string | undefined {
  if (!isForeign(route)) return undefined;
  if (route.table === LOCAL_TABLE) return route.protocol === GUEST_AGENT_PROTOCOL && route.type === 'local' ? GUEST_AGENT : undefined;
  if (!NETWORK_DAEMON_PROTOCOLS.has(route.protocol)) return undefined;
  if (isEc2NetUtilsNumber(route.table)) return EC2_NET_UTILS;
  if (isNmCloudSetupNumber(route.table)) return NM_CLOUD_SETUP;
  return undefined;
}

/** The last value networkd reads for a [Network] key, from networkd.conf and its drop-ins. */
export function networkdSetting(conf: HostFacts['networkdConf'], key: string): { value: string; path: string } | undefined {
  let found: { value: string; path: string } | undefined;
  for (const { path, text } of conf) {
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const header = /^\[(.+)\]$/.exec(line);
      if (header) {
        section = header[1]!;
        continue;
      }
      const eq = line.indexOf('=');
      if (section === 'Network' && eq > 0 && line.slice(0, eq).trim() === key) found = { value: line.slice(eq + 1).trim(), path };
    }
  }
  return found;
}

const NO_VALUES = new Set(['no', 'false', 'off', '0']);

/** Recognises the tools and decides what cloud-network leaves to them. */
export function survey(input: SurveyInput): Survey {
  const { kernel, host } = input;
  const found = new Findings();
  const linkNames = new Set(kernel.links.map((l) => l.name));
  const routes = [...kernel.routes, ...input.foreignRoutes];

  // --- amazon-ec2-net-utils: its files, its per-interface units, its rules and tables
  for (const file of host.runtimeNetworkFiles) {
    const match = /^(?:70|07)-(.+)\.network$/.exec(file);
    if (match && linkNames.has(match[1]!) && host.runtimeNetworkFiles.includes(`${file}.d`)) {
      found.note(EC2_NET_UTILS, `/run/systemd/network/${file} and its .d drop-ins`, match[1]);
    }
  }
  for (const unit of [...host.runningUnits, ...host.enabledUnits]) {
    const match = /^policy-routes@(.+)\.service$/.exec(unit);
    if (match && linkNames.has(match[1]!)) found.note(EC2_NET_UTILS, `unit ${unit}`, match[1]);
  }
  if (host.present.has('/run/amazon-ec2-net-utils')) found.note(EC2_NET_UTILS, '/run/amazon-ec2-net-utils');

  // --- nm-cloud-setup: its unit, and NetworkManager's devices once it runs
  for (const unit of ['nm-cloud-setup.service', 'nm-cloud-setup.timer']) {
    if (host.runningUnits.has(unit)) found.note(NM_CLOUD_SETUP, `unit ${unit} ran this boot`);
    else if (host.enabledUnits.has(unit)) found.note(NM_CLOUD_SETUP, `unit ${unit} enabled`);
  }
  if (found.get(NM_CLOUD_SETUP)) {
    for (const [index, state] of host.networkManagerDevices) {
      const link = linkByIndex(kernel, index);
      if (link && /^managed=(true|1)$/m.test(state)) found.note(NM_CLOUD_SETUP, `NetworkManager manages ${link.name} (/run/NetworkManager/devices/${index})`, link.name);
    }
  }

  // --- both: their objects in the kernel, laid out as they lay them
  for (const rule of kernel.rules) {
    const tool = ruleLayout(rule);
    if (!tool) continue;
    const link = linkOfAddress(kernel, rule.from);
    const text = rule.from ? `rule from ${rule.from} lookup ${rule.table} priority ${rule.priority}, ${protocolText(rule.protocol)}` : `rule lookup main suppress_prefixlength 0 priority ${rule.priority}`;
    found.note(tool, text, link?.name);
  }
  for (const route of routes) {
    const tool = routeLayout(route);
    if (!tool || tool === GUEST_AGENT) continue;
    const link = linkByIndex(kernel, route.ifindex);
    found.note(tool, `routes in table ${route.table} (${protocolText(route.protocol)})`, link?.name);
  }

  // --- systemd-networkd: the links it manages, and whether it keeps other tools' routes and rules
  const running = host.runningUnits.has('systemd-networkd.service');
  for (const [index, state] of host.networkdLinks) {
    const link = linkByIndex(kernel, index);
    if (link && /^NETWORK_FILE=.+$/m.test(state)) found.note(NETWORKD, `it manages ${link.name} (/run/systemd/netif/links/${index})`, link.name);
  }
  if (running) found.note(NETWORKD, 'unit systemd-networkd.service runs');

  // --- google-guest-agent: its unit, its local routes
  for (const unit of ['google-guest-agent.service']) {
    if (host.runningUnits.has(unit)) found.note(GUEST_AGENT, `unit ${unit} runs`);
    else if (host.enabledUnits.has(unit)) found.note(GUEST_AGENT, `unit ${unit} enabled`);
  }
  for (const route of routes) {
    if (routeLayout(route) === GUEST_AGENT) found.note(GUEST_AGENT, `local routes of protocol ${GUEST_AGENT_PROTOCOL} (${route.destination} dev ${linkByIndex(kernel, route.ifindex)?.name ?? route.ifindex})`);
  }

  // --- what cloud-network leaves alone
  const links = new Map<string, LeftAlone>();
  const tools: ToolReport[] = [];
  for (const tool of [EC2_NET_UTILS, NM_CLOUD_SETUP]) {
    const f = found.get(tool);
    if (!f) continue;
    for (const link of f.links) links.set(link, { tool, why: `${tool} configures its addresses, table and rules` });
    tools.push({
      tool,
      stance: 'yield',
      evidence: f.evidence,
      links: f.links,
      note:
        f.links.length > 0
          ? `${tool} manages ${f.links.join(', ')}: cloud-network leaves ${f.links.length === 1 ? 'it' : 'them'} alone (adds nothing there, takes back what it had configured there, never touches ${tool}'s objects)`
          : `${tool} is installed but manages no interface yet: cloud-network leaves every interface it takes up alone`,
    });
  }

  const networkd = found.get(NETWORKD);
  if (networkd) {
    const routesKept = NO_VALUES.has(networkdSetting(host.networkdConf, 'ManageForeignRoutes')?.value.toLowerCase() ?? 'yes');
    const rulesKept = NO_VALUES.has(networkdSetting(host.networkdConf, 'ManageForeignRoutingPolicyRules')?.value.toLowerCase() ?? 'yes');
    const kept = routesKept && rulesKept;
    tools.push({
      tool: NETWORKD,
      stance: 'coexist',
      evidence: networkd.evidence,
      links: networkd.links,
      note: kept
        ? 'networkd brings the interfaces up and keeps their own configuration; it leaves cloud-network’s routes and rules alone (ManageForeignRoutes=no, ManageForeignRoutingPolicyRules=no); cloud-network adds back the addresses networkd removes when it configures a link it manages'
        : `networkd removes cloud-network’s ${[routesKept ? '' : 'routes', rulesKept ? '' : 'rules'].filter(Boolean).join(' and ')} when it configures a link: the networkd.conf.d drop-in cloud-network installs is missing or overridden (ManageForeignRoutes=${routesKept ? 'no' : 'yes'}, ManageForeignRoutingPolicyRules=${rulesKept ? 'no' : 'yes'})`,
    });
  }

  const guest = found.get(GUEST_AGENT);
  const ranges = new Map<string, LeftAlone>();
  let allRanges: LeftAlone | undefined;
  if (guest) {
    allRanges = { tool: GUEST_AGENT, why: `${GUEST_AGENT} delivers alias ranges and forwarded IPs itself (local routes, protocol ${GUEST_AGENT_PROTOCOL})` };
    tools.push({
      tool: GUEST_AGENT,
      stance: 'coexist',
      evidence: guest.evidence,
      links: [],
      note: 'google-guest-agent adds the local routes of alias ranges and forwarded IPs; cloud-network leaves those to it and configures the addresses, tables and rules of every NIC',
    });
  }
  // a range some other tool delivers locally already is its, whoever that is
  for (const route of routes) {
    if (route.table === LOCAL_TABLE && route.type === 'local' && isForeign(route) && !allRanges) {
      ranges.set(route.destination, { tool: route.protocol === GUEST_AGENT_PROTOCOL ? GUEST_AGENT : `another tool (${protocolText(route.protocol)})`, why: `a local route of ${protocolText(route.protocol)} delivers it` });
    }
  }

  // --- collisions: cloud-network's tables and priorities holding another tool's objects
  const tables = new Map<number, LeftAlone>();
  const collisions: Collision[] = [];
  const inOurTables = (table: number) => table >= input.tables.first && table <= input.tables.last;
  for (const route of routes) {
    if (!isForeign(route) || !inOurTables(route.table)) continue;
    const tool = `another tool (${protocolText(route.protocol)})`;
    if (!tables.has(route.table)) {
      tables.set(route.table, { tool, why: `holds routes of ${protocolText(route.protocol)}` });
      collisions.push({ what: `table ${route.table} holds routes of ${protocolText(route.protocol)}; cloud-network does not use it`, tool });
    }
  }
  for (const rule of kernel.rules) {
    if (!isForeign(rule)) continue;
    const tool = `another tool (${protocolText(rule.protocol)})`;
    if (rule.action === 'lookup' && inOurTables(rule.table) && !tables.has(rule.table)) {
      tables.set(rule.table, { tool, why: `is looked up by a rule of ${protocolText(rule.protocol)} at priority ${rule.priority}` });
      collisions.push({ what: `table ${rule.table} is looked up by a rule of ${protocolText(rule.protocol)} at priority ${rule.priority}; cloud-network does not use it`, tool });
    }
    if (input.priorities.includes(rule.priority)) {
      const link = linkOfAddress(kernel, rule.from ?? rule.to);
      if (link && !links.has(link.name)) links.set(link.name, { tool, why: `a rule of ${protocolText(rule.protocol)} at priority ${rule.priority}, cloud-network's, selects its address ${rule.from ?? rule.to}` });
      collisions.push({ what: `priority ${rule.priority} holds a rule of ${protocolText(rule.protocol)}${rule.from ?? rule.to ? ` selecting ${rule.from ?? rule.to}` : ''}${link ? `; ${link.name} is left alone` : '; cloud-network’s rules there select only its own addresses'}`, tool });
    }
  }

  const networkdLinks = new Set(networkd?.links ?? []);
  return {
    tools,
    collisions,
    neighbours: { links, tables, ranges, ...(allRanges && { allRanges }) },
    likelyRemover: (link) => {
      if (link !== undefined && networkdLinks.has(link)) return NETWORKD;
      if (link === undefined && networkd) return NETWORKD;
      return undefined;
    },
  };
}
