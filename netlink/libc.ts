// The socket system calls netlink/ makes through koffi (netlink/ffi.ts), declared once and
// bound on first use: socket.ts adjusts the `netlink` package's socket with them, sync-socket.ts
// does all its work with them. koffi().errno() holds the errno of the last call. And the options
// both sockets set on a request socket, the peer of a Unix socket (SO_PEERCRED), which the
// helper and the agent's REST API both ask for, the bytes a socket has received but not yet
// been read (FIONREAD), which the REST API asks of a connection it might close, and the REST
// API's TCP listener told to hold back connections that have sent nothing (TCP_DEFER_ACCEPT).
import type { Server, Socket } from 'node:net';
import koffi from './ffi.js';

export interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, address: Buffer, length: number) => number;
  getsockname: (fd: number, address: Buffer, length: Buffer) => number;
  setsockopt: (fd: number, level: number, name: number, value: Buffer, length: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, length: Buffer) => number;
  send: (fd: number, buffer: Buffer, length: number, flags: number) => number;
  recvfrom: (fd: number, buffer: Buffer, length: number, flags: number, from: Buffer, fromLength: number[]) => number;
  close: (fd: number) => number;
}

let functions: Libc | undefined;

export function libc(): Libc {
  if (!functions) {
    const lib = koffi().load('libc.so.6');
    functions = {
      socket: lib.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
      bind: lib.func('int bind(int fd, void *addr, uint32_t len)') as Libc['bind'],
      getsockname: lib.func('int getsockname(int fd, void *addr, void *len)') as Libc['getsockname'],
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)') as Libc['setsockopt'],
      getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)') as Libc['getsockopt'],
      send: lib.func('long send(int fd, void *buf, size_t len, int flags)') as Libc['send'],
      recvfrom: lib.func('long recvfrom(int fd, void *buf, size_t len, int flags, void *from, _Inout_ uint32_t *fromlen)') as Libc['recvfrom'],
      close: lib.func('int close(int fd)') as Libc['close'],
    };
  }
  return functions;
}

/** The errno of the last call through koffi. */
export const lastErrno = (): number => koffi().errno();

export const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const UCRED_BYTES = 12;
export const SOL_NETLINK = 270;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;

/** setsockopt with an int value; false when the kernel refused it. */
export function setIntOption(fd: number, level: number, name: number, value: number): boolean {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return libc().setsockopt(fd, level, name, buffer, 4) === 0;
}

/**
 * What both sockets set on the socket they send requests on: the receive buffer
 * (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, else SO_RCVBUF, capped by net.core.rmem_max);
 * smaller acks (errors echo only our request's header) with the kernel's reason as text; dump
 * requests checked strictly, so that their header fields filter (e.g. rtm_protocol).
 */
export function setRequestOptions(fd: number, receiveBufferBytes: number): void {
  if (!setIntOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, receiveBufferBytes)) setIntOption(fd, SOL_SOCKET, SO_RCVBUF, receiveBufferBytes);
  setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
  setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
  setIntOption(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
}

/** The process on the other end of a Unix socket connection, as the kernel saw it connect. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * The peer's pid, uid and gid (SO_PEERCRED: the kernel's record, which the peer cannot forge),
 * or an Error saying why they could not be read. In a user namespace the kernel translates
 * them, and an id the namespace does not map reads as the overflow id (65534).
 */
export function peerCredentials(socket: Socket): PeerCredentials | Error {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return new Error('the connection has no file descriptor');
  const buffer = Buffer.alloc(UCRED_BYTES);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(UCRED_BYTES);
  const rc = libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buffer, length);
  if (rc !== 0 || length.readUInt32LE(0) !== UCRED_BYTES) return new Error(`getsockopt(SO_PEERCRED) failed on fd ${fd} (errno ${lastErrno()})`);
  return { pid: buffer.readInt32LE(0), uid: buffer.readUInt32LE(4), gid: buffer.readUInt32LE(8) };
}

/** FIONREAD (SIOCINQ): the asm-generic value, that of every architecture koffi is built for on Linux. */
const FIONREAD = 0x541b;
type Ioctl = (fd: number, request: number, value: Buffer) => number;
let ioctl: Ioctl | undefined;
const waitingCount = Buffer.alloc(4);

/** Bytes the kernel holds for the socket that the process has not read yet; 0 when unknown. */
export function bytesWaiting(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return 0;
  // declared with its one pointer argument: a variadic call makes koffi parse the types at every call,
  // and on the Linux ABIs koffi supports a pointer passes the same either way
  ioctl ??= koffi().load('libc.so.6').func('int ioctl(int fd, unsigned long request, void *value)') as unknown as Ioctl;
  waitingCount.fill(0);
  return ioctl(fd, FIONREAD, waitingCount) === 0 ? waitingCount.readInt32LE(0) : 0;
}

const IPPROTO_TCP = 6;
const TCP_DEFER_ACCEPT = 9;

/**
 * Has the kernel hand a listening TCP socket's connections to accept() only once their first
 * bytes have arrived, or once they have been silent for `seconds` (which it rounds up to its
 * SYN-ACK retransmissions: 1, 3, 7 s...). Returns false when the option could not be set.
 */
export function deferAccept(server: Server, seconds: number): boolean {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  return setIntOption(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, seconds);
}
