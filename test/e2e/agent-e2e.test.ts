// The agent end to end on the real kernel, for Azure, EC2 and GCP: a "vm" namespace whose
// NICs start as DHCP leaves them, the IMDS simulator in a "cloud" namespace, the helper with
// only CAP_NET_ADMIN and the agent as the unprivileged cloud-network user.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ip, vethPair, waitFor } from '../lib/netns.js';
import { createCloudEnv, missingFromKernel, waitConverged } from '../lib/cloud-env.js';
import { builtinScenario, CAP_NET_ADMIN, convergedCloud, duplicateRules, effectiveCapabilities, sleep, vmDump } from '../lib/e2e.js';
import type { Scenario } from '../imds-sim/scenario.js';

const PROVIDERS = ['azure', 'ec2', 'gcp'] as const;

/** Adds one private IP to the scenario's second NIC. */
function withExtraIp(scenario: Scenario, address: string): Scenario {
  const next = structuredClone(scenario);
  next.nics[1]!.ipv4.push(address);
  return next;
}

const extraIp: Record<string, string> = { azure: '10.4.1.77', ec2: '172.31.40.77', gcp: '10.10.0.77' };

for (const provider of PROVIDERS) {
  test.serial(`${provider}: converges from a DHCP-only start, and a second pass changes nothing`, async (t) => {
    const { env } = await convergedCloud(t, builtinScenario(provider));
    await sleep(500); // let the agent's own event-triggered re-plan finish
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
    await waitConverged(env, `${address} to be configured`);
    t.regex(env.vmExec('ip', ['rule', 'show']), new RegExp(`from ${address.replace(/\./g, '\\.')} lookup`));

    await env.setScenario(scenario);
    agent.kill('SIGHUP');
    await waitFor(() => !env.vmExec('ip', ['rule', 'show']).includes(`from ${address} `), `${address}'s rule to be removed`);
    await waitFor(() => !env.vmExec('ip', ['-o', 'addr', 'show']).includes(` ${address}/`), `${address} to be removed`);
    await waitFor(() => !env.vmExec('ip', ['route', 'show', 'table', 'local']).includes(`local ${address} `), `${address}'s local route to be removed`);
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
    const prefix = provider === 'gcp' ? 32 : Number(scenario.nics[1]!.subnet.split('/')[1]);
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
  const eth1 = JSON.parse(files[2]!) as { table: number; privateIpv4: string[] };
  t.is(eth1.table, 20001);
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
