// netlink/bytes.ts writes what Buffer's little-endian writers write.
import test from 'ava';
import { putU16, putU32, putU8 } from '../netlink/bytes.js';

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
