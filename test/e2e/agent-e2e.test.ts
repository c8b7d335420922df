// The agent end to end on the real kernel, for Azure, EC2, GCP, OCI and Alibaba Cloud: a "vm"
// namespace whose NICs start as DHCP leaves them, the IMDS simulator in a "cloud" namespace on
// each cloud's own metadata addresses, the helper with only CAP_NET_ADMIN and the agent as the
// unprivileged cloud-network user.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ip, vethPair, waitFor } from '../lib/netns.js';
import { createCloudEnv, isVlanVnic, missingFromKernel, REMOTE_ADDRESS, REPO, waitConverged, type CloudEnv } from '../lib/cloud-env.js';
import { builtinScenario, CAP_NET_ADMIN, convergedCloud, duplicateRules, effectiveCapabilities, sleep, vmDump } from '../lib/e2e.js';
import type { Scenario } from '../imds-sim/scenario.js';

const PROVIDERS = ['azure', 'ec2', 'gcp', 'oci', 'aliyun'] as const;

/**
 * A change each cloud's metadata shows while the VM runs: one more private IP on the second NIC;
 * on OCI, whose IMDS lists no secondary private IP (docs/imds.md), an IPv6 address of the VNIC.
 */
function withExtraIp(scenario: Scenario, address: string): Scenario {
  const next = structuredClone(scenario);
  const nic = next.nics[1]!;
  if (address.includes(':')) Object.assign(nic, { ipv6: [address], ipv6Subnet: '2603:c020:4:8a00::/64', ipv6Gateway: 'fe80::200:17ff:fe02:1' });
  else nic.ipv4.push(address);
  return next;
}

const extraIp: Record<string, string> = { azure: '10.4.1.77', ec2: '172.31.40.77', gcp: '10.10.0.77', oci: '2603:c020:4:8a00::5', aliyun: '192.168.1.77' };

/** Which link `ip route get` picks for a packet to the outside from each IP the scenario configures, as "IP LINK". */
function routesFrom(env: CloudEnv): { want: string[]; got: string[] } {
  const want: string[] = [];
  const got: string[] = [];
  env.scenario.nics.forEach((nic, i) => {
    if (isVlanVnic(nic)) return;
    // OCI lists one private IP per VNIC; GCP serves further ones as alias ranges (still local)
    const addresses = env.scenario.provider === 'oci' ? nic.ipv4.slice(0, 1) : nic.ipv4;
    for (const address of addresses) {
      want.push(`${address} ${env.links[i]}`);
      const line = env.vmExec('ip', ['route', 'get', REMOTE_ADDRESS, 'from', address]);
      got.push(`${address} ${/ dev (\S+)/.exec(line)?.[1] ?? line.trim()}`);
    }
  });
  return { want, got };
}

/** cnctl, run in the vm namespace against the agent's REST API. */
function cnctl(env: CloudEnv, args: string[]): string {
  return env.vmExec(process.execPath, ['--import=tsx', join(REPO, 'cnctl', 'main.ts'), ...args]);
}

for (const provider of PROVIDERS) {
  test.serial(`${provider}: converges from a DHCP-only start, and a second pass changes nothing`, async (t) => {
    const { env, agent } = await convergedCloud(t, builtinScenario(provider));
    // every IP leaves through its own NIC
    const { want, got } = routesFrom(env);
    t.deepEqual(got, want);
    // the REST API and cnctl show the cloud and its NICs
    const system = apiGet(env, '/api/v1/system') as { provider: string; id: string };
    t.like(system, { provider, id: env.scenario.instance.id });
    const status = cnctl(env, ['status', 'network']);
    for (const link of env.links) t.regex(status, new RegExp(`Name: ${link}\n`));
    t.regex(cnctl(env, ['status', 'system']), new RegExp(`Provider: ${provider}\n`));
    // the second pass runs once the first agent has gone: one agent at a time per StateDir
    agent.kill('SIGTERM');
    await agent.exited;
    const before = vmDump(env);
    const second = await env.runAgent(['--once']);
    t.is(second.code, 0, second.output);
    t.false(second.output.includes('Successfully'), second.output);
    t.is(vmDump(env), before);
    t.deepEqual(duplicateRules(env), []);
  });

  test.serial(`${provider}: an IP added to and removed from the metadata is applied`, async (t) => {
    const scenario = builtinScenario(provider);
    const { env, agent } = await convergedCloud(t, scenario);
    const address = extraIp[provider]!;
    await env.setScenario(withExtraIp(scenario, address));
    agent.kill('SIGHUP'); // GCP would notice by itself; SIGHUP makes the three alike
    const family = address.includes(':') ? '-6' : '-4';
    await waitFor(() => env.vmExec('ip', [family, 'rule', 'show']).includes(`from ${address} lookup`), `${address}'s rule`);
    await waitConverged(env, `${address} to be configured`);
    // GCP serves a further IP as an alias range: a local route, which waitConverged checked
    if (provider !== 'gcp') t.regex(env.vmExec('ip', ['-o', 'addr', 'show', 'dev', env.links[1]!]), new RegExp(` ${address.replace(/\./g, '\\.')}/`));

    await env.setScenario(scenario);
    agent.kill('SIGHUP');
    await waitFor(() => !env.vmExec('ip', [family, 'rule', 'show']).includes(`from ${address} `), `${address}'s rule to be removed`);
    await waitFor(() => !env.vmExec('ip', ['-o', 'addr', 'show']).includes(` ${address}/`), `${address} to be removed`);
    await waitFor(() => !env.vmExec('ip', [family, 'route', 'show', 'table', 'local']).includes(`local ${address} `), `${address}'s local route to be removed`);
    t.deepEqual(missingFromKernel(env), []);
  });

  test.serial(`${provider}: an IMDS outage (5xx, hang, malformed) removes nothing`, async (t) => {
    const { env, agent } = await convergedCloud(t, builtinScenario(provider));
    await sleep(500);
    const before = vmDump(env);
    for (const fault of [{ kind: 'status', status: 500 }, { kind: 'malformed' }, { kind: 'emptyNics' }, { kind: 'hang' }]) {
      await env.setFault(fault);
      const requests = Number((await env.simStats()).requests);
      agent.kill('SIGHUP');
      await waitFor(async () => Number((await env.simStats()).requests) > requests, `the agent to ask the IMDS during ${fault.kind}`);
      await sleep(1_500);
      t.is(vmDump(env), before, `after ${fault.kind}`);
    }
    await env.setFault(null);
    t.regex(agent.output(), /keeping the last known configuration/);
  });

  test.serial(`${provider}: a managed address or rule removed by hand is repaired`, async (t) => {
    const scenario = builtinScenario(provider);
    const { env } = await convergedCloud(t, scenario);
    const secondary = scenario.nics[1]!.ipv4[0]!;
    const rule = env.vmExec('ip', ['rule', 'show']).split('\n').find((l) => l.includes(`from ${secondary} lookup`))!;
    const table = /lookup (\d+)/.exec(rule)![1]!;
    ip(env.vm, 'rule', 'del', 'from', secondary, 'lookup', table, 'priority', rule.split(':')[0]!);
    await waitConverged(env, 'the rule to be repaired', 10_000);
    const prefix = provider === 'gcp' ? 32 : Number(scenario.nics[1]!.subnet!.split('/')[1]);
    ip(env.vm, 'addr', 'del', `${secondary}/${prefix}`, 'dev', env.links[1]!);
    await waitConverged(env, 'the address to be repaired', 10_000);
    t.deepEqual(duplicateRules(env), []);
  });
}

test.serial('azure: a NIC hot-plugged later is configured', async (t) => {
  const scenario = builtinScenario('azure');
  const { env, agent } = await convergedCloud(t, scenario);
  const third: Scenario['nics'][number] = {
    mac: '00:0d:3a:5d:2d:68',
    deviceNumber: 2,
    ipv4: ['10.4.2.5', '10.4.2.6'],
    subnet: '10.4.2.0/24',
  };
  const next = structuredClone(scenario);
  next.nics.push(third);
  await env.setScenario(next);
  agent.kill('SIGHUP');
  await sleep(1_000);
  // the metadata lists it before its link exists: nothing can be done yet, nothing breaks
  t.deepEqual(missingFromKernel({ ...env, scenario }), []);
  vethPair(env.vm, 'eth2', env.cloud, 'gw2', third.mac);
  ip(env.cloud, 'addr', 'add', '10.4.2.1/24', 'dev', 'gw2');
  env.links.push('eth2');
  env.scenario = next;
  await waitConverged(env, 'the hot-plugged NIC to be configured', 15_000);
  t.regex(env.vmExec('ip', ['route', 'show', 'table', '20002']), /default via 10\.4\.2\.1 dev eth2/);
});

test.serial('ec2: the agent killed with SIGKILL mid-apply and restarted converges without duplicates', async (t) => {
  const { createCloudEnv } = await import('../lib/cloud-env.js');
  const { generateScenario } = await import('../imds-sim/generate.js');
  const scenario = generateScenario('ec2', 3, 40);
  const env = await createCloudEnv(t, scenario);
  env.startHelper();
  env.writeConfig();
  const first = env.startAgent();
  await waitFor(() => env.vmExec('ip', ['-o', 'addr', 'show']).split('\n').length > 10, 'the first addresses to appear');
  first.kill('SIGKILL');
  await first.exited;
  // the metadata shrinks while the agent is down: the restart must remove what it no longer lists
  const smaller = structuredClone(scenario);
  const dropped = smaller.nics[1]!.ipv4.pop()!;
  await env.setScenario(smaller);
  env.scenario = smaller;
  env.startAgent();
  await waitConverged(env, 'the restarted agent to converge', 60_000);
  await waitFor(() => !env.vmExec('ip', ['-o', 'addr', 'show']).includes(` ${dropped}/`), `${dropped} to be removed`);
  t.deepEqual(duplicateRules(env), []);
});

test.serial('the agent runs without capabilities and the helper with only CAP_NET_ADMIN', async (t) => {
  const { agent, helper } = await convergedCloud(t, builtinScenario('azure'));
  t.is(effectiveCapabilities(agent.child.pid!), 0n);
  t.is(effectiveCapabilities(helper.child.pid!), CAP_NET_ADMIN);
  const agentUid = readFileSync(`/proc/${agent.child.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1];
  t.is(agentUid, execFileSync('id', ['-u', 'cloud-network'], { encoding: 'utf8' }).trim());
});

test.serial('Supplementary= adds rules for the primary IP', async (t) => {
  const scenario = builtinScenario('azure');
  const { env } = await convergedCloud(t, scenario, { supplementary: ['eth0'] });
  const primary = scenario.nics[0]!.ipv4[0]!;
  await waitFor(() => env.vmExec('ip', ['rule', 'show']).includes(`from ${primary} lookup 20000`), 'the primary IP rule');
  t.regex(env.vmExec('ip', ['route', 'show', 'table', '20000']), /default via 10\.4\.0\.1 dev eth0/);
  // and the DHCP address itself was left alone
  t.regex(env.vmExec('ip', ['-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`${primary.replace(/\./g, '\\.')}/24 .*valid_lft \\d+sec`));
});

test.serial('state files: the instance and one file per link, readable by all, without secrets', async (t) => {
  const scenario = builtinScenario('ec2');
  const { env } = await convergedCloud(t, scenario);
  const { secretValues } = await import('../imds-sim/scenario.js');
  await waitFor(() => {
    try {
      return readFileSync(join(env.stateDir, 'links', 'eth1.json'), 'utf8').includes('"configured"');
    } catch {
      return false;
    }
  }, 'eth1.json to say configured');
  const files = ['instance.json', 'links/eth0.json', 'links/eth1.json'].map((f) => readFileSync(join(env.stateDir, f), 'utf8'));
  const eth1 = JSON.parse(files[2]!) as { table: number; privateIpv4: string[]; details: Record<string, string> };
  t.is(eth1.table, 20001);
  // the ENI's own facts, as EC2 names them, read by the real agent from the simulator
  t.like(eth1.details, { 'device-number': '1', 'security-group-ids': 'sg-0sim0000000000001' });
  t.regex(eth1.details['interface-id'] ?? '', /^eni-/);
  t.deepEqual(eth1.privateIpv4.map((a) => a.split('/')[0]), scenario.nics[1]!.ipv4);
  for (const secret of secretValues(scenario)) t.false(files.join('\n').includes(secret), secret);
});

test.serial('a REST API port already taken stops the agent with a clear error, and what its first reconcile applied stays', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'));
  const helper = env.startHelper();
  // the first reconcile is the agent's only one here: the helper must be there for it
  await waitFor(() => helper.output().includes(' listening"'), 'the helper to listen');
  // something else already listens on the agent's port in the vm namespace
  const holder = spawn('ip', ['netns', 'exec', env.vm, process.execPath, '-e', "require('net').createServer().listen(5209, '127.0.0.1', () => console.log('held'))"]);
  t.teardown(() => void holder.kill('SIGKILL'));
  let held = '';
  holder.stdout.on('data', (d: Buffer) => (held += d.toString()));
  await waitFor(() => held.includes('held'), 'the port to be taken');
  env.writeConfig();
  const agent = env.startAgent();
  t.is(await agent.exited, 1, agent.output());
  t.regex(agent.output(), /cannot serve the REST API: .*127\.0\.0\.1:5209: EADDRINUSE.*; stopping, the network stays as it is/);
  // the first reconcile started before the API and was let finish
  t.deepEqual(missingFromKernel(env), []);
});

/** GET on the agent's REST API inside the vm namespace: the parsed body, or undefined while it does not answer. */
function apiGet(env: { vmExec(command: string, args: string[]): string }, path: string): unknown {
  const script = `fetch('http://127.0.0.1:5209${path}').then((r) => r.text()).then((b) => process.stdout.write(b), () => process.stdout.write(''))`;
  const body = env.vmExec(process.execPath, ['-e', script]);
  return body ? JSON.parse(body) : undefined;
}

test.serial('the REST API loads once the first reconcile has ended, the helper\'s apply and its outcome included', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'));
  const helper = env.startHelper();
  await waitFor(() => helper.output().includes(' listening"'), 'the helper to listen');
  env.writeConfig({ logLevel: 'Debug' });
  const agent = env.startAgent();
  await waitFor(() => agent.output().includes('REST API on 127.0.0.1:5209'), 'the REST API to be served');
  const output = agent.output();
  // the apply's outcome is logged, one line per object, once the helper has answered
  const applied = output.lastIndexOf('Successfully added');
  t.true(output.indexOf('applying plan') !== -1 && applied !== -1, output);
  const loading = output.indexOf('loading the REST API');
  t.true(loading !== -1, output);
  // on a machine slow enough to pass the deadline the API loads before, and says so
  if (!output.includes('loading the REST API: the first reconcile takes longer than')) t.true(applied < loading, output);
  await waitConverged(env);
});

test.serial('the REST API answers while the first reconcile still waits for a metadata service that hangs', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'));
  const helper = env.startHelper();
  await waitFor(() => helper.output().includes(' listening"'), 'the helper to listen');
  await env.setFault({ kind: 'hang' });
  env.writeConfig();
  const agent = env.startAgent();
  let status: { reconciles: number; reconciling: boolean } | undefined;
  await waitFor(() => (status = apiGet(env, '/api/v1/status') as typeof status) !== undefined, 'the REST API to answer', 10_000);
  // answered before the first reconcile has ended: the API did not wait for it
  t.like(status, { reconciles: 1, reconciling: true }, agent.output());
  await env.setFault(null);
});

test.serial('ec2: an IPv6-only VM reaches the IMDS at [fd00:ec2::254] only, and both ENIs get their IPv6 addresses', async (t) => {
  const scenario = builtinScenario('ec2-ipv6only');
  const { env } = await convergedCloud(t, scenario);
  // the vm has no IPv4 but loopback's: every metadata request came over IPv6
  t.false(env.vmExec('ip', ['-4', '-o', 'addr', 'show']).split('\n').some((line) => line !== '' && !/ lo /.test(line)));
  const log = (await env.simStats()).log as { family: string; url: string }[];
  t.true(log.length > 0);
  t.deepEqual(log.filter((entry) => entry.family !== 'ipv6'), []);
  const eth1 = env.vmExec('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth1']);
  for (const address of scenario.nics[1]!.ipv6!) t.regex(eth1, new RegExp(` ${address}/64 `));
  t.deepEqual(duplicateRules(env), []);
});

test.serial('ec2: a quiet refresh asks the IMDS for the MAC listing and two keys per ENI; the start asks for one token', async (t) => {
  const scenario = builtinScenario('ec2');
  const { env, agent } = await convergedCloud(t, scenario, { refreshTimer: '2s' });
  const start = (await env.simStats()) as { tokenPuts: number; log: { method: string; url: string }[] };
  t.is(start.tokenPuts, 1, 'one token for the TTL');
  t.false(start.log.some((r) => /instance-id$|instance-type$|placement\/|ami-id$/.test(r.url)), 'instance facts come from the identity document');
  await sleep(500);
  await env.resetStats();
  // four timer refreshes: each begins with the MAC listing
  const listing = '/latest/meta-data/network/interfaces/macs/';
  await waitFor(async () => ((await env.simStats()).log as { url: string }[]).filter((r) => r.url === listing).length >= 5, 'four refreshes', 30_000);
  const log = ((await env.simStats()).log as { method: string; url: string }[]).filter((r) => r.method !== 'HEAD');
  const refreshes: string[][] = [];
  for (const entry of log) {
    if (entry.url === listing) refreshes.push([]);
    refreshes.at(-1)?.push(`${entry.method} ${entry.url}`);
  }
  const complete = refreshes.slice(0, -1);
  t.log(`requests per quiet refresh: ${complete.map((r) => r.length).join(', ')} (2 ENIs)`);
  for (const refresh of complete) t.true(refresh.length <= 1 + 2 * scenario.nics.length, refresh.join('\n'));
  t.false(log.some((r) => r.method === 'PUT'), 'no token PUT while the token lives');
  t.is(agent.child.exitCode, null);
});

test.serial('oci: on bare metal a VLAN VNIC is reported as not handled, and its link is left alone', async (t) => {
  const scenario = builtinScenario('oci');
  scenario.nics[0] = { ...scenario.nics[0]!, nicIndex: 0, vlanTag: 0 };
  scenario.nics[1] = { ...scenario.nics[1]!, nicIndex: 0, vlanTag: 12 };
  const { env } = await convergedCloud(t, scenario);
  let unmatched: { mac: string; problem: string }[] = [];
  await waitFor(() => {
    // once planned: the physical NIC has its link, the VLAN VNIC is reported
    const network = apiGet(env, '/api/v1/network') as { links?: unknown[]; unmatched?: typeof unmatched } | undefined;
    unmatched = network?.unmatched ?? [];
    return (network?.links ?? []).length > 0;
  }, 'the plan to report the VNICs');
  t.deepEqual(unmatched.map((u) => u.mac), [scenario.nics[1]!.mac]);
  t.regex(unmatched[0]!.problem, /VLAN VNIC of a bare-metal instance \(vlanTag 12 on physical NIC 0\)/);
  t.regex(cnctl(env, ['status', 'network']), /not configured[\s\S]*VLAN VNIC/);
  // nothing of cloud-network on the VNIC's link: no address, no table, no rule
  t.notRegex(env.vmExec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth1']), /inet /);
  t.notRegex(env.vmExec('ip', ['rule', 'show']), /lookup 20001/);
});
