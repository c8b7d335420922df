// The world the policy fuzzer works in: a VM namespace with a primary NIC (eth0, DHCP) and three
// more (eth1-eth3), where the helper first creates objects of its own and "another tool" (plain
// `ip`, as DHCP clients, cloud agents and admins use it) then lays its objects right next to
// them: the same address with another prefix length, secondaries in the helper's subnet,
// same-destination routes with other metrics and protocols, a next hop appended to a helper
// route, rules with extra selectors at the helper's priorities. Each round gets fresh numbers.
import { execFileSync } from 'node:child_process';
import type { Operation } from '../../protocol/operations.js';
import type { SeededRandom } from './seeded-random.js';

const PRIMARY_LINK = 'eth0';
const LINKS = ['eth0', 'eth1', 'eth2', 'eth3'] as const;
const SECONDARY_LINKS = ['eth1', 'eth2', 'eth3'] as const;

/** A next hop another tool appends to a route of the helper (`ip -6 route append`). */
export interface AppendedNexthop {
  table: number;
  destination: string;
  gateway: string;
  link: string;
}

export interface RoundLayout {
  /** the helper's own objects, requested before another tool lays its twins */
  helperFirst: Operation[];
  /** another tool's commands, each an `ip` argument list */
  foreign: string[][];
  /** the helper's objects requested after another tool's (its address becomes the secondary) */
  helperAfter: Operation[];
  appended: AppendedNexthop[];
}

/**
 * Runs `ip` commands in one process (each process costs more than its command) and returns those
 * the kernel refused. `ip -batch` takes no options per line: a family goes in `options`.
 */
function ipBatch(ns: string, commands: string[][], options: string[] = []): string[] {
  if (commands.length === 0) return [];
  const input = commands.map((args) => args.join(' ')).join('\n') + '\n';
  try {
    execFileSync('ip', ['-n', ns, ...options, '-force', '-batch', '-'], { input, stdio: ['pipe', 'pipe', 'pipe'] });
    return [];
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? error);
    const failed = [...stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1]));
    return failed.map((line) => `ip ${commands[line - 1]?.join(' ')}`);
  }
}

const sysctl = (ns: string, settings: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);

/** DAD without its random start delay, for links created from now on, so settling after IPv6 changes stays quick. */
export function prepareNamespace(ns: string): void {
  sysctl(ns, ['net.ipv6.conf.default.router_solicitation_delay=0']);
}

/** The NICs as veth pairs inside the namespace (ethN and its peer ethNp), up, with 100 ms DAD probes. */
export function createLinks(ns: string): void {
  const refused = ipBatch(ns, LINKS.map((name) => ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]));
  if (refused.length > 0) throw new Error(`cannot create the NICs: ${refused.join('; ')}`);
  sysctl(ns, LINKS.flatMap((name) => [`net.ipv6.neigh.${name}.retrans_time_ms=100`, `net.ipv6.neigh.${name}p.retrans_time_ms=100`]));
  ipBatch(ns, LINKS.flatMap((name) => [['link', 'set', name, 'up'], ['link', 'set', `${name}p`, 'up']]));
}

/** Everything of the last round gone: the NICs (with their addresses and routes) and the rules at managed priorities. */
export function clearRound(ns: string, rules: { family: 'inet' | 'inet6'; priority: number }[]): void {
  const deleteRules = (family: string) => rules.filter((r) => r.family === family).map((r) => ['rule', 'del', 'priority', String(r.priority)]);
  ipBatch(ns, [...LINKS.map((name) => ['link', 'del', name]), ...deleteRules('inet')]);
  ipBatch(ns, deleteRules('inet6'), ['-6']);
}

/** Runs another tool's commands (IPv6 ones start with -6); returns those the kernel refused (the layout is then a little smaller). */
export function runForeign(ns: string, commands: string[][]): string[] {
  const ipv6 = commands.filter((args) => args[0] === '-6');
  return [...ipBatch(ns, commands.filter((args) => args[0] !== '-6')), ...ipBatch(ns, ipv6.map((args) => args.slice(1)), ['-6'])];
}

/** Another tool deletes a helper address and adds it again, untagged: from then on it is that tool's. */
export function readdUntagged(ns: string, link: string, address: string, noPrefixRoute: boolean): void {
  const refused = ipBatch(ns, [
    ['addr', 'del', address, 'dev', link],
    ['addr', 'add', address, 'dev', link, ...(noPrefixRoute ? ['noprefixroute'] : [])],
  ]);
  if (refused.length > 0) throw new Error(`another tool could not re-add ${address} on ${link}: ${refused.join('; ')}`);
}

/** Numbers of one round: a site per scenario (10.x.0.0/16 and fd42:x::/32), managed tables and priorities. */
class RoundNumbers {
  private readonly base: number;
  readonly tables: [number, number, number];
  readonly priority: number;

  constructor(random: SeededRandom) {
    this.base = random.int(16, 230);
    this.tables = [random.int(20_001, 23_000), random.int(23_001, 26_000), random.int(26_001, 29_999)];
    this.priority = random.int(20_100, 20_890);
  }

  v4(site: number, rest: string): string {
    return `10.${this.base + site}.${rest}`;
  }

  v6(site: number, rest: string): string {
    return `fd42:${(this.base + site).toString(16)}:${rest}`;
  }
}

const addressAdd = (link: string, address: string, noPrefixRoute = true): Operation => ({ kind: 'address.add', link, address, noPrefixRoute });
const onLink = (table: number, destination: string, link: string): Operation => ({ kind: 'route.replace', table, destination, link, type: 'unicast', scope: 'link' });
const viaGateway = (table: number, destination: string, link: string, gateway: string): Operation => ({ kind: 'route.replace', table, destination, link, gateway, type: 'unicast', scope: 'universe' });
const localRange = (destination: string, link: string): Operation => ({ kind: 'route.replace', table: 255, destination, link, type: 'local', scope: 'host' });
const ruleFrom = (priority: number, table: number, from: string): Operation => ({ kind: 'rule.add', priority, table, family: from.includes(':') ? 'inet6' : 'inet', from });
const ruleTo = (priority: number, table: number, to: string): Operation => ({ kind: 'rule.add', priority, table, family: to.includes(':') ? 'inet6' : 'inet', to });

type Scenario = (n: RoundNumbers, link: string, other: string) => Partial<RoundLayout>;

/**
 * The same IP with another prefix length, with a lifetime (DHCP-like), and on another link. The
 * kernel lists a primary of narrower scope first: the scope link twin comes before the helper's.
 */
const prefixTwins: Scenario = (n, link, other) => ({
  helperFirst: [addressAdd(link, n.v4(0, '0.50/24')), addressAdd(link, n.v4(0, '1.60/24')), addressAdd(link, n.v4(10, '2.70/24'))],
  foreign: [
    ['addr', 'add', n.v4(0, '0.50/16'), 'dev', link, 'valid_lft', '3600', 'preferred_lft', '3600'],
    ['addr', 'add', n.v4(10, '2.70/16'), 'dev', link, 'scope', 'link', 'valid_lft', '3600', 'preferred_lft', '3600'],
    ['addr', 'add', n.v4(0, '1.60/24'), 'dev', other],
    ['addr', 'add', n.v4(0, '1.61/26'), 'dev', link],
  ],
});

/** The helper's primary with another tool's secondaries, and another tool's primary with the helper's secondary. */
const secondaries: Scenario = (n, link) => ({
  helperFirst: [addressAdd(link, n.v4(1, '1.10/24'), false)],
  foreign: [
    ['addr', 'add', n.v4(1, '1.20/24'), 'dev', link],
    ['addr', 'add', n.v4(1, '1.21/24'), 'dev', link, 'valid_lft', '3600', 'preferred_lft', '3600'],
    ['addr', 'add', n.v4(1, '2.10/24'), 'dev', link],
  ],
  helperAfter: [addressAdd(link, n.v4(1, '2.30/24')), addressAdd(link, n.v4(1, '2.31/24'), false)],
});

/** Same-destination routes of other metrics and protocols in a managed table, IPv4 and IPv6. */
const routeTwins: Scenario = (n, link) => {
  const [table] = n.tables;
  const subnet = n.v4(2, '3.0/24');
  const gateway = n.v4(2, '3.1');
  const subnet6 = n.v6(2, '5::/64');
  return {
    helperFirst: [onLink(table, subnet, link), viaGateway(table, '0.0.0.0/0', link, gateway), onLink(table, subnet6, link), viaGateway(table, '::/0', link, 'fe80::1')],
    foreign: [
      ['route', 'add', subnet, 'dev', link, 'table', String(table), 'metric', '100', 'proto', 'static'],
      ['route', 'add', subnet, 'dev', link, 'table', String(table), 'metric', '300', 'proto', '99'],
      ['route', 'add', 'default', 'via', gateway, 'dev', link, 'table', String(table), 'metric', '50', 'proto', 'dhcp'],
      ['-6', 'route', 'add', subnet6, 'dev', link, 'table', String(table), 'metric', '100', 'proto', 'static'],
      ['-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', link, 'table', String(table), 'metric', '2048', 'proto', 'ra'],
    ],
  };
};

/** `ip route prepend` and `append` of the same destination and metric as the helper's route. */
const prependAppend: Scenario = (n, link) => {
  const table = n.tables[1];
  const gateway = n.v4(3, '4.1');
  return {
    helperFirst: [onLink(table, n.v4(3, '4.0/24'), link), viaGateway(table, n.v4(3, '10.0/24'), link, gateway)],
    foreign: [
      ['route', 'prepend', n.v4(3, '4.0/24'), 'dev', link, 'table', String(table), 'proto', 'boot'],
      ['route', 'append', n.v4(3, '10.0/24'), 'via', gateway, 'dev', link, 'table', String(table), 'proto', 'static'],
    ],
  };
};

/** The local table: the helper's local routes next to the kernel's local route of another tool's address and its static local routes. */
const localTable: Scenario = (n, link, other) => ({
  helperFirst: [localRange(n.v4(4, '6.5/32'), link), localRange(n.v4(4, '7.0/24'), link), localRange(n.v6(4, '8::/64'), link)],
  foreign: [
    ['addr', 'add', n.v4(4, '6.5/24'), 'dev', link],
    ['route', 'add', 'local', n.v4(4, '7.0/24'), 'dev', other, 'table', 'local', 'metric', '100', 'proto', 'static'],
    ['-6', 'route', 'add', 'local', n.v6(4, '8::/64'), 'dev', other, 'table', 'local', 'metric', '100', 'proto', 'static'],
  ],
});

/** IPv6 multipath: another tool appends a next hop to the helper's route. */
const multipath: Scenario = (n, link, other) => {
  const table = n.tables[2];
  const destination = n.v6(5, '9::/64');
  return {
    helperFirst: [viaGateway(table, destination, link, 'fe80::1')],
    foreign: [['-6', 'route', 'append', destination, 'via', 'fe80::2', 'dev', other, 'table', String(table)]],
    appended: [{ table, destination, gateway: 'fe80::2', link: other }],
  };
};

/** Rules at the helper's priorities and tables that select on more, or are identical but for the protocol. */
const ruleTwins: Scenario = (n, link, other) => {
  const [table, table2] = n.tables;
  const p = n.priority;
  const host = n.v4(6, '11.1');
  const host6 = n.v6(6, '11::1');
  const lookup = (priority: number, t = table) => ['lookup', String(t), 'priority', String(priority)];
  return {
    helperFirst: [
      ruleFrom(p, table, `${host}/32`),
      ruleTo(p + 1, table, `${host}/32`),
      ruleFrom(p, table, `${host6}/128`),
      ruleFrom(p + 2, table2, n.v4(6, '12.0/24')),
      { kind: 'rule.add', priority: 20_000, table: 254, family: 'inet', suppressPrefixLength: 0 },
    ],
    foreign: [
      // before the tos variant: the kernel takes a tos-less rule for a duplicate of a tos rule of the same protocol
      ['rule', 'add', 'from', host, ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', host, 'iif', link, ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', host, 'oif', other, ...lookup(p)],
      ['rule', 'add', 'not', 'from', host, ...lookup(p), 'proto', 'boot'],
      ['rule', 'add', 'from', host, 'fwmark', '0x1', ...lookup(p), 'proto', '42'],
      ['rule', 'add', 'from', host, 'tos', '0x10', ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', host, 'uidrange', '1000-2000', ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', host, 'ipproto', 'tcp', 'dport', '443', ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', host, 'to', n.v4(6, '11.2'), ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'to', host, 'iif', link, ...lookup(p + 1), 'proto', 'static'],
      ['rule', 'add', 'to', host, 'tos', '0x08', ...lookup(p + 1), 'proto', 'boot'],
      ['-6', 'rule', 'add', 'from', host6, 'iif', link, ...lookup(p), 'proto', 'static'],
      ['rule', 'add', 'from', n.v4(6, '12.0/24'), ...lookup(p + 2, table2), 'proto', 'dhcp'],
      ['rule', 'add', 'iif', link, 'lookup', 'main', 'suppress_prefixlength', '0', 'priority', '20000', 'proto', 'boot'],
    ],
  };
};

/** Another tool's IPv6: permanent and DHCPv6-like addresses, and routes through a link-local router. */
const ipv6Objects: Scenario = (n, link, other) => ({
  helperFirst: [addressAdd(link, n.v6(7, '13::5/64')), addressAdd(other, n.v6(7, '14::5/64'))],
  foreign: [
    ['-6', 'addr', 'add', n.v6(7, '13::10/64'), 'dev', link],
    ['-6', 'addr', 'add', n.v6(7, '14::10/64'), 'dev', other, 'valid_lft', '3600', 'preferred_lft', '3600'],
    ['-6', 'route', 'add', n.v6(7, '15::/64'), 'via', 'fe80::3', 'dev', link, 'proto', 'static'],
    ['-6', 'route', 'add', n.v6(7, '16::/64'), 'via', 'fe80::3', 'dev', link, 'table', String(n.tables[0]), 'proto', 'boot'],
  ],
});

/** Another tool's route to the prefix of a helper address that has a prefix route (added without noprefixroute). */
const prefixRoutes: Scenario = (n, link) => ({
  helperFirst: [addressAdd(link, n.v6(8, '17::5/64'), false), addressAdd(link, n.v4(8, '17.5/24'), false)],
  foreign: [
    ['-6', 'route', 'add', n.v6(8, '17::/64'), 'dev', link, 'metric', '100', 'proto', 'static'],
    ['route', 'add', n.v4(8, '17.0/24'), 'dev', link, 'metric', '100', 'proto', 'static'],
  ],
});

/** The primary NIC: a DHCP address and default route, plus a point-to-point and a permanent address elsewhere. */
const primaryNic: Scenario = (n, link) => ({
  helperFirst: [addressAdd(link, n.v4(9, '22.8/24')), addressAdd(link, n.v4(9, '18.5/24'))],
  foreign: [
    ['addr', 'add', n.v4(9, '20.4/24'), 'dev', PRIMARY_LINK, 'valid_lft', '3600', 'preferred_lft', '3600'],
    ['route', 'add', 'default', 'via', n.v4(9, '20.1'), 'dev', PRIMARY_LINK, 'proto', 'dhcp', 'src', n.v4(9, '20.4'), 'metric', '100'],
    ['addr', 'add', n.v4(9, '21.1'), 'peer', n.v4(9, '21.2/32'), 'dev', link],
    ['addr', 'add', n.v4(9, '22.7/24'), 'dev', link],
  ],
  helperAfter: [addressAdd(PRIMARY_LINK, n.v4(9, '20.10/24'))],
});

const SCENARIOS: Scenario[] = [prefixTwins, secondaries, routeTwins, prependAppend, localTable, multipath, ruleTwins, ipv6Objects, prefixRoutes, primaryNic];

/** This round's layout: every scenario, each on a link drawn from the seed. */
export function planRound(random: SeededRandom): RoundLayout {
  const n = new RoundNumbers(random);
  const layout: RoundLayout = { helperFirst: [], foreign: [], helperAfter: [], appended: [] };
  for (const scenario of SCENARIOS) {
    const link = random.pick(SECONDARY_LINKS);
    const other = random.pick(SECONDARY_LINKS.filter((l) => l !== link));
    const part = scenario(n, link, other);
    layout.helperFirst.push(...(part.helperFirst ?? []));
    layout.foreign.push(...(part.foreign ?? []));
    layout.helperAfter.push(...(part.helperAfter ?? []));
    layout.appended.push(...(part.appended ?? []));
  }
  return layout;
}
