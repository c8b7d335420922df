// Generated hostile messages for the helper: random bytes, mutated valid requests, wrong types,
// huge numbers, deep nesting and every policy violation. Deterministic (a seeded generator),
// so a failure can be replayed. No message contains a newline: that would only split it.
import { isMethodName, validateParams } from '../../protocol/validate.js';

/** A small seeded PRNG (mulberry32): the same seed gives the same messages. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rpc = (id: unknown, method: string, params?: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
const apply = (id: unknown, operations: unknown[]) => rpc(id, 'apply', { operations });

/** What the policy must refuse, judged against the namespace set up by the caller. */
export interface Violations {
  /** an address with a lifetime (DHCP's), on `link` */
  dhcp: { link: string; address: string };
  /** an address another tool configured, on `link` */
  foreign: { link: string; address: string };
  /** a NIC that may be touched */
  link: string;
}

export function policyViolations(v: Violations): { name: string; message: string }[] {
  const op = (name: string, operation: unknown) => ({ name, message: apply(name, [operation]) });
  return [
    op('address on lo', { kind: 'address.add', link: 'lo', address: '10.66.0.1/32', noPrefixRoute: true }),
    op('lo down', { kind: 'link.set', link: 'lo', up: false }),
    op('route in table 254', { kind: 'route.replace', table: 254, destination: '10.66.0.0/24', link: v.link, type: 'unicast', scope: 'link' }),
    op('route in table 255 (local, unicast)', { kind: 'route.replace', table: 255, destination: '10.66.0.0/24', link: v.link, type: 'unicast', scope: 'link' }),
    op('main default route removed', { kind: 'route.remove', table: 254, destination: '0.0.0.0/0', link: v.link, type: 'unicast' }),
    op('main default route replaced', { kind: 'route.replace', table: 254, destination: '0.0.0.0/0', link: v.link, gateway: '10.66.0.1', type: 'unicast', scope: 'universe' }),
    op('rule priority 0', { kind: 'rule.add', priority: 0, table: 20001, family: 'inet', from: '10.66.0.1/32' }),
    op('rule priority 32766', { kind: 'rule.add', priority: 32766, table: 20001, family: 'inet', from: '10.66.0.1/32' }),
    op('rule for everything', { kind: 'rule.add', priority: 20100, table: 20001, family: 'inet', from: '0.0.0.0/0' }),
    op('rule to table main', { kind: 'rule.add', priority: 20100, table: 254, family: 'inet', from: '10.66.0.1/32' }),
    op('rule remove local', { kind: 'rule.remove', priority: 0, table: 255, family: 'inet' }),
    op('rule remove main', { kind: 'rule.remove', priority: 32766, table: 254, family: 'inet' }),
    op('DHCP address removed', { kind: 'address.remove', link: v.dhcp.link, address: v.dhcp.address }),
    op('foreign address removed', { kind: 'address.remove', link: v.foreign.link, address: v.foreign.address }),
    op('multicast address', { kind: 'address.add', link: v.link, address: '224.0.0.1/32', noPrefixRoute: true }),
    op('loopback range address', { kind: 'address.add', link: v.link, address: '127.0.0.2/8', noPrefixRoute: true }),
    op('unspecified address', { kind: 'address.add', link: v.link, address: '0.0.0.0/0', noPrefixRoute: true }),
    op('link-local metadata address', { kind: 'address.add', link: v.link, address: '169.254.169.254/32', noPrefixRoute: true }),
    op('no such link', { kind: 'address.add', link: 'eth99', address: '10.66.0.1/32', noPrefixRoute: true }),
    op('link name with a slash', { kind: 'address.add', link: '../eth1', address: '10.66.0.1/32', noPrefixRoute: true }),
    op('mtu 68', { kind: 'link.set', link: v.link, mtu: 68 }),
    op('link down', { kind: 'link.set', link: v.link, up: false }),
    op('prefix /33', { kind: 'address.add', link: v.link, address: '10.66.0.1/33', noPrefixRoute: true }),
    op('route via a gateway in the table 0', { kind: 'route.replace', table: 0, destination: '10.66.0.0/24', link: v.link, type: 'unicast', scope: 'link' }),
    op('local route for everything', { kind: 'route.replace', table: 255, destination: '0.0.0.0/0', link: v.link, type: 'local', scope: 'host' }),
  ];
}

const HUGE_NUMBERS = [1e308, -1e308, 2 ** 53 + 1, 2 ** 64, -1, 0, 1.5, Number.MAX_SAFE_INTEGER, 4294967296, -2147483649];
const WRONG_VALUES: unknown[] = [null, true, false, 0, -1, 1e308, '', 'x'.repeat(300), [], [[]], {}, { __proto__: null }, '../../etc/passwd', '\u0000', '10.0.0.1/24\u0000', 'eth1;reboot', '${jndi}'];

/** A valid request to mutate: something the helper would accept. */
function validTemplate(link: string, i: number): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id: i,
    method: 'apply',
    params: {
      operations: [
        { kind: 'address.add', link, address: `10.77.${i % 250}.1/32`, noPrefixRoute: true },
        { kind: 'route.replace', table: 20001, destination: '10.77.0.0/16', link, type: 'unicast', scope: 'link' },
        { kind: 'rule.add', priority: 20100, table: 20001, family: 'inet', to: `10.77.${i % 250}.1/32` },
      ],
    },
  };
}

/** Replaces one leaf or node of `value` (a JSON tree) with `replacement`, in place. */
function replaceSomewhere(value: Record<string, unknown>, random: () => number, replacement: unknown): void {
  let node: Record<string, unknown> = value;
  for (let depth = 0; depth < 6; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) return;
    const key = keys[Math.floor(random() * keys.length)]!;
    const child = node[key];
    if (typeof child === 'object' && child !== null && random() < 0.6) {
      node = child as Record<string, unknown>;
      continue;
    }
    node[key] = replacement;
    return;
  }
}

function mutateBytes(text: string, random: () => number): string {
  const bytes = Buffer.from(text);
  const n = 1 + Math.floor(random() * 4);
  const alphabet = [0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x30, 0x39, 0x2d, 0x65, 0x00, 0xff, 0x5c, 0x20];
  for (let i = 0; i < n; i++) bytes[Math.floor(random() * bytes.length)] = alphabet[Math.floor(random() * alphabet.length)]!;
  return bytes.toString('latin1');
}

export interface Generated {
  /** the message, one line without its newline */
  message: string;
  kind: 'random bytes' | 'mutated bytes' | 'wrong type' | 'huge number' | 'deep nesting' | 'policy violation' | 'odd method';
}

/**
 * `count` hostile messages for a helper whose namespace has `v`. None of them may change the
 * kernel: mutations only ever target addresses in 10.77.0.0/16 on `v.link` that are refused
 * for another reason (wrong types, invalid JSON) — a mutation that happens to stay valid is
 * filtered out here, by round-tripping it through the same check the helper's schema does.
 */
export function hostileMessages(count: number, v: Violations, seed = 7): Generated[] {
  // a few more than asked: the schema-valid mutations are dropped at the end
  const wanted = count;
  count = Math.ceil(count * 1.1);
  const random = seeded(seed);
  const violations = policyViolations(v);
  const out: Generated[] = [];
  const oddMethods = ['shell', 'constructor', '__proto__', 'toString', 'apply.call', 'ownedAddresses ', 'APPLY', '', 'info\u0000'];
  for (let i = 0; out.length < count; i++) {
    const pick = i % 7;
    if (pick === 0) {
      const length = 1 + Math.floor(random() * 400);
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256);
      out.push({ kind: 'random bytes', message: bytes.toString('latin1') });
    } else if (pick === 1) {
      out.push({ kind: 'mutated bytes', message: mutateBytes(JSON.stringify(validTemplate(v.link, i)), random) });
    } else if (pick === 2) {
      const request = validTemplate(v.link, i);
      replaceSomewhere(request, random, WRONG_VALUES[Math.floor(random() * WRONG_VALUES.length)]);
      out.push({ kind: 'wrong type', message: JSON.stringify(request) });
    } else if (pick === 3) {
      const request = validTemplate(v.link, i);
      const ops = (request.params as { operations: Record<string, unknown>[] }).operations;
      const op = ops[Math.floor(random() * ops.length)]!;
      const numeric = Object.keys(op).filter((k) => typeof op[k] === 'number');
      const key = numeric.length > 0 && random() < 0.7 ? numeric[Math.floor(random() * numeric.length)]! : 'id';
      const target = key === 'id' ? request : op;
      target[key] = HUGE_NUMBERS[Math.floor(random() * HUGE_NUMBERS.length)];
      // -1, 0 and 1.5 as an id are fine: make the request invalid elsewhere too
      if (key === 'id') (request.params as Record<string, unknown>).extra = true;
      out.push({ kind: 'huge number', message: JSON.stringify(request) });
    } else if (pick === 4) {
      const depth = 10 + Math.floor(random() * 20_000);
      const open = random() < 0.5 ? '[' : '{"a":';
      const close = open === '[' ? ']' : '}';
      const inner = random() < 0.5 ? `${open.repeat(depth)}1${close.repeat(depth)}` : rpc(i, 'apply', { operations: JSON.parse(`${'['.repeat(Math.min(depth, 500))}${']'.repeat(Math.min(depth, 500))}`) });
      out.push({ kind: 'deep nesting', message: inner });
    } else if (pick === 5) {
      out.push({ kind: 'policy violation', message: violations[i % violations.length]!.message });
    } else {
      out.push({ kind: 'odd method', message: rpc(random() < 0.5 ? i : { nested: i }, oddMethods[i % oddMethods.length]!, random() < 0.5 ? {} : [1, 2]) });
    }
  }
  return out.map((g) => ({ ...g, message: g.message.replace(/\n/g, ' ') })).filter((g) => g.kind === 'policy violation' || !schemaValid(g.message))
    .slice(0, wanted);
}

/** Whether a message is a well-formed request the helper's schema accepts (a harmless mutation). */
function schemaValid(message: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { jsonrpc, method, params, id } = value as Record<string, unknown>;
  if (jsonrpc !== '2.0' || typeof method !== 'string' || !isMethodName(method)) return false;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') return false;
  return validateParams(method, params ?? {}).ok;
}
