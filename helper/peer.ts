// Who is on the other end of a Unix socket: the kernel's SO_PEERCRED answer, which the peer
// cannot forge, and whether that peer may use the helper (root, or the one allowed user).
import koffi from '../netlink/ffi.js';
import { peerCredentials, type PeerCredentials } from '../netlink/libc.js';

export { peerCredentials, type PeerCredentials };

const libc = koffi().load('libc.so.6');
const Passwd = koffi().struct('cn_passwd', {
  pw_name: 'char *',
  pw_passwd: 'char *',
  pw_uid: 'uint32_t',
  pw_gid: 'uint32_t',
  pw_gecos: 'char *',
  pw_dir: 'char *',
  pw_shell: 'char *',
});
const Group = koffi().struct('cn_group', {
  gr_name: 'char *',
  gr_passwd: 'char *',
  gr_gid: 'uint32_t',
  gr_mem: 'void *',
});
const getpwnam = libc.func('getpwnam', koffi().pointer(Passwd), ['const char *']);
const getgrnam = libc.func('getgrnam', koffi().pointer(Group), ['const char *']);

/** A user's uid through the system's name service (NSS), or undefined when there is none. Numbers pass through. */
export function lookupUid(name: string): number | undefined {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const entry = getpwnam(name);
  if (!entry) return undefined;
  return (koffi().decode(entry, Passwd) as { pw_uid: number }).pw_uid;
}

/** A group's gid through NSS, or undefined. Numbers pass through. */
export function lookupGid(name: string): number | undefined {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const entry = getgrnam(name);
  if (!entry) return undefined;
  return (koffi().decode(entry, Group) as { gr_gid: number }).gr_gid;
}

export type PeerDecision = { allowed: true } | { allowed: false; reason: string };

/** Root may always connect; otherwise only the uid of `allowUser` (looked up on each connection, so a user created later counts). */
export function checkPeer(peer: PeerCredentials, allowUser: string | undefined): PeerDecision {
  if (peer.uid === 0) return { allowed: true };
  if (allowUser === undefined) return { allowed: false, reason: `uid ${peer.uid} is not root, and no --allow-user is configured` };
  const allowedUid = lookupUid(allowUser);
  if (allowedUid === undefined) return { allowed: false, reason: `uid ${peer.uid} is not root, and the allowed user ${allowUser} does not exist` };
  if (peer.uid === allowedUid) return { allowed: true };
  return { allowed: false, reason: `uid ${peer.uid} is neither root nor ${allowUser} (uid ${allowedUid})` };
}
