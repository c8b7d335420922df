// Alibaba Cloud ECS instance metadata at 100.100.100.200, in security hardening mode: a token
// from PUT /latest/api/token (X-aliyun-ecs-metadata-token-ttl-seconds, 1–21600) on every GET
// as X-aliyun-ecs-metadata-token, cached for its TTL. Facts (alibabacloud.com, "Instance
// metadata" and "Instance metadata items"; nm-cloud-setup's nmcs-provider-aliyun.c; Alibaba's
// terway; docs/imds.md): network/interfaces/macs/ lists the MACs (with or without a trailing
// "/", not in device order); per MAC private-ipv4s is a JSON list in which the primary
// (primary-ip-address) need not come first; ipv6s is a bracketed, unquoted, comma-separated
// list that answers 404 without IPv6; the gateway is given (the vSwitch's last address but
// two, not its first host); the identity document names instance, region, zone, type, image
// and primary MAC in one answer.
//
// Requests: the identity document, hostname and SSH keys once; then per refresh the MAC listing
// and, per ENI, private-ipv4s and ipv6s, the only keys of an attached ENI that can change. An
// ENI whose answers changed, and every ENI at start and on a reload, is read in full.
import { canonicalNetwork, formatIp, networkOf, parseIp, parsePrefix, prefixContains } from '../../../protocol/ip.js';
import { imdsBaseUrl, MetadataClient } from '../client.js';
import { MetadataError } from '../errors.js';
import { sleep as realSleep } from '../rate-limit.js';
import type { InstanceFacts, Ipv4Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { canonicalMac, details, DocumentReader, lines, macListing, netmaskLength } from './document-fields.js';
import { NicIndexes } from './nic-indexes.js';
import { MAX_TOKEN_TTL_S, TokenSession, type IssuedToken } from './token-session.js';
import type { ClientSettings, DmiStrings, FetchOptions, Provider, ProviderContext } from './provider.js';

/** Alibaba Cloud's metadata service address ("Instance metadata"). */
export const ALIYUN_URL = 'http://100.100.100.200';
const TOKEN_PATH = '/latest/api/token';
const META = '/latest/meta-data/';
const IDENTITY_PATH = '/latest/dynamic/instance-identity/document';
const TTL_HEADER = 'X-aliyun-ecs-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'X-aliyun-ecs-metadata-token';

export interface AliyunOptions extends ClientSettings, ProviderContext {
  /** token lifetime asked for (1–21600 s) */
  tokenTtlSeconds?: number;
  /** injectable clock for the token's expiry */
  now?: () => number;
  /** attempts for an ENI whose metadata is not complete yet, and the pause between them */
  eniAttempts?: number;
  eniRetryDelayMs?: number;
}

/** Keys of an ENI read in full besides the two a refresh compares; the IPv6 ones only when it has IPv6. */
const FULL_KEYS = ['primary-ip-address', 'netmask', 'gateway', 'vswitch-cidr-block', 'vpc-cidr-block', 'network-interface-id', 'vswitch-id', 'vpc-id'] as const;
const IPV6_KEYS = ['ipv6-gateway', 'vswitch-ipv6-cidr-block'] as const;

/** A per-ENI condition that clears by itself while an ENI attaches: worth another attempt. */
class NotReady extends Error {}

interface EniRead {
  privateIpv4s: string;
  ipv6s?: string;
  /** the NIC as listed, its index its position in the listing (stabilised later) */
  nic: Nic;
  tree: Record<string, string>;
}

interface InstanceRead {
  facts: InstanceFacts;
  primaryMac: string;
  document: Record<string, unknown>;
  sshKeys: string[];
}

export class AliyunProvider implements Provider {
  readonly name = 'aliyun' as const;
  private readonly client: MetadataClient;
  private readonly ttlSeconds: number;
  private readonly session: TokenSession;
  /** Alibaba gives no index: the first one each MAC got is kept while the VM runs */
  private readonly indexes?: NicIndexes;
  private instance?: InstanceRead;
  private enis = new Map<string, EniRead>();
  private last?: { listing: string; enis: EniRead[]; snapshot: ProviderSnapshot };

  constructor(private readonly options: AliyunOptions = {}) {
    this.client = new MetadataClient({ burst: 8, ...options, baseUrl: options.baseUrl ?? imdsBaseUrl(ALIYUN_URL), provider: 'aliyun' });
    this.ttlSeconds = options.tokenTtlSeconds ?? MAX_TOKEN_TTL_S;
    this.session = new TokenSession({
      provider: 'aliyun',
      ttlSeconds: this.ttlSeconds,
      now: options.now ?? Date.now,
      header: TOKEN_HEADER,
      issue: (signal, retries) => this.requestToken(signal, retries),
    });
    if (options.stateDir !== undefined) this.indexes = new NicIndexes(options.stateDir, { readOnly: options.stateReadOnly === true });
  }

  detectByDmi(dmi: DmiStrings): string | undefined {
    if (dmi.sysVendor === 'Alibaba Cloud') return 'sys_vendor is "Alibaba Cloud"';
    if (dmi.productName === 'Alibaba Cloud ECS') return 'product_name is "Alibaba Cloud ECS"';
    return undefined;
  }

  /** The token PUT itself, with Alibaba's own header: only its metadata service issues one. */
  detectByProbe(signal?: AbortSignal): Promise<boolean> {
    return this.session.probe(signal);
  }

  async fetch(signal?: AbortSignal, options: FetchOptions = {}): Promise<ProviderSnapshot> {
    const doc = new DocumentReader('aliyun');
    const [instance, listingText] = await Promise.all([this.instanceFacts(signal), this.get('network/interfaces/macs/', signal)]);
    const { listing, entries } = macListing(doc, listingText, instance.primaryMac, "NIC (the identity document's mac)");

    const reads = await Promise.all(entries.map((entry) => this.eni(entry, instance.primaryMac, options.thorough === true || !this.last, signal)));
    this.enis = new Map(entries.map((entry, i) => [entry, reads[i]!]));
    const last = this.last;
    if (last && last.listing === listing && last.enis.length === reads.length && last.enis.every((read, i) => read === reads[i])) return last.snapshot;

    // the primary 0, the others in the listing's order: Alibaba gives no index
    const others = reads.filter((read) => !read.nic.primary);
    const primary = reads.find((read) => read.nic.primary)!;
    const nics = [primary, ...others].map((read, index) => ({ ...read.nic, index }));
    let model: MetadataModel = { instance: instance.facts, nics };
    if (this.indexes) model = await this.indexes.stabilise(model);
    const macs = Object.fromEntries(entries.map((entry, i) => [entry, reads[i]!.tree]));
    const snapshot: ProviderSnapshot = {
      model,
      document: { 'meta-data': { ...instance.document, network: { interfaces: { macs } } } },
      sshKeys: instance.sshKeys,
    };
    this.last = { listing, enis: reads, snapshot };
    return snapshot;
  }

  private async instanceFacts(signal?: AbortSignal): Promise<InstanceRead> {
    if (this.instance) return this.instance;
    const doc = new DocumentReader('aliyun');
    const [identityText, hostname, keys] = await Promise.all([this.get(IDENTITY_PATH, signal), this.get('hostname', signal), this.publicKeys(signal)]);
    const field = 'dynamic/instance-identity/document';
    const identity = doc.object(doc.json(identityText ?? doc.incomplete(field, 'is missing (404)'), field), field);
    const text = (key: string) => doc.optionalString(identity[key], `${field}.${key}`);
    const id = text('instance-id');
    if (id === '') doc.incomplete(`${field}.instance-id`, 'is missing');
    const macText = text('mac');
    const primaryMac = canonicalMac(macText) ?? doc.malformed(`${field}.mac`, `${JSON.stringify(macText)} is not a MAC address`);
    const facts: InstanceFacts = {
      provider: 'aliyun',
      id,
      name: (hostname ?? '').trim(),
      region: text('region-id'),
      zone: text('zone-id'),
      size: text('instance-type'),
      image: text('image-id'),
      details: {},
    };
    const document: Record<string, unknown> = {
      'instance-id': id,
      'region-id': facts.region,
      'zone-id': facts.zone,
      instance: { 'instance-type': facts.size },
      'image-id': facts.image,
      mac: macText,
      ...(hostname !== undefined && { hostname: hostname.trim() }),
      ...(Object.keys(keys.tree).length > 0 && { 'public-keys': keys.tree }),
    };
    this.instance = { facts, primaryMac, document, sshKeys: keys.keys };
    return this.instance;
  }

  private async publicKeys(signal?: AbortSignal): Promise<{ keys: string[]; tree: Record<string, Record<string, string>> }> {
    const names = lines((await this.get('public-keys/', signal)) ?? '').map((entry) => entry.replace(/\/$/, ''));
    const keys = await Promise.all(names.map((name) => this.get(`public-keys/${name}/openssh-key`, signal)));
    const tree: Record<string, Record<string, string>> = {};
    names.forEach((name, i) => {
      if (keys[i] !== undefined) tree[name] = { 'openssh-key': keys[i]! };
    });
    return { keys: keys.flatMap((key) => lines(key ?? '')), tree };
  }

  /** One ENI: the last read when its two address keys answer as before, else a full read, retried while it attaches. */
  private async eni(listedAs: string, primaryMac: string, full: boolean, signal?: AbortSignal): Promise<EniRead> {
    const base = `network/interfaces/macs/${listedAs}/`;
    const cached = this.enis.get(listedAs);
    const attempts = this.options.eniAttempts ?? 5;
    const sleep = this.options.sleep ?? realSleep;
    for (let attempt = 1; ; attempt++) {
      try {
        const [privateIpv4s, ipv6s] = await Promise.all([this.get(base + 'private-ipv4s', signal), this.get(base + 'ipv6s', signal)]);
        if (privateIpv4s === undefined) throw new NotReady(`${base}private-ipv4s answered 404`);
        if (cached && !full && attempt === 1 && cached.privateIpv4s === privateIpv4s && cached.ipv6s === ipv6s) return cached;
        return await this.readEni(listedAs, primaryMac, privateIpv4s, ipv6s, signal);
      } catch (error) {
        if (!(error instanceof NotReady)) throw error;
        const mac = canonicalMac(listedAs)!;
        if (attempt >= attempts) {
          throw new MetadataError(`aliyun metadata: NIC ${mac}: ${error.message} after ${attempts} attempts; the ENI may still be attaching, the answer is not used`, {
            provider: 'aliyun',
            kind: 'incomplete',
            nic: mac,
          });
        }
        await sleep(this.options.eniRetryDelayMs ?? 1_000, signal);
      }
    }
  }

  private async readEni(listedAs: string, primaryMac: string, privateIpv4s: string, ipv6s: string | undefined, signal?: AbortSignal): Promise<EniRead> {
    const mac = canonicalMac(listedAs)!;
    const doc = new DocumentReader('aliyun', mac);
    const base = `network/interfaces/macs/${listedAs}/`;
    const keys: readonly string[] = ipv6s === undefined ? FULL_KEYS : [...FULL_KEYS, ...IPV6_KEYS];
    const values = await Promise.all(keys.map((key) => this.get(base + key, signal)));
    const tree: Record<string, string> = { 'private-ipv4s': privateIpv4s, ...(ipv6s !== undefined && { ipv6s }) };
    keys.forEach((key, i) => {
      if (values[i] !== undefined) tree[key] = values[i]!;
    });
    for (const key of ['primary-ip-address', 'netmask', 'gateway', 'vswitch-cidr-block']) {
      if (tree[key] === undefined) throw new NotReady(`${base}${key} answered 404`);
    }

    const cidrText = tree['vswitch-cidr-block']!.trim();
    const vswitch = parsePrefix(cidrText);
    if (!vswitch || vswitch.family !== 'inet') doc.malformed(`${base}vswitch-cidr-block`, `${JSON.stringify(cidrText)} is not an IPv4 CIDR block`);
    const network = canonicalNetwork(cidrText)!;
    const prefixLength = vswitch!.prefixLength;
    const maskLength = netmaskLength(tree.netmask!.trim());
    if (maskLength !== prefixLength) doc.malformed(`${base}netmask`, `${JSON.stringify(tree.netmask!.trim())} does not match the vSwitch ${network}`);
    const inside = (key: string) => {
      const address = doc.parsedIp(tree[key], `${base}${key}`, 'inet');
      if (!prefixContains(vswitch!, address)) doc.malformed(`${base}${key}`, `${formatIp(address)} is outside the vSwitch ${network}`);
      return formatIp(address);
    };
    const primaryIp = inside('primary-ip-address');
    const gateway = inside('gateway');

    const listed = parseIpv4List(doc, privateIpv4s, `${base}private-ipv4s`);
    if (listed.length === 0) doc.incomplete(`${base}private-ipv4s`, 'is empty (no IPv4 address)');
    for (const address of listed) {
      if (!prefixContains(vswitch!, parseIp(address)!)) doc.malformed(`${base}private-ipv4s`, `${address} is outside the vSwitch ${network}`);
    }
    if (!listed.includes(primaryIp)) doc.malformed(`${base}private-ipv4s`, `does not list primary-ip-address ${primaryIp}`);
    // the primary first, whatever order the list has
    const ipv4: Ipv4Address[] = [primaryIp, ...listed.filter((address) => address !== primaryIp)].map((address) => ({ address, prefixLength, primary: address === primaryIp }));

    const v6Addresses = ipv6s === undefined ? [] : parseIpv6List(doc, ipv6s, `${base}ipv6s`);
    let v6Length = 128;
    if (v6Addresses.length > 0 && tree['vswitch-ipv6-cidr-block'] !== undefined) {
      const v6Prefix = parsePrefix(tree['vswitch-ipv6-cidr-block'].trim());
      if (!v6Prefix || v6Prefix.family !== 'inet6') doc.malformed(`${base}vswitch-ipv6-cidr-block`, `${JSON.stringify(tree['vswitch-ipv6-cidr-block'])} is not an IPv6 CIDR block`);
      v6Length = v6Prefix!.prefixLength;
    }
    const gateway6 = v6Addresses.length > 0 && tree['ipv6-gateway'] !== undefined ? doc.ip(tree['ipv6-gateway'], `${base}ipv6-gateway`, 'inet6') : undefined;

    const nic: Nic = {
      mac,
      index: 0,
      primary: mac === primaryMac,
      ipv4,
      publicIpv4: [],
      ipv6: v6Addresses.map((address) => ({ address, prefixLength: v6Length })),
      subnet: { address: formatIp(networkOf(vswitch!, prefixLength)), prefixLength },
      gateway,
      ...(gateway6 !== undefined && { gateway6 }),
      routedRanges: [],
      hostAddresses: false,
      details: details({ 'network-interface-id': tree['network-interface-id'], 'vpc-id': tree['vpc-id'], 'vswitch-id': tree['vswitch-id'], 'vpc-cidr-block': tree['vpc-cidr-block'] }),
    };
    return { privateIpv4s, ...(ipv6s !== undefined && { ipv6s }), nic, tree };
  }

  /** A meta-data leaf or listing (or an absolute /latest/ path): its text, or undefined for 404. Anything else is an error. */
  private get(path: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.session.get(path.startsWith('/') ? path : META + path, signal);
  }

  /** The token PUT, with Alibaba's own header. */
  private async requestToken(signal?: AbortSignal, retries?: number): Promise<IssuedToken> {
    const response = await this.client.request({
      method: 'PUT',
      path: TOKEN_PATH,
      headers: { [TTL_HEADER]: String(this.ttlSeconds) },
      signal,
      ...(retries !== undefined && { retries }),
    });
    const value = response.body.trim();
    if (response.status !== 200 || !/^[A-Za-z0-9+/=_-]{16,512}$/.test(value)) {
      throw new MetadataError(
        `aliyun metadata: the token request for security hardening mode (PUT ${TOKEN_PATH}) answered ${response.status}${value === '' ? ' with no token' : response.status === 200 ? ' with something that is not a token' : ''}; cloud-network reads the metadata in hardening mode only — check the instance's metadata access settings (HttpTokens, HttpEndpoint)`,
        { provider: 'aliyun', kind: 'status', status: response.status, field: 'api/token' },
      );
    }
    return { value, client: this.client };
  }
}

/** private-ipv4s: a JSON list of IPv4 texts, ["172.16.2.21","172.16.2.20"]. */
function parseIpv4List(doc: DocumentReader, text: string, field: string): string[] {
  const list = doc.array(doc.json(text.trim(), field), field);
  return list.map((item, i) => doc.ip(item, `${field}[${i}]`, 'inet'));
}

/** ipv6s: "[2408:4005::1,2408:4005::2]", unquoted (quotes around an entry are tolerated). */
function parseIpv6List(doc: DocumentReader, text: string, field: string): string[] {
  const match = /^\[(.*)\]$/s.exec(text.trim());
  if (!match) doc.malformed(field, `${JSON.stringify(text.slice(0, 60))} is not a bracketed list`);
  const inner = match![1]!.trim();
  if (inner === '') return [];
  return inner.split(',').map((item, i) => doc.ip(item.trim().replace(/^"(.*)"$/, '$1'), `${field}[${i}]`, 'inet6'));
}

/** Non-empty lines of a listing. */
