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

/**
 * Managed route tables: RouteTableBase (default 20000) + NIC index, inside this range. Chosen
 * to share no number with the network tools cloud images run (README "Living with other
 * tools"): amazon-ec2-net-utils uses 10000 + 100 × network-card + device-number (lib/lib.sh),
 * nm-cloud-setup 30200 + i and 30400 + i (src/nm-cloud-setup/main.c), systemd-networkd and
 * google-guest-agent none of their own (main and local).
 */
export const DEFAULT_TABLE_RANGE = { first: 20_000, last: 29_999 } as const;

/**
 * Rule priorities. The `lookup main suppress_prefixlength 0` rule comes first, so more
 * specific routes in main (docker, Kubernetes CNI) keep working; then one `to` and one
 * `from` rule per managed IP. All lie between the kernel's `local` (0) and `main` (32766), away
 * from amazon-ec2-net-utils' 10000 + 100 × card + device, nm-cloud-setup's 30200–30499 and the
 * priorities the kernel gives rules added without one (32765 downwards: networkd, wg-quick).
 */
export const RULE_PRIORITY = {
  suppressMain: 20_000,
  to: 20_100,
  from: 20_200,
} as const;
export const DEFAULT_PRIORITY_RANGE = { first: 20_000, last: 20_999 } as const;

/**
 * The tables and priorities of cloud-network 0.1 (before coexistence). A VM upgraded from it
 * holds protocol-201 routes and rules there; the helper still removes its own objects in these
 * ranges (never another tool's), so the first reconcile after the upgrade moves them.
 */
export const LEGACY_TABLE_RANGE = { first: 10_000, last: 19_999 } as const;
export const LEGACY_PRIORITY_RANGE = { first: 30_000, last: 30_999 } as const;

/**
 * The MTUs a link may be set to: from IPv6's minimum (below it the kernel removes every IPv6
 * address and route of the link) to the largest jumbo frame the clouds offer.
 */
export const MTU_RANGE = { min: 1280, max: 9216 } as const;

/** Framing: one JSON-RPC message per line on a Unix stream socket, at most this many bytes. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export const DEFAULT_HELPER_SOCKET = '/run/cloud-network/helper.sock';
