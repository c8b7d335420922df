// What an operator meets after the quick start, on the real kernel in namespaces: configuration
// mistakes said at once, one agent at a time, --cleanup that is not undone, a root run that
// leaves nothing root-owned behind, a first pass that gives up in time (issue #21).
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCloudEnv, missingFromKernel, REPO, waitConverged, type CloudEnv, type Proc } from '../lib/cloud-env.js';
import { builtinScenario, convergedCloud, sleep, vmDump } from '../lib/e2e.js';
import { ip, waitFor } from '../lib/netns.js';
import type { Scenario } from '../imds-sim/scenario.js';
import type { StatusResource } from '../../protocol/rest.js';

function withAddress(scenario: Scenario, nic: number, address: string): Scenario {
  const next = structuredClone(scenario);
  next.nics[nic]!.ipv4.push(address);
  return next;
}

/** The helper, once it listens: a --once run has no second try. */
async function listeningHelper(env: CloudEnv): Promise<Proc> {
  const helper = env.startHelper();
  await waitFor(() => helper.output().includes(' listening"'), () => `the helper to listen (${helper.output()})`, 60_000);
  return helper;
}

test.serial('--config naming a missing file is an error, and nothing is asked or configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  env.startHelper();
  const before = vmDump(env);
  const missing = join(env.dir, 'absent.toml');
  const result = await env.runAgent(['--once', '--config', missing]);
  t.is(result.code, 1, result.output);
  t.regex(result.output, new RegExp(`${missing}: no such file: a file named with --config must exist`));
  t.is(vmDump(env), before);
  t.is(Number((await env.simStats()).requests), 0);
});

test.serial('Supplementary = "eth0,eth1" is an error showing the spaces it takes, and nothing is configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  env.startHelper();
  env.writeConfig({ supplementary: ['eth0,eth1'] });
  const before = vmDump(env);
  const result = await env.runAgent(['--once']);
  t.is(result.code, 1, result.output);
  t.regex(result.output, /"eth0,eth1" is not an interface name: separate names with spaces \("eth0 eth1"\)/);
  t.is(vmDump(env), before);
});

test.serial('a Supplementary= interface that does not exist is a warning, and the rest is configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  await listeningHelper(env);
  env.writeConfig({ supplementary: ['eth0', 'eth7'] });
  const result = await env.runAgent(['--once']);
  t.is(result.code, 0, result.output);
  t.regex(result.output, /WARNING Supplementary= names eth7, which is not an interface now/);
  t.deepEqual(missingFromKernel(env), []);
  t.regex(env.vmExec('ip', ['rule', 'show']), /from 10\.4\.0\.4 lookup 20000/, 'eth0 has its rules');
});

const TSX = join(REPO, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

/** The agent as root in the vm namespace, as an operator would run it: no setpriv, every capability. */
async function runAgentAsRoot(env: CloudEnv, args: string[], configPath = env.configPath): Promise<{ code: number | null; output: string }> {
  const child = spawn('ip', ['netns', 'exec', env.vm, process.execPath, `--import=${TSX}`, join(REPO, 'agent', 'main.ts'), '--config', configPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, output };
}

/** Every path under `dir` with its owner, mode, size and modification time: what a run may have written. */
function tree(dir: string): string {
  return execFileSync('find', [dir, '-printf', '%p %u %m %s %T@\n'], { encoding: 'utf8' }).split('\n').sort().join('\n');
}

function pidFile(env: CloudEnv): string | undefined {
  return existsSync(join(env.stateDir, 'agent.pid')) ? readFileSync(join(env.stateDir, 'agent.pid'), 'utf8').trim() : undefined;
}

test.serial('--cleanup refuses while the agent runs, naming its pid and how to stop it; nothing is removed', async (t) => {
  const { env, agent } = await convergedCloud(t, builtinScenario('azure'));
  await sleep(300);
  const before = vmDump(env);
  const refused = await env.runAgent(['--cleanup']);
  t.is(refused.code, 1, refused.output);
  t.regex(refused.output, new RegExp(`cleanup refused: an agent \\(pid ${agent.child.pid}\\) runs and would put back within a second what --cleanup removes; ` +
    `stop it first \\(systemctl stop cloud-network\\.service, or kill ${agent.child.pid}\\), or add --force`));
  await sleep(1_500);
  t.is(vmDump(env), before);
  // stopped first, as the README says, it removes what cloud-network made and it stays removed
  agent.kill('SIGTERM');
  t.is(await agent.exited, 0);
  const cleanup = await env.runAgent(['--cleanup']);
  t.is(cleanup.code, 0, cleanup.output);
  await sleep(1_500);
  t.false(ip(env.vm, 'rule', 'show').includes('proto 201'));
  t.false(ip(env.vm, 'route', 'show', 'table', 'all').includes('proto 201'));
});

test.serial('a second agent exits non-zero naming the first and changes nothing: not the kernel, not the pid file', async (t) => {
  const { env, agent } = await convergedCloud(t, builtinScenario('azure'));
  await sleep(300);
  const before = vmDump(env);
  t.is(pidFile(env), String(agent.child.pid));
  const requests = Number((await env.simStats()).requests);
  const second = env.startAgent();
  t.is(await second.exited, 1, second.output());
  t.regex(second.output(), new RegExp(`ERROR another agent \\(pid ${agent.child.pid}\\) runs with StateDir ${env.stateDir}; this one changes nothing and exits`));
  t.is(vmDump(env), before);
  t.is(Number((await env.simStats()).requests), requests, 'the second agent asked the metadata service nothing');
  t.is(pidFile(env), String(agent.child.pid));
  // the first agent is still the one cnctl reload reaches
  const reload = env.vmExec(process.execPath, [`--import=${TSX}`, join(REPO, 'cnctl', 'main.ts'), 'reload', '--state-dir', env.stateDir]);
  t.regex(reload, new RegExp(`sent SIGHUP to the agent \\(pid ${agent.child.pid}\\)`));
  t.is(agent.child.exitCode, null);
});

test.serial('a root --once leaves nothing root-owned where the agent writes, and the agent keeps writing there', async (t) => {
  const scenario = builtinScenario('azure');
  const env = await createCloudEnv(t, scenario, 'op');
  await listeningHelper(env);
  env.writeConfig();
  const once = await runAgentAsRoot(env, ['--once']);
  t.is(once.code, 0, once.output);
  t.deepEqual(missingFromKernel(env), []);
  const files = execFileSync('find', [env.stateDir, '-mindepth', '1', '-printf', '%P %u\n'], { encoding: 'utf8' }).trim().split('\n').sort();
  t.true(files.includes('links/eth1.json cloud-network') && files.includes('nic-indexes.json cloud-network'), files.join('\n'));
  t.deepEqual(files.filter((line) => !line.endsWith(' cloud-network')), [], 'every file is the agent user’s');
  // the agent itself, unprivileged, replaces what the root run wrote
  const agent = env.startAgent();
  await waitFor(() => agent.output().includes('configuration converged'), () => `the agent to converge (${agent.output()})`, 60_000);
  await env.setScenario(withAddress(scenario, 1, '10.4.1.77'));
  agent.kill('SIGHUP');
  await waitFor(() => readFileSync(join(env.stateDir, 'links', 'eth1.json'), 'utf8').includes('10.4.1.77'), 'eth1.json to list 10.4.1.77', 30_000);
  t.notRegex(agent.output(), /EACCES/);
});

test.serial('--dry-run writes nothing anywhere, as root too, and needs no StateDir', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  await listeningHelper(env);
  env.writeConfig();
  const kernel = vmDump(env);
  const state = tree(env.stateDir);
  for (const run of [() => env.runAgent(['--dry-run']), () => runAgentAsRoot(env, ['--dry-run'])]) {
    const result = await run();
    t.is(result.code, 3, result.output);
    t.regex(result.output, /operations would be applied/);
  }
  t.is(tree(env.stateDir), state);
  t.is(vmDump(env), kernel);
  // a StateDir that does not exist is not made, nor needed
  const absent = join(env.dir, 'no-state-here');
  const config = join(env.dir, 'elsewhere.toml');
  writeFileSync(config, readFileSync(env.configPath, 'utf8').replace(/StateDir = ".*"/, `StateDir = "${absent}"`));
  const result = await runAgentAsRoot(env, ['--dry-run'], config);
  t.is(result.code, 3, result.output);
  t.false(existsSync(absent));
});

test.serial('a root --once without its StateDir creates none, says how to, and changes nothing', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  await listeningHelper(env);
  env.writeConfig();
  const absent = join(env.dir, 'no-state-here');
  const config = join(env.dir, 'elsewhere.toml');
  writeFileSync(config, readFileSync(env.configPath, 'utf8').replace(/StateDir = ".*"/, `StateDir = "${absent}"`));
  const before = vmDump(env);
  const result = await runAgentAsRoot(env, ['--once'], config);
  t.is(result.code, 1, result.output);
  t.regex(result.output, new RegExp(`StateDir ${absent} does not exist, and root does not create it .*systemd-tmpfiles --create`));
  t.false(existsSync(absent));
  t.is(vmDump(env), before);
});

/** cnctl inside the vm namespace, where the agent listens. */
function cnctlIn(env: CloudEnv, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync('ip', ['netns', 'exec', env.vm, process.execPath, `--import=${TSX}`, join(REPO, 'cnctl', 'main.ts'), ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function statusIn(env: CloudEnv): StatusResource {
  return JSON.parse(cnctlIn(env, ['status', '--json']).stdout) as StatusResource;
}

test.serial('a reload refused for a bad configuration shows in cnctl status, which exits 1; a good reload clears it', async (t) => {
  const { env, agent } = await convergedCloud(t, builtinScenario('azure'));
  await waitFor(() => cnctlIn(env, ['status']).code === 0, 'cnctl status to exit 0');
  const good = readFileSync(env.configPath, 'utf8');
  writeFileSync(env.configPath, good.replace(/LogLevel = "\w+"/, 'LogLevel = "Loud"'));
  agent.kill('SIGHUP');
  await waitFor(() => statusIn(env).configError, 'the refusal in the status');
  const shown = cnctlIn(env, ['status']);
  t.is(shown.code, 1, shown.stdout);
  t.regex(shown.stdout, /Converged: yes/);
  t.regex(shown.stdout, new RegExp(`Config Error: reload refused: ${env.configPath}: \\[System\\] LogLevel = "Loud" is not allowed: .*; keeping the running configuration`));
  writeFileSync(env.configPath, good);
  agent.kill('SIGHUP');
  await waitFor(() => statusIn(env).configError === null, 'the refusal to be cleared');
  t.is(cnctlIn(env, ['status']).code, 0);
});

test.serial('a StateDir the agent cannot write is named in status and cnctl status exits 1, while the kernel is configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  // what a root run of an older version left: a links directory of root's
  mkdirSync(join(env.stateDir, 'links'), { mode: 0o755 });
  await listeningHelper(env);
  env.writeConfig();
  const agent = env.startAgent();
  await waitConverged(env);
  await waitFor(() => statusIn(env).stateError, () => `the state error in the status (${agent.output()})`);
  const status = statusIn(env);
  t.regex(status.stateError!, new RegExp(`^state files not written: EACCES: permission denied, .*${env.stateDir}/links/`));
  const shown = cnctlIn(env, ['status']);
  t.is(shown.code, 1);
  t.regex(shown.stdout, /State Error: state files not written: EACCES/);
  // cnctl runs synchronously: the agent's output is read once the event loop has taken it
  await waitFor(() => /ERROR state files not written/.test(agent.output()), () => `the error in the log (${agent.output()})`);
  t.is(agent.output().match(/ERROR state files not written/g)?.length, 1, 'logged once');
  // given back to the agent's user, the next reconcile writes and the error is gone
  execFileSync('chown', ['cloud-network', join(env.stateDir, 'links')]);
  agent.kill('SIGHUP');
  await waitFor(() => statusIn(env).stateError === null, 'the state error to clear');
  t.true(existsSync(join(env.stateDir, 'links', 'eth1.json')));
  await waitFor(() => /INFO state files written again/.test(agent.output()), 'the recovery in the log');
  t.pass();
});

test.serial('cnctl wait returns once the agent has converged: the kernel holds the whole plan by then', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('ec2'), 'op');
  env.startHelper();
  env.writeConfig();
  env.startAgent();
  const waited = cnctlIn(env, ['wait', '--timeout', '90']);
  t.is(waited.code, 0, waited.stderr);
  t.deepEqual(missingFromKernel(env), []);
});

test.serial('a first pass whose metadata service asks for a minute between retries ends within its 30 s, saying what it did not do', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  await listeningHelper(env);
  env.writeConfig({ logLevel: 'Info' });
  await env.setFault({ kind: 'rateLimit', retryAfter: 60 });
  const before = vmDump(env);
  const started = Date.now();
  const once = env.startAgent(['--once']);
  // the unit's TimeoutStartSec=60 is where systemd would count the start as failed
  const ended = await Promise.race([once.exited, sleep(60_000).then(() => 'still running after 60 s')]);
  const seconds = (Date.now() - started) / 1000;
  once.kill('SIGKILL');
  t.is(ended, 1, once.output());
  t.true(seconds < 35, `--once ended after ${seconds} s`);
  t.regex(
    once.output(),
    /ERROR first pass stopped after 30 s, its budget inside the unit's TimeoutStartSec: no metadata from azure yet \(last: azure metadata: GET \/metadata\/instance\?api-version=[\d-]+: retry 1 of 4 in 60000 ms \(Retry-After 60 s\)\), nothing configured; the daemon keeps trying/,
  );
  t.is(vmDump(env), before);
});
