// AWS EC2 instance metadata, IMDSv2 only: a session token from PUT /latest/api/token on every
// GET, cached for its TTL. Facts (docs.aws.amazon.com, "Instance metadata categories", "Use
// IMDSv2", "Retrieve instance metadata", docs/imds.md): directory listings are one entry per
// line, sub-directories ending in "/"; network/interfaces/macs/ is in MAC order, not device
// order; a MAC's directory lists only the keys that apply to it (network-card only on
// multi-card types, ipv4-prefix / ipv6-prefix only when delegated, no local-ipv4s on an
// IPv6-only subnet); the VPC router is the subnet's first host; link-local traffic is limited to
// 1,024 packets/s per ENI; the IMDS also answers at [fd00:ec2::254] on Nitro instances with the
// IPv6 endpoint enabled, the only address an IPv6-only instance may reach. Like
// amazon-ec2-net-utils, an ENI that is still attaching is retried, never guessed.
//
// Requests: instance facts that cannot change while the VM runs (the identity document, the
// primary MAC, the hostname, the SSH keys) once; then per refresh the MAC listing and, per ENI,
// its directory listing and its address key. Only an ENI whose answers changed is read in full,
// and every ENI is read in full at start, on a reload, and every FULL_READ_EVERY refreshes.
import { canonicalNetwork, firstHost, parseIp, parsePrefix, prefixContains } from '../../../protocol/ip.js';
import type { KernelState } from '../../../netlink/types.js';
import { imdsBaseUrl, MetadataClient } from '../client.js';
import { MetadataError } from '../errors.js';
import { sleep as realSleep } from '../rate-limit.js';
import type { InstanceFacts, Ipv4Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { canonicalMac, details, DocumentReader, lines, macListing } from './document-fields.js';
import type { ClientSettings, DmiStrings, FetchOptions, GoToolPaths, Provider, ProviderContext } from './provider.js';
import { MAX_TOKEN_TTL_S, TokenSession, type IssuedToken } from './token-session.js';

const TOKEN_PATH = '/latest/api/token';
const META = '/latest/meta-data/';
const IDENTITY_PATH = '/latest/dynamic/instance-identity/document';
/** The IMDS on IPv4, and on IPv6 (Nitro, with http-protocol-ipv6 enabled): "Retrieve instance metadata". */
export const EC2_IPV4_URL = 'http://169.254.169.254';
export const EC2_IPV6_URL = 'http://[fd00:ec2::254]';
/** Quick refreshes between two full reads of every ENI (an hour at the default RefreshTimer). */
export const FULL_READ_EVERY = 12;

export interface Ec2Options extends ClientSettings, ProviderContext {
  /** token lifetime asked for (1–21600 s) */
  tokenTtlSeconds?: number;
  /** injectable clock for the token's expiry */
  now?: () => number;
  /** attempts for an ENI whose metadata is not complete yet, and the pause between them */
  eniAttempts?: number;
  eniRetryDelayMs?: number;
  /** quick refreshes between two full reads (default FULL_READ_EVERY) */
  fullReadEvery?: number;
  /** the IMDS addresses tried in turn when baseUrl does not name one (default IPv4, then IPv6) */
  endpointUrls?: readonly string[];
}

/** Per-MAC leaves read into the model and the document, when the MAC's directory lists them. Never credentials. */
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
  'security-group-ids',
] as const;

/**
 * Per-MAC leaves shown as the NIC's details, under EC2's names. A quick refresh keeps the last
 * full read's, so a change of security groups shows at the next full read.
 */
const DETAIL_KEYS = ['interface-id', 'device-number', 'network-card', 'subnet-id', 'vpc-id', 'security-group-ids'] as const;

/** A per-ENI condition that clears by itself while an ENI attaches: worth another attempt. */
class NotReady extends Error {}

/** What was read of one ENI: the answers a quick refresh compares, the NIC, and the document tree. */
interface EniRead {
  listing: string;
  /** the key whose answer a quick refresh compares: local-ipv4s, or ipv6s on an IPv6-only subnet */
  addressKey: 'local-ipv4s' | 'ipv6s';
  addresses: string;
  nic: Nic;
  tree: Record<string, string>;
}

/** What cannot change while the VM runs, read once. */
interface InstanceRead {
  facts: InstanceFacts;
  primaryMac: string;
  metaData: Record<string, unknown>;
  identity: unknown;
  sshKeys: string[];
}

export class Ec2Provider implements Provider {
  readonly name = 'ec2' as const;
  /** one client per IMDS address, in the order they are tried */
  private readonly endpoints: MetadataClient[];
  /** the endpoint that answered the last token request */
  private active?: MetadataClient;
  private readonly ttlSeconds: number;
  private readonly session: TokenSession;
  private readonly fullReadEvery: number;
  private instance?: InstanceRead;
  private pendingInstance?: Promise<InstanceRead>;
  private enis = new Map<string, EniRead>();
  private quickReads = 0;
  private last?: { listing: string; enis: EniRead[]; snapshot: ProviderSnapshot };

  constructor(private readonly options: Ec2Options = {}) {
    // ~10 packets per request on a fresh connection: 50/s, 8 at once, stays far below 1,024 packets/s
    const client = (baseUrl: string) =>
      new MetadataClient({ requestsPerSecond: 50, burst: 8, concurrency: 8, ...options, baseUrl, provider: 'ec2' });
    const configured = options.baseUrl ?? (process.env.CLOUD_NETWORK_IMDS_URL ? imdsBaseUrl() : undefined);
    this.endpoints = configured ? [client(configured)] : (options.endpointUrls ?? [EC2_IPV4_URL, EC2_IPV6_URL]).map(client);
    this.ttlSeconds = options.tokenTtlSeconds ?? MAX_TOKEN_TTL_S;
    this.session = new TokenSession({
      provider: 'ec2',
      ttlSeconds: this.ttlSeconds,
      now: options.now ?? Date.now,
      header: 'X-aws-ec2-metadata-token',
      issue: (signal, retries) => this.requestToken(signal, retries),
      // unreachable after all: find the service again (the other address) with the next token
      unreachable: () => (this.active = undefined),
    });
    this.fullReadEvery = options.fullReadEvery ?? FULL_READ_EVERY;
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

  /** The token PUT itself: a real IMDS issues a token, and the provider keeps it for its fetches. */
  detectByProbe(signal?: AbortSignal): Promise<boolean> {
    return this.session.probe(signal);
  }

  async fetch(signal?: AbortSignal, options: FetchOptions = {}): Promise<ProviderSnapshot> {
    const doc = new DocumentReader('ec2');
    const [instance, listingText] = await Promise.all([this.instanceFacts(signal), this.get('network/interfaces/macs/', signal)]);
    const { listing, entries: macs } = macListing(doc, listingText, instance.primaryMac, 'ENI (meta-data/mac)');

    const full = options.thorough === true || this.last === undefined || this.quickReads >= this.fullReadEvery;
    this.quickReads = full ? 0 : this.quickReads + 1;
    const reads = await Promise.all(macs.map((entry) => this.eni(entry, instance.primaryMac, full, signal)));
    this.enis = new Map(macs.map((entry, i) => [entry, reads[i]!]));

    // nothing answered differently: the same snapshot, so nobody downstream compares models
    const last = this.last;
    if (last && last.listing === listing && last.enis.length === reads.length && last.enis.every((read, i) => read === reads[i])) return last.snapshot;

    const nics = reads.map((read) => read.nic);
    const byIndex = new Map<number, string>();
    for (const nic of nics) {
      const other = byIndex.get(nic.index);
      if (other) doc.forNic(nic.mac).malformed('device-number', `and network-card give index ${nic.index}, as for ${other}`);
      byIndex.set(nic.index, nic.mac);
    }
    nics.sort((a, b) => a.index - b.index);
    const model: MetadataModel = { instance: instance.facts, nics };
    const metaData = { ...instance.metaData, network: { interfaces: { macs: Object.fromEntries(macs.map((entry, i) => [entry, reads[i]!.tree])) } } };
    const snapshot: ProviderSnapshot = {
      model,
      document: { 'meta-data': metaData, dynamic: { 'instance-identity': { document: instance.identity } } },
      sshKeys: instance.sshKeys,
    };
    this.last = { listing, enis: reads, snapshot };
    return snapshot;
  }

  private instanceFacts(signal?: AbortSignal): Promise<InstanceRead> {
    if (this.instance) return Promise.resolve(this.instance);
    this.pendingInstance ??= this.readInstance(signal)
      .then((read) => (this.instance = read))
      .finally(() => (this.pendingInstance = undefined));
    return this.pendingInstance;
  }

  /** The identity document (id, type, region, zone, AMI in one answer), the primary MAC, the hostname and the SSH keys. */
  private async readInstance(signal?: AbortSignal): Promise<InstanceRead> {
    const doc = new DocumentReader('ec2');
    const [identityText, macText, hostname, keys] = await Promise.all([
      this.get(IDENTITY_PATH, signal),
      this.get('mac', signal),
      this.get('local-hostname', signal),
      this.publicKeys(signal),
    ]);
    const identity = doc.object(doc.json(identityText ?? doc.incomplete('dynamic/instance-identity/document', 'is missing (404)'), 'dynamic/instance-identity/document'), 'dynamic/instance-identity/document');
    const field = (key: string) => doc.optionalString(identity[key], `dynamic/instance-identity/document.${key}`);
    const id = field('instanceId');
    if (id === '') doc.incomplete('dynamic/instance-identity/document.instanceId', 'is missing');
    const primaryMac = canonicalMac(macText ?? doc.incomplete('meta-data/mac', 'is missing (404)')) ?? doc.malformed('meta-data/mac', `${JSON.stringify(macText)} is not a MAC address`);
    const zone = field('availabilityZone');
    const facts: InstanceFacts = {
      provider: 'ec2',
      id,
      name: (hostname ?? '').trim().split('.')[0] ?? '',
      region: field('region') || zone.replace(/[a-z]$/, ''),
      zone,
      size: field('instanceType'),
      image: field('imageId'),
      details: details({ accountId: identity.accountId, architecture: identity.architecture }),
    };
    // the document keeps the meta-data names the older Go tool served; the identity document holds the same facts
    const metaData: Record<string, unknown> = {
      'ami-id': facts.image,
      'instance-id': facts.id,
      'instance-type': facts.size,
      'local-hostname': hostname,
      mac: macText!.trim(),
      placement: { 'availability-zone': facts.zone, region: facts.region },
    };
    if (Object.keys(keys.tree).length > 0) metaData['public-keys'] = keys.tree;
    return { facts, primaryMac, metaData, identity, sshKeys: keys.keys };
  }

  /**
   * One ENI: the last read when a quick look (its directory listing and its address key) shows
   * nothing new, else a full read; retried while it looks half-attached.
   */
  private async eni(listedAs: string, primaryMac: string, full: boolean, signal?: AbortSignal): Promise<EniRead> {
    const cached = this.enis.get(listedAs);
    const base = `network/interfaces/macs/${listedAs}/`;
    let quick: { listing: string; addresses?: string } | undefined;
    if (cached && !full) {
      const [listing, addresses] = await Promise.all([this.get(base, signal), this.get(base + cached.addressKey, signal)]);
      if (listing === cached.listing && addresses === cached.addresses) return cached;
      if (listing !== undefined) quick = { listing, ...(addresses !== undefined && { addresses }) };
    }
    const attempts = this.options.eniAttempts ?? 5;
    const sleep = this.options.sleep ?? realSleep;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readEni(listedAs, primaryMac, attempt === 1 ? quick : undefined, signal);
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

  /** Every key the ENI's directory lists, those a quick look already brought excepted. */
  private async readEni(listedAs: string, primaryMac: string, known: { listing: string; addresses?: string } | undefined, signal?: AbortSignal): Promise<EniRead> {
    const mac = canonicalMac(listedAs)!;
    const doc = new DocumentReader('ec2', mac);
    const base = `network/interfaces/macs/${listedAs}/`;
    const listing = known?.listing ?? (await this.get(base, signal));
    if (listing === undefined) throw new NotReady(`${base} answered 404`);
    const listed = new Set(lines(listing));
    const wanted = MAC_KEYS.filter((key) => listed.has(key));
    for (const key of ['device-number'] as const) if (!listed.has(key)) throw new NotReady(`${base} does not list ${key} yet`);
    const addressKey = listed.has('local-ipv4s') ? 'local-ipv4s' : 'ipv6s';
    if (addressKey === 'local-ipv4s' && !listed.has('subnet-ipv4-cidr-block')) throw new NotReady(`${base} lists local-ipv4s but not subnet-ipv4-cidr-block yet`);
    if (!listed.has(addressKey)) throw new NotReady(`${base} lists neither local-ipv4s nor ipv6s yet`);
    const values = await Promise.all(
      wanted.map((key) => (key === addressKey && known?.addresses !== undefined ? Promise.resolve(known.addresses) : this.get(base + key, signal))),
    );
    const tree: Record<string, string> = {};
    wanted.forEach((key, i) => {
      if (values[i] === undefined) throw new NotReady(`${base}${key} is listed but answered 404`);
      tree[key] = values[i]!;
    });

    const device = integer(doc, tree['device-number']!, `${base}device-number`);
    const card = tree['network-card'] === undefined ? 0 : integer(doc, tree['network-card'], `${base}network-card`);
    const primary = mac === primaryMac;
    if (!primary && device === 0 && card === 0) throw new NotReady(`${base}device-number says 0, the primary ENI's number, but the primary ENI is ${primaryMac}`);

    let ipv4: Ipv4Address[] = [];
    let subnet: Nic['subnet'];
    let gateway: string | undefined;
    if (addressKey === 'local-ipv4s') {
      const cidrText = tree['subnet-ipv4-cidr-block']!.trim();
      const subnetPrefix = parsePrefix(cidrText);
      if (!subnetPrefix || subnetPrefix.family !== 'inet') doc.malformed(`${base}subnet-ipv4-cidr-block`, `${JSON.stringify(cidrText)} is not an IPv4 CIDR block`);
      const network = canonicalNetwork(cidrText)!;
      const prefixLength = subnetPrefix!.prefixLength;
      const localIps = lines(tree['local-ipv4s']!);
      if (localIps.length === 0) doc.incomplete(`${base}local-ipv4s`, 'is empty (no IPv4 address)');
      ipv4 = localIps.map((text, i) => {
        const address = doc.ip(text, `${base}local-ipv4s`, 'inet');
        if (!prefixContains(subnetPrefix!, parseIp(address)!)) doc.malformed(`${base}local-ipv4s`, `${address} is outside the subnet ${network}`);
        return { address, prefixLength, primary: i === 0 };
      });
      subnet = { address: network.split('/')[0]!, prefixLength };
      gateway = firstHost(network)!;
    }
    const ipv6Texts = lines(tree.ipv6s ?? '');
    if (addressKey === 'ipv6s' && ipv6Texts.length === 0) doc.incomplete(`${base}ipv6s`, 'is empty (an IPv6-only ENI without an address)');
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
      ipv6: ipv6Texts.map((text) => ({ address: doc.ip(text, `${base}ipv6s`, 'inet6'), prefixLength: v6Length })),
      ...(subnet && { subnet }),
      ...(gateway && { gateway }),
      routedRanges: [...ranges('ipv4-prefix'), ...ranges('ipv6-prefix')],
      hostAddresses: false,
      details: details(Object.fromEntries(DETAIL_KEYS.map((key) => [key, lines(tree[key] ?? '')]))),
    };
    return { listing, addressKey, addresses: tree[addressKey]!, nic, tree };
  }

  private async publicKeys(signal?: AbortSignal): Promise<{ keys: string[]; tree: Record<string, Record<string, string>> }> {
    const listing = await this.get('public-keys/', signal);
    // entries read "0=my-key-name"; the key itself is at public-keys/0/openssh-key
    const entries = lines(listing ?? '').filter((entry) => /^\d+=/.test(entry));
    const keys = await Promise.all(entries.map((entry) => this.get(`public-keys/${entry.split('=')[0]}/openssh-key`, signal)));
    const tree: Record<string, Record<string, string>> = {};
    entries.forEach((entry, i) => {
      if (keys[i] !== undefined) tree[entry] = { 'openssh-key': keys[i]! };
    });
    return { keys: keys.flatMap((key) => lines(key ?? '')), tree };
  }

  /** A meta-data leaf or listing (or an absolute /latest/ path): its text, or undefined for 404. Anything else is an error. */
  private get(path: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.session.get(path.startsWith('/') ? path : META + path, signal);
  }

  /**
   * The token PUT, to the endpoint that answered last; without one, to each address in turn (IPv6
   * first on a VM without IPv4), the first that answers at all being kept, as amazon-ec2-net-utils
   * does. When none answers, the preferred address is tried again with the usual retries.
   */
  private async requestToken(signal?: AbortSignal, retries?: number): Promise<IssuedToken> {
    const order = this.active ? [this.active] : await this.endpointOrder();
    let answer: { client: MetadataClient; status: number; body: string } | undefined;
    let firstFailure: unknown;
    for (const client of order) {
      try {
        const response = await this.putToken(client, signal, order.length > 1 ? 0 : retries);
        answer = { client, status: response.status, body: response.body };
        break;
      } catch (error) {
        if (!(error instanceof MetadataError) || (error.kind !== 'network' && error.kind !== 'timeout')) throw error;
        firstFailure ??= error;
      }
    }
    if (!answer && order.length > 1 && retries !== 0) {
      const response = await this.putToken(order[0]!, signal, retries);
      answer = { client: order[0]!, status: response.status, body: response.body };
    }
    if (!answer) {
      // not even the address that answered before: look at both again next time
      this.active = undefined;
      throw firstFailure;
    }
    const value = answer.body.trim();
    if (answer.status !== 200 || !/^[A-Za-z0-9+/=_-]{20,512}$/.test(value)) {
      throw new MetadataError(
        `ec2 metadata: the IMDSv2 token request (PUT ${TOKEN_PATH} at ${answer.client.baseUrl.host}) answered ${answer.status}${value === '' ? ' with no token' : answer.status === 200 ? ' with something that is not a token' : ''}; cloud-network uses IMDSv2 only — check the instance's metadata options (http-tokens, http-put-response-hop-limit)`,
        { provider: 'ec2', kind: 'status', status: answer.status, field: 'api/token' },
      );
    }
    this.active = answer.client;
    return { value, client: answer.client };
  }

  private putToken(client: MetadataClient, signal?: AbortSignal, retries?: number) {
    return client.request({
      method: 'PUT',
      path: TOKEN_PATH,
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds) },
      signal,
      ...(retries !== undefined && { retries }),
    });
  }

  /** IPv4 first, as amazon-ec2-net-utils tries them, unless the VM has no IPv4 address to reach it from. */
  private async endpointOrder(): Promise<MetadataClient[]> {
    if (this.endpoints.length === 1 || !this.options.kernelState) return this.endpoints;
    const kernel = await this.options.kernelState().catch(() => undefined);
    return kernel && !hasIpv4(kernel) ? [...this.endpoints].reverse() : this.endpoints;
  }
}

/** Whether any link but loopback has an IPv4 address. */
function hasIpv4(kernel: KernelState): boolean {
  const loopback = new Set(kernel.links.filter((link) => link.loopback).map((link) => link.index));
  return kernel.addresses.some((address) => address.family === 'inet' && !loopback.has(address.ifindex));
}

/** Non-empty lines of a listing or multi-valued leaf. */

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
