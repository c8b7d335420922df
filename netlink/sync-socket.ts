// The helper's rtnetlink socket: plain system calls through koffi, each request answered before
// the call returns. The kernel handles a netlink request inside sendmsg() and queues its answer
// before returning, and produces a dump's next part inside recvmsg(), so a reply never has to be
// waited for: a blocking receive returns at once, and the helper, which serves one request at a
// time anyway, needs no event-loop machinery for it. That machinery (the `netlink` package, its
// native addon and its parsing) would be resident in every helper process (docs/performance.md,
// "Memory"); the agent, which listens for events, keeps it (socket.ts).
//
// Nothing here can stall for long: SO_RCVTIMEO bounds every receive (a reply that never comes is
// ETIMEDOUT, as in socket.ts), and a receive buffer overflow is reported by the kernel as ENOBUFS,
// which fails the requests whose answers may be lost.
import { lastErrno, libc, setRequestOptions, SOL_SOCKET } from './libc.js';
import {
  AF_NETLINK,
  batchDatagram,
  decodeError,
  errnoName,
  nextChunk,
  NetlinkError,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NETLINK_ROUTE,
  parseMessages,
  refusal,
  requestDatagram,
  type BatchRequest,
  type NetlinkMessage,
  type RtnlRequester,
} from './wire.js';

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SO_RCVTIMEO = 20;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const SOCKADDR_NL_BYTES = 12;

/** Replies to requests: 1 MiB holds far more than a datagram's 256 error replies or a dump part. */
export const SYNC_RECEIVE_BUFFER_BYTES = 1 << 20;
export const SYNC_REQUEST_TIMEOUT_MS = 10_000;
/** A dump part is at most 32 KiB (the kernel caps it); twice that leaves room for any message. */
const RECEIVE_CHUNK_BYTES = 64 << 10;

function systemError(call: string): NetlinkError {
  const code = errnoName(lastErrno());
  return new NetlinkError(code, undefined, `netlink ${call} failed: ${code}`);
}

export interface SyncRtnlSocketOptions {
  /** SO_RCVBUF in bytes; SO_RCVBUFFORCE is tried first (needs CAP_NET_ADMIN) so rmem_max does not cap it */
  receiveBufferBytes?: number;
  /** the longest a receive waits for the kernel (SO_RCVTIMEO) */
  requestTimeoutMs?: number;
}

export class SyncRtnlSocket implements RtnlRequester {
  private fd: number;
  private seq = 0;
  private readonly from = Buffer.alloc(SOCKADDR_NL_BYTES);

  /** Opens and binds the socket; throws a NetlinkError when the kernel refuses. */
  constructor(options: SyncRtnlSocketOptions = {}) {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw systemError('socket()');
    this.fd = fd;
    setRequestOptions(fd, options.receiveBufferBytes ?? SYNC_RECEIVE_BUFFER_BYTES);
    const timeoutMs = options.requestTimeoutMs ?? SYNC_REQUEST_TIMEOUT_MS;
    const timeout = Buffer.alloc(16); // struct timeval: seconds, microseconds
    timeout.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    timeout.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    if (c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length) !== 0) {
      const error = systemError('setsockopt(SO_RCVTIMEO)');
      this.close();
      throw error;
    }
    const address = Buffer.alloc(SOCKADDR_NL_BYTES);
    address.writeUInt16LE(AF_NETLINK, 0); // port 0: the kernel assigns one; no multicast groups
    if (c.bind(fd, address, address.length) !== 0) {
      const error = systemError('bind()');
      this.close();
      throw error;
    }
  }

  async dump(type: number, payload: Uint8Array[]): Promise<NetlinkMessage[]> {
    // a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) may be inconsistent: repeat it
    for (let attempt = 1; ; attempt++) {
      const seq = this.nextSeq();
      this.send(requestDatagram(type, payload, NLM_F_DUMP, seq));
      const messages: NetlinkMessage[] = [];
      let interrupted = false;
      for (let done = false; !done; ) {
        for (const message of this.receive()) {
          if (message.seq !== seq) continue; // the late answer of an earlier, timed-out request
          if (message.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (message.type === NLMSG_DONE) done = true;
          else if (message.type === NLMSG_ERROR) {
            const { errno, code, kernelMessage } = decodeError(message);
            if (errno !== 0) throw refusal(code, kernelMessage);
            done = true;
          } else messages.push(message);
        }
      }
      if (!interrupted || attempt === 5) return messages;
    }
  }

  /**
   * Up to BATCH_MAX_MESSAGES requests per datagram, only the last of each asking for an ack: the
   * kernel answers every failure and then that ack, so when the ack is in, every failure is.
   * Never rejects: per request, in order, undefined for success or the NetlinkError the kernel
   * answered; when a datagram got no answer, it and all later ones carry why.
   */
  async batch(requests: readonly BatchRequest[]): Promise<(NetlinkError | undefined)[]> {
    const results: (NetlinkError | undefined)[] = [];
    for (let start = 0; start < requests.length; ) {
      const { end, bytes } = nextChunk(requests, start);
      const count = end - start;
      try {
        if (this.seq + count > 0xffff_fff0) this.seq = 0; // sequence numbers of a datagram must not wrap
        const { datagram, firstSeq } = batchDatagram(requests, start, end, bytes, () => this.nextSeq());
        this.send(datagram);
        const errors: (NetlinkError | undefined)[] = new Array(count).fill(undefined);
        for (let answered = false; !answered; ) {
          for (const message of this.receive()) {
            const index = message.seq - firstSeq;
            if (message.type !== NLMSG_ERROR || index < 0 || index >= count) continue;
            const { errno, code, kernelMessage } = decodeError(message);
            if (errno !== 0) errors[index] = refusal(code, kernelMessage);
            if (index === count - 1) answered = true;
          }
        }
        results.push(...errors);
      } catch (error) {
        const failure = error instanceof NetlinkError ? error : new NetlinkError('EIO', undefined, `netlink request failed: ${String(error)}`);
        while (results.length < requests.length) results.push(failure);
        return results;
      }
      start = end;
    }
    return results;
  }

  close(): void {
    if (this.fd < 0) return;
    libc().close(this.fd);
    this.fd = -1;
  }

  private nextSeq(): number {
    this.seq = this.seq >= 0xffff_fff0 ? 1 : this.seq + 1;
    return this.seq;
  }

  private send(datagram: Buffer): void {
    if (this.fd < 0) throw new NetlinkError('ECLOSED', undefined, 'netlink socket is closed');
    for (;;) {
      const sent = libc().send(this.fd, datagram, datagram.length, 0);
      if (sent === datagram.length) return;
      if (sent < 0 && lastErrno() === EINTR) continue;
      if (sent < 0) throw systemError('send');
      throw new NetlinkError('EIO', undefined, `netlink send took ${sent} of ${datagram.length} bytes`);
    }
  }

  /** The messages of the next datagram from the kernel (datagrams from any other sender are dropped). */
  private receive(): NetlinkMessage[] {
    if (this.fd < 0) throw new NetlinkError('ECLOSED', undefined, 'netlink socket is closed');
    for (;;) {
      const fromLength = [SOCKADDR_NL_BYTES];
      // a buffer per datagram rather than one for the socket's life: an idle helper keeps none
      const buffer = Buffer.allocUnsafe(RECEIVE_CHUNK_BYTES);
      const length = libc().recvfrom(this.fd, buffer, buffer.length, MSG_TRUNC, this.from, fromLength);
      if (length < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) throw new NetlinkError('ETIMEDOUT', undefined, 'netlink request failed: the kernel did not answer in time');
        if (errnoName(errno) === 'ENOBUFS') {
          throw new NetlinkError('ENOBUFS', undefined, 'netlink receive buffer overflowed; the outcome of this request is unknown: re-read the kernel state');
        }
        throw systemError('recvfrom');
      }
      // only the kernel (port 0) answers requests; another process holding CAP_NET_ADMIN could write to our port
      if (this.from.readUInt32LE(4) !== 0) continue;
      if (length > buffer.length) {
        throw new NetlinkError('EMSGSIZE', undefined, `netlink answer of ${length} bytes exceeds the ${buffer.length}-byte receive buffer`);
      }
      return parseMessages(buffer, length);
    }
  }
}
