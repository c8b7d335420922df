import test from 'ava';
import { validateParams, isMethodName } from '../../protocol/validate.js';
import { LineSplitter, LineTooLongError } from '../../protocol/framing.js';

test('a well-formed apply request validates', (t) => {
  const result = validateParams('apply', {
    operations: [
      { kind: 'address.add', link: 'eth1', address: '10.4.0.5/24', noPrefixRoute: true },
      { kind: 'rule.add', priority: 20200, table: 20001, family: 'inet', from: '10.4.0.5/32' },
    ],
  });
  t.true(result.ok);
});

test('an invalid operation is refused with the field it concerns', (t) => {
  const result = validateParams('apply', {
    operations: [{ kind: 'address.add', link: 'eth1', address: 'not an address', noPrefixRoute: true }],
  });
  t.false(result.ok);
  if (!result.ok) t.regex(result.error, /\/operations\/0\/address/);
});

test('an unknown operation kind is named as such', (t) => {
  const result = validateParams('apply', { operations: [{ kind: 'route.add', table: 1 }] });
  t.false(result.ok);
  if (!result.ok) t.regex(result.error, /\/operations\/0\/kind: must be one of address\.add/);
});

test('unknown fields are refused', (t) => {
  const result = validateParams('apply', {
    operations: [{ kind: 'link.set', link: 'eth1', up: true, promisc: true }],
  });
  t.false(result.ok);
});

test('link names with a slash or longer than 15 bytes are refused', (t) => {
  for (const link of ['../etc', 'a'.repeat(16), '..', 'eth 1']) {
    const result = validateParams('apply', { operations: [{ kind: 'link.set', link, up: true }] });
    t.false(result.ok, link);
  }
});

test('only declared methods exist', (t) => {
  t.true(isMethodName('apply'));
  t.false(isMethodName('toString'));
  t.false(isMethodName('__proto__'));
});

test('the line splitter joins chunks and enforces the size limit', (t) => {
  const splitter = new LineSplitter(10);
  t.deepEqual(splitter.push(Buffer.from('{"a"')), []);
  t.deepEqual(splitter.push(Buffer.from(':1}\n{}\n')), ['{"a":1}', '{}']);
  t.throws(() => splitter.push(Buffer.from('01234567890')), { instanceOf: LineTooLongError });
});
