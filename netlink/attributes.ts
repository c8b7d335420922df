// Netlink attributes, both ways: an index of the attributes of the message being decoded, read in
// place, and RequestBuilder, which writes a request's header and attributes into one buffer.
import { formatIp, type Family } from '../protocol/ip.js';
import { putU16, putU32, putU8 } from './bytes.js';

// A read decodes thousands of addresses, routes and rules, and a Buffer and a Map entry per
// attribute would be most of that work (docs/performance.md, "kernel reads"). The index holds
// where each type's value starts (-1: absent) and its length; the last of a type wins. Decoding
// is synchronous, so one index serves every message, one attribute list at a time. Types above
// the highest one read here (FRA_PROTOCOL, 21) are noted as present, not indexed.
const INDEXED_TYPES = 32;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
const valueAt = new Int32Array(INDEXED_TYPES);
const valueLength = new Int32Array(INDEXED_TYPES);

/** the attribute types the last indexAttributes() met, one bit each; and whether one was too large to index */
let presentTypes = 0;
let unindexedSeen = false;

/** Indexes the attributes of `data` that follow its fixed header of `headerLength` bytes. */
export function indexAttributes(data: Buffer, headerLength: number): void {
  valueAt.fill(-1);
  presentTypes = 0;
  unindexedSeen = false;
  let offset = headerLength;
  while (offset + 4 <= data.length) {
    const length = data[offset]! | (data[offset + 1]! << 8);
    if (length < 4 || offset + length > data.length) break;
    const type = (data[offset + 2]! | (data[offset + 3]! << 8)) & NLA_TYPE_MASK;
    if (type < INDEXED_TYPES) {
      valueAt[type] = offset + 4;
      valueLength[type] = length - 4;
      presentTypes |= 1 << type;
    } else unindexedSeen = true;
    offset += (length + 3) & ~3;
  }
}

/** Whether the indexed list holds an attribute type outside `known` (a bit per type), or one too large to index. */
export function hasAttributesBesides(known: number): boolean {
  return unindexedSeen || (presentTypes & ~known) !== 0;
}

/** One bit per attribute type, for hasAttributesBesides. */
export function attributeBits(types: readonly number[]): number {
  return types.reduce((bits, type) => bits | (1 << type), 0);
}

export function isIndexed(type: number): boolean {
  return valueAt[type]! >= 0;
}

/** A u32 of an attribute's value, `offset` bytes into it (a field of a struct attribute). */
export function indexedU32(data: Buffer, type: number, offset = 0): number | undefined {
  const at = valueAt[type]!;
  return at >= 0 && valueLength[type]! >= offset + 4 ? data.readUInt32LE(at + offset) : undefined;
}

export function indexedU8(data: Buffer, type: number): number | undefined {
  const at = valueAt[type]!;
  return at >= 0 && valueLength[type]! >= 1 ? data[at] : undefined;
}

export function indexedBytes(data: Buffer, type: number): Buffer | undefined {
  const at = valueAt[type]!;
  return at >= 0 ? data.subarray(at, at + valueLength[type]!) : undefined;
}

export function indexedIp(data: Buffer, family: Family, type: number): string | undefined {
  const at = valueAt[type]!;
  const length = family === 'inet' ? 4 : 16;
  return at >= 0 && valueLength[type] === length ? formatIp({ family, bytes: data.subarray(at, at + length) }) : undefined;
}

/** A NUL-terminated string attribute's text. */
export const attributeText = (bytes: Buffer | undefined) => bytes?.toString('utf8').replace(/\0+$/, '');

/**
 * A request payload: a fixed header followed by attributes, each padded to 4 bytes. Written as
 * it is built, into one buffer (grown when an attribute does not fit): the helper encodes
 * thousands per apply under --jitless, where every allocation and every pass counts. The header
 * is given as bytes, or as a size and then written in place with headerU8/headerU32.
 */
export class RequestBuilder {
  private buffer: Uint8Array;
  private length: number;

  constructor(header: Uint8Array | number) {
    const headerBytes = typeof header === 'number' ? header : header.length;
    this.length = align4(headerBytes);
    this.buffer = new Uint8Array(Math.max(IN_HEAP_BYTES, this.length + 8));
    if (typeof header !== 'number') this.buffer.set(header, 0);
  }

  /** Sets a byte of the header (the constructor's size). */
  headerU8(offset: number, value: number): this {
    putU8(this.buffer, offset, value);
    return this;
  }

  /** Sets a 32-bit field of the header, in host byte order. */
  headerU32(offset: number, value: number): this {
    putU32(this.buffer, offset, value);
    return this;
  }

  bytes(type: number, value: Uint8Array): this {
    const at = this.attribute(type, value.length); // before this.buffer is read: it may grow
    this.buffer.set(value, at);
    return this;
  }

  u32(type: number, value: number): this {
    const at = this.attribute(type, 4);
    putU32(this.buffer, at, value >>> 0);
    return this;
  }

  u8(type: number, value: number): this {
    const at = this.attribute(type, 1);
    putU8(this.buffer, at, value & 0xff);
    return this;
  }

  /** The payload, in a buffer of its own size (a copy: a view would move the buffer off V8's heap). */
  build(): Uint8Array[] {
    return [this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length)];
  }

  /** Writes an attribute's header for `size` bytes of value; returns where the value goes. */
  private attribute(type: number, size: number): number {
    const at = this.length;
    const next = at + align4(4 + size);
    if (next > this.buffer.length) {
      const grown = new Uint8Array(Math.max(next, this.buffer.length * 2));
      grown.set(this.buffer, 0); // no subarray: that would move the old buffer off the heap first
      this.buffer = grown;
    }
    putU16(this.buffer, at, 4 + size); // nla_len counts the attribute header, not the padding
    putU16(this.buffer, at + 2, type);
    this.length = next;
    return at + 4;
  }
}

/**
 * A builder's first buffer: what V8 keeps on its own heap (typed arrays of up to 64 bytes; a
 * larger one is malloc'd and stays resident longer). Every request the helper makes fits but an
 * IPv6 route with a gateway, which grows.
 */
const IN_HEAP_BYTES = 64;

function align4(length: number): number {
  return (length + 3) & ~3;
}
