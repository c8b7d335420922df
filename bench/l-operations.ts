// An L-size apply as the helper receives it, for the bench's CPU aids (helper-cpu.ts,
// helper-apply-cold.ts): 8 NICs, 2,048 addresses, 2,048 `from` and 1,536 `to` rules.
import type { Operation } from '../protocol/operations.js';

export const NICS = 8;
export const links = Array.from({ length: NICS }, (_, n) => ({ index: 10 + n, name: `eth${n}`, mac: `00:0d:3a:00:00:0${n}`, up: true, mtu: 1500, loopback: false }));
const host = (n: number, i: number) => `10.${n}.${i >> 6}.${(i & 63) + 4}`;

export const operations: Operation[] = [];
for (let n = 0; n < NICS; n++) for (let i = 0; i < 256; i++) operations.push({ kind: 'address.add', link: `eth${n}`, address: `${host(n, i)}/22`, noPrefixRoute: true });
for (let n = 0; n < NICS; n++) for (let i = 0; i < 256; i++) operations.push({ kind: 'rule.add', priority: 20000 + n, table: 20000 + n, family: 'inet', from: `${host(n, i)}/32` });
for (let n = 0; n < NICS; n++) for (let i = 0; i < 192; i++) operations.push({ kind: 'rule.add', priority: 20100 + n, table: 20000 + n, family: 'inet', to: `${host(n, i)}/32` });

/** The helper's policy: its default table and priority ranges, no denied link. */
export const policy = { tables: { first: 20000, last: 29999 }, priorities: { first: 20000, last: 20999 }, deniedLinks: new Set<string>() };
