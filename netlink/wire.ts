// The netlink wire format both sockets share (socket.ts, the agent's, event-driven through the
// `netlink` package; sync-socket.ts, the helper's, blocking system calls): messages, batch
// datagrams and the kernel's error replies.
import { getSystemErrorName } from 'node:util';
import { putU16, putU32 } from './bytes.js';

/** One netlink message: its header fields and its payload (after the 16-byte header). */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  port: number;
  data: Buffer;
}

/** A request the kernel refused, or that got no answer. `code` is the errno name (EEXIST, ENODEV, …). */
export class NetlinkError extends Error {
  constructor(
    readonly code: string,
    /** the kernel's own explanation (extended ack), when it gave one */
    readonly kernelMessage: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'NetlinkError';
  }
}

/** One request of a batch: a message type, its payload, and NLM_F_* flags besides REQUEST and ACK. */
export interface BatchRequest {
  type: number;
  payload: Uint8Array[];
  flags: number;
}

/** What reading and writing the kernel's state needs of a socket (netlink/read.ts, netlink/write.ts). */
export interface RtnlRequester {
  /** every message of a dump (NLM_F_DUMP), repeated when the kernel marks it interrupted */
  dump(type: number, payload: Uint8Array[]): Promise<NetlinkMessage[]>;
  /**
   * Many requests in few datagrams; never rejects: per request, in order, undefined for
   * success or the NetlinkError the kernel answered (or why no answer came).
   */
  batch(requests: readonly BatchRequest[]): Promise<(NetlinkError | undefined)[]>;
}

/** The socket both ends open: socket(AF_NETLINK, …, NETLINK_ROUTE). */
export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_HEADER_BYTES = 16;
const NLMSGERR_ATTR_MSG = 1;

/**
 * Messages per datagram in a batch. Only failures are answered, so at most this many error
 * replies (about 1 KiB each as the kernel counts them) wait in the receive buffer at once.
 */
export const BATCH_MAX_MESSAGES = 256;
/** Bytes per batch datagram, well below the default send buffer (net.core.wmem_default). */
export const BATCH_MAX_BYTES = 64 << 10;

/** A request's nlmsg_len: the header and its payload, without the padding after it. */
function messageLength(request: BatchRequest): number {
  let length = NLMSG_HEADER_BYTES;
  for (const part of request.payload) length += part.length;
  return length;
}

/** The end (exclusive) and padded size of the datagram that starts at requests[start]. */
export function nextChunk(requests: readonly BatchRequest[], start: number): { end: number; bytes: number } {
  let end = start;
  let bytes = 0;
  while (end < requests.length && end - start < BATCH_MAX_MESSAGES) {
    const length = messageLength(requests[end]!);
    const padding = (4 - (length % 4)) % 4; // the next message starts 4-byte aligned (NLMSG_ALIGN)
    if (end > start && bytes + length + padding > BATCH_MAX_BYTES) break;
    bytes += length + padding;
    end++;
  }
  return { end, bytes };
}

/** Writes one message (header and payload) at `offset`; returns where the next one starts (NLMSG_ALIGN). */
function putMessage(datagram: Buffer, offset: number, type: number, payload: Uint8Array[], flags: number, seq: number): number {
  let at = offset + NLMSG_HEADER_BYTES;
  for (const piece of payload) {
    datagram.set(piece, at);
    at += piece.length;
  }
  const length = at - offset;
  putU32(datagram, offset, length);
  putU16(datagram, offset + 4, type);
  putU16(datagram, offset + 6, flags | NLM_F_REQUEST);
  putU32(datagram, offset + 8, seq);
  // bytes 12-15, the port id: 0, the kernel fills it in
  return offset + ((length + 3) & ~3);
}

/**
 * requests[start, end) as one datagram of `bytes` (nextChunk), sequence numbers from `nextSeq`,
 * only the last message asking for an ack. One zeroed buffer, so the padding stays zero.
 */
export function batchDatagram(requests: readonly BatchRequest[], start: number, end: number, bytes: number, nextSeq: () => number): { datagram: Buffer; firstSeq: number; lastSeq: number } {
  const datagram = Buffer.alloc(bytes);
  let seq = 0;
  let firstSeq = 0;
  let offset = 0;
  for (let index = start; index < end; index++) {
    const request = requests[index]!;
    seq = nextSeq();
    if (index === start) firstSeq = seq;
    offset = putMessage(datagram, offset, request.type, request.payload, request.flags | (index === end - 1 ? NLM_F_ACK : 0), seq);
  }
  return { datagram, firstSeq, lastSeq: seq };
}

/** One request (a dump, a single change) as its own datagram. */
export function requestDatagram(type: number, payload: Uint8Array[], flags: number, seq: number): Buffer {
  const datagram = Buffer.alloc(messageLength({ type, payload, flags }));
  putMessage(datagram, 0, type, payload, flags, seq);
  return datagram;
}

/** The messages in bytes [0, length) of a received datagram; a truncated tail is left out. */
export function parseMessages(buffer: Buffer, length: number): NetlinkMessage[] {
  const messages: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HEADER_BYTES <= length) {
    const size = buffer.readUInt32LE(offset);
    if (size < NLMSG_HEADER_BYTES || offset + size > length) break;
    messages.push({
      type: buffer.readUInt16LE(offset + 4),
      flags: buffer.readUInt16LE(offset + 6),
      seq: buffer.readUInt32LE(offset + 8),
      port: buffer.readUInt32LE(offset + 12),
      // a copy: a message may outlive the receive buffer's other 64 KiB
      data: Buffer.from(buffer.subarray(offset + NLMSG_HEADER_BYTES, offset + size)),
    });
    offset += (size + 3) & ~3;
  }
  return messages;
}

export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `errno ${errno}`;
  }
}

/** Decodes an NLMSG_ERROR payload: 0 for an ack, else the errno name and the extended-ack text. */
export function decodeError(message: NetlinkMessage): { errno: number; code: string; kernelMessage?: string } {
  const errno = Math.abs(message.data.readInt32LE(0)); // the kernel sends -errno, and 0 for an ack
  if (errno === 0) return { errno, code: 'OK' };
  let kernelMessage: string | undefined;
  if (message.flags & NLM_F_ACK_TLVS && message.data.length >= 20) {
    // with NETLINK_CAP_ACK only the 16-byte header of our request is echoed back
    const requestLength = message.flags & NLM_F_CAPPED ? NLMSG_HEADER_BYTES : message.data.readUInt32LE(4);
    const tlvs = message.data.subarray(4 + ((requestLength + 3) & ~3));
    // attributes: a 2-byte length (header included), a 2-byte type, the value, padding to 4
    for (let at = 0; at + 4 <= tlvs.length; ) {
      const length = tlvs.readUInt16LE(at);
      if (length < 4 || at + length > tlvs.length) break; // malformed: only the explanation is lost
      if ((tlvs.readUInt16LE(at + 2) & 0x3fff) === NLMSGERR_ATTR_MSG) kernelMessage = tlvs.toString('utf8', at + 4, at + length).replace(/\0+$/, '');
      at += (length + 3) & ~3;
    }
  }
  return { errno, code: errnoName(errno), kernelMessage };
}

/** The NetlinkError of a refused request: the errno name, and the kernel's reason when it gave one. */
export function refusal(code: string, kernelMessage: string | undefined): NetlinkError {
  const because = kernelMessage ? ` (${kernelMessage})` : '';
  return new NetlinkError(code, kernelMessage, `kernel refused the request: ${code}${because}`);
}
