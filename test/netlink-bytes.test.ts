// netlink/bytes.ts writes what Buffer's little-endian writers write, and RequestBuilder lays
// out a header and attributes as rtnetlink reads them.
import test from 'ava';
import { putU16, putU32, putU8 } from '../netlink/bytes.js';
import { RequestBuilder } from '../netlink/messages.js';

const WIDTHS = [
  { name: 'u8', max: 0xff, ours: putU8, theirs: (b: Buffer, v: number, o: number) => b.writeUInt8(v, o) },
  { name: 'u16', max: 0xffff, ours: putU16, theirs: (b: Buffer, v: number, o: number) => b.writeUInt16LE(v, o) },
  { name: 'u32', max: 0xffffffff, ours: putU32, theirs: (b: Buffer, v: number, o: number) => b.writeUInt32LE(v, o) },
];

test('putU8, putU16 and putU32 store little-endian like Buffer.writeUInt*LE, at any offset', (t) => {
  const values = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234, 0xffff, 0x10000, 0x12345678, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
  for (const { name, max, ours, theirs } of WIDTHS) {
    for (const value of values.filter((v) => v <= max)) {
      for (const offset of [0, 1, 3]) {
        const mine = new Uint8Array(8);
        const buffer = Buffer.alloc(8);
        ours(mine, offset, value);
        theirs(buffer, value, offset);
        t.deepEqual([...mine], [...buffer], `${name} ${value} at ${offset}`);
      }
    }
  }
});

test('RequestBuilder: the header, then each attribute as length, type, value, zero padding to 4 bytes', (t) => {
  const [built, ...rest] = new RequestBuilder(6).headerU8(0, 2).headerU32(2, 0x01020304).u8(3, 201).u32(7, 0xfffffffe).bytes(1, Uint8Array.of(10, 0, 0, 5, 9)).build();
  t.is(rest.length, 0, 'one piece');
  t.deepEqual(
    [...built!],
    [
      ...[2, 0, 4, 3, 2, 1, 0, 0], // the header, padded from 6 to 8 bytes
      ...[5, 0, 3, 0, 201, 0, 0, 0], // nla_len 5 counts the value's 1 byte, not the padding
      ...[8, 0, 7, 0, 0xfe, 0xff, 0xff, 0xff],
      ...[9, 0, 1, 0, 10, 0, 0, 5, 9, 0, 0, 0],
    ],
  );
  // a header given as bytes; attributes past the first buffer's room grow it, keeping what was written
  const big = new RequestBuilder(Uint8Array.of(7, 7, 7, 7));
  for (let type = 1; type <= 40; type++) big.u32(type, type * 1000);
  const [grown] = big.build();
  t.is(grown!.length, 4 + 40 * 8);
  t.deepEqual([...grown!.subarray(0, 4)], [7, 7, 7, 7]);
  for (let type = 1; type <= 40; type++) {
    const at = 4 + (type - 1) * 8;
    const view = Buffer.from(grown!.buffer, grown!.byteOffset + at, 8);
    t.deepEqual([view.readUInt16LE(0), view.readUInt16LE(2), view.readUInt32LE(4)], [8, type, type * 1000], `attribute ${type}`);
  }
});
