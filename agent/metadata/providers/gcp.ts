// Google Compute Engine metadata server: one recursive GET of instance/, and long polls on it.
// Facts (cloud.google.com, "About VM metadata"): header "Metadata-Flavor: Google" both ways
// (an answer without it is not from GCE); every answer has an ETag, and
// wait_for_change=true&last_etag=E returns at once when E is stale, else blocks until a change
// or timeout_sec; the instance id exceeds 2^53; nicN's gateway, mask and MTU are given.
import { MTU_RANGE } from '../../../protocol/constants.js';
import { canonicalNetwork, formatIp, networkOf, parseIp } from '../../../protocol/ip.js';
import { withoutSecrets } from '../secret-filter.js';
import { MetadataClient, type MetadataResponse } from '../client.js';
import { MetadataError } from '../errors.js';
import type { Ipv6Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { canonicalMac, details, DocumentReader, netmaskLength } from './document-fields.js';
import { LastParse } from './last-parse.js';
import type { ClientSettings, DmiStrings, GoToolPaths, MetadataChange, Provider } from './provider.js';

export const GCP_INSTANCE_PATH = '/computeMetadata/v1/instance/?recursive=true';
const HEADERS = { 'Metadata-Flavor': 'Google' };

export interface GcpOptions extends ClientSettings {
  /** how long one change long poll may block on the server, in seconds */
  waitTimeoutSec?: number;
}

export class GcpProvider implements Provider {
  readonly name = 'gcp' as const;
  private readonly client: MetadataClient;
  private readonly parsed = new LastParse<ProviderSnapshot>();
  /** the ETag of the last document fetched, for waitForChange */
  lastEtag?: string;

  constructor(private readonly options: GcpOptions = {}) {
    this.client = new MetadataClient({ ...options, provider: 'gcp' });
  }

  detectByDmi(dmi: DmiStrings): string | undefined {
    if (dmi.sysVendor !== 'Google' && dmi.productName !== 'Google Compute Engine') return undefined;
    return `DMI names Google (sys_vendor=${JSON.stringify(dmi.sysVendor)}, product_name=${JSON.stringify(dmi.productName)})`;
  }

  async detectByProbe(signal?: AbortSignal): Promise<boolean> {
    const response = await this.client.request({ path: '/computeMetadata/v1/', headers: HEADERS, retries: 0, signal });
    return response.headers['metadata-flavor'] === 'Google';
  }

  async fetch(signal?: AbortSignal): Promise<ProviderSnapshot> {
    const response = checked(await this.client.request({ path: GCP_INSTANCE_PATH, headers: HEADERS, signal }), GCP_INSTANCE_PATH);
    const snapshot = this.parsed.get(response.body, '', () => parseGcpDocument(response.body));
    this.lastEtag = etagOf(response);
    return snapshot;
  }

  async waitForChange(lastEtag: string, signal?: AbortSignal): Promise<MetadataChange> {
    const timeoutSec = this.options.waitTimeoutSec ?? 60;
    const path = `${GCP_INSTANCE_PATH}&wait_for_change=true&last_etag=${encodeURIComponent(lastEtag)}&timeout_sec=${timeoutSec}`;
    const response = checked(
      // the server holds the answer up to timeout_sec: allow that plus the usual request time
      await this.client.request({ path, headers: HEADERS, signal, timeoutMs: timeoutSec * 1000 + (this.options.requestTimeoutMs ?? 10_000) }),
      path,
    );
    const snapshot = this.parsed.get(response.body, '', () => parseGcpDocument(response.body));
    const etag = etagOf(response);
    this.lastEtag = etag;
    return { etag, changed: etag !== lastEtag, snapshot };
  }
}

function checked(response: MetadataResponse, path: string): MetadataResponse {
  if (response.headers['metadata-flavor'] !== 'Google') {
    throw new MetadataError(
      `gcp metadata: GET ${path} answered ${response.status} without "Metadata-Flavor: Google": not the GCE metadata server, the answer is not used`,
      { provider: 'gcp', kind: 'not-genuine', status: response.status },
    );
  }
  if (response.status !== 200) {
    throw new MetadataError(`gcp metadata: GET ${path} answered ${response.status}: ${response.body.slice(0, 200)}`, {
      provider: 'gcp',
      kind: 'status',
      status: response.status,
    });
  }
  return response;
}

function etagOf(response: MetadataResponse): string {
  const etag = response.headers.etag;
  if (!etag) throw new MetadataError('gcp metadata: the answer has no ETag header; cannot watch for changes', { provider: 'gcp', kind: 'malformed', field: 'ETag' });
  return etag;
}

/**
 * JSON.parse turns 7454466891239578912 into 7454466891239579000. Integer "id" values too long
 * for a double are quoted first, so they stay text (escaped quotes inside strings never match).
 */
export function quoteLongIds(text: string): string {
  return text.replace(/("id"\s*:\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"');
}

export function parseGcpDocument(text: string): ProviderSnapshot {
  const doc = new DocumentReader('gcp');
  const root = doc.object(doc.json(quoteLongIds(text)), 'the answer');
  const idValue = root.id;
  const id = typeof idValue === 'number' && Number.isSafeInteger(idValue) ? String(idValue) : doc.string(idValue, 'id');
  if (!/^\d+$/.test(id)) doc.malformed('id', `${JSON.stringify(id)} is not a numeric instance id`);

  const interfaces = doc.array(root.networkInterfaces, 'networkInterfaces');
  if (interfaces.length === 0) doc.incomplete('networkInterfaces', 'is empty (no NIC)');
  const nics = interfaces.map((entry, i) => parseInterface(doc, entry, i));
  const seen = new Set<string>();
  for (const nic of nics) {
    if (seen.has(nic.mac)) doc.forNic(nic.mac).malformed('networkInterfaces[].mac', 'appears on two interfaces');
    seen.add(nic.mac);
  }

  const zone = lastSegment(doc.optionalString(root.zone, 'zone'));
  const model: MetadataModel = {
    instance: {
      provider: 'gcp',
      id,
      name: doc.optionalString(root.name, 'name'),
      // a zone is its region plus "-a", "-b", ...
      region: zone.replace(/-[a-z]$/, ''),
      zone,
      size: lastSegment(doc.optionalString(root.machineType, 'machineType')),
      image: lastSegment(doc.optionalString(root.image, 'image')),
      details: details({ hostname: root.hostname, cpuPlatform: root.cpuPlatform }),
    },
    nics,
  };
  const attributes = root.attributes === undefined ? {} : doc.object(root.attributes, 'attributes');
  const sshKeys = ['ssh-keys', 'sshKeys']
    .flatMap((key) => doc.optionalString(attributes[key], `attributes.${key}`).split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '');
  // the recursive listing carries no tokens, but scrub anyway: attributes hold startup scripts
  return { model, document: withoutSecrets(root), sshKeys };
}

function parseInterface(root: DocumentReader, entry: unknown, index: number): Nic {
  const field = `networkInterfaces[${index}]`;
  const iface = root.object(entry, field);
  const macText = root.string(iface.mac, `${field}.mac`);
  const mac = canonicalMac(macText) ?? root.malformed(`${field}.mac`, `${JSON.stringify(macText)} is not a MAC address`);
  const doc = root.forNic(mac);
  const ip = doc.ip(iface.ip, `${field}.ip`, 'inet');
  const gateway = doc.ip(iface.gateway, `${field}.gateway`, 'inet');
  const maskText = doc.string(iface.subnetmask, `${field}.subnetmask`);
  const prefixLength = netmaskLength(maskText) ?? doc.malformed(`${field}.subnetmask`, `${JSON.stringify(maskText)} is not a netmask`);
  let mtu: number | undefined;
  if (iface.mtu !== undefined) {
    // GCE VPCs allow 1300–8896; anything outside the link-layer range is a broken answer
    if (typeof iface.mtu !== 'number' || !Number.isInteger(iface.mtu) || iface.mtu < MTU_RANGE.min || iface.mtu > MTU_RANGE.max) {
      doc.malformed(`${field}.mtu`, `${JSON.stringify(iface.mtu)} is not an MTU (${MTU_RANGE.min}–${MTU_RANGE.max})`);
    }
    mtu = iface.mtu as number;
  }
  // alias ranges are CIDR text, forwarded IPs bare addresses; accept either form in both
  const ranges = (key: string): string[] => {
    const list = iface[key] === undefined ? [] : doc.array(iface[key], `${field}.${key}`);
    return list.map((item, i) => {
      const text = doc.string(item, `${field}.${key}[${i}]`).trim();
      const parsed = parseIp(text.split('/')[0]!);
      const cidr = parsed && !text.includes('/') ? `${text}/${parsed.family === 'inet' ? 32 : 128}` : text;
      return canonicalNetwork(cidr) ?? doc.malformed(`${field}.${key}[${i}]`, `${JSON.stringify(text)} is not an IP address or CIDR range`);
    });
  };
  const accessConfigs = iface.accessConfigs === undefined ? [] : doc.array(iface.accessConfigs, `${field}.accessConfigs`);
  const publicIpv4 = accessConfigs.flatMap((config, i) => {
    const external = doc.optionalString(doc.object(config, `${field}.accessConfigs[${i}]`).externalIp, `${field}.accessConfigs[${i}].externalIp`);
    return external === '' ? [] : [doc.ip(external, `${field}.accessConfigs[${i}].externalIp`, 'inet')];
  });
  // "34.70.1.2 (ONE_TO_ONE_NAT)": each access config's external IP with its type, as the console lists them
  const accessConfigTexts = accessConfigs.map((config) => {
    const { externalIp, type } = config as Record<string, unknown>;
    const ip = typeof externalIp === 'string' && externalIp !== '' ? externalIp : 'no external IP';
    return typeof type === 'string' && type !== '' ? `${ip} (${type})` : ip;
  });
  const ipv6: Ipv6Address[] = [];
  const ipv6s = iface.ipv6s === undefined ? [] : doc.array(iface.ipv6s, `${field}.ipv6s`);
  ipv6s.forEach((v, i) => ipv6.push({ address: doc.ip(v, `${field}.ipv6s[${i}]`, 'inet6'), prefixLength: 128 }));
  const gateway6Text = doc.optionalString(iface.gatewayIpv6, `${field}.gatewayIpv6`);

  return {
    mac,
    index,
    primary: index === 0,
    ipv4: [{ address: ip, prefixLength, primary: true }],
    publicIpv4,
    ipv6,
    subnet: { address: formatIp(networkOf(parseIp(ip)!, prefixLength)), prefixLength },
    gateway,
    ...(gateway6Text !== '' ? { gateway6: doc.ip(gateway6Text, `${field}.gatewayIpv6`, 'inet6') } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    routedRanges: [...ranges('ipAliases'), ...ranges('forwardedIps')],
    hostAddresses: true,
    details: details({ network: iface.network, dnsServers: iface.dnsServers, accessConfigs: accessConfigTexts }),
  };
}

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * The Go tool read the recursive root (`instance`, `project`, …) and served it at both paths;
 * cloud-network reads only `instance`, so `project` (its attributes may hold keys and scripts)
 * is absent.
 */
export function gcpGoToolPaths(document: unknown): GoToolPaths {
  const root = { instance: document };
  return { system: { value: root }, network: { value: root } };
}
