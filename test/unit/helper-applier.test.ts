// The helper's Applier with a modelled kernel: what it reads before judging, and that the
// ledger is kept against the addresses the kernel holds.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Applier } from '../../helper/applier.js';
import type { KernelAccess, WriteResult } from '../../helper/kernel.js';
import { AddressLedger } from '../../helper/ledger.js';
import { JsonLineLog } from '../../helper/log.js';
import type { StatePart } from '../../netlink/read.js';
import type { KernelState } from '../../netlink/types.js';
import type { ExactOperation } from '../../netlink/write.js';
import { DEFAULT_PRIORITY_RANGE, DEFAULT_TABLE_RANGE } from '../../protocol/constants.js';
import type { Operation } from '../../protocol/operations.js';
import { applied } from '../lib/fake-kernel.js';

class ModelledKernel implements KernelAccess {
  state: KernelState = {
    links: [{ index: 3, name: 'eth1', mac: '02:00:00:00:00:02', up: true, mtu: 1500, loopback: false }],
    addresses: [],
    routes: [],
    rules: [],
  };
  reads: string[][] = [];
  async read(parts?: ReadonlySet<StatePart>): Promise<KernelState> {
    const asked = parts ?? new Set<StatePart>(['addresses', 'routes', 'rules']);
    this.reads.push([...asked].sort());
    return {
      links: structuredClone(this.state.links),
      addresses: asked.has('addresses') ? structuredClone(this.state.addresses) : [],
      routes: asked.has('routes') ? structuredClone(this.state.routes) : [],
      rules: asked.has('rules') ? structuredClone(this.state.rules) : [],
    };
  }
  async execute(operations: readonly ExactOperation[]): Promise<WriteResult[]> {
    this.state = applied(this.state, operations.map(({ op }) => op));
    return operations.map(() => ({ outcome: 'applied' }));
  }
  close(): void {}
}

async function applierWith(t: import('ava').ExecutionContext, kernel: ModelledKernel, tagsAddresses = true) {
  const dir = await mkdtemp(join(tmpdir(), 'cn-applier-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ledger = await AddressLedger.open(join(dir, 'ledger.json'), new JsonLineLog('test', 'fatal'));
  const applier = new Applier({
    kernel,
    ledger,
    version: 'test',
    tagsAddresses,
    policy: { tables: DEFAULT_TABLE_RANGE, priorities: DEFAULT_PRIORITY_RANGE, deniedLinks: new Set() },
  });
  return { applier, ledger };
}

test('an address repair reads links, addresses and routes only; rule operations read the rules too', async (t) => {
  const kernel = new ModelledKernel();
  const { applier } = await applierWith(t, kernel);
  const add: Operation = { kind: 'address.add', link: 'eth1', address: '10.0.1.5/24', noPrefixRoute: true };
  t.is((await applier.apply([add])).results[0]?.outcome, 'applied');
  t.deepEqual(kernel.reads, [['addresses', 'routes']]);

  kernel.reads = [];
  const route: Operation = { kind: 'route.replace', table: 20001, destination: '10.0.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' };
  const rule: Operation = { kind: 'rule.add', family: 'inet', priority: 20200, from: '10.0.1.5/32', table: 20001 };
  const results = (await applier.apply([route, rule])).results;
  t.deepEqual(results.map((r) => r.outcome), ['applied', 'applied']);
  t.deepEqual(kernel.reads, [['addresses', 'routes', 'rules']]);
  // judged against the rules it read: a rule someone else made is not removed
  kernel.state.rules.push({ family: 'inet', priority: 20201, table: 20001, from: '10.0.1.6/32', protocol: 4, action: 'lookup' });
  const foreign: Operation = { kind: 'rule.remove', family: 'inet', priority: 20201, from: '10.0.1.6/32', table: 20001 };
  t.is((await applier.apply([foreign])).results[0]?.outcome, 'refused');
});

test('ledger entries whose address vanished are forgotten, the others kept', async (t) => {
  const kernel = new ModelledKernel();
  const { applier, ledger } = await applierWith(t, kernel, false);
  const ops: Operation[] = [];
  for (let i = 1; i <= 300; i++) ops.push({ kind: 'address.add', link: 'eth1', address: `10.0.${i >> 8}.${i & 0xff}/32`, noPrefixRoute: true });
  await applier.apply(ops);
  // a kernel without IFA_PROTO: only the ledger says these are ours
  kernel.state.addresses = kernel.state.addresses.map((a) => ({ ...a, protocol: undefined }));
  t.is((await applier.ownedAddresses()).addresses.length, 300);
  kernel.state.addresses = kernel.state.addresses.filter((a) => a.address !== '10.0.0.7' && a.address !== '10.0.0.200');
  const owned = await applier.ownedAddresses();
  t.is(owned.addresses.length, 298);
  t.false(ledger.has('eth1', '10.0.0.7/32'));
  t.false(ledger.has('eth1', '10.0.0.200/32'));
  t.true(ledger.has('eth1', '10.0.0.8/32'));
});

test('a later run of a request is judged against what the earlier runs changed, not the first read', async (t) => {
  const kernel = new ModelledKernel();
  const { applier } = await applierWith(t, kernel);
  const address: Operation = { kind: 'address.add', link: 'eth1', address: '10.0.1.5/24', noPrefixRoute: true };
  const route: Operation = { kind: 'route.replace', table: 20001, destination: '10.0.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' };
  const rule: Operation = { kind: 'rule.add', family: 'inet', priority: 20200, from: '10.0.1.5/32', table: 20001 };
  // the third run's rule selects an address another tool configured
  kernel.state.addresses.push({ ifindex: 3, family: 'inet', address: '10.0.1.6', prefixLength: 24, dynamic: true, noPrefixRoute: false, scope: 0 });
  // additions, then their removals (a second run): the removals find what the first run made;
  // judged against the read before the request they would be "already" and leave it there
  const results = (
    await applier.apply([
      address,
      route,
      rule,
      { kind: 'address.remove', link: 'eth1', address: '10.0.1.5/24' },
      { kind: 'route.remove', table: 20001, destination: '10.0.1.0/24', link: 'eth1', type: 'unicast' },
      { kind: 'rule.remove', family: 'inet', priority: 20200, from: '10.0.1.5/32', table: 20001 },
      // a third run: the rule is gone now
      { kind: 'rule.add', family: 'inet', priority: 20201, from: '10.0.1.6/32', table: 20001 },
      { kind: 'rule.remove', family: 'inet', priority: 20200, from: '10.0.1.5/32', table: 20001 },
    ])
  ).results;
  t.deepEqual(
    results.map((r) => r.outcome),
    ['applied', 'applied', 'applied', 'applied', 'applied', 'applied', 'applied', 'already'],
  );
  t.deepEqual(kernel.state.addresses.map((a) => a.address), ['10.0.1.6']);
  t.deepEqual(kernel.state.routes, []);
  t.deepEqual(kernel.state.rules.map((r) => r.from), ['10.0.1.6/32']);
});
