// The kernel's network configuration as cloud-network observes it over rtnetlink: plain data,
// addresses as text, so that the planner can be tested without a kernel.

export type Family = 'inet' | 'inet6';

export interface ObservedLink {
  index: number;
  name: string;
  /** lower-case, colon-separated; '' for links without a hardware address */
  mac: string;
  up: boolean;
  mtu: number;
  /** ifindex of the master when this link is enslaved (bond, bridge, Azure VF); else undefined */
  master?: number;
  /** rtnetlink kind (veth, bond, ...) where the kernel says; else undefined */
  kind?: string;
  loopback: boolean;
}

export interface ObservedAddress {
  ifindex: number;
  family: Family;
  /** IFA_LOCAL: the address itself */
  address: string;
  prefixLength: number;
  /** IFA_ADDRESS when it differs from IFA_LOCAL: the other end of a point-to-point address */
  peer?: string;
  /** IPv4 only: IFA_F_SECONDARY, another address of the link holds the subnet as its primary */
  secondary?: true;
  /** IFA_PROTO (Linux ≥ 5.18); undefined when absent */
  protocol?: number;
  /** has a finite valid lifetime (DHCP, SLAAC) */
  dynamic: boolean;
  noPrefixRoute: boolean;
  scope: number;
}

export type RouteType = 'unicast' | 'local' | 'broadcast' | 'multicast' | 'unreachable' | 'blackhole' | 'prohibit' | 'throw' | 'other';

export interface ObservedRoute {
  table: number;
  family: Family;
  /** CIDR, e.g. 0.0.0.0/0 or 10.4.0.0/24 */
  destination: string;
  gateway?: string;
  ifindex?: number;
  /** rtm_protocol: RTPROT_KERNEL (2), RTPROT_BOOT (3), RTPROT_DHCP (16), ours (201), ... */
  protocol: number;
  type: RouteType;
  scope: 'universe' | 'link' | 'host' | 'site' | 'nowhere';
  source?: string;
  metric?: number;
  /** rtm_tos when not 0 (cloud-network's routes have none) */
  tos?: number;
  /** the next hops of a multipath route (RTA_MULTIPATH), whose gateway and ifindex are then here only */
  nexthops?: NextHop[];
}

export interface NextHop {
  ifindex: number;
  gateway?: string;
}

export interface ObservedRule {
  family: Family;
  priority: number;
  table: number;
  /** CIDR of FRA_SRC when present */
  from?: string;
  /** CIDR of FRA_DST when present */
  to?: string;
  suppressPrefixLength?: number;
  /** FRA_PROTOCOL; 0 when absent */
  protocol: number;
  /** 'lookup' for FR_ACT_TO_TBL; other actions are observed but never managed */
  action: 'lookup' | 'other';
  /**
   * Set when the rule also selects on, or does, something cloud-network's rules never do (tos,
   * not, iif/oif, fwmark, uidrange, ports, another action): it is then not the rule
   * cloud-network would add, even where family, priority, table and from/to are the same.
   */
  otherSelectors?: true;
}

export interface KernelState {
  links: ObservedLink[];
  addresses: ObservedAddress[];
  routes: ObservedRoute[];
  rules: ObservedRule[];
}
