// A link (network interface) as cloud-network sees it: what it reads of one (ifinfomsg and its
// attributes) and the one change it makes, bringing a link up and setting its MTU.
import type { LinkSet } from '../../protocol/operations.js';
import { attributeText, indexAttributes, indexedBytes, indexedU32, RequestBuilder } from '../attributes.js';

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

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18 } as const;
const IFLA_INFO_KIND = 1;
const IFINFOMSG_BYTES = 16;

export function decodeLink(data: Buffer): ObservedLink {
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  indexAttributes(data, IFINFOMSG_BYTES);
  const address = indexedBytes(data, IFLA.ADDRESS);
  const link: ObservedLink = {
    index,
    name: attributeText(indexedBytes(data, IFLA.IFNAME)) ?? '',
    // loopback and tunnels have an all-zero or no hardware address
    mac: address && address.some((b) => b !== 0) ? [...address].map((b) => b.toString(16).padStart(2, '0')).join(':') : '',
    up: (flags & IFF_UP) !== 0,
    mtu: indexedU32(data, IFLA.MTU) ?? 0,
    loopback: (flags & IFF_LOOPBACK) !== 0,
  };
  const master = indexedU32(data, IFLA.MASTER);
  if (master) link.master = master;
  const linkinfo = indexedBytes(data, IFLA.LINKINFO);
  if (linkinfo) {
    // nested attributes: indexed last, the index holds one attribute list at a time
    indexAttributes(linkinfo, 0);
    const kind = attributeText(indexedBytes(linkinfo, IFLA_INFO_KIND));
    if (kind) link.kind = kind;
  }
  return link;
}

/** An RTM_SETLINK payload that brings the link up (`up`: only ever true here) and/or sets its MTU. */
export function linkSetPayload(index: number, change: { up?: boolean; mtu?: number }): Uint8Array[] {
  const header = new Uint8Array(IFINFOMSG_BYTES);
  const builder = new RequestBuilder(header).headerU32(4, index);
  if (change.up !== undefined) {
    builder.headerU32(8, change.up ? IFF_UP : 0); // ifi_flags
    builder.headerU32(12, IFF_UP); // ifi_change: only this flag
  }
  if (change.mtu !== undefined) builder.u32(IFLA.MTU, change.mtu);
  return builder.build();
}

/** The kernel's link as its link.set operation would leave it: already so, or not. */
export function linkIsAlready(link: ObservedLink, change: { up?: boolean; mtu?: number }): boolean {
  return (change.up === undefined || link.up === change.up) && (change.mtu === undefined || link.mtu === change.mtu);
}

/** How a link operation reads (addressWording in address.ts says where each is used). */
export const linkWording = {
  command: (op: LinkSet) => `ip link set dev ${op.link}${op.up !== undefined ? (op.up ? ' up' : ' down') : ''}${op.mtu !== undefined ? ` mtu ${op.mtu}` : ''}`,
  applied: (op: LinkSet, ifindex: string) => `Successfully set link='${op.link}' ifindex='${ifindex}'${op.up ? ' up' : ''}${op.mtu !== undefined ? ` mtu='${op.mtu}'` : ''}`,
  attempt: (op: LinkSet) => `setting ${op.link}${op.up !== undefined ? (op.up ? ' up' : ' down') : ''}${op.mtu !== undefined ? ` mtu ${op.mtu}` : ''}`,
};
