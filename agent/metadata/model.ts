// The provider-neutral model of a VM's network, as read from its cloud's metadata service.
// Providers produce it; the planner, the state files and the REST API consume it. Nothing
// cloud-specific and nothing secret (credentials, tokens, keys, signatures) belongs here.

export type ProviderName = 'azure' | 'ec2' | 'gcp' | 'oci' | 'aliyun';

export interface InstanceFacts {
  provider: ProviderName;
  /** Azure vmId, EC2 instance-id, GCP id (kept as text: it exceeds 2^53), OCI instance OCID, Alibaba instance-id */
  id: string;
  name: string;
  /** Azure location, EC2 placement/region, GCP region (from the zone), OCI canonicalRegionName, Alibaba region-id */
  region: string;
  zone: string;
  /** Azure vmSize, EC2 instance-type, GCP machine type, OCI shape, Alibaba instance-type */
  size: string;
  image: string;
  /**
   * The provider's own facts about the instance that fit no neutral field, under the provider's
   * own names (Azure subscriptionId, resourceGroupName; OCI compartmentId, availabilityDomain),
   * as text; {} when none. Shown by cnctl, never used to plan, never a secret.
   */
  details: Record<string, string>;
}

export interface Ipv4Address {
  address: string;
  prefixLength: number;
  /** the NIC's primary IP (Azure: first ipAddress; EC2: first of local-ipv4s; GCP: ip; OCI: privateIp; Alibaba: primary-ip-address) */
  primary: boolean;
}

export interface Ipv6Address {
  address: string;
  prefixLength: number;
}

export interface Nic {
  /** lower-case, colon-separated: 00:0d:3a:5d:2d:66 */
  mac: string;
  /**
   * A stable index for this NIC, used for its route table (RouteTableBase + index).
   * EC2: network-card * 32 + device-number; GCP: the N of nicN; Azure: position after
   * sorting by MAC, with the primary first (Azure does not guarantee an order); OCI and
   * Alibaba: position in the metadata's list, the primary first. Azure's, OCI's and Alibaba's
   * are kept per MAC while the VM runs (providers/nic-indexes.ts).
   */
  index: number;
  /** the VM's primary NIC (the one DHCP configures) */
  primary: boolean;
  /** the NIC's IPv4 addresses, primary first; empty on an IPv6-only subnet */
  ipv4: Ipv4Address[];
  publicIpv4: string[];
  ipv6: Ipv6Address[];
  /** the IPv4 subnet, e.g. { address: '10.4.0.0', prefixLength: 24 }; absent when the NIC has no IPv4 */
  subnet?: { address: string; prefixLength: number };
  /** the IPv4 gateway; absent when the NIC has no IPv4 */
  gateway?: string;
  /** IPv6 gateway when the metadata gives one or it can be derived; else undefined */
  gateway6?: string;
  /** MTU from metadata (GCP); undefined when the cloud does not say */
  mtu?: number;
  /**
   * Ranges routed to this NIC that are not interface addresses: GCP ipAliases and
   * forwardedIps, EC2 ipv4-prefix / ipv6-prefix delegations. CIDR text.
   */
  routedRanges: string[];
  /**
   * GCP: addresses are /32 with a host route to the gateway (GCP's own guidance);
   * other clouds: addresses carry the subnet prefix.
   */
  hostAddresses: boolean;
  /**
   * Why cloud-network leaves this NIC alone, when it does (an OCI bare-metal VNIC that needs a
   * VLAN link): the NIC is reported with this reason and nothing is planned for it.
   */
  unhandled?: string;
  /**
   * The provider's own facts about the NIC, under its own names (EC2 interface-id, subnet-id,
   * vpc-id, security-group-ids; GCP network, dnsServers, accessConfigs; OCI vnicId; Alibaba
   * network-interface-id, vswitch-id, vpc-id), lists joined with ", "; {} when none. Shown by
   * cnctl, never used to plan, never a secret.
   */
  details: Record<string, string>;
}

export interface MetadataModel {
  instance: InstanceFacts;
  nics: Nic[];
}

/** What a provider returns: the neutral model plus the provider's own documents. */
export interface ProviderSnapshot {
  model: MetadataModel;
  /**
   * The provider's own metadata document with secrets removed, for the older Go tool's
   * /api/cloud/* endpoints (Azure: the instance document; EC2: a tree of the fetched
   * meta-data paths; GCP: the recursive instance document).
   */
  document: unknown;
  /** Public SSH keys as the provider lists them (cnctl show ssh-keys). */
  sshKeys: string[];
}
