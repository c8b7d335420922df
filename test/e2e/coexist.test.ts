// The agent beside other network tools on the real kernel: each tool's objects laid out in the
// vm namespace as the tool lays them (numbers from its own source, README "Living with other
// tools") before the agent starts; the agent must change none of them, and say what it left.
import test from 'ava';
import { ip, waitFor } from '../lib/netns.js';
import { createCloudEnv, type CloudEnv } from '../lib/cloud-env.js';
import { builtinScenario } from '../lib/e2e.js';
import type { StatusResource, LinkResource } from '../../protocol/rest.js';
import { renderStatus } from '../../cnctl/render.js';
import { style } from '../../cnctl/output.js';

/** `ip` lines of the objects a tool made: rules not ours, tables by number, addresses of a link. */
function toolObjects(env: CloudEnv, tables: number[], link: string): string {
  const rules = ip(env.vm, 'rule', 'show').split('\n').filter((l) => l && !l.includes('proto 201') && !/^(0|32766|32767):/.test(l));
  const routes = tables.map((table) => ip(env.vm, 'route', 'show', 'table', String(table)));
  const local = ip(env.vm, 'route', 'show', 'table', 'local', 'proto', '66');
  const addresses = ip(env.vm, '-o', 'addr', 'show', 'dev', link).replace(/valid_lft.*$/gm, '');
  return [...rules, ...routes, local, addresses].join('\n');
}

/** A GET of the REST API from inside the vm namespace; undefined while it does not answer. */
function apiGet<T>(env: CloudEnv, path: string): T | undefined {
  const script = `fetch('http://127.0.0.1:5209${path}').then((r) => r.text()).then((b) => process.stdout.write(b), () => process.stdout.write(''))`;
  const body = env.vmExec(process.execPath, ['-e', script]);
  return body ? (JSON.parse(body) as T) : undefined;
}

async function startedBeside(t: import('ava').ExecutionContext, provider: string, layOut: (env: CloudEnv) => void) {
  const env = await createCloudEnv(t, builtinScenario(provider));
  layOut(env);
  env.startHelper();
  env.writeConfig({ listen: '127.0.0.1:5209' });
  const agent = env.startAgent();
  let status: StatusResource | undefined;
  try {
    await waitFor(() => (status = apiGet<StatusResource>(env, '/api/v1/status'))?.converged === true && !status!.reconciling, 'the agent to converge', 30_000, 200);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- agent ---\n${agent.output()}`);
  }
  return { env, agent, status: status! };
}

test.serial('amazon-ec2-net-utils’ rules and tables for eth1, laid out as its lib.sh writes them: changed by nothing, eth1 left alone visibly', async (t) => {
  const { env, status, agent } = await startedBeside(t, 'ec2', (env) => {
    // device-number 1, network-card 0: table and priority 10000 + 100 × 0 + 1; DHCP's address,
    // the secondary as /32 without prefix route, a rule per address and delegated prefix
    ip(env.vm, 'addr', 'add', '172.31.40.5/20', 'dev', 'eth1', 'valid_lft', '3600', 'preferred_lft', '3600');
    ip(env.vm, 'addr', 'add', '172.31.40.6/32', 'dev', 'eth1', 'noprefixroute');
    ip(env.vm, 'route', 'add', 'default', 'via', '172.31.32.1', 'dev', 'eth1', 'table', '10001', 'proto', 'dhcp', 'metric', '513');
    ip(env.vm, 'route', 'add', '172.31.32.0/20', 'dev', 'eth1', 'table', '10001', 'proto', 'static', 'scope', 'link');
    for (const from of ['172.31.40.5', '172.31.40.6', '172.31.40.32/28']) ip(env.vm, 'rule', 'add', 'from', from, 'lookup', '10001', 'priority', '10001', 'protocol', 'static');
    t.context = toolObjects(env, [10_001], 'eth1');
  });
  await waitFor(() => ip(env.vm, '-o', 'addr', 'show', 'dev', 'eth0').includes('172.31.21.11/'), 'eth0’s secondary IP');
  const before = t.context as string;
  t.is(toolObjects(env, [10_001], 'eth1'), before, agent.output());
  t.false(ip(env.vm, 'route', 'show', 'table', 'all').includes('table 20001'));
  t.false(ip(env.vm, 'rule', 'show').includes('lookup 20001'));
  t.false(ip(env.vm, '-o', 'addr', 'show', 'dev', 'eth1').includes('proto 201'));
  t.is(status.tools.find((tool) => tool.tool === 'amazon-ec2-net-utils')?.stance, 'yield');
  t.regex(status.leftAlone.eth1 ?? '', /^managed by amazon-ec2-net-utils, left alone/);
  t.like(apiGet<LinkResource>(env, '/api/v1/network/eth1'), { state: 'left-alone', managedBy: { tool: 'amazon-ec2-net-utils' } });
  t.regex(renderStatus(status, style(false), Date.now()), /eth1: +managed by amazon-ec2-net-utils, left alone/);
});

test.serial('nm-cloud-setup’s rules and tables for eth1 (main.c: 30201, 30401, 30350): changed by nothing, eth1 left alone', async (t) => {
  const { env, status } = await startedBeside(t, 'azure', (env) => {
    ip(env.vm, 'addr', 'add', '10.4.1.5/24', 'dev', 'eth1');
    ip(env.vm, 'addr', 'add', '10.4.1.6/24', 'dev', 'eth1');
    ip(env.vm, 'route', 'add', '10.4.1.0/24', 'dev', 'eth1', 'table', '30201', 'proto', 'static', 'metric', '10');
    ip(env.vm, 'route', 'add', 'default', 'via', '10.4.1.1', 'dev', 'eth1', 'table', '30401', 'proto', 'static', 'metric', '10');
    for (const from of ['10.4.1.5', '10.4.1.6']) {
      ip(env.vm, 'rule', 'add', 'from', from, 'lookup', '30201', 'priority', '30201', 'protocol', 'static');
      ip(env.vm, 'rule', 'add', 'from', from, 'lookup', '30401', 'priority', '30401', 'protocol', 'static');
    }
    ip(env.vm, 'rule', 'add', 'lookup', 'main', 'suppress_prefixlength', '0', 'priority', '30350', 'protocol', 'static');
    t.context = toolObjects(env, [30_201, 30_401], 'eth1');
  });
  t.is(toolObjects(env, [30_201, 30_401], 'eth1'), t.context as string);
  t.false(ip(env.vm, 'route', 'show', 'table', 'all').includes('table 20001'));
  t.regex(status.leftAlone.eth1 ?? '', /^managed by nm-cloud-setup, left alone/);
});

test.serial('google-guest-agent’s local route of a forwarded IP (protocol 66): left to it, the NICs configured', async (t) => {
  const { env, status } = await startedBeside(t, 'gcp', (env) => {
    ip(env.vm, 'route', 'add', 'to', 'local', '203.0.113.50/32', 'scope', 'host', 'dev', 'eth0', 'proto', '66');
    t.context = toolObjects(env, [], 'eth0');
  });
  await waitFor(() => ip(env.vm, 'rule', 'show').includes('lookup 20001'), 'eth1’s rules');
  t.is(toolObjects(env, [], 'eth0').replace(/.*10\.128\.0\.3.*\n?/g, ''), (t.context as string).replace(/.*10\.128\.0\.3.*\n?/g, ''));
  t.is(ip(env.vm, 'route', 'show', 'table', 'local', 'proto', '201'), '');
  t.is(status.tools.find((tool) => tool.tool === 'google-guest-agent')?.stance, 'coexist');
});

test.serial('the Go cloud-network-setup’s objects, laid out as its pkg/network writes them: found in place, changed by nothing (migration)', async (t) => {
  const { env, agent } = await startedBeside(t, 'azure', (env) => {
    // netlink.AddrAdd with the subnet prefix (a main-table prefix route comes with it); a default
    // route in table ROUTE_TABLE_BASE (9999) + ifindex with vishvananda/netlink's default protocol
    // (boot); a from and a to rule per address without priority or protocol (the kernel numbers them)
    // eth1 is ifindex 3 on a VM: table 10002, a number amazon-ec2-net-utils' formula also gives
    const table = String(9_999 + 3);
    for (const address of ['10.4.1.5', '10.4.1.6']) ip(env.vm, 'addr', 'add', `${address}/24`, 'dev', 'eth1');
    ip(env.vm, 'route', 'add', 'default', 'via', '10.4.1.1', 'dev', 'eth1', 'table', table, 'proto', 'boot');
    for (const address of ['10.4.1.5', '10.4.1.6']) {
      ip(env.vm, 'rule', 'add', 'from', `${address}/32`, 'table', table);
      ip(env.vm, 'rule', 'add', 'to', `${address}/32`, 'table', table);
    }
    t.context = { table, before: toolObjects(env, [Number(table)], 'eth1'), main: ip(env.vm, 'route', 'show', 'table', 'main', 'dev', 'eth1') };
  });
  const { table, before, main } = t.context as { table: string; before: string; main: string };
  await waitFor(() => ip(env.vm, 'rule', 'show').includes('lookup 20001'), 'eth1’s rules in cloud-network’s table');
  t.is(toolObjects(env, [Number(table)], 'eth1'), before, agent.output());
  t.regex(before, new RegExp(`^3276\\d:\\s+from 10\\.4\\.1\\.5 lookup ${table}$`, 'm'), 'the Go tool’s rules were laid out at kernel-chosen priorities');
  // the main-table prefix route its addresses brought stays too
  t.true(ip(env.vm, 'route', 'show', 'table', 'main', 'dev', 'eth1').includes(main.split('\n')[0]!));
  // the Go tool's addresses are found in place: the only ones added are eth0's, which it had not laid out here
  const added = apiGet<StatusResource>(env, '/api/v1/status')!.operations.applied['address.add'];
  t.is(added, 3, 'eth0’s 10.4.0.10, 10.4.0.11 and fd00:4::4, nothing on eth1');
});
