// AWS EC2 instance metadata, IMDSv2 only: a session token from PUT /latest/api/token on every
// GET, cached for its TTL. Facts (docs.aws.amazon.com, "Instance metadata categories" and
// "Use IMDSv2"): directory listings are one entry per line; network/interfaces/macs/ is in MAC
// order, not device order; network-card is served only on multi-card types (404 elsewhere);
// ipv4-prefix / ipv6-prefix answer 404 when none; the VPC router is the subnet's first host;
// link-local traffic is limited to 1,024 packets/s per ENI. Like amazon-ec2-net-utils, an ENI
// that is still attaching (404s, or a second "device-number 0") is retried, never guessed.
import { canonicalNetwork, firstHost, parseIp, parsePrefix, prefixContains } from '../../../protocol/ip.js';
import { MetadataClient } from '../client.js';
import { MetadataError } from '../errors.js';
import { sleep as realSleep } from '../rate-limit.js';
import type { Ipv4Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { canonicalMac, DocumentReader } from './document-fields.js';
import type { ClientSettings, DmiStrings, GoToolPaths, Provider } from './provider.js';

const TOKEN_PATH = '/latest/api/token';
const META = '/latest/meta-data/';

export interface Ec2Options extends ClientSettings {
  /** token lifetime asked for (1–21600 s) */
  tokenTtlSeconds?: number;
  /** injectable clock for the token's expiry */
  now?: () => number;
  /** attempts for an ENI whose metadata is not complete yet, and the pause between them */
  eniAttempts?: number;
  eniRetryDelayMs?: number;
}

/** Per-MAC leaves read into the model and the document. Never credentials. */
const MAC_KEYS = [
  'device-number',
  'network-card',
  'local-ipv4s',
  'subnet-ipv4-cidr-block',
  'subnet-ipv6-cidr-blocks',
  'ipv6s',
  'ipv4-prefix',
  'ipv6-prefix',
  'public-ipv4s',
  'interface-id',
  'subnet-id',
  'vpc-id',
] as const;
const REQUIRED_MAC_KEYS = new Set(['device-number', 'local-ipv4s', 'subnet-ipv4-cidr-block']);
const INSTANCE_KEYS = ['instance-id', 'instance-type', 'placement/region', 'placement/availability-zone', 'ami-id', 'mac', 'local-hostname'] as const;

/** A per-ENI condition that clears by itself while an ENI attaches: worth another attempt. */
class NotReady extends Error {}

export class Ec2Provider implements Provider {
  readonly name = 'ec2' as const;
  private readonly client: MetadataClient;
  private readonly ttlSeconds: number;
  private readonly now: () => number;
  private token?: { value: string; renewAt: number };
  private pendingToken?: Promise<string>;
  /** how many token PUTs succeeded (observability; tests check one per TTL) */
  tokensIssued = 0;

  constructor(private readonly options: Ec2Options = {}) {
    // ~10 packets per request on a fresh connection: 50/s stays far below 1,024 packets/s
    this.client = new MetadataClient({ requestsPerSecond: 50, concurrency: 8, ...options, provider: 'ec2' });
    this.ttlSeconds = options.tokenTtlSeconds ?? 21_600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1 || this.ttlSeconds > 21_600) {
      throw new Error(`EC2 token TTL ${this.ttlSeconds} s is outside 1–21600`);
    }
    this.now = options.now ?? Date.now;
  }

  detectByDmi(dmi: DmiStrings): string | undefined {
    if (dmi.sysVendor === 'Amazon EC2') return 'sys_vendor is "Amazon EC2"';
    // Xen-based (older) instance types have no Amazon vendor string, but their UUIDs start with ec2
    for (const [file, uuid] of [
      ['product_uuid', dmi.productUuid],
      ['/sys/hypervisor/uuid', dmi.hypervisorUuid],
    ] as const) {
      if (uuid && /^ec2/i.test(uuid)) return `${file} starts with "ec2"`;
    }
    return undefined;
  }

  async detectByProbe(signal?: AbortSignal): Promise<boolean> {
    const response = await this.client.request({
      method: 'PUT',
      path: TOKEN_PATH,
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
      retries: 0,
      signal,
    });
    // a token is ~56 base64 characters; a captive portal's 200 page is not
    return response.status === 200 && /^[A-Za-z0-9+/=_-]{20,512}$/.test(response.body.trim());
  }

  async fetch(signal?: AbortSignal): Promise<ProviderSnapshot> {
    const doc = new DocumentReader('ec2');
    const instanceValues = await Promise.all(INSTANCE_KEYS.map((key) => this.get(key, signal)));
    const instance = Object.fromEntries(INSTANCE_KEYS.map((key, i) => [key, instanceValues[i]])) as Record<(typeof INSTANCE_KEYS)[number], string | undefined>;
    const id = instance['instance-id'] ?? doc.incomplete('meta-data/instance-id', 'is missing (404)');
    const primaryMac = canonicalMac(instance.mac ?? doc.incomplete('meta-data/mac', 'is missing (404)'));
    if (!primaryMac) doc.malformed('meta-data/mac', `${JSON.stringify(instance.mac)} is not a MAC address`);

    const listing = (await this.get('network/interfaces/macs/', signal)) ?? doc.incomplete('meta-data/network/interfaces/macs/', 'is missing (404)');
    const macs = lines(listing).map((entry) => entry.replace(/\/$/, ''));
    if (macs.length === 0) doc.incomplete('meta-data/network/interfaces/macs/', 'is empty (no NIC)');
    const seen = new Set<string>();
    for (const entry of macs) {
      const mac = canonicalMac(entry) ?? doc.malformed('meta-data/network/interfaces/macs/', `lists ${JSON.stringify(entry)}, not a MAC address`);
      if (seen.has(mac)) doc.forNic(mac).malformed('meta-data/network/interfaces/macs/', 'lists this MAC twice');
      seen.add(mac);
    }
    if (!seen.has(primaryMac!)) doc.forNic(primaryMac!).incomplete('meta-data/network/interfaces/macs/', 'does not list the primary ENI (meta-data/mac)');

    const perMac = await Promise.all(macs.map((entry) => this.fetchEni(entry, primaryMac!, signal)));
    const nics = perMac.map((p) => p.nic);
    const byIndex = new Map<number, string>();
    for (const nic of nics) {
      const other = byIndex.get(nic.index);
      if (other) doc.forNic(nic.mac).malformed('device-number', `and network-card give index ${nic.index}, as for ${other}`);
      byIndex.set(nic.index, nic.mac);
    }
    nics.sort((a, b) => a.index - b.index);

    const { keys: sshKeys, tree: keysTree } = await this.publicKeys(signal);
    const zone = instance['placement/availability-zone'] ?? '';
    const model: MetadataModel = {
      instance: {
        provider: 'ec2',
        id,
        name: (instance['local-hostname'] ?? '').split('.')[0] ?? '',
        region: instance['placement/region'] ?? zone.replace(/[a-z]$/, ''),
        zone,
        size: instance['instance-type'] ?? '',
        image: instance['ami-id'] ?? '',
      },
      nics,
    };
    const metaData: Record<string, unknown> = {};
    for (const key of INSTANCE_KEYS) {
      const value = instance[key];
      if (value === undefined) continue;
      const [head, tail] = key.split('/') as [string, string | undefined];
      if (tail) metaData[head] = { ...(metaData[head] as object | undefined), [tail]: value };
      else metaData[head] = value;
    }
    metaData.network = { interfaces: { macs: Object.fromEntries(perMac.map((p) => [p.listedAs, p.tree])) } };
    if (Object.keys(keysTree).length > 0) metaData['public-keys'] = keysTree;
    return { model, document: { 'meta-data': metaData }, sshKeys };
  }

  /** One ENI, retried while it looks half-attached. */
  private async fetchEni(listedAs: string, primaryMac: string, signal?: AbortSignal): Promise<{ listedAs: string; nic: Nic; tree: Record<string, string> }> {
    const attempts = this.options.eniAttempts ?? 5;
    const sleep = this.options.sleep ?? realSleep;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readEni(listedAs, primaryMac, signal);
      } catch (error) {
        if (!(error instanceof NotReady)) throw error;
        const mac = canonicalMac(listedAs)!;
        if (attempt >= attempts) {
          throw new MetadataError(`ec2 metadata: NIC ${mac}: ${error.message} after ${attempts} attempts; the ENI may still be attaching, the answer is not used`, {
            provider: 'ec2',
            kind: 'incomplete',
            nic: mac,
          });
        }
        await sleep(this.options.eniRetryDelayMs ?? 1_000, signal);
      }
    }
  }

  private async readEni(listedAs: string, primaryMac: string, signal?: AbortSignal) {
    const mac = canonicalMac(listedAs)!;
    const doc = new DocumentReader('ec2', mac);
    const base = `network/interfaces/macs/${listedAs}/`;
    const values = await Promise.all(MAC_KEYS.map((key) => this.get(base + key, signal)));
    const tree: Record<string, string> = {};
    MAC_KEYS.forEach((key, i) => {
      if (values[i] !== undefined) tree[key] = values[i]!;
    });
    for (const key of REQUIRED_MAC_KEYS) {
      if (tree[key] === undefined) throw new NotReady(`${base}${key} answered 404`);
    }
    const device = integer(doc, tree['device-number']!, `${base}device-number`);
    const card = tree['network-card'] === undefined ? 0 : integer(doc, tree['network-card'], `${base}network-card`);
    const primary = mac === primaryMac;
    if (!primary && device === 0 && card === 0) throw new NotReady(`${base}device-number says 0, the primary ENI's number, but the primary ENI is ${primaryMac}`);

    const cidrText = tree['subnet-ipv4-cidr-block']!.trim();
    const subnetPrefix = parsePrefix(cidrText);
    if (!subnetPrefix || subnetPrefix.family !== 'inet') doc.malformed(`${base}subnet-ipv4-cidr-block`, `${JSON.stringify(cidrText)} is not an IPv4 CIDR block`);
    const subnet = canonicalNetwork(cidrText)!;
    const [subnetAddress] = subnet.split('/') as [string];
    const prefixLength = subnetPrefix!.prefixLength;

    const localIps = lines(tree['local-ipv4s']!);
    if (localIps.length === 0) doc.incomplete(`${base}local-ipv4s`, 'is empty (no IPv4 address)');
    const ipv4: Ipv4Address[] = localIps.map((text, i) => {
      const address = doc.ip(text, `${base}local-ipv4s`, 'inet');
      if (!prefixContains(subnetPrefix!, parseIp(address)!)) doc.malformed(`${base}local-ipv4s`, `${address} is outside the subnet ${subnet}`);
      return { address, prefixLength, primary: i === 0 };
    });
    const v6Subnets = lines(tree['subnet-ipv6-cidr-blocks'] ?? '');
    const v6Length = v6Subnets.length > 0 ? parsePrefix(v6Subnets[0]!)?.prefixLength ?? 128 : 128;
    const ranges = (key: 'ipv4-prefix' | 'ipv6-prefix') =>
      lines(tree[key] ?? '').map((text) => canonicalNetwork(text) ?? doc.malformed(`${base}${key}`, `${JSON.stringify(text)} is not a CIDR prefix`));

    const nic: Nic = {
      mac,
      index: card * 32 + device,
      primary,
      ipv4,
      publicIpv4: lines(tree['public-ipv4s'] ?? '').map((text) => doc.ip(text, `${base}public-ipv4s`, 'inet')),
      ipv6: lines(tree.ipv6s ?? '').map((text) => ({ address: doc.ip(text, `${base}ipv6s`, 'inet6'), prefixLength: v6Length })),
      subnet: { address: subnetAddress, prefixLength },
      gateway: firstHost(subnet)!,
      routedRanges: [...ranges('ipv4-prefix'), ...ranges('ipv6-prefix')],
      hostAddresses: false,
    };
    return { listedAs, nic, tree };
  }

  private async publicKeys(signal?: AbortSignal): Promise<{ keys: string[]; tree: Record<string, Record<string, string>> }> {
    const listing = await this.get('public-keys/', signal);
    const tree: Record<string, Record<string, string>> = {};
    const keys: string[] = [];
    // entries read "0=my-key-name"; the key itself is at public-keys/0/openssh-key
    for (const entry of lines(listing ?? '')) {
      const n = entry.split('=')[0]!;
      if (!/^\d+$/.test(n)) continue;
      const key = await this.get(`public-keys/${n}/openssh-key`, signal);
      if (key === undefined) continue;
      tree[entry] = { 'openssh-key': key };
      keys.push(...lines(key));
    }
    return { keys, tree };
  }

  /** A meta-data leaf or listing: its text, or undefined for 404. Anything else is an error. */
  private async get(path: string, signal?: AbortSignal): Promise<string | undefined> {
    for (let renewed = false; ; renewed = true) {
      const token = await this.sessionToken(signal);
      const response = await this.client.request({ path: META + path, headers: { 'X-aws-ec2-metadata-token': token }, signal });
      if (response.status === 200) return response.body;
      if (response.status === 404) return undefined;
      if (response.status === 401 && !renewed) {
        // the token expired or IMDS restarted: one new token, then give up
        if (this.token?.value === token) this.token = undefined;
        continue;
      }
      throw new MetadataError(`ec2 metadata: GET ${META}${path} answered ${response.status}${response.status === 401 ? ' even with a new token' : ''}`, {
        provider: 'ec2',
        kind: 'status',
        status: response.status,
        field: `meta-data/${path}`,
      });
    }
  }

  /** The cached token, renewed before it expires; concurrent callers share one PUT. */
  private async sessionToken(signal?: AbortSignal): Promise<string> {
    if (this.token && this.now() < this.token.renewAt) return this.token.value;
    this.pendingToken ??= this.requestToken(signal).finally(() => (this.pendingToken = undefined));
    return this.pendingToken;
  }

  private async requestToken(signal?: AbortSignal): Promise<string> {
    const issuedAt = this.now();
    const response = await this.client.request({
      method: 'PUT',
      path: TOKEN_PATH,
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds) },
      signal,
    });
    const value = response.body.trim();
    if (response.status !== 200 || value === '') {
      throw new MetadataError(
        `ec2 metadata: the IMDSv2 token request (PUT ${TOKEN_PATH}) answered ${response.status}${value === '' ? ' with no token' : ''}; cloud-network uses IMDSv2 only — check the instance's metadata options (http-tokens, http-put-response-hop-limit)`,
        { provider: 'ec2', kind: 'status', status: response.status, field: 'api/token' },
      );
    }
    // renew a tenth of the lifetime (at most 5 minutes) early, so no GET carries a dying token
    const margin = Math.min(300_000, this.ttlSeconds * 100);
    this.token = { value, renewAt: issuedAt + this.ttlSeconds * 1000 - margin };
    this.tokensIssued++;
    return value;
  }
}

/** Non-empty lines of a listing or multi-valued leaf. */
function lines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

function integer(doc: DocumentReader, text: string, field: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,4}$/.test(trimmed)) doc.malformed(field, `${JSON.stringify(trimmed)} is not a number`);
  return Number(trimmed);
}

const NO_CREDENTIALS = 'cloud-network never reads credentials: they are secrets (the Go tool served them here)';
const NOT_READ = 'cloud-network does not read the identity signatures';

/**
 * The Go tool's EC2 paths: `system` the meta-data tree, `network` the tree below
 * network/interfaces/macs/ (keyed by MAC), the identity document; here the trees hold the
 * leaves cloud-network reads, not every leaf.
 */
export function ec2GoToolPaths(document: unknown): GoToolPaths {
  const metaData = below(document, 'meta-data') ?? {};
  const identity = below(document, 'dynamic', 'instance-identity', 'document');
  return {
    system: { value: metaData },
    network: { value: below(metaData, 'network', 'interfaces', 'macs') ?? {} },
    credentials: { notServed: NO_CREDENTIALS },
    'dynamicinstanceidentity/document': identity === undefined ? { notServed: 'the identity document is not read' } : { value: identity },
    'dynamicinstanceidentity/pkcs7': { notServed: NOT_READ },
    'dynamicinstanceidentity/signature': { notServed: NOT_READ },
    'dynamicinstanceidentity/rsa2048': { notServed: NOT_READ },
  };
}

/** The value at a path of object keys, or undefined where one is missing. */
function below(value: unknown, ...keys: string[]): unknown {
  for (const key of keys) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
