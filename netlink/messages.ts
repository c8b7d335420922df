// rtnetlink messages: their types and flags, and decoding a message of any of the four kinds
// cloud-network touches (objects/: link, address, route, rule) into its observed form. Decoded by
// hand because the `netlink` package drops attributes it does not know (IFA_PROTO among them)
// instead of keeping them in `__unparsed`.
import type { NetlinkMessage } from './wire.js';
import { decodeAddress, type ObservedAddress } from './objects/address.js';
import { decodeLink, type ObservedLink } from './objects/link.js';
import { decodeRoute, type ObservedRoute } from './objects/route.js';
import { decodeRule, type ObservedRule } from './objects/rule.js';

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
} as const;

export const NLM_F = { REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400 } as const;

export type KernelObjectKind = 'link' | 'address' | 'route' | 'rule';
export type KernelObject =
  | { kind: 'link'; object: ObservedLink }
  | { kind: 'address'; object: ObservedAddress }
  | { kind: 'route'; object: ObservedRoute }
  | { kind: 'rule'; object: ObservedRule };

/** Decodes one rtnetlink message of the kinds we know; undefined for anything else. */
export function decodeMessage(message: NetlinkMessage): (KernelObject & { action: 'new' | 'del' }) | undefined {
  switch (message.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return { kind: 'link', action: message.type === RTM.NEWLINK ? 'new' : 'del', object: decodeLink(message.data) };
    case RTM.NEWADDR:
    case RTM.DELADDR: {
      const object = decodeAddress(message.data);
      return object && { kind: 'address', action: message.type === RTM.NEWADDR ? 'new' : 'del', object };
    }
    case RTM.NEWROUTE:
    case RTM.DELROUTE: {
      const object = decodeRoute(message.data);
      return object && { kind: 'route', action: message.type === RTM.NEWROUTE ? 'new' : 'del', object };
    }
    case RTM.NEWRULE:
    case RTM.DELRULE: {
      const object = decodeRule(message.data);
      return object && { kind: 'rule', action: message.type === RTM.NEWRULE ? 'new' : 'del', object };
    }
    default:
      return undefined;
  }
}
