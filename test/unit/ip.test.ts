import test from 'ava';
import { isIPv4, isIPv6 } from 'node:net';
import { allHostBitsSet, canonicalIp, canonicalNetwork, canonicalPrefix, firstHost, hasHostBits, networkOf, parsePrefix, prefixContains, parseIp, rememberingParsePrefix } from '../../protocol/ip.js';

/** A repeatable random integer below n (a linear congruential generator from `seed`). */
function seededRandom(seed: number): (n: number) => number {
  return (n) => Math.floor(((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000) * n);
}

/** `text`, one time in `oneIn`, with one of `characters` put at a random place. */
function sometimesStray(text: string, random: (n: number) => number, oneIn: number, characters: string): string {
  if (random(oneIn) !== 0) return text;
  const at = random(text.length + 1);
  return text.slice(0, at) + characters[random(characters.length)] + text.slice(at);
}

test('IPv6 text is canonicalised as RFC 5952 says', (t) => {
  t.is(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  t.is(canonicalIp('2001:db8:0:1:0:0:0:0'), '2001:db8:0:1::');
  t.is(canonicalIp('::'), '::');
  t.is(canonicalIp('fe80::1:0:0:1'), 'fe80::1:0:0:1');
  t.is(canonicalIp('2001:0db8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1');
  t.is(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  t.is(canonicalIp('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
});

test('invalid addresses are rejected', (t) => {
  for (const bad of ['10.0.0.256', '10.0.0', '1::2::3', 'abc', '', '01.2.3.4x']) t.is(canonicalIp(bad), undefined, bad);
  t.is(parsePrefix('10.0.0.1/33'), undefined);
  t.is(parsePrefix('10.0.0.1'), undefined);
  t.is(parsePrefix('2001:db8::/129'), undefined);
});

test('networks and first hosts', (t) => {
  t.is(canonicalNetwork('10.4.0.5/24'), '10.4.0.0/24');
  t.is(canonicalPrefix('10.4.0.5/24'), '10.4.0.5/24');
  t.is(firstHost('10.4.0.0/24'), '10.4.0.1');
  t.is(firstHost('172.31.16.0/20'), '172.31.16.1');
  t.is(firstHost('10.0.0.255/23'), '10.0.0.1');
  t.is(firstHost('2001:db8:1::/64'), '2001:db8:1::1');
  t.true(prefixContains(parsePrefix('10.4.0.0/24')!, parseIp('10.4.0.77')!));
  t.false(prefixContains(parsePrefix('10.4.0.0/24')!, parseIp('10.4.1.1')!));
});

test('networkOf and prefixContains agree with a bit-by-bit reference at every prefix length', (t) => {
  // the reference: clear host bits one at a time (the straightforward, slow form)
  const referenceNetwork = (bytes: Uint8Array, length: number) => {
    const out = Uint8Array.from(bytes);
    for (let bit = length; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
    return out;
  };
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
  for (let round = 0; round < 40; round++) {
    for (const size of [4, 16]) {
      const a = Uint8Array.from({ length: size }, random);
      // b shares a random number of leading bits with a
      const b = Uint8Array.from(a);
      const flip = random() % (size * 8);
      b[flip >> 3]! ^= 0x80 >> (flip & 7);
      const family = size === 4 ? 'inet' : 'inet6';
      for (let length = 0; length <= size * 8; length++) {
        const expected = referenceNetwork(a, length);
        t.deepEqual(networkOf({ family, bytes: a }, length).bytes, expected);
        const contains = referenceNetwork(b, length).every((byte, i) => byte === expected[i]);
        t.is(prefixContains({ family, bytes: a, prefixLength: length }, { family, bytes: b }), contains, `${family} /${length} flip ${flip}`);
      }
    }
  }
});

test('IPv4 parsing accepts exactly what node:net isIPv4 accepts, with the same bytes', (t) => {
  const tricky = [
    '0.0.0.0', '255.255.255.255', '10.0.0.1', '1.2.3.4', '01.2.3.4', '1.2.3.04', '1.2.3.00', '256.1.1.1', '1.2.3.255',
    '1.2.3.256', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3.4', '1..2.3', '', '.', '1', '1.2.3.4 ', ' 1.2.3.4', '+1.2.3.4',
    '-1.2.3.4', '1.2.3.4/24', '1.2.3.a', '1e2.1.1.1', '1000.1.1.1', '100.200.250.199', '249.250.251.252', '0x1.2.3.4',
    '::1', '::ffff:1.2.3.4', '١.٢.٣.٤', '1.2.3.-4', '1.2.-0.4', '1.2.3.4.0', '1.2.3.4e0', '1.2.3.0x4', '1.2.3.\u00a04', '1.2.3.4\n',
    '1.2.3.Infinity', '1.2.3.NaN', '1.2.3.4.', '1.2.3.255.5', '1.2.3.25 5', '1.2.3.0.5',
  ];
  // and random dotted strings: 3 to 5 parts of 0 to 4 digits, some with a stray character
  const random = seededRandom(7);
  for (let n = 0; n < 20_000; n++) {
    const parts: string[] = [];
    const count = 3 + random(3);
    for (let p = 0; p < count; p++) {
      const length = random(5);
      let part = '';
      for (let i = 0; i < length; i++) part += String(random(10));
      parts.push(part);
    }
    tricky.push(sometimesStray(parts.join('.'), random, 8, ' x:/-+e\t'));
  }
  let valid = 0;
  for (const text of tricky) {
    const parsed = parseIp(text);
    const v4 = parsed?.family === 'inet';
    t.is(v4, isIPv4(text), JSON.stringify(text));
    if (isIPv4(text)) {
      valid++;
      t.deepEqual([...parsed!.bytes], text.split('.').map(Number), text);
      t.is(canonicalIp(text), text);
    }
  }
  t.true(valid > 100, `only ${valid} valid addresses among the samples`);
});

test('IPv6 parsing accepts what node:net isIPv6 accepts but zones, with the bytes the URL parser finds', (t) => {
  const tricky = [
    '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7::8', '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', ':::', '1:::2', '1::2::3', '::ffff:1.2.3.4', '::1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '::ffff:01.2.3.4',
    '::ffff:1.2.3', '::ffff:1.2.3.256', '1.2.3.4::', '1.2.3.4::1', '::1.2.3.4:1', 'fe80::1%eth0', 'fe80::1%', '12345::',
    '0000:0000:0000:0000:0000:0000:0000:0000', 'FFFF::', 'fffg::', 'ABCD:ef01::', ' ::1', '::1 ', '::\u0031', '[::1]', ':',
    '', '1', '::-1', '::+1', '::0x1', '::١', '\u0011::', '2001:db8::/64', 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255',
  ];
  const random = seededRandom(11);
  const HEX = '0123456789abcdefABCDEF';
  for (let n = 0; n < 20_000; n++) {
    const groups: string[] = [];
    const count = 1 + random(9);
    for (let g = 0; g < count; g++) {
      const length = random(6) === 0 ? random(6) : 1 + random(4);
      let group = '';
      for (let i = 0; i < length; i++) group += HEX[random(HEX.length)];
      groups.push(group);
    }
    if (random(4) === 0) groups[groups.length - 1] = Array.from({ length: 3 + random(3) }, () => String(random(300))).join('.');
    let text = groups.join(':');
    if (random(2) === 0) {
      const at = random(groups.length + 1);
      text = [...groups.slice(0, at), '', ...groups.slice(at)].join(':').replace(/^:(?!:)/, '::').replace(/(?<!:):$/, '::');
    }
    tricky.push(sometimesStray(text, random, 10, ' :.x/%g-'));
  }
  let valid = 0;
  for (const text of tricky) {
    const parsed = parseIp(text);
    const expected = isIPv6(text) && !text.includes('%');
    t.is(parsed?.family === 'inet6', expected, JSON.stringify(text));
    if (!expected) continue;
    valid++;
    // the WHATWG URL parser is an independent IPv6 parser, and writes the canonical form too
    t.is(`[${canonicalIp(text)}]`, new URL(`http://[${text}]/`).hostname, text);
  }
  t.true(valid > 2_000, `only ${valid} valid addresses among the samples`);
});

test('hasHostBits and allHostBitsSet agree with a bit-by-bit reference at every prefix length', (t) => {
  const hostBits = (bytes: Uint8Array, length: number) => {
    const bits: number[] = [];
    for (let bit = length; bit < bytes.length * 8; bit++) bits.push((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1);
    return bits;
  };
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
  let some = 0;
  let all = 0;
  for (let round = 0; round < 60; round++) {
    for (const size of [4, 16]) {
      const family = size === 4 ? 'inet' : 'inet6';
      for (let length = 0; length <= size * 8; length++) {
        // random bytes, and the same with every host bit cleared and with every host bit set
        const bytes = Uint8Array.from({ length: size }, random);
        const cleared = Uint8Array.from(bytes);
        const filled = Uint8Array.from(bytes);
        for (let bit = length; bit < size * 8; bit++) {
          cleared[bit >> 3]! &= ~(0x80 >> (bit & 7));
          filled[bit >> 3]! |= 0x80 >> (bit & 7);
        }
        for (const candidate of [bytes, cleared, filled]) {
          const bits = hostBits(candidate, length);
          const prefix = { family, bytes: candidate, prefixLength: length } as const;
          t.is(hasHostBits(prefix), bits.includes(1), `${family} /${length} ${candidate.join('.')}`);
          t.is(allHostBitsSet(prefix), bits.length > 0 && !bits.includes(0), `${family} /${length} ${candidate.join('.')}`);
          if (bits.includes(1)) some++;
          if (bits.length > 0 && !bits.includes(0)) all++;
        }
      }
    }
  }
  t.true(some > 1000 && all > 1000, `too few cases: ${some} with host bits, ${all} with all set`);
});

test('prefix lengths: one to three digits, at most the family\'s bits', (t) => {
  t.is(parsePrefix('10.0.0.1/24')?.prefixLength, 24);
  t.is(parsePrefix('10.0.0.1/024')?.prefixLength, 24);
  t.is(parsePrefix('10.0.0.1/0')?.prefixLength, 0);
  t.is(parsePrefix('2001:db8::1/128')?.prefixLength, 128);
  for (const bad of ['10.0.0.1/', '10.0.0.1/33', '10.0.0.1/0024', '10.0.0.1/2a', '10.0.0.1/-1', '10.0.0.1/ 24', '10.0.0.1', '/24', '2001:db8::1/129', '10.0.0.1/24/1']) {
    t.is(parsePrefix(bad), undefined, bad);
  }
});

test('rememberingParsePrefix answers as parsePrefix, once per text: the same object when asked again', (t) => {
  const parse = rememberingParsePrefix();
  const texts = ['10.0.0.5/24', '10.0.0.5/24', 'fd00::1/64', 'FD00:0::1/64', '10.0.0.256/24', '10.0.0.256/24', '10.0.0.5', '10.0.0.5/33', ''];
  const first = new Map<string, ReturnType<typeof parse>>();
  for (const text of texts) {
    const answer = parse(text);
    t.deepEqual(answer, parsePrefix(text), text);
    if (first.has(text)) t.is(answer, first.get(text), `${text}: remembered`);
    first.set(text, answer);
  }
  // another request's parser has its own answers
  t.not(rememberingParsePrefix()('10.0.0.5/24'), parse('10.0.0.5/24'));
});
