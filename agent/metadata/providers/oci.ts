// Oracle Cloud Infrastructure IMDS v2: GET /opc/v2/vnics/ per refresh, /opc/v2/instance/ once.
// Facts (docs.oracle.com, "Getting Instance Metadata"; nm-cloud-setup's nmcs-provider-oci.c;
// cloud-init's DataSourceOracle; docs/imds.md): every request carries "Authorization: Bearer
// Oracle" (rejected without it); /opc/v1 and /openstack answer 404 once legacy endpoints are
// disabled, so v2 only is used; the VNIC list has the primary VNIC first and one privateIp per
// VNIC, the VNIC's primary private IP: secondary private IPs are not in the IMDS at all, so only
// what it lists is configured; MACs come upper case; a VNIC list whose entries carry nicIndex
// is a bare-metal instance, where a VNIC with a vlanTag other than 0 rides on a VLAN of physical
// NIC nicIndex and needs a VLAN link, which cloud-network does not create (it is reported).
import { canonicalNetwork, formatIp, networkOf, parsePrefix, prefixContains } from '../../../protocol/ip.js';
import { withoutSecrets } from '../secret-filter.js';
import { MetadataClient, type MetadataResponse } from '../client.js';
import { MetadataError } from '../errors.js';
import type { InstanceFacts, Ipv6Address, MetadataModel, Nic, ProviderSnapshot } from '../model.js';
import { canonicalMac, details, DocumentReader } from './document-fields.js';
import { LastParse } from './last-parse.js';
import { NicIndexes } from './nic-indexes.js';
import type { ClientSettings, DmiStrings, Provider, ProviderContext } from './provider.js';

export const OCI_INSTANCE_PATH = '/opc/v2/instance/';
export const OCI_VNICS_PATH = '/opc/v2/vnics/';
const HEADERS = { Authorization: 'Bearer Oracle' };
/** The chassis asset tag of every OCI VM and bare-metal instance (cloud-init's DataSourceOracle). */
export const OCI_ASSET_TAG = 'OracleCloud.com';

export interface OciOptions extends ClientSettings, ProviderContext {}

interface InstanceRead {
  facts: InstanceFacts;
  document: unknown;
  sshKeys: string[];
}

export class OciProvider implements Provider {
  readonly name = 'oci' as const;
  private readonly client: MetadataClient;
  private readonly parsed = new LastParse<{ nics: Nic[]; vnics: unknown }>();
  /** the list's order can shift when a VNIC in the middle is detached: the first index each MAC got is kept */
  private readonly indexes?: NicIndexes;
  private instance?: InstanceRead;
  private last?: { parsed: { nics: Nic[]; vnics: unknown }; snapshot: ProviderSnapshot };

  constructor(private readonly options: OciOptions = {}) {
    this.client = new MetadataClient({ ...options, provider: 'oci' });
    if (options.stateDir !== undefined) this.indexes = new NicIndexes(options.stateDir, { readOnly: options.stateReadOnly === true });
  }

  detectByDmi(dmi: DmiStrings): string | undefined {
    return dmi.chassisAssetTag === OCI_ASSET_TAG ? `chassis_asset_tag is "${OCI_ASSET_TAG}"` : undefined;
  }

  async detectByProbe(signal?: AbortSignal): Promise<boolean> {
    const response = await this.client.request({ path: OCI_INSTANCE_PATH, headers: HEADERS, retries: 0, signal });
    if (response.status !== 200) return false;
    try {
      const body = JSON.parse(response.body) as { id?: unknown };
      return typeof body.id === 'string' && body.id.startsWith('ocid1.instance.');
    } catch {
      return false;
    }
  }

  async fetch(signal?: AbortSignal): Promise<ProviderSnapshot> {
    const [instance, response] = await Promise.all([this.instanceFacts(signal), this.get(OCI_VNICS_PATH, signal)]);
    const parsed = this.parsed.get(response.body, '', () => parseOciVnics(response.body));
    // an unchanged list comes back as the same snapshot
    if (this.last && this.last.parsed === parsed) return this.last.snapshot;
    let model: MetadataModel = { instance: instance.facts, nics: parsed.nics };
    if (this.indexes) model = await this.indexes.stabilise(model);
    const snapshot: ProviderSnapshot = { model, document: { instance: instance.document, vnics: parsed.vnics }, sshKeys: instance.sshKeys };
    this.last = { parsed, snapshot };
    return snapshot;
  }

  /** The instance document: id, name, region, shape, image and keys do not change while the VM runs. */
  private async instanceFacts(signal?: AbortSignal): Promise<InstanceRead> {
    if (this.instance) return this.instance;
    const response = await this.get(OCI_INSTANCE_PATH, signal);
    this.instance = parseOciInstance(response.body);
    return this.instance;
  }

  private async get(path: string, signal?: AbortSignal): Promise<MetadataResponse> {
    const response = await this.client.request({ path, headers: HEADERS, signal });
    if (response.status === 200) return response;
    const hint =
      response.status === 404
        ? ' (the IMDS v2 endpoint is missing: an image or instance without IMDS v2?)'
        : response.status === 401 || response.status === 403
          ? ' although it carried "Authorization: Bearer Oracle"'
          : '';
    throw new MetadataError(`oci metadata: GET ${path} answered ${response.status}${hint}: ${response.body.slice(0, 200)}`, {
      provider: 'oci',
      kind: 'status',
      status: response.status,
    });
  }
}

/** /opc/v2/instance/ as text → the instance facts, the document without secrets (user_data), the SSH keys. */
export function parseOciInstance(text: string): InstanceRead {
  const doc = new DocumentReader('oci');
  const root = doc.object(doc.json(text, 'opc/v2/instance'), 'opc/v2/instance');
  const id = doc.string(root.id, 'instance.id');
  if (!id.startsWith('ocid1.instance.')) doc.malformed('instance.id', `${JSON.stringify(id)} is not an instance OCID`);
  const ad = doc.optionalString(root.availabilityDomain, 'instance.availabilityDomain');
  const metadata = root.metadata === undefined ? {} : doc.object(root.metadata, 'instance.metadata');
  const sshKeys = doc
    .optionalString(metadata.ssh_authorized_keys, 'instance.metadata.ssh_authorized_keys')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const facts: InstanceFacts = {
    provider: 'oci',
    id,
    name: doc.optionalString(root.displayName, 'instance.displayName'),
    region: doc.optionalString(root.canonicalRegionName, 'instance.canonicalRegionName') || doc.optionalString(root.region, 'instance.region'),
    // "qIZq:PHX-AD-1": the tenancy prefix differs between tenancies, the rest names the AD
    zone: ad.slice(ad.indexOf(':') + 1),
    size: doc.optionalString(root.shape, 'instance.shape'),
    image: doc.optionalString(root.image, 'instance.image'),
    details: details({ compartmentId: root.compartmentId, availabilityDomain: ad, faultDomain: root.faultDomain }),
  };
  return { facts, document: withoutSecrets(root), sshKeys };
}

/** /opc/v2/vnics/ as text → one NIC per VNIC, the primary (first) index 0; throws a MetadataError on any defect. */
export function parseOciVnics(text: string): { nics: Nic[]; vnics: unknown } {
  const doc = new DocumentReader('oci');
  const vnics = doc.array(doc.json(text, 'opc/v2/vnics'), 'opc/v2/vnics');
  if (vnics.length === 0) doc.incomplete('opc/v2/vnics', 'is empty (no VNIC)');
  const bareMetal = doc.object(vnics[0], 'vnics[0]').nicIndex !== undefined;
  const nics = vnics.map((entry, i) => parseVnic(doc, entry, i, bareMetal));
  const seen = new Set<string>();
  for (const nic of nics) {
    if (seen.has(nic.mac)) doc.forNic(nic.mac).malformed('vnics[].macAddr', 'appears on two VNICs');
    seen.add(nic.mac);
  }
  return { nics, vnics: withoutSecrets(vnics) };
}

function parseVnic(root: DocumentReader, entry: unknown, i: number, bareMetal: boolean): Nic {
  const field = `vnics[${i}]`;
  const vnic = root.object(entry, field);
  const macText = root.string(vnic.macAddr, `${field}.macAddr`);
  const mac = canonicalMac(macText) ?? root.malformed(`${field}.macAddr`, `${JSON.stringify(macText)} is not a MAC address`);
  const doc = root.forNic(mac);
  const vnicId = doc.string(vnic.vnicId, `${field}.vnicId`);
  if (!vnicId.startsWith('ocid1.vnic.')) doc.malformed(`${field}.vnicId`, `${JSON.stringify(vnicId)} is not a VNIC OCID`);
  const vlanTag = vnic.vlanTag === undefined && !bareMetal ? undefined : integer(doc, vnic.vlanTag, `${field}.vlanTag`, 4094);
  const nicIndex = vnic.nicIndex === undefined ? undefined : integer(doc, vnic.nicIndex, `${field}.nicIndex`, 31);
  if (bareMetal !== (nicIndex !== undefined)) {
    doc.malformed(`${field}.nicIndex`, bareMetal ? 'is missing on a bare-metal instance (the first VNIC has one)' : 'is present though the first VNIC has none');
  }

  const cidrText = doc.string(vnic.subnetCidrBlock, `${field}.subnetCidrBlock`).trim();
  const subnetPrefix = parsePrefix(cidrText);
  if (!subnetPrefix || subnetPrefix.family !== 'inet') doc.malformed(`${field}.subnetCidrBlock`, `${JSON.stringify(cidrText)} is not an IPv4 CIDR block`);
  const subnet = canonicalNetwork(cidrText)!;
  const prefixLength = subnetPrefix!.prefixLength;
  const privateIp = doc.parsedIp(vnic.privateIp, `${field}.privateIp`, 'inet');
  if (!prefixContains(subnetPrefix!, privateIp)) doc.malformed(`${field}.privateIp`, `${formatIp(privateIp)} is outside the subnet ${subnet}`);
  const gateway = doc.parsedIp(vnic.virtualRouterIp, `${field}.virtualRouterIp`, 'inet');
  if (!prefixContains(subnetPrefix!, gateway)) doc.malformed(`${field}.virtualRouterIp`, `${formatIp(gateway)} is outside the subnet ${subnet}`);

  const v6List = vnic.ipv6Addresses === undefined ? [] : doc.array(vnic.ipv6Addresses, `${field}.ipv6Addresses`);
  let v6Length = 128;
  if (v6List.length > 0 && vnic.ipv6SubnetCidrBlock !== undefined) {
    const v6Text = doc.string(vnic.ipv6SubnetCidrBlock, `${field}.ipv6SubnetCidrBlock`).trim();
    const v6Prefix = parsePrefix(v6Text);
    if (!v6Prefix || v6Prefix.family !== 'inet6') doc.malformed(`${field}.ipv6SubnetCidrBlock`, `${JSON.stringify(v6Text)} is not an IPv6 CIDR block`);
    v6Length = v6Prefix!.prefixLength;
  }
  const ipv6: Ipv6Address[] = v6List.map((address, j) => ({ address: doc.ip(address, `${field}.ipv6Addresses[${j}]`, 'inet6'), prefixLength: v6Length }));
  const gateway6 = ipv6.length > 0 && vnic.ipv6VirtualRouterIp !== undefined ? doc.ip(vnic.ipv6VirtualRouterIp, `${field}.ipv6VirtualRouterIp`, 'inet6') : undefined;

  return {
    mac,
    index: i,
    primary: i === 0,
    ipv4: [{ address: formatIp(privateIp), prefixLength, primary: true }],
    publicIpv4: [],
    ipv6,
    subnet: { address: formatIp(networkOf(subnetPrefix!, prefixLength)), prefixLength },
    gateway: formatIp(gateway),
    ...(gateway6 !== undefined && { gateway6 }),
    routedRanges: [],
    hostAddresses: false,
    // vlanTag and nicIndex mean something to the guest only on bare metal
    details: details({ vnicId, ...(bareMetal && { nicIndex, vlanTag }) }),
    ...(bareMetal && vlanTag !== 0 && {
      unhandled: `a VLAN VNIC of a bare-metal instance (vlanTag ${vlanTag} on physical NIC ${nicIndex}): cloud-network does not create VLAN links; configure it with Oracle's tools or by hand`,
    }),
  };
}

function integer(doc: DocumentReader, value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) doc.malformed(field, `${JSON.stringify(value)} is not a number from 0 to ${max}`);
  return value as number;
}
