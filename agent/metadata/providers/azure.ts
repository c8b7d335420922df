// Azure Instance Metadata Service: one GET of the instance document.
// Facts (learn.microsoft.com, "Azure Instance Metadata Service"): header "Metadata: true";
// every primitive is a string; MACs are 12 upper-case hex digits; the first ipAddress of an
// interface is its primary IP configuration; no gateway is given (the subnet's first host);
// the order of interfaces is not guaranteed; 429 past 5 requests/s per VM.
import { MAIN_TABLE } from '../../../protocol/constants.js';
import { firstHost, formatIp, parsePrefix, prefixContains } from '../../../protocol/ip.js';
import type { KernelState } from '../../../netlink/types.js';
import { withoutSecrets } from '../secret-filter.js';
import { MetadataClient } from '../client.js';
import { MetadataError } from '../errors.js';
import type { Ipv4Address, Ipv6Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { LastParse } from './last-parse.js';
import { canonicalMac, details, DocumentReader } from './document-fields.js';
import { NicIndexes } from './nic-indexes.js';
import type { ClientSettings, DmiStrings, GoToolPaths, Provider, ProviderContext } from './provider.js';

export const AZURE_INSTANCE_PATH = '/metadata/instance?api-version=2021-02-01';
const HEADERS = { Metadata: 'true' };

/** Azure's IPv6 default gateway on every VNet: a fixed link-local address (Azure IPv6 docs). */
export const AZURE_GATEWAY6 = 'fe80::1234:5678:9abc';

/** Azure's fixed chassis asset tag on every VM (Azure "Detect Azure VMs" / cloud-init DataSourceAzure). */
export const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

export interface AzureOptions extends ClientSettings, ProviderContext {
  /**
   * The primary NIC's MAC (the link DHCP configured); by default primaryMacOf(kernelState()).
   * When it names no NIC in the document, the first listed interface is taken (what cloud-init
   * does), though Azure promises no order.
   */
  primaryMac?: () => string | undefined | Promise<string | undefined>;
}

/**
 * Azure's primary NIC: its metadata says which it is nowhere and lists NICs in no guaranteed
 * order, but it is the one DHCP configured, so its link holds main's IPv4 default route.
 */
export function primaryMacOf(kernel: KernelState): string | undefined {
  const route = kernel.routes.find((r) => r.table === MAIN_TABLE && r.destination === '0.0.0.0/0' && r.ifindex !== undefined);
  return kernel.links.find((l) => l.index === route?.ifindex)?.mac;
}

export class AzureProvider implements Provider {
  readonly name = 'azure' as const;
  private readonly client: MetadataClient;
  private readonly parsed = new LastParse<ProviderSnapshot>();
  /** Azure gives no NIC index: the first one each MAC got is kept while the VM runs */
  private readonly indexes?: NicIndexes;
  private stabilised?: { from: ProviderSnapshot; to: ProviderSnapshot };

  constructor(private readonly options: AzureOptions = {}) {
    // under Azure's 5/s with margin for requests in flight when the window turns
    this.client = new MetadataClient({ requestsPerSecond: 4, ...options, provider: 'azure' });
    if (options.stateDir !== undefined) this.indexes = new NicIndexes(options.stateDir, { readOnly: options.stateReadOnly === true });
  }

  detectByDmi(dmi: DmiStrings): string | undefined {
    // "Microsoft Corporation" + "Virtual Machine" alone is any Hyper-V guest; the asset tag is Azure's own
    return dmi.chassisAssetTag === AZURE_ASSET_TAG ? `chassis_asset_tag is Azure's ${AZURE_ASSET_TAG}` : undefined;
  }

  async detectByProbe(signal?: AbortSignal): Promise<boolean> {
    const response = await this.client.request({ path: AZURE_INSTANCE_PATH, headers: HEADERS, retries: 0, signal });
    if (response.status !== 200 || !String(response.headers['content-type'] ?? '').includes('json')) return false;
    try {
      const body = JSON.parse(response.body) as { compute?: unknown; network?: unknown };
      return typeof body.compute === 'object' && typeof body.network === 'object';
    } catch {
      return false;
    }
  }

  async fetch(signal?: AbortSignal): Promise<ProviderSnapshot> {
    // the kernel is read while the metadata service answers
    let primaryMac: Promise<string | undefined> | undefined;
    const readKernel = () => {
      primaryMac ??= this.primaryMac();
      primaryMac.catch(() => undefined); // awaited below, unless the request fails
    };
    const response = await this.client.request({ path: AZURE_INSTANCE_PATH, headers: HEADERS, signal, onSent: readKernel });
    if (response.status !== 200) {
      throw new MetadataError(`azure metadata: GET ${AZURE_INSTANCE_PATH} answered ${response.status}: ${response.body.slice(0, 200)}`, {
        provider: 'azure',
        kind: 'status',
        status: response.status,
      });
    }
    readKernel();
    const mac = await primaryMac;
    const snapshot = this.parsed.get(response.body, mac ?? '', () => parseAzureDocument(response.body, mac));
    if (!this.indexes) return snapshot;
    // the same snapshot (an unchanged document) keeps the same stable one
    if (snapshot !== this.stabilised?.from) this.stabilised = { from: snapshot, to: { ...snapshot, model: await this.indexes.stabilise(snapshot.model) } };
    return this.stabilised.to;
  }

  private async primaryMac(): Promise<string | undefined> {
    const { primaryMac, kernelState } = this.options;
    if (primaryMac) return primaryMac();
    return kernelState ? primaryMacOf(await kernelState()) : undefined;
  }
}

/** The instance document as text → the neutral model; throws a MetadataError on any defect. */
export function parseAzureDocument(text: string, primaryMacHint?: string): ProviderSnapshot {
  const doc = new DocumentReader('azure');
  const root = doc.object(doc.json(text), 'the answer');
  const compute = doc.object(root.compute, 'compute');
  const network = doc.object(root.network, 'network');
  const interfaces = doc.array(network.interface, 'network.interface');
  if (interfaces.length === 0) doc.incomplete('network.interface', 'is empty (no NIC)');

  const parsed = interfaces.map((entry, i) => parseInterface(doc, entry, `network.interface[${i}]`));
  const seen = new Set<string>();
  for (const nic of parsed) {
    if (seen.has(nic.mac)) doc.forNic(nic.mac).malformed('network.interface[].macAddress', 'appears on two interfaces');
    seen.add(nic.mac);
  }
  const hint = primaryMacHint && canonicalMac(primaryMacHint);
  const primaryMac = parsed.some((n) => n.mac === hint) ? hint! : parsed[0]!.mac;
  // Azure gives no index: the primary is 0, the others follow in MAC order (stable while the
  // VM runs; nic-indexes.ts keeps them stable when NICs come and go)
  const others = parsed.filter((n) => n.mac !== primaryMac).sort((a, b) => (a.mac < b.mac ? -1 : 1));
  const indexOf = new Map([primaryMac, ...others.map((n) => n.mac)].map((mac, i) => [mac, i]));
  const nics: Nic[] = parsed.map((nic) => ({ ...nic, index: indexOf.get(nic.mac)!, primary: nic.mac === primaryMac }));

  const image = doc.object(compute.storageProfile ?? {}, 'compute.storageProfile');
  const reference = doc.object(image.imageReference ?? {}, 'compute.storageProfile.imageReference');
  const imageText = ['publisher', 'offer', 'sku', 'version'].map((k) => doc.optionalString(reference[k], `compute.storageProfile.imageReference.${k}`));
  const vmId = doc.string(compute.vmId, 'compute.vmId');
  if (vmId === '') doc.incomplete('compute.vmId', 'is empty');
  const model: MetadataModel = {
    instance: {
      provider: 'azure',
      id: vmId,
      name: doc.optionalString(compute.name, 'compute.name'),
      region: doc.optionalString(compute.location, 'compute.location'),
      zone: doc.optionalString(compute.zone, 'compute.zone'),
      size: doc.optionalString(compute.vmSize, 'compute.vmSize'),
      image: imageText.every((p) => p !== '') ? imageText.join(':') : doc.optionalString(reference.id, 'compute.storageProfile.imageReference.id'),
      details: details({
        subscriptionId: compute.subscriptionId,
        resourceGroupName: compute.resourceGroupName,
        vmScaleSetName: compute.vmScaleSetName,
        platformFaultDomain: compute.platformFaultDomain,
        platformUpdateDomain: compute.platformUpdateDomain,
      }),
    },
    nics,
  };
  const keys = compute.publicKeys === undefined ? [] : doc.array(compute.publicKeys, 'compute.publicKeys');
  const sshKeys = keys
    .map((k, i) => doc.optionalString(doc.object(k, `compute.publicKeys[${i}]`).keyData, `compute.publicKeys[${i}].keyData`).trim())
    .filter((k) => k !== '');
  return { model, document: withoutSecrets(root), sshKeys };
}

type ParsedNic = Omit<Nic, 'index' | 'primary'>;

function parseInterface(root: DocumentReader, entry: unknown, field: string): ParsedNic {
  const iface = root.object(entry, field);
  const macText = root.string(iface.macAddress, `${field}.macAddress`);
  const mac = canonicalMac(macText);
  if (!mac || !/^[0-9A-Fa-f]{12}$/.test(macText)) root.malformed(`${field}.macAddress`, `${JSON.stringify(macText)} is not 12 hex digits`);
  const doc = root.forNic(mac!);
  const ipv4 = doc.object(iface.ipv4, `${field}.ipv4`);
  const subnets = doc.array(ipv4.subnet, `${field}.ipv4.subnet`);
  if (subnets.length === 0) doc.incomplete(`${field}.ipv4.subnet`, 'is empty (no subnet)');
  const subnet = doc.object(subnets[0], `${field}.ipv4.subnet[0]`);
  const subnetAddress = doc.ip(subnet.address, `${field}.ipv4.subnet[0].address`, 'inet');
  const prefixLength = doc.prefixLength(subnet.prefix, `${field}.ipv4.subnet[0].prefix`, 32);
  const subnetPrefix = parsePrefix(`${subnetAddress}/${prefixLength}`)!;

  const entries = doc.array(ipv4.ipAddress, `${field}.ipv4.ipAddress`);
  if (entries.length === 0) doc.incomplete(`${field}.ipv4.ipAddress`, 'is empty (no IPv4 address)');
  const addresses: Ipv4Address[] = [];
  const publicIpv4: string[] = [];
  entries.forEach((e, i) => {
    const at = `${field}.ipv4.ipAddress[${i}]`;
    const item = doc.object(e, at);
    // parsed once: the subnet check and the canonical text both need it
    const parsed = doc.parsedIp(item.privateIpAddress, `${at}.privateIpAddress`, 'inet');
    const address = formatIp(parsed);
    if (!prefixContains(subnetPrefix, parsed)) {
      doc.malformed(`${at}.privateIpAddress`, `${address} is outside the NIC's subnet ${subnetAddress}/${prefixLength}`);
    }
    addresses.push({ address, prefixLength, primary: i === 0 });
    const publicText = doc.optionalString(item.publicIpAddress, `${at}.publicIpAddress`);
    if (publicText !== '') publicIpv4.push(doc.ip(publicText, `${at}.publicIpAddress`, 'inet'));
  });

  const ipv6Block = iface.ipv6 === undefined ? {} : doc.object(iface.ipv6, `${field}.ipv6`);
  const ipv6Entries = ipv6Block.ipAddress === undefined ? [] : doc.array(ipv6Block.ipAddress, `${field}.ipv6.ipAddress`);
  // Azure's DHCPv6 hands out single addresses (/128); the VNet router is reached on-link
  const ipv6: Ipv6Address[] = ipv6Entries.map((e, i) => ({
    address: doc.ip(doc.object(e, `${field}.ipv6.ipAddress[${i}]`).privateIpAddress, `${field}.ipv6.ipAddress[${i}].privateIpAddress`, 'inet6'),
    prefixLength: 128,
  }));

  return {
    mac: mac!,
    ipv4: addresses,
    publicIpv4,
    ipv6,
    subnet: { address: subnetAddress, prefixLength },
    gateway: firstHost(`${subnetAddress}/${prefixLength}`)!,
    ...(ipv6.length > 0 ? { gateway6: AZURE_GATEWAY6 } : {}),
    routedRanges: [],
    hostAddresses: false,
    // Azure's interface entry names no NIC resource, subnet or network: nothing more to show
    details: {},
  };
}

/** The Go tool served Azure's whole instance document at both paths (scripts read `.network.interface`). */
export function azureGoToolPaths(document: unknown): GoToolPaths {
  return { system: { value: document }, network: { value: document } };
}
