// netlink/bytes.ts writes what Buffer's little-endian writers write, RequestBuilder lays out a
// header and attributes as rtnetlink reads them, and the address and rule payloads written
// without it are what it would build.
import test from 'ava';
import { putU16, putU32, putU8 } from '../../netlink/bytes.js';
import { RequestBuilder } from '../../netlink/attributes.js';
import { familyNumber } from '../../netlink/families.js';
import { addressPayload, IFA } from '../../netlink/objects/address.js';
import { RT_TABLE_UNSPEC } from '../../netlink/objects/route.js';
import { FR_ACT_TO_TBL, FRA, rulePayload } from '../../netlink/objects/rule.js';
import { formatIp, parsePrefix, type ParsedPrefix } from '../../protocol/ip.js';

const WIDTHS = [
  { name: 'u8', max: 0xff, ours: putU8, theirs: (b: Buffer, v: number, o: number) => b.writeUInt8(v, o) },
  { name: 'u16', max: 0xffff, ours: putU16, theirs: (b: Buffer, v: number, o: number) => b.writeUInt16LE(v, o) },
  { name: 'u32', max: 0xffffffff, ours: putU32, theirs: (b: Buffer, v: number, o: number) => b.writeUInt32LE(v, o) },
];

test('putU8, putU16 and putU32 store little-endian like Buffer.writeUInt*LE, at any offset', (t) => {
  const values = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234, 0xffff, 0x20000, 0x12345678, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
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

const prefix = (text: string): ParsedPrefix => parsePrefix(text)!;

test('address payloads are what RequestBuilder builds: ifaddrmsg, IFA_LOCAL, IFA_ADDRESS for a removal, and IFA_FLAGS and IFA_PROTO for an add', (t) => {
  let cases = 0;
  for (const text of ['10.4.0.5/24', '0.0.0.0/8', '255.255.255.255/32', '2001:db8::5/64', 'fd00:1:2:3:4:5:6:7/128']) {
    const address = prefix(text);
    for (const index of [1, 255, 256, 0x12345, 0x7fffffff]) {
      const header = () => new RequestBuilder(8).headerU8(0, familyNumber(address.family)).headerU8(1, address.prefixLength).headerU32(4, index);
      const [bare] = header().bytes(IFA.LOCAL, address.bytes).build();
      t.deepEqual([...addressPayload(address, index)], [...bare!], `${text} on ${index}`);
      // a removal names IFA_ADDRESS too (the address itself, or a peer), so the kernel compares the prefix length
      const peer = address.family === 'inet' ? prefix('192.0.2.1/32') : prefix('2001:db8::99/128');
      for (const other of [address, peer]) {
        const [removal] = header().bytes(IFA.LOCAL, address.bytes).bytes(IFA.ADDRESS, other.bytes).build();
        t.deepEqual([...addressPayload(address, index, undefined, other)], [...removal!], `${text} on ${index}, IFA_ADDRESS ${formatIp(other)}`);
      }
      for (const flags of [0, 0x200, 0xffffffff]) {
        for (const protocol of [0, 201, 255]) {
          const [added] = header().bytes(IFA.LOCAL, address.bytes).u32(IFA.FLAGS, flags).u8(IFA.PROTO, protocol).build();
          t.deepEqual([...addressPayload(address, index, { flags, protocol })], [...added!], `${text} on ${index}, flags ${flags}, protocol ${protocol}`);
          cases++;
        }
      }
    }
  }
  t.is(cases, 225);
});

test('rule payloads are what RequestBuilder builds: fib_rule_hdr, then priority, table and each selector given', (t) => {
  let cases = 0;
  for (const [family, texts] of [
    ['inet', [undefined, '10.4.0.5/32', '100.64.0.0/10']],
    ['inet6', [undefined, '2001:db8::5/128', '2001:db8:1::/48']],
  ] as const) {
    for (const fromText of texts) {
      for (const toText of texts) {
        const from = fromText === undefined ? undefined : prefix(fromText);
        const to = toText === undefined ? undefined : prefix(toText);
        for (const table of [254, 255, 256, 20001, 0xfffffffe]) {
          for (const priority of [0, 20100, 0xffffffff]) {
            for (const suppress of [undefined, 0, 128]) {
              for (const protocol of [undefined, 201]) {
                const builder = new RequestBuilder(12)
                  .headerU8(0, familyNumber(family))
                  .headerU8(1, to?.prefixLength ?? 0)
                  .headerU8(2, from?.prefixLength ?? 0)
                  .headerU8(4, table <= 255 ? table : RT_TABLE_UNSPEC)
                  .headerU8(7, FR_ACT_TO_TBL)
                  .u32(FRA.PRIORITY, priority)
                  .u32(FRA.TABLE, table);
                if (from) builder.bytes(FRA.SRC, from.bytes);
                if (to) builder.bytes(FRA.DST, to.bytes);
                if (suppress !== undefined) builder.u32(FRA.SUPPRESS_PREFIXLEN, suppress);
                if (protocol !== undefined) builder.u8(FRA.PROTOCOL, protocol);
                const [expected] = builder.build();
                const what = `${family} from ${fromText} to ${toText} table ${table} priority ${priority} suppress ${suppress} protocol ${protocol}`;
                t.deepEqual([...rulePayload(family, priority, table, from, to, suppress, protocol)], [...expected!], what);
                cases++;
              }
            }
          }
        }
      }
    }
  }
  t.is(cases, 2 * 9 * 5 * 3 * 3 * 2);
});
