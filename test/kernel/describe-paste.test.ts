// The text of an operation (--dry-run, the audit trail, the API's pending list) is the iproute2
// command that does the same: pasted into `ip`, it leaves the kernel as the helper leaves it.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { HelperClient } from '../../agent/reconcile/helper-client.js';
import { describeOperation } from '../../netlink/describe.js';
import type { Operation } from '../../protocol/operations.js';
import { createNamespace, kernelDump, settledKernelDump } from '../lib/netns.js';
import { addNics, startHelper } from '../lib/helper-harness.js';

const ADDITIONS: Operation[] = [
  { kind: 'link.set', link: 'eth2', up: true, mtu: 1460 },
  { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
  { kind: 'address.add', link: 'eth1', address: '2001:db8:1::5/64', noPrefixRoute: true },
  { kind: 'route.replace', table: 20_001, destination: '10.4.1.0/24', link: 'eth1', type: 'unicast', scope: 'link' },
  { kind: 'route.replace', table: 20_001, destination: '0.0.0.0/0', link: 'eth1', gateway: '10.4.1.1', type: 'unicast', scope: 'universe' },
  { kind: 'route.replace', table: 20_001, destination: '::/0', link: 'eth1', gateway: 'fe80::1', type: 'unicast', scope: 'universe' },
  { kind: 'route.replace', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local', scope: 'host' },
  { kind: 'rule.add', priority: 20_000, table: 254, family: 'inet', suppressPrefixLength: 0 },
  { kind: 'rule.add', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', from: '10.4.1.5/32' },
  { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet6', from: '2001:db8:1::5/128' },
];
const REMOVALS: Operation[] = [
  { kind: 'rule.remove', priority: 20_100, table: 20_001, family: 'inet', to: '10.4.1.5/32' },
  { kind: 'rule.remove', priority: 20_200, table: 20_001, family: 'inet6', from: '2001:db8:1::5/128' },
  { kind: 'route.remove', table: 255, destination: '10.128.8.0/24', link: 'eth1', type: 'local' },
  { kind: 'route.remove', table: 20_001, destination: '::/0', link: 'eth1', type: 'unicast' },
  { kind: 'address.remove', link: 'eth1', address: '2001:db8:1::5/64' },
];

/** A namespace's dump without what differs between any two namespaces: the veths' random MACs and the link-local addresses made from them. */
function comparable(dump: string): string {
  const masked = dump.replace(/link\/ether \S+ brd \S+/g, 'link/ether').replace(/fe80::[0-9a-f]+:[0-9a-f]+:[0-9a-f]+:[0-9a-f]+/g, 'fe80::(from the MAC)');
  // the kernel lists local routes in address order, which the masked addresses no longer show
  return masked.split('\n').sort().join('\n');
}

/** Whether this iproute2 sets an address's protocol (`ip address add … proto`, iproute2 6.3 and later). */
function iprouteSetsAddressProtocol(): boolean {
  // `ip address help` prints its usage to stderr and exits 255
  const usage = spawnSync('ip', ['address', 'help'], { encoding: 'utf8' });
  return /\bproto\b/.test(`${usage.stdout}${usage.stderr}`);
}

/** Runs each operation's text as an `ip` command in the namespace, as an operator pastes it. */
function paste(ns: string, ops: Operation[]): void {
  const withProtocol = iprouteSetsAddressProtocol();
  const commands = ops.map((op) => {
    const text = describeOperation(op);
    if (!text.startsWith('ip ')) throw new Error(`not an ip command: ${text}`);
    // an older iproute2 cannot name the address's protocol, which only `ip -d` would show
    return (withProtocol || op.kind !== 'address.add' ? text : text.replace(/ proto \d+$/, '')).slice(3);
  });
  for (const command of commands) execFileSync('ip', ['-n', ns, ...command.split(' ')], { stdio: ['ignore', 'ignore', 'pipe'] });
}

test('pasted into ip, an operation does what the helper does', async (t) => {
  const pasted = createNamespace(t, 'paste');
  addNics(pasted);
  const applied = createNamespace(t, 'applied');
  addNics(applied);
  const helper = await startHelper(t, applied);
  const client = new HelperClient({ socketPath: helper.socketPath, timeoutMs: 20_000 });
  t.teardown(() => client.close());

  paste(pasted, ADDITIONS);
  const first = await client.apply(ADDITIONS);
  t.true(first.results.every((r) => r.outcome === 'applied'), JSON.stringify(first.results));
  t.is(comparable(await settledKernelDump(pasted)), comparable(await settledKernelDump(applied)));

  paste(pasted, REMOVALS);
  const second = await client.apply(REMOVALS);
  t.true(second.results.every((r) => r.outcome === 'applied'), JSON.stringify(second.results));
  t.is(comparable(kernelDump(pasted)), comparable(kernelDump(applied)));
});
