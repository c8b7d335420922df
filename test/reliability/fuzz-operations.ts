// Schema-valid operations for the policy fuzzer. The operation kinds, their fields and each
// field's type and range come from protocol/operations.ts (walking Operation.anyOf), so a new
// field or kind is fuzzed without a change here. Values come mostly from the kernel's objects
// right now, the helper's and another tool's alike (same destinations, same selectors, same IPs
// with other prefix lengths, the gateways, tables and priorities in use), the rest at random
// within the schema; requests repeat operations and add near-twins on purpose.
import { MTU_RANGE } from '../../protocol/constants.js';
import { KindGuard, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { formatIp, networkOf, parseIp } from '../../protocol/ip.js';
import { IpAddress, IpPrefix, LinkName, Operation, type OperationKind } from '../../protocol/operations.js';
import type { AddressObject, LinkState, RouteObject, RuleObject, Snapshot } from './kernel-objects.js';
import type { SeededRandom } from './seeded-random.js';

export interface FieldShape {
  name: string;
  schema: TSchema;
  optional: boolean;
}

export interface OperationShape {
  kind: OperationKind;
  fields: FieldShape[];
}

/** Each operation kind of the protocol with its fields, read from the Operation union's schemas. */
export function operationShapes(): OperationShape[] {
  return Operation.anyOf.map((member) => {
    const object = member as TObject;
    const kind = object.properties.kind;
    if (!KindGuard.IsLiteral(kind)) throw new Error('an operation schema without a literal kind');
    const required = new Set(object.required ?? []);
    const fields = Object.entries(object.properties)
      .filter(([name]) => name !== 'kind')
      .map(([name, schema]) => ({ name, schema, optional: !required.has(name) }));
    return { kind: kind.const as OperationKind, fields };
  });
}

export const isSchemaValid = (op: unknown): op is Operation => Value.Check(Operation, op);

export interface NumberRange {
  first: number;
  last: number;
}

/** What the kernel holds now, as the generator draws from it. */
export interface Pools {
  links: LinkState[];
  addresses: AddressObject[];
  routes: RouteObject[];
  rules: RuleObject[];
  tables: number[];
  priorities: number[];
  gateways: string[];
}

const LOCAL_TABLE = 255;
const MAIN_TABLE = 254;
// the schema's edges and the MTUs clouds use
const MTUS = [MTU_RANGE.min, MTU_RANGE.min + 1, 1400, 1460, 1500, 8896, 9000, MTU_RANGE.max];

export function poolsFrom(snapshot: Snapshot, managed: { tables: NumberRange; priorities: NumberRange }): Pools {
  const inRange = (n: number, r: NumberRange) => n >= r.first && n <= r.last;
  const addresses = snapshot.objects.filter((o): o is AddressObject => o.kind === 'address' && o.link !== 'lo');
  // not the kernel's IPv6 local routes: they appear when DAD ends, and a pool that depends on timing would make a seed repeat differently
  const repeatable = (r: RouteObject) => !(r.family === 'inet6' && r.protocol === 'kernel' && r.type === 'local');
  const routes = snapshot.objects.filter((o): o is RouteObject => o.kind === 'route' && repeatable(o) && (inRange(o.table, managed.tables) || o.table === LOCAL_TABLE || o.table === MAIN_TABLE));
  const rules = snapshot.objects.filter((o): o is RuleObject => o.kind === 'rule' && inRange(o.priority, managed.priorities));
  const unique = <T>(values: T[]) => [...new Set(values)];
  return {
    links: snapshot.links,
    addresses,
    routes,
    rules,
    tables: unique([...routes.map((r) => r.table), ...rules.map((r) => r.table)]),
    priorities: unique(rules.map((r) => r.priority)),
    gateways: unique([...routes.flatMap((r) => r.nexthops.map((n) => n.gateway)).filter((g): g is string => g !== undefined), 'fe80::1', 'fe80::2']),
  };
}

type Suggestion = Record<string, unknown>;

const KIND_WEIGHTS: Record<string, number> = {
  'address.add': 10,
  'address.remove': 20,
  'route.replace': 14,
  'route.remove': 20,
  'rule.add': 10,
  'rule.remove': 20,
  'link.set': 6,
};

const hostLength = (ip: string) => (ip.includes(':') ? 128 : 32);

/** The network of `ip` at `length`, as text ("10.4.1.0/24"). */
function networkText(ip: string, length: number): string {
  const parsed = parseIp(ip);
  return parsed ? `${formatIp(networkOf(parsed, length))}/${length}` : `${ip}/${length}`;
}

export class OperationGenerator {
  private readonly shapes = operationShapes();

  constructor(
    private readonly random: SeededRandom,
    private readonly managed: { tables: NumberRange; priorities: NumberRange },
  ) {}

  /** One request: 1–40 operations, some repeated verbatim and some near-twins of others. */
  request(pools: Pools): Record<string, unknown>[] {
    const size = this.random.int(1, 40);
    const ops: Record<string, unknown>[] = [];
    while (ops.length < size) {
      const roll = this.random.next();
      if (ops.length > 0 && roll < 0.12) ops.splice(this.random.int(0, ops.length), 0, { ...this.random.pick(ops) });
      else if (ops.length > 0 && roll < 0.22) ops.push(this.twin(this.random.pick(ops), pools));
      else ops.push(this.operation(pools));
    }
    return ops;
  }

  /** One operation of a kind drawn by weight, anchored on a kernel object of its sort. */
  private operation(pools: Pools): Record<string, unknown> {
    const shape = this.random.weighted(this.shapes.map((s) => [s, KIND_WEIGHTS[s.kind] ?? 5] as const));
    const suggestion = this.random.chance(0.08) ? {} : this.anchorSuggestion(shape.kind, pools);
    return this.fill(shape, suggestion, pools);
  }

  /** Fills every field of `shape`: mostly as the anchor suggests, else from the pools or the schema. */
  private fill(shape: OperationShape, suggestion: Suggestion, pools: Pools): Record<string, unknown> {
    const op: Record<string, unknown> = { kind: shape.kind };
    for (const field of shape.fields) {
      const value = this.fieldValue(field, suggestion, pools);
      if (value !== undefined) op[field.name] = value;
    }
    return op;
  }

  private fieldValue(field: FieldShape, suggestion: Suggestion, pools: Pools): unknown {
    const suggested = suggestion[field.name];
    const keep = this.random.chance(0.93);
    if (suggested !== undefined && keep) return suggested;
    // an optional field the anchor leaves out (a rule's other selectors, a local route's gateway) mostly stays out
    if (field.optional && (field.name in suggestion ? keep : this.random.chance(0.9))) return undefined;
    return this.value(field, pools);
  }

  /** A copy of `op` with one field changed to a near value: another prefix length, link, table, priority, family, gateway or MTU. */
  private twin(op: Record<string, unknown>, pools: Pools): Record<string, unknown> {
    const copy = { ...op };
    const names = Object.keys(copy).filter((n) => n !== 'kind');
    if (names.length === 0) return copy;
    const name = this.random.pick(names);
    const value = copy[name];
    const field = this.shapes.find((s) => s.kind === op.kind)?.fields.find((f) => f.name === name);
    if (typeof value === 'string' && value.includes('/')) copy[name] = this.otherLength(name, value);
    else if (name === 'link' && pools.links.length > 0) copy[name] = this.random.pick(pools.links).name;
    else if (name === 'table') copy[name] = this.random.pick([...pools.tables, LOCAL_TABLE, MAIN_TABLE]);
    else if (name === 'priority' && pools.priorities.length > 0 && this.random.chance(0.5)) copy[name] = this.random.pick(pools.priorities);
    else if (name === 'mtu') copy[name] = this.random.pick(MTUS);
    else if (name === 'family') copy[name] = value === 'inet' ? 'inet6' : 'inet';
    else if (name === 'gateway') copy[name] = this.random.pick(pools.gateways);
    else if (typeof value === 'number' && field && KindGuard.IsInteger(field.schema)) {
      // the neighbouring number, within the schema's range
      const { minimum = -Infinity, maximum = Infinity } = field.schema;
      copy[name] = Math.min(maximum, Math.max(minimum, value + this.random.pick([-1, 1])));
    } else if (field) copy[name] = this.value(field, pools);
    return copy;
  }

  /** The same address with another prefix length; a network (destination, selector) stays a network. */
  private otherLength(name: string, prefix: string): string {
    const [ip] = prefix.split('/');
    const length = this.random.int(Math.max(8, hostLength(ip!) - 24), hostLength(ip!));
    return name === 'address' ? `${ip}/${length}` : networkText(ip!, length);
  }

  private anchorSuggestion(kind: OperationKind, pools: Pools): Suggestion {
    const sort = kind.split('.')[0];
    if (sort === 'address') return this.addressSuggestion(pools);
    if (sort === 'route') return this.routeSuggestion(pools);
    if (sort === 'rule') return this.ruleSuggestion(pools);
    if (sort === 'link') return this.linkSuggestion(pools);
    return {};
  }

  /** Half the time one of the helper's objects, else another tool's: removals and replaces then meet the twins. */
  private anchor<T extends { owner: string }>(objects: T[]): T | undefined {
    if (objects.length === 0) return undefined;
    const own = objects.filter((o) => o.owner === 'helper');
    return own.length > 0 && this.random.chance(0.5) ? this.random.pick(own) : this.random.pick(objects);
  }

  private addressSuggestion(pools: Pools): Suggestion {
    const a = this.anchor(pools.addresses);
    if (!a) return {};
    let address = `${a.ip}/${a.prefixLength}`;
    const roll = this.random.next();
    // the same IP with another prefix length, or a new address in the same subnet
    if (roll < 0.15) address = `${a.ip}/${this.random.pick([a.prefixLength - 8, a.prefixLength - 1, a.prefixLength + 1, 16, 24, 32].filter((l) => l >= 8 && l <= hostLength(a.ip)))}`;
    else if (roll < 0.3) address = this.neighbour(a.ip, a.prefixLength);
    return { link: a.link, address, noPrefixRoute: this.random.chance(0.2) ? !a.noPrefixRoute : a.noPrefixRoute };
  }

  /** Another address in the subnet of ip/length. */
  private neighbour(ip: string, length: number): string {
    const parsed = parseIp(ip);
    if (!parsed) return `${ip}/${length}`;
    const bytes = Uint8Array.from(parsed.bytes);
    bytes[bytes.length - 1] = this.random.int(2, 250);
    return `${formatIp({ family: parsed.family, bytes })}/${length}`;
  }

  private routeSuggestion(pools: Pools): Suggestion {
    const r = this.anchor(pools.routes);
    if (!r) return {};
    const hop = this.random.pick(r.nexthops);
    const local = r.table === LOCAL_TABLE || r.type === 'local';
    const suggestion: Suggestion = {
      table: r.table,
      destination: r.destination,
      link: hop.link ?? this.random.pick(pools.links).name,
      type: local ? 'local' : 'unicast',
      scope: local ? 'host' : hop.gateway ? 'universe' : 'link',
      gateway: local ? undefined : hop.gateway,
      source: local ? undefined : r.source,
    };
    // another tool's address turned into a destination: the kernel's local route of it, or its subnet
    if (this.random.chance(0.1) && pools.addresses.length > 0) {
      const a = this.random.pick(pools.addresses);
      suggestion.destination = local ? `${a.ip}/${hostLength(a.ip)}` : networkText(a.ip, a.prefixLength);
      suggestion.link = a.link;
    }
    return suggestion;
  }

  private ruleSuggestion(pools: Pools): Suggestion {
    const r = this.anchor(pools.rules);
    if (!r) return {};
    const suggestion: Suggestion = { priority: r.priority, table: r.table, family: r.family, from: undefined, to: undefined, suppressPrefixLength: undefined };
    const selectors = [r.from && 'from', r.to && 'to', r.suppressPrefixLength !== undefined && 'suppressPrefixLength'].filter((s): s is string => typeof s === 'string');
    const selector = selectors.length > 0 ? this.random.pick(selectors) : 'from';
    if (selector === 'from') suggestion.from = r.from ?? this.hostOf(pools, r.family);
    else if (selector === 'to') suggestion.to = r.to;
    else suggestion.suppressPrefixLength = r.suppressPrefixLength;
    return suggestion;
  }

  private hostOf(pools: Pools, family: string): string {
    const candidates = pools.addresses.filter((a) => a.family === family);
    if (candidates.length === 0) return family === 'inet' ? '10.0.0.1/32' : 'fd42::1/128';
    const a = this.random.pick(candidates);
    return `${a.ip}/${hostLength(a.ip)}`;
  }

  private linkSuggestion(pools: Pools): Suggestion {
    const link = this.random.pick(pools.links);
    const mtu = this.random.pick(MTUS);
    return { link: link.name, mtu: this.random.chance(0.8) ? mtu : undefined, up: this.random.chance(0.3) ? true : undefined };
  }

  /** A value for one field: from the pools where its name says what it holds, else at random within its schema. */
  private value(field: FieldShape, pools: Pools): unknown {
    const fromPool = this.random.chance(0.7) ? this.poolValue(field.name, pools) : undefined;
    return fromPool ?? this.schemaValue(field.schema, pools);
  }

  private poolValue(name: string, pools: Pools): unknown {
    switch (name) {
      case 'table':
        return pools.tables.length > 0 ? this.random.pick(pools.tables) : undefined;
      case 'priority':
        return pools.priorities.length > 0 ? this.random.pick(pools.priorities) : undefined;
      case 'gateway':
        return this.random.pick(pools.gateways);
      case 'source':
        return pools.addresses.length > 0 ? this.random.pick(pools.addresses).ip : undefined;
      case 'mtu':
        return this.random.pick(MTUS);
      case 'suppressPrefixLength':
        return 0;
      default:
        return undefined;
    }
  }

  /** A random value the schema accepts: literals and unions by their members, numbers in their range, strings by their pattern. */
  private schemaValue(schema: TSchema, pools: Pools): unknown {
    if (KindGuard.IsLiteral(schema)) return schema.const;
    if (KindGuard.IsUnion(schema)) return this.schemaValue(this.random.pick(schema.anyOf), pools);
    if (KindGuard.IsBoolean(schema)) return this.random.chance(0.5);
    if (KindGuard.IsInteger(schema)) return this.integerIn(schema.minimum ?? 0, schema.maximum ?? 2 ** 31);
    if (KindGuard.IsString(schema)) {
      if (schema.pattern === LinkName.pattern) return this.linkName(pools);
      if (schema.pattern === IpPrefix.pattern) return this.prefix(pools);
      if (schema.pattern === IpAddress.pattern) return this.ip(pools);
    }
    throw new Error(`the fuzzer cannot make a value for schema ${JSON.stringify(schema)}`);
  }

  /** The bounds, the managed ranges around them, or anything in between. */
  private integerIn(min: number, max: number): number {
    const near = [min, max, this.managed.tables.first, this.managed.tables.last + 1, this.managed.priorities.first - 1, this.managed.priorities.last, LOCAL_TABLE, MAIN_TABLE].filter((n) => n >= min && n <= max);
    return this.random.chance(0.5) ? this.random.pick(near) : this.random.int(min, Math.min(max, 2 ** 31));
  }

  private linkName(pools: Pools): string {
    if (this.random.chance(0.9) && pools.links.length > 0) return this.random.pick(pools.links).name;
    return this.random.pick(['eth9', 'lo', 'bond0', 'x'.repeat(15)]);
  }

  private prefix(pools: Pools): string {
    if (this.random.chance(0.6) && pools.addresses.length > 0) {
      const a = this.random.pick(pools.addresses);
      const length = this.random.int(a.family === 'inet' ? 8 : 48, hostLength(a.ip));
      return this.random.chance(0.5) ? `${a.ip}/${length}` : networkText(a.ip, length);
    }
    const ip = this.ip(pools);
    return `${ip}/${this.random.int(0, hostLength(ip))}`;
  }

  private ip(pools: Pools): string {
    const roll = this.random.next();
    if (roll < 0.5 && pools.addresses.length > 0) return this.random.pick(pools.addresses).ip;
    if (roll < 0.7) return `10.${this.random.int(0, 255)}.${this.random.int(0, 255)}.${this.random.int(0, 255)}`;
    if (roll < 0.85) return `fd42:${this.random.int(0, 0xffff).toString(16)}::${this.random.int(1, 0xffff).toString(16)}`;
    return this.random.pick(['127.0.0.1', '169.254.169.254', '224.0.0.1', '0.0.0.0', '255.255.255.255', '::1', '::', 'fe80::1', 'ff02::1', '::ffff:10.0.0.1']);
  }
}
