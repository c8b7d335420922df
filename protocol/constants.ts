// Numbers both sides agree on. Changing one is a protocol change.

/**
 * The rtnetlink protocol number cloud-network stamps on its routes, rules and (where the
 * kernel has IFA_PROTO, Linux ≥ 5.18) addresses, so that it only ever removes what it made.
 * 0xC9 is unassigned in iproute2's rt_protos and rt_addrprotos.
 */
export const RTPROT_CLOUD_NETWORK = 201;

/** The protocol of the routes the kernel makes itself for addresses (local, broadcast, prefix routes). */
export const RTPROT_KERNEL = 2;

/** The kernel's own route tables that cloud-network reads or adds to (linux/rtnetlink.h RT_TABLE_*). */
export const MAIN_TABLE = 254;
export const LOCAL_TABLE = 255;

/** Managed route tables: RouteTableBase (default 10000) + NIC index, inside this range. */
export const DEFAULT_TABLE_RANGE = { first: 10_000, last: 19_999 } as const;

/**
 * Rule priorities. The `lookup main suppress_prefixlength 0` rule comes first, so more
 * specific routes in main (docker, Kubernetes CNI) keep working; then one `to` and one
 * `from` rule per managed IP. All lie between the kernel's `local` (0) and `main` (32766).
 */
export const RULE_PRIORITY = {
  suppressMain: 30_000,
  to: 30_100,
  from: 30_200,
} as const;
export const DEFAULT_PRIORITY_RANGE = { first: 30_000, last: 30_999 } as const;

/**
 * The MTUs a link may be set to: from IPv6's minimum (below it the kernel removes every IPv6
 * address and route of the link) to the largest jumbo frame the clouds offer.
 */
export const MTU_RANGE = { min: 1280, max: 9216 } as const;

/** Framing: one JSON-RPC message per line on a Unix stream socket, at most this many bytes. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export const DEFAULT_HELPER_SOCKET = '/run/cloud-network/helper.sock';
