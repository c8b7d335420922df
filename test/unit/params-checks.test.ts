// The helper's bundle checks params with functions generated at build time
// (tools/params-checks.mjs); the sources compile them from the schemas when they load
// (protocol/params-checks.ts). Both must give the same answer for every message.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_OPERATIONS_PER_REQUEST, METHOD_NAMES } from '../../protocol/names.js';
import { PARAMS_CHECKS, type ParamsCheck } from '../../protocol/params-checks.js';
import type { MethodName } from '../../protocol/methods.js';
import { hostileMessages } from '../reliability/hostile-messages.js';
import { ROOT } from '../lib/helper-harness.js';

async function generatedChecks(t: import('ava').ExecutionContext): Promise<Record<MethodName, ParamsCheck>> {
  const tools = (await import('../../tools/params-checks.mjs' as string)) as { paramsChecksModule(root: string): Promise<string> };
  const dir = mkdtempSync(join(tmpdir(), 'cn-checks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'params-checks.mjs');
  writeFileSync(file, await tools.paramsChecksModule(ROOT));
  return ((await import(pathToFileURL(file).href)) as { PARAMS_CHECKS: Record<MethodName, ParamsCheck> }).PARAMS_CHECKS;
}

/** One valid apply per operation kind and optional field. */
const VALID_OPERATIONS = [
  { kind: 'address.add', link: 'eth1', address: '10.4.0.5/24', noPrefixRoute: true },
  { kind: 'address.add', link: 'eth1', address: 'fd00::5/64', noPrefixRoute: false },
  { kind: 'address.remove', link: 'eth1', address: '10.4.0.5/24' },
  { kind: 'route.replace', table: 20001, destination: '0.0.0.0/0', link: 'eth1', gateway: '10.4.0.1', type: 'unicast', scope: 'universe' },
  { kind: 'route.replace', table: 20001, destination: '10.4.0.0/24', link: 'eth1', source: '10.4.0.5', type: 'unicast', scope: 'link' },
  { kind: 'route.replace', table: 20001, destination: '10.5.0.0/24', link: 'eth1', type: 'local', scope: 'host' },
  { kind: 'route.remove', table: 20001, destination: '10.4.0.0/24', link: 'eth1', type: 'unicast' },
  { kind: 'rule.add', priority: 20200, table: 20001, family: 'inet', from: '10.4.0.5/32' },
  { kind: 'rule.add', priority: 20100, table: 20001, family: 'inet6', to: 'fd00::5/128' },
  { kind: 'rule.add', priority: 20000, table: 254, family: 'inet', suppressPrefixLength: 0 },
  { kind: 'rule.remove', priority: 20200, table: 20001, family: 'inet', from: '10.4.0.5/32' },
  { kind: 'link.set', link: 'eth1', up: true, mtu: 1500 },
  { kind: 'link.set', link: 'eth1' },
];

test('the generated checks answer as the compiled ones, for valid and for hostile params', async (t) => {
  const generated = await generatedChecks(t);
  t.deepEqual(Object.keys(generated).sort(), [...METHOD_NAMES].sort());
  const cases: { method: MethodName; params: unknown }[] = [
    ...VALID_OPERATIONS.map((operation) => ({ method: 'apply' as const, params: { operations: [operation] } })),
    { method: 'apply', params: { operations: VALID_OPERATIONS } },
    { method: 'apply', params: { operations: [] } },
    // the schemas' limits, on both sides
    { method: 'apply', params: { operations: Array.from({ length: MAX_OPERATIONS_PER_REQUEST }, () => VALID_OPERATIONS[0]) } },
    { method: 'apply', params: { operations: Array.from({ length: MAX_OPERATIONS_PER_REQUEST + 1 }, () => VALID_OPERATIONS[0]) } },
    ...['e'.repeat(15), 'e'.repeat(16), '.', '..', '...'].map((link) => ({ method: 'apply' as const, params: { operations: [{ kind: 'link.set', link }] } })),
    ...[0xffffffff, 0x100000000, 0, 1.5].map((priority) => ({ method: 'apply' as const, params: { operations: [{ ...VALID_OPERATIONS[7], priority }] } })),
    ...[1279, 1280, 9216, 9217].map((mtu) => ({ method: 'apply' as const, params: { operations: [{ kind: 'link.set', link: 'eth1', mtu }] } })),
    { method: 'info', params: {} },
    { method: 'ownedAddresses', params: {} },
    { method: 'info', params: { verbose: true } },
    { method: 'ownedAddresses', params: [] },
  ];
  for (const { message } of hostileMessages(3000, { dhcp: { link: 'eth0', address: '10.66.0.4/24' }, foreign: { link: 'eth1', address: '10.66.1.9/24' }, link: 'eth1' })) {
    let request: unknown;
    try {
      request = JSON.parse(message);
    } catch {
      continue;
    }
    const { method, params } = (typeof request === 'object' && request !== null ? request : {}) as { method?: unknown; params?: unknown };
    for (const name of METHOD_NAMES) if (method === name || typeof method !== 'string') cases.push({ method: name, params: params ?? {} });
  }
  let valid = 0;
  for (const { method, params } of cases) {
    const expected = PARAMS_CHECKS[method](params);
    t.is(generated[method](params), expected, `${method} ${JSON.stringify(params)?.slice(0, 300)}`);
    if (expected) valid++;
  }
  // both kinds of answer were asked for, many times
  t.true(valid >= VALID_OPERATIONS.length + 3, `${valid} valid`);
  t.true(cases.length - valid >= 1000, `${cases.length - valid} invalid`);
});
