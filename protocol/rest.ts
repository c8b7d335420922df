// The agent's REST API as its clients see it (cnctl, scripts, monitoring): the paths, the JSON
// of every resource, the Listen= address and the Unix socket both sides agree on. The agent's server
// (agent/report/api/) builds these shapes, and tsc holds it to them; cnctl reads them. A change
// here is a change of the public API. The API is read-only: GET and HEAD.
import { isIP } from 'node:net';
import { join } from 'node:path';

export const API_PREFIX = '/api/v1';

/** The resources' paths. */
export const API_PATHS = {
  status: `${API_PREFIX}/status`,
  system: `${API_PREFIX}/system`,
  network: `${API_PREFIX}/network`,
  link: (name: string) => `${API_PREFIX}/network/${encodeURIComponent(name)}`,
  sshKeys: `${API_PREFIX}/ssh-keys`,
  document: `${API_PREFIX}/document`,
} as const;

export type CloudProvider = 'azure' | 'ec2' | 'gcp' | 'oci' | 'aliyun';

/** Operations per kind ("address.add", "rule.remove", ...) since the agent started. */
export interface OperationCounters {
  applied: Record<string, number>;
  failed: Record<string, number>;
}

/** GET /api/v1/status — always 200, also before the first metadata fetch (`ready: false`). */
export interface StatusResource {
  version: string;
  provider: CloudProvider;
  /** whether metadata has been fetched at least once (the other resources answer 503 until then) */
  ready: boolean;
  startedAt: string;
  reconciling: boolean;
  reconciles: number;
  converged: boolean;
  lastRefresh: string | null;
  lastSuccess: string | null;
  lastMetadataSuccess: string | null;
  /** the last reconcile's failure, cleared by one that converges */
  lastError: string | null;
  /** why the last metadata fetch failed (the last good metadata stays in force), until one succeeds */
  metadataError: string | null;
  /** null until the agent has tried to reach the helper */
  helperReachable: boolean | null;
  /** why the helper cannot be reached, while it cannot */
  helperError: string | null;
  /** why the state files in StateDir could not be written (the kernel is still configured), until they are */
  stateError: string | null;
  /** why the last reload's configuration was refused (the previous one runs), until a reload takes one */
  configError: string | null;
  /** always pending.length */
  pendingOperations: number;
  /** the pending operations, as `ip`-like text ("add address 10.4.0.5/24 dev eth1 noprefixroute") */
  pending: string[];
  linkErrors: Record<string, string>;
  operations: OperationCounters;
  /** the other network tools found on this machine, and what cloud-network does beside each */
  tools: ToolResource[];
  /** links cloud-network leaves to another tool: name → "managed by TOOL: why" */
  leftAlone: Record<string, string>;
  /** cloud-network's tables and priorities that hold another tool's objects (avoided, never overwritten) */
  collisions: string[];
  /** objects someone else kept removing, which cloud-network no longer re-adds until a reload */
  contested: ContestedResource[];
  /** reloads (SIGHUP) taken since the agent started */
  reloads: number;
  /** how the last reload ended: null until one has */
  lastReload: ReloadResource | null;
}

/** The end of a reload: its configuration refused, or taken and the refresh after it done. */
export interface ReloadResource {
  /** which reload: `reloads` when it was taken */
  number: number;
  at: string;
  outcome: 'refused' | 'applied' | 'unchanged' | 'not-converged';
  detail: string;
}

/** Another network tool (README "Living with other tools"). */
export interface ToolResource {
  tool: string;
  /** `yield`: cloud-network leaves the tool's interfaces alone; `coexist`: both work side by side */
  stance: 'yield' | 'coexist';
  /** what showed that the tool is here */
  evidence: string[];
  /** the interfaces it manages */
  links: string[];
  /** who owns what */
  note: string;
}

export interface ContestedResource {
  /** the object, as `ip`-like text ("add inet rule priority 20200 from 10.4.1.5/32 lookup 20001") */
  object: string;
  removals: number;
  likelyTool: string | null;
  since: string;
}

/**
 * Every failure a status reports, one line each and none twice: what `cnctl status` exits 1 for
 * (with `converged` false) and what `cnctl wait` says when it gives up.
 */
export function statusProblems(status: StatusResource): string[] {
  const problems = [
    status.configError,
    status.metadataError,
    status.helperError ?? (status.helperReachable === false ? 'the helper is not reachable' : null),
    status.stateError,
    ...Object.entries(status.linkErrors ?? {}).map(([link, error]) => `${link}: ${error}`),
    // an object cloud-network stopped re-adding is missing from the kernel until a reload
    ...(status.contested ?? []).map(
      (c) => `${c.object}: removed ${c.removals} times within a minute${c.likelyTool ? `, likely by ${c.likelyTool}` : ''}; not re-added until the next reload`,
    ),
  ].filter((p): p is string => typeof p === 'string' && p !== '');
  const last = status.lastError;
  // lastError mostly repeats the metadata, helper or link error that stopped the reconcile
  if (last && !problems.some((p) => p.includes(last) || last.includes(p))) problems.push(last);
  return problems.filter((p, i) => problems.indexOf(p) === i);
}

/** GET /api/v1/system: the instance, in the same fields on every cloud. */
export interface SystemResource {
  provider: CloudProvider;
  /** Azure vmId, EC2 instance-id, GCP id (text: it exceeds 2^53), OCI instance OCID, Alibaba instance-id */
  id: string;
  name: string;
  region: string;
  zone: string;
  /** Azure vmSize, EC2 instance-type, GCP machine type, OCI shape, Alibaba instance-type */
  size: string;
  image: string;
  /**
   * The provider's own facts about the instance, under its own names (Azure subscriptionId,
   * resourceGroupName; OCI compartmentId, availabilityDomain; …), as text; {} when none.
   */
  details: Record<string, string>;
}

/**
 * GET /api/v1/network/:link, and each of /api/v1/network's links (the state files hold the same).
 * Every key is present in every answer; null means unknown or not applicable.
 */
export interface LinkResource {
  name: string;
  ifindex: number;
  mac: string;
  /** the NIC's index in the metadata (its table is RouteTableBase + index when policy-routed) */
  nicIndex: number;
  primary: boolean;
  /** the link's route table when it is policy-routed; null: the main table */
  table: number | null;
  /** the addresses that should be on the link, "ip/len" */
  addresses: string[];
  privateIpv4: string[];
  publicIpv4: string[];
  ipv6: string[];
  /** the IPv4 subnet and gateway; null when the NIC has no IPv4 (an IPv6-only subnet) */
  subnet: string | null;
  gateway: string | null;
  /** the MTU the metadata asks for; null when the cloud does not say */
  mtu: number | null;
  routedRanges: string[];
  /** `left-alone`: another tool manages the interface (managedBy), and cloud-network configures nothing on it */
  state: 'configured' | 'pending' | 'error' | 'left-alone';
  /** why the link is in error; null otherwise */
  error: string | null;
  /** the tool the interface is left to, and why; null when cloud-network configures it */
  managedBy: { tool: string; why: string } | null;
  /** routed ranges another tool delivers (google-guest-agent's local routes) */
  rangesLeftAlone: string[];
  /**
   * The provider's own facts about the NIC, under its own names (EC2 interface-id, subnet-id,
   * vpc-id, security-group-ids; GCP network, dnsServers, accessConfigs; OCI vnicId; Alibaba
   * network-interface-id, vswitch-id, vpc-id), lists joined with ", "; {} when none.
   */
  details: Record<string, string>;
}

/** A metadata NIC that has no configured link (not attached yet, or no plan yet). */
export interface UnmatchedNic {
  mac: string;
  primary: boolean;
  problem: string;
}

/** GET /api/v1/network */
export interface NetworkResource {
  provider: CloudProvider;
  links: LinkResource[];
  unmatched: UnmatchedNic[];
}

/** GET /api/v1/ssh-keys */
export interface SshKeysResource {
  provider: CloudProvider;
  sshKeys: string[];
}

/** GET /api/v1/document: the provider's own metadata document, without secrets. */
export interface DocumentResource {
  provider: CloudProvider;
  document: unknown;
}

/** Every error answer: 404, 405, 413, 421, 503 (with `status` for 503), 500. */
export interface ErrorResource {
  error: string;
  status?: StatusResource;
}

// ---------------------------------------------------------------- the Unix socket

/** The API's Unix socket in the agent's StateDir, the same API as Listen=: cnctl's default. */
export const API_SOCKET_NAME = 'api.sock';

export function apiSocketPath(stateDir: string): string {
  return join(stateDir, API_SOCKET_NAME);
}

// ---------------------------------------------------------------- Listen=

/** Where the API listens unless Listen= says otherwise. */
export const DEFAULT_LISTEN = '127.0.0.1:5209';

/** The forms Listen= takes, for messages. */
export const LISTEN_FORMS = 'IPV4:PORT, [IPV6]:PORT or localhost:PORT, e.g. "127.0.0.1:5209" or "[::1]:5209"';

export interface ListenAddress {
  /** without brackets: "127.0.0.1", "::1", "localhost" */
  host: string;
  port: number;
}

/** Listen=: an IPv4 address, a bracketed IPv6 address or localhost, and a port (0 picks one). */
export function parseListen(text: string): ListenAddress {
  const trimmed = text.trim();
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(trimmed) ?? /^([^:[\]]+):(\d{1,5})$/.exec(trimmed);
  if (!match) throw new Error(`Listen=${JSON.stringify(text)} is not HOST:PORT (${LISTEN_FORMS})`);
  const host = match[1]!;
  const port = Number(match[2]);
  const bracketed = trimmed.startsWith('[');
  if (bracketed ? isIP(host) !== 6 : host !== 'localhost' && isIP(host) !== 4) {
    throw new Error(`Listen=${JSON.stringify(text)}: ${host} is not ${bracketed ? 'an IPv6 address' : 'an IPv4 address or localhost'} (${LISTEN_FORMS})`);
  }
  if (port > 65535) throw new Error(`Listen=${JSON.stringify(text)}: port ${match[2]} is not between 0 and 65535`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){1,7}0{0,3}1$/.test(host) || host.toLowerCase().startsWith('::ffff:127.');
  return false;
}

/** The URL a local client uses: a wildcard listen address is reached over loopback. */
export function urlForListen(address: ListenAddress): string {
  let host = address.host;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${address.port}`;
}
