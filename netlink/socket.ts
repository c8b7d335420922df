// An rtnetlink socket that cannot take the process down.
//
// When a netlink receive buffer overflows, recvmsg fails with ENOBUFS, and the `netlink`
// package's native code (0.3.0) then aborts the whole process ("terminate called after throwing
// an instance of 'Napi::Error'"), even with an 'error' listener attached: the flood test shows it.
// So the kernel is told never to report ENOBUFS (NETLINK_NO_ENOBUFS), and overflows are detected
// instead from the socket's drop counter (SO_MEMINFO), checked after every batch of messages and
// every answered request. An overflow calls `onOverflow`, after which the caller re-reads
// everything. The receive buffer is sized explicitly, the requests in flight are capped (each
// unanswered request holds room for its reply), and every listener is guarded.
import { readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { libc, setIntOption, setRequestOptions, SOL_NETLINK, SOL_SOCKET } from './libc.js';
import {
  AF_NETLINK,
  batchDatagram,
  decodeError,
  nextChunk,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLMSG_ERROR,
  NETLINK_ROUTE,
  NetlinkError,
  refusal,
  type BatchRequest,
  type NetlinkMessage,
  type RtnlRequester,
} from './wire.js';
import type { NetlinkSocket } from 'netlink/dist/netlink.js';

// The package's socket module alone (its index also loads the generic netlink, nl80211 and
// WireGuard families), and on the first socket: its native addon then loads while the first
// metadata request is out rather than before it leaves (docs/performance.md, "Start-up").
let createNetlink: typeof import('netlink/dist/netlink.js').createNetlink | undefined;
const netlinkPackage = () => (createNetlink ??= (createRequire(import.meta.url)('netlink/dist/netlink.js') as typeof import('netlink/dist/netlink.js')).createNetlink);

/** Replies to requests on the request socket: 1 MiB holds far more than 64 acks or a dump chunk. */
export const REQUEST_RECEIVE_BUFFER_BYTES = 1 << 20;
/** Event sockets absorb bursts (thousands of address events) while JavaScript is busy. */
export const EVENT_RECEIVE_BUFFER_BYTES = 8 << 20;
/** Requests in flight: enough to pipeline thousands of writes, few enough that acks never overflow. */
export const DEFAULT_MAX_IN_FLIGHT = 64;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const SO_MEMINFO = 55;
const SK_MEMINFO_DROPS = 8;
const SK_MEMINFO_VARS = 9;
const NETLINK_NO_ENOBUFS = 5;

export interface RtnlSocketOptions {
  /** SO_RCVBUF in bytes; SO_RCVBUFFORCE is tried first (needs CAP_NET_ADMIN) so rmem_max does not cap it */
  receiveBufferBytes?: number;
  maxInFlight?: number;
  requestTimeoutMs?: number;
  /** rtnetlink multicast groups (RTNLGRP_*) to join */
  groups?: readonly number[];
  /** unsolicited messages (multicast events); exceptions thrown here are caught and reported */
  onMessages?: (messages: NetlinkMessage[]) => void;
  /** the receive buffer overflowed: messages were lost, in-flight requests failed with ENOBUFS */
  onOverflow?: () => void;
  /** any other socket error, or an exception from a callback; the socket stays usable */
  onError?: (error: Error) => void;
}

/** The batch whose replies are awaited: error replies are matched to requests by sequence number. */
interface PendingChunk {
  firstSeq: number;
  count: number;
  errors: (NetlinkError | undefined)[];
  done: (failure?: NetlinkError) => void;
}

interface Job {
  exclusive: boolean;
  start: () => void;
}

interface InFlight {
  reject: (error: Error) => void;
}

/** Finds the file descriptor of a netlink socket by its bound port (the package does not expose it). */
function descriptorOf(port: number): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const address = Buffer.alloc(12);
  const length = Buffer.alloc(4);
  for (const entry of entries) {
    const fd = Number(entry);
    try {
      if (!readlinkSync(`/proc/self/fd/${entry}`).startsWith('socket:')) continue;
    } catch {
      continue;
    }
    address.fill(0);
    length.writeUInt32LE(12);
    if (libc().getsockname(fd, address, length) !== 0) continue;
    if (address.readUInt16LE(0) === AF_NETLINK && address.readUInt32LE(4) === port) return fd;
  }
  return undefined;
}

/** Messages the kernel dropped because the receive buffer was full; undefined if unknown. */
function dropCount(fd: number): number | undefined {
  const info = Buffer.alloc(4 * SK_MEMINFO_VARS);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(info.length);
  if (libc().getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, length) !== 0) return undefined;
  return info.readUInt32LE(4 * SK_MEMINFO_DROPS);
}

export class RtnlSocket implements RtnlRequester {
  /** the receive buffer the kernel granted (it reports twice the requested size, as it counts overhead) */
  readonly receiveBufferBytes: number;
  private readonly socket: NetlinkSocket;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number;
  private readonly queue: Job[] = [];
  private readonly inFlight = new Set<InFlight>();
  private exclusiveRunning = false;
  private closed = false;
  private readonly fd: number | undefined;
  private drops = 0;
  private dropCheckScheduled = false;
  private pendingChunk: PendingChunk | undefined;

  constructor(private readonly options: RtnlSocketOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // event sockets keep the process alive; request sockets only while a request is pending
    this.socket = netlinkPackage()(NETLINK_ROUTE, { ref: Boolean(options.groups?.length) } as never);
    // listeners first: nothing may be emitted without one
    this.socket.on('error', (error) => this.handleError(error));
    this.socket.on('invalid', (error) => this.report(new Error(`netlink: discarded an invalid message: ${String(error)}`)));
    this.socket.on('truncatedMessage', () => this.report(new Error('netlink: discarded a truncated message')));
    this.socket.on('message', (messages) => {
      try {
        this.checkDrops();
        const unclaimed = this.pendingChunk ? messages.filter((message) => !this.claimBatchReply(message)) : messages;
        if (unclaimed.length > 0) options.onMessages?.(unclaimed);
      } catch (error) {
        this.report(error);
      }
    });

    const wanted = options.receiveBufferBytes ?? REQUEST_RECEIVE_BUFFER_BYTES;
    const fd = descriptorOf(this.socket.address().port);
    this.fd = fd;
    if (fd !== undefined) {
      // see the top of this file: ENOBUFS would abort the process inside the package
      if (!setIntOption(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)) {
        this.report(new Error('netlink: cannot set NETLINK_NO_ENOBUFS; a receive buffer overflow may abort the process'));
      }
      this.drops = dropCount(fd) ?? 0;
      setRequestOptions(fd, wanted);
    } else {
      // the package's own call: SO_RCVBUF, capped by net.core.rmem_max
      this.socket.setRecvBufferSize(wanted);
    }
    this.receiveBufferBytes = this.socket.getRecvBufferSize();
    for (const group of options.groups ?? []) this.socket.addMembership(group);
  }

  /**
   * Sends one request and resolves with its reply messages (empty for a plain ack).
   * Rejects with a NetlinkError when the kernel refuses it (code = errno name), on timeout
   * (ETIMEDOUT), when the receive buffer overflowed while it was in flight (ENOBUFS: the
   * outcome is unknown), or when the socket was closed (ECLOSED).
   */
  request(type: number, payload: Uint8Array[], flags: number): Promise<NetlinkMessage[]> {
    return this.enqueue(false, type, payload, flags);
  }

  /**
   * Sends many requests with few system calls: up to BATCH_MAX_MESSAGES messages per datagram,
   * only the last of each asking for an ack. The kernel handles a datagram's messages in order
   * and always answers a failure, so when the last message's answer arrives every earlier
   * failure has arrived before it, and silence means success. This is what makes thousands of
   * writes cost a few round trips instead of one each. Never rejects: the result holds, per
   * request and in order, undefined for success or the NetlinkError the kernel answered; when a
   * datagram gets no answer (timeout, overflow, closed socket) its requests and all later ones
   * carry that error, as their outcome is unknown or they were not sent.
   */
  batch(requests: readonly BatchRequest[]): Promise<(NetlinkError | undefined)[]> {
    if (requests.length === 0) return Promise.resolve([]);
    if (this.closed) {
      const error = new NetlinkError('ECLOSED', undefined, 'netlink socket is closed');
      return Promise.resolve(requests.map(() => error));
    }
    return new Promise((resolve) => {
      this.queue.push({
        exclusive: true,
        start: () => {
          this.exclusiveRunning = true;
          void this.sendChunks(requests).then((results) => {
            this.exclusiveRunning = false;
            this.checkDrops();
            resolve(results);
            this.pump();
          });
        },
      });
      this.pump();
    });
  }

  private async sendChunks(requests: readonly BatchRequest[]): Promise<(NetlinkError | undefined)[]> {
    const results: (NetlinkError | undefined)[] = [];
    for (let start = 0; start < requests.length; ) {
      const { end, bytes } = nextChunk(requests, start);
      const failure = await this.sendChunk(requests, start, end, bytes, results);
      if (failure) {
        while (results.length < requests.length) results.push(failure);
        return results;
      }
      start = end;
    }
    return results;
  }

  /** Sends requests[start, end) (`bytes` long with padding) as one datagram; pushes their results, or returns why it could not. */
  private sendChunk(
    requests: readonly BatchRequest[],
    start: number,
    end: number,
    bytes: number,
    results: (NetlinkError | undefined)[],
  ): Promise<NetlinkError | undefined> {
    if (this.closed) return Promise.resolve(new NetlinkError('ECLOSED', undefined, 'netlink socket is closed'));
    // sequence numbers from the package's counter, so they never collide with its own requests
    const { datagram, firstSeq, lastSeq: seq } = batchDatagram(requests, start, end, bytes, () => this.socket.generateSeq());
    if (seq < firstSeq) {
      // the counter wrapped inside this datagram: replies could not be told apart by range
      return Promise.resolve(new NetlinkError('EIO', undefined, 'netlink sequence numbers wrapped inside a batch'));
    }
    return new Promise((resolve) => {
      const count = end - start;
      const errors: (NetlinkError | undefined)[] = new Array(count).fill(undefined);
      let timer: NodeJS.Timeout | undefined;
      const entry: InFlight = { reject: (error) => finish(error as NetlinkError) };
      const finish = (failure?: NetlinkError) => {
        if (this.pendingChunk !== chunk) return;
        this.pendingChunk = undefined;
        this.inFlight.delete(entry);
        clearTimeout(timer);
        if (failure) {
          resolve(failure);
          return;
        }
        results.push(...errors);
        resolve(undefined);
      };
      const chunk: PendingChunk = { firstSeq, count, errors, done: finish };
      this.pendingChunk = chunk;
      this.inFlight.add(entry);
      timer = setTimeout(
        () => finish(new NetlinkError('ETIMEDOUT', undefined, 'netlink request failed: the kernel did not answer in time')),
        this.timeoutMs,
      );
      try {
        // one buffer, not an iovec per part: sendmsg refuses more than 1024 (UIO_MAXIOV) with EMSGSIZE
        this.socket.socket.send(datagram, { port: 0 }, (error) => {
          if (error) finish(new NetlinkError(error.code ?? 'EIO', undefined, `netlink send failed: ${error.message}`));
        });
      } catch (error) {
        finish(new NetlinkError('EIO', undefined, `netlink send failed: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  }

  /** Takes a reply that belongs to the pending batch datagram; false if it is not one. */
  private claimBatchReply(message: NetlinkMessage): boolean {
    const chunk = this.pendingChunk;
    if (!chunk || message.type !== NLMSG_ERROR) return false;
    const index = message.seq - chunk.firstSeq;
    if (index < 0 || index >= chunk.count) return false;
    const { errno, code, kernelMessage } = decodeError(message);
    if (errno !== 0) chunk.errors[index] = refusal(code, kernelMessage);
    if (index === chunk.count - 1) chunk.done();
    return true;
  }

  /** A dump (NLM_F_DUMP), run alone on the socket: the kernel answers EBUSY to overlapping dumps. */
  async dump(type: number, payload: Uint8Array[]): Promise<NetlinkMessage[]> {
    // a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) may be inconsistent: repeat it
    for (let attempt = 1; ; attempt++) {
      const messages = await this.enqueue(true, type, payload, NLM_F_DUMP);
      if (!messages.some((m) => m.flags & NLM_F_DUMP_INTR) || attempt === 5) return messages;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const error = new NetlinkError('ECLOSED', undefined, 'netlink socket closed before the kernel answered');
    for (const request of [...this.inFlight]) request.reject(error);
    this.inFlight.clear();
    this.queue.length = 0;
    try {
      this.socket.close();
    } catch (closeError) {
      this.report(closeError);
    }
  }

  private enqueue(exclusive: boolean, type: number, payload: Uint8Array[], flags: number): Promise<NetlinkMessage[]> {
    if (this.closed) {
      return Promise.reject(new NetlinkError('ECLOSED', undefined, 'netlink socket is closed'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({
        exclusive,
        start: () => {
          let settled = false;
          const entry: InFlight = {
            reject: (error) => finish(() => reject(error)),
          };
          const finish = (settle: () => void) => {
            if (settled) return;
            settled = true;
            this.inFlight.delete(entry);
            if (exclusive) this.exclusiveRunning = false;
            this.checkDrops();
            settle();
            this.pump();
          };
          this.inFlight.add(entry);
          if (exclusive) this.exclusiveRunning = true;
          this.socket
            .request(type, payload, { flags, timeout: this.timeoutMs, checkError: false })
            .then(
              ([messages]) => {
                const last = messages[messages.length - 1];
                if (last && last.type === NLMSG_ERROR) {
                  const { errno, code, kernelMessage } = decodeError(last);
                  if (errno !== 0) {
                    finish(() => reject(refusal(code, kernelMessage)));
                    return;
                  }
                  finish(() => resolve(messages.slice(0, -1)));
                  return;
                }
                finish(() => resolve(messages));
              },
              (error: unknown) => {
                const text = error instanceof Error ? error.message : String(error);
                const code =
                  /Timeout/.test(text) ? 'ETIMEDOUT' : ((error as { code?: string }).code ?? 'EIO');
                finish(() => reject(new NetlinkError(code, undefined, `netlink request failed: ${text}`)));
              },
            );
        },
      });
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0 && !this.exclusiveRunning) {
      const next = this.queue[0]!;
      if (next.exclusive ? this.inFlight.size > 0 : this.inFlight.size >= this.maxInFlight) return;
      this.queue.shift();
      next.start();
    }
  }

  /** Coalesced to once per event-loop turn: a batch of thousands of replies needs one look. */
  private checkDrops(): void {
    if (this.dropCheckScheduled || this.fd === undefined) return;
    this.dropCheckScheduled = true;
    setImmediate(() => {
      this.dropCheckScheduled = false;
      if (this.closed || this.fd === undefined) return;
      const drops = dropCount(this.fd);
      if (drops === undefined || drops === this.drops) return;
      this.drops = drops;
      this.handleError(Object.assign(new Error('netlink receive buffer overflowed'), { code: 'ENOBUFS' }));
    });
  }

  private handleError(error: Error & { code?: string }): void {
    if (error.code === 'ENOBUFS') {
      // replies may be lost: nobody would ever answer the requests in flight
      const overflow = new NetlinkError(
        'ENOBUFS',
        undefined,
        'netlink receive buffer overflowed; the outcome of this request is unknown: re-read the kernel state',
      );
      for (const request of [...this.inFlight]) request.reject(overflow);
      try {
        this.options.onOverflow?.();
      } catch (callbackError) {
        this.report(callbackError);
      }
      return;
    }
    this.report(error);
  }

  private report(error: unknown): void {
    try {
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    } catch {
      /* a reporter that throws must not reach native code */
    }
  }
}

