// The agent's one-shot modes and its REST API / cnctl against a real running agent.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ip, waitFor } from '../lib/netns.js';
import { createCloudEnv, REPO, type CloudEnv } from '../lib/cloud-env.js';
import { builtinScenario, convergedCloud, sleep, vmDump } from '../lib/e2e.js';
import { secretValues } from '../imds-sim/scenario.js';

const TSX = join(REPO, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

/** GET inside the vm namespace (the agent listens on the vm's own loopback). */
function vmGet(env: CloudEnv, path: string): { status: number; body: string } {
  const script = `const r = await fetch('http://127.0.0.1:5209${path}'); process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() }));`;
  return JSON.parse(env.vmExec(process.execPath, ['--input-type=module', '-e', script])) as { status: number; body: string };
}

function cnctl(env: CloudEnv, args: string[]): string {
  return env.vmExec(process.execPath, [`--import=${TSX}`, join(REPO, 'cnctl', 'main.ts'), ...args]);
}

test.serial('--dry-run prints a shell script of ip commands, applies nothing, and exits 3 while changes are pending; pasted, the kernel matches', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'));
  env.startHelper();
  env.writeConfig();
  const before = vmDump(env);
  const result = await env.runAgent(['--dry-run']);
  t.is(result.code, 3, result.output);
  const script = result.output.split('\n').filter((line) => line.startsWith('#') || line.startsWith('ip '));
  const commands = script.filter((line) => line.startsWith('ip '));
  t.true(commands.includes('ip address add 10.4.1.5/24 dev eth1 noprefixroute proto 201'), result.output);
  t.true(commands.includes('ip rule add priority 20200 from 10.4.1.6/32 lookup 20001 proto 201'), result.output);
  t.is(vmDump(env), before);
  // pasted as root, the commands do what the helper would: the next dry run has nothing left to do
  // (iproute2 before 6.3 cannot name an address's protocol; those lines are left to the helper)
  const withProtocol = spawnSync('ip', ['address', 'help'], { encoding: 'utf8' }).stderr.includes('proto');
  const pasted = commands.filter((line) => withProtocol || !line.startsWith('ip address add'));
  env.vmExec('sh', ['-ec', pasted.join('\n')]);
  const again = await env.runAgent(['--dry-run']);
  const left = again.output.split('\n').filter((line) => line.startsWith('ip '));
  t.deepEqual(left, commands.filter((line) => !pasted.includes(line)), again.output);
  t.is(again.code, left.length === 0 ? 0 : 3);
});

test.serial('--once exits non-zero with the reason when the helper is not there', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('ec2'));
  env.writeConfig();
  const result = await env.runAgent(['--once']);
  t.is(result.code, 1);
  t.regex(result.output, /helper at .* is not reachable/);
});

test.serial('--cleanup removes everything cloud-network made and nothing else', async (t) => {
  const scenario = builtinScenario('gcp');
  const { env, agent } = await convergedCloud(t, scenario);
  ip(env.vm, 'rule', 'add', 'priority', '20150', 'from', '192.0.2.1', 'lookup', '20001'); // someone else's
  agent.kill('SIGTERM');
  t.is(await agent.exited, 0);
  const requestsBefore = (await env.simStats()).requests;
  const result = await env.runAgent(['--cleanup']);
  t.is(result.code, 0, result.output);
  // what cloud-network made is in the kernel and its ledger: cleanup asks the metadata nothing
  t.is((await env.simStats()).requests, requestsBefore);
  const rules = ip(env.vm, 'rule', 'show');
  t.false(rules.includes('proto 201'), rules);
  t.true(rules.includes('from 192.0.2.1 lookup 20001'));
  t.false(ip(env.vm, 'route', 'show', 'table', 'all').includes('proto 201'));
  const addresses = ip(env.vm, '-o', 'addr', 'show');
  t.true(addresses.includes(`${scenario.nics[0]!.ipv4[0]}/32`), 'the DHCP address stays');
  t.false(addresses.includes(`${scenario.nics[1]!.ipv4[0]}/32`));
});

test.serial('stopping the agent leaves the network as it is', async (t) => {
  const { env, agent } = await convergedCloud(t, builtinScenario('azure'));
  await sleep(300);
  const before = vmDump(env);
  agent.kill('SIGTERM');
  t.is(await agent.exited, 0);
  t.is(vmDump(env), before);
});

test.serial('the REST API of a running agent, and no secret on any path', async (t) => {
  const scenario = builtinScenario('ec2');
  const { env } = await convergedCloud(t, scenario);
  const status = vmGet(env, '/api/v1/status');
  t.is(status.status, 200);
  t.like(JSON.parse(status.body), { provider: 'ec2', ready: true, helperReachable: true });
  const network = JSON.parse(vmGet(env, '/api/v1/network').body) as { links: { name: string; table?: number; state: string }[] };
  t.deepEqual(
    network.links.map((l) => [l.name, l.table ?? null, l.state]),
    [
      ['eth0', null, 'configured'],
      ['eth1', 20001, 'configured'],
    ],
  );
  t.is(vmGet(env, '/api/v1/network/eth9').status, 404);
  const paths = ['/api/v1/status', '/api/v1/system', '/api/v1/network', '/api/v1/network/eth1', '/api/v1/ssh-keys', '/api/v1/document', '/api/cloud/system', '/api/cloud/network', '/metrics'];
  const bodies = paths.map((p) => vmGet(env, p).body).join('\n');
  for (const secret of secretValues(scenario)) t.false(bodies.includes(secret), `${secret} leaked`);
  t.regex(vmGet(env, '/metrics').body, /cloud_network_imds_requests_total\{provider="ec2",status="200"\} \d+/);
});

test.serial('cnctl shows the network, and `cnctl reload` makes the agent refresh and says how the reload ended', async (t) => {
  const { env } = await convergedCloud(t, builtinScenario('azure'));
  const shown = cnctl(env, ['status', 'network', 'eth1']);
  t.regex(shown, /^ +Name: eth1$/m);
  t.regex(shown, /^ +Table: 20001$/m);
  const reload = (...args: string[]) =>
    spawnSync('ip', ['netns', 'exec', env.vm, process.execPath, `--import=${TSX}`, join(REPO, 'cnctl', 'main.ts'), 'reload', '--state-dir', env.stateDir, '--config', env.configPath, ...args], { encoding: 'utf8' });
  // nothing new: the reload is taken, and nothing changes
  const quiet = reload();
  t.is(quiet.status, 0, quiet.stderr);
  t.regex(quiet.stdout, /^sent SIGHUP to the agent \(pid \d+\).*\nreloaded: nothing changed: the kernel already matched the plan\n$/);
  // an address new in the metadata: the reload's refresh applies it, and cnctl says so
  const scenario = structuredClone(env.scenario);
  scenario.nics[1]!.ipv4.push('10.4.1.9');
  await env.setScenario(scenario);
  const applied = reload();
  t.is(applied.status, 0, applied.stderr);
  t.regex(applied.stdout, /\nreloaded: 3 changes applied; the kernel matches the plan\n$/);
  t.regex(ip(env.vm, '-o', 'addr', 'show', 'dev', 'eth1'), /10\.4\.1\.9\/24/);
  // a configuration the agent refuses: exit 1 with its reason
  writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8') + '\n[Extra]\nKey = 1\n');
  const refused = reload();
  t.is(refused.status, 1, refused.stdout);
  t.regex(refused.stdout, /\nreload refused: .*unknown section \[Extra\].*; keeping the running configuration\n$/);
  // --no-wait only asks
  const asked = reload('--no-wait');
  t.is(asked.status, 0);
  t.regex(asked.stdout, /^sent SIGHUP to the agent \(pid \d+\)[^\n]*\n$/);
});

/** cnctl as the user nobody, outside the vm namespace: the agent's loopback port is not there. */
function cnctlAsNobody(env: CloudEnv, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [`--import=${TSX}`, join(REPO, 'cnctl', 'main.ts'), ...args], {
    cwd: REPO,
    uid: 65534,
    gid: 65534,
    env: { PATH: process.env.PATH, HOME: env.dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test.serial('the agent serves api.sock in its StateDir to any user\'s cnctl, replaces the one a killed agent left, removes its own when stopped', async (t) => {
  const { env, agent } = await convergedCloud(t, builtinScenario('azure'));
  const socket = join(env.stateDir, 'api.sock');
  await waitFor(() => existsSync(socket), 'the agent to serve its socket');
  const stats = lstatSync(socket);
  t.true(stats.isSocket());
  t.is(stats.mode & 0o777, 0o666);
  // outside the vm namespace Listen= reaches nothing: an answer came through the socket
  const shown = cnctlAsNobody(env, ['status', 'network', 'eth1', '--config', env.configPath]);
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /^ +Table: 20001$/m);

  agent.kill('SIGKILL');
  await agent.exited;
  t.true(existsSync(socket), 'a killed agent leaves its socket file');
  const next = env.startAgent();
  await waitFor(() => next.output().includes('REST API on'), 'the next agent to serve its API', 30_000);
  t.is(cnctlAsNobody(env, ['status', '--config', env.configPath]).code, 0);

  next.kill('SIGTERM');
  t.is(await next.exited, 0);
  t.false(existsSync(socket), 'a stopped agent removes its socket');
});
