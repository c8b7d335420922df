// An address as cloud-network sees it: its identity (link, IP, prefix length, peer), what it reads
// of one (ifaddrmsg and its attributes), the requests that add and remove one, and whether it is
// cloud-network's own.
import { RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';
import type { AddressAdd, AddressRemove } from '../../protocol/operations.js';
import type { Family, ParsedIp, ParsedPrefix } from '../../protocol/ip.js';
import { indexAttributes, indexedIp, indexedU32, indexedU8, isIndexed } from '../attributes.js';
import { putU16, putU32 } from '../bytes.js';
import { familyName, familyNumber } from '../families.js';

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

export const IFA = { ADDRESS: 1, LOCAL: 2, CACHEINFO: 6, FLAGS: 8, PROTO: 11 } as const;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NOPREFIXROUTE = 0x200;
const INFINITE_LIFETIME = 0xffffffff;
const IFADDRMSG_BYTES = 8;

/** "address/length", the text an address is known by in operations, the ledger and logs. */
export function addressText(a: ObservedAddress): string {
  return `${a.address}/${a.prefixLength}`;
}

/** Whether two observed addresses are the same kernel object: one IP, prefix length and peer per link. */
export function sameAddress(a: ObservedAddress, b: ObservedAddress): boolean {
  return a.ifindex === b.ifindex && a.address === b.address && a.prefixLength === b.prefixLength && a.peer === b.peer;
}

/** What decides whether an address is cloud-network's, besides the address itself. */
export interface AddressOwnership {
  /** the kernel stamps addresses with IFA_PROTO (Linux 5.18 and later) */
  tagsAddresses: boolean;
  /** the helper's ledger lists this address (its record for kernels without IFA_PROTO) */
  listed: boolean;
}

/**
 * Whether an address is cloud-network's own: never with a lifetime (DHCP, SLAAC); with our
 * IFA_PROTO; on a kernel that does not stamp addresses, untagged and listed in the ledger.
 */
export function isOurAddress(a: ObservedAddress, ownership: AddressOwnership): boolean {
  if (a.dynamic) return false;
  if (a.protocol === RTPROT_CLOUD_NETWORK) return true;
  // an untagged address on a kernel that tags them was added by someone else, whatever the ledger says
  if (ownership.tagsAddresses) return false;
  // an address another tool stamped with its own protocol is theirs
  if (a.protocol !== undefined && a.protocol !== 0) return false;
  return ownership.listed;
}

export function decodeAddress(data: Buffer): ObservedAddress | undefined {
  const family = familyName(data.readUInt8(0));
  if (!family) return undefined;
  indexAttributes(data, IFADDRMSG_BYTES);
  // IFA_LOCAL is our own address; IFA_ADDRESS is the peer on point-to-point links
  const hasLocal = isIndexed(IFA.LOCAL);
  const address = indexedIp(data, family, hasLocal ? IFA.LOCAL : IFA.ADDRESS);
  if (!address) return undefined;
  const peer = hasLocal ? indexedIp(data, family, IFA.ADDRESS) : undefined;
  const flags = indexedU32(data, IFA.FLAGS) ?? data.readUInt8(2);
  // struct ifa_cacheinfo: preferred, then valid lifetime; no attribute means forever
  const valid = indexedU32(data, IFA.CACHEINFO, 4) ?? INFINITE_LIFETIME;
  const proto = indexedU8(data, IFA.PROTO);
  const observed: ObservedAddress = {
    ifindex: data.readUInt32LE(4),
    family,
    address,
    prefixLength: data.readUInt8(1),
    dynamic: valid !== INFINITE_LIFETIME,
    noPrefixRoute: (flags & IFA_F_NOPREFIXROUTE) !== 0,
    scope: data.readUInt8(3),
  };
  if (proto !== undefined) observed.protocol = proto;
  if (peer !== undefined && peer !== address) observed.peer = peer;
  // for IPv6 the same bit means a temporary (privacy) address
  if (family === 'inet' && (flags & IFA_F_SECONDARY) !== 0) observed.secondary = true;
  return observed;
}

/**
 * An ifaddrmsg (family, prefix length, the link's index; flags and scope 0) and IFA_LOCAL; for
 * an address added, also IFA_FLAGS (`flags`) and IFA_PROTO (`protocol`); for one removed, also
 * IFA_ADDRESS (`peer`: the address itself, or its point-to-point peer), which makes the kernel
 * compare the prefix length and peer too. Written with plain stores: an apply sends thousands.
 */
export function addressPayload(address: ParsedPrefix, index: number, added?: { flags: number; protocol: number }, peer?: ParsedIp): Uint8Array {
  const bytes = address.bytes;
  const out = new Uint8Array(12 + bytes.length + (added ? 16 : 0) + (peer ? 4 + peer.bytes.length : 0));
  out[0] = familyNumber(address.family);
  out[1] = address.prefixLength;
  putU32(out, 4, index);
  putU16(out, 8, 4 + bytes.length);
  out[10] = IFA.LOCAL;
  out.set(bytes, 12);
  let at = 12 + bytes.length;
  if (peer) {
    putU16(out, at, 4 + peer.bytes.length);
    out[at + 2] = IFA.ADDRESS;
    out.set(peer.bytes, at + 4);
    at += 4 + peer.bytes.length;
  }
  if (!added) return out;
  out[at] = 8;
  out[at + 2] = IFA.FLAGS;
  putU32(out, at + 4, added.flags);
  out[at + 8] = 5; // nla_len counts the one byte of value, not the padding
  out[at + 10] = IFA.PROTO;
  out[at + 12] = added.protocol;
  return out;
}

/**
 * How an address operation reads: `command` as the iproute2 command that does the same, ready to
 * paste (logs, the audit trail, --dry-run, the API's pending list); `applied` as the older Go tool logged a
 * change, which operators grep for; `attempt` what was being done, for a failure.
 */
export const addressWording = {
  command: (op: AddressAdd | AddressRemove) =>
    op.kind === 'address.add'
      ? `ip address add ${op.address} dev ${op.link}${op.noPrefixRoute ? ' noprefixroute' : ''} proto ${RTPROT_CLOUD_NETWORK}`
      : `ip address del ${op.address} dev ${op.link}`,
  applied: (op: AddressAdd | AddressRemove, on: string) => `Successfully ${op.kind === 'address.add' ? 'added' : 'removed'} address='${op.address}'${on}`,
  attempt: (op: AddressAdd | AddressRemove) => (op.kind === 'address.add' ? `adding address ${op.address} to ${op.link}` : `removing address ${op.address} from ${op.link}`),
};
