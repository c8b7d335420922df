// make demo [PROVIDER=azure|ec2|gcp] [KEEP=1]: the main job on a built-in simulated cloud.
// Creates a "cloud" and a "vm" namespace, the IMDS simulator on 169.254.169.254, the helper
// (only CAP_NET_ADMIN) and the agent (an unprivileged user), waits until the kernel holds the
// plan, shows it, and sends one real packet from every secondary IP. Removes everything it
// created when it ends, also on Ctrl-C; with --keep (make playground) it leaves the cloud
// running, writes down what it made, and --clean (make demo-clean) removes it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCloudEnv, REMOTE_ADDRESS, REPO, waitConverged, type CloudEnv } from './lib/cloud-env.js';
import { keepNamespace, removeNamespace } from './lib/netns.js';
import { parseScenario } from './imds-sim/scenario.js';
import { TeardownStack } from './lib/teardown-stack.js';

/** What a kept playground is made of, for --clean to remove. */
interface Playground {
  namespaces: string[];
  dir: string;
  pids: number[];
}
// the tests keep their playground's record apart from an operator's
const PLAYGROUND_RECORD = process.env.CLOUD_NETWORK_PLAYGROUND_RECORD ?? join(tmpdir(), 'cloud-network-playground.json');

const teardown = new TeardownStack();
/** what the demo has made so far, for the line Ctrl-C prints */
const made: string[] = [];
let cleaning: Promise<void> | undefined;
let interrupted = false;
function cleanUp(): Promise<void> {
  cleaning ??= teardown.run();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: removing ${made.length > 0 ? made.join(', ') : 'what the demo made'}\n`);
    void cleanUp().then(() => process.exit(130));
  });
}

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => process.stdout.write(`\n${bold(`== ${s}`)}\n`);

function show(env: CloudEnv, title: string, argv: string[]): void {
  step(title);
  process.stdout.write(env.vmExec(argv[0]!, argv.slice(1)));
}

async function demo(provider: string, keep: boolean): Promise<void> {
  const scenario = parseScenario(
    JSON.parse(readFileSync(join(REPO, 'test', 'scenarios', `${provider}.json`), 'utf8')),
    `built-in ${provider} scenario`,
  );
  step(`a simulated ${provider} VM with ${scenario.nics.length} NICs: ${scenario.nics.map((n) => n.ipv4.join(', ')).join(' | ')}`);
  const env = await createCloudEnv(teardown, scenario, keep ? 'play' : 'demo', { detached: keep });
  made.push(`the namespaces ${env.vm} and ${env.cloud}`, `the IMDS simulator`, env.dir);
  process.stdout.write(`namespaces: vm=${env.vm} cloud=${env.cloud}; IMDS simulator on 169.254.169.254:80 in ${env.cloud}\n`);
  show(env, 'before: what DHCP configured', ['ip', '-br', 'addr', 'show']);

  const helper = env.startHelper();
  env.writeConfig({ logLevel: 'Info', ...(keep && { refreshTimer: '5s' }) });
  const agent = env.startAgent();
  made.push('the agent', 'the helper');
  step('the agent (user cloud-network, no capabilities) and the helper (only CAP_NET_ADMIN) are running');
  try {
    await waitConverged(env, 'the agent to converge', 60_000);
  } catch (error) {
    process.stdout.write(`agent log:\n${agent.output()}\nhelper log:\n${helper.output()}\n`);
    throw error;
  }
  step('agent log');
  process.stdout.write(agent.output().split('\n').filter((l) => l.includes('Successfully') || l.includes('converged')).join('\n') + '\n');

  show(env, 'cnctl status network', [process.execPath, '--import=tsx', join(REPO, 'cnctl', 'main.ts'), 'status', 'network']);
  show(env, 'ip rule', ['ip', 'rule', 'show']);
  const tables = new Set(
    env
      .vmExec('ip', ['rule', 'show'])
      .split('\n')
      .map((line) => /lookup (\d+)/.exec(line)?.[1])
      .filter((t): t is string => t !== undefined),
  );
  for (const table of tables) show(env, `ip route show table ${table}`, ['ip', 'route', 'show', 'table', table]);

  step(`one real packet from every secondary IP to ${REMOTE_ADDRESS} (a host in the cloud namespace)`);
  let failures = 0;
  scenario.nics.forEach((nic, i) => {
    for (const address of nic.ipv4) {
      if (i === 0 && address === nic.ipv4[0]) continue; // DHCP's own address
      try {
        const out = env.vmExec('ping', ['-c', '1', '-W', '2', '-I', address, REMOTE_ADDRESS]);
        const reply = out.split('\n').find((l) => l.includes('bytes from')) ?? '';
        process.stdout.write(`  from ${address.padEnd(15)} on ${env.links[i]}: ${reply.trim()}\n`);
      } catch {
        failures++;
        process.stdout.write(`  from ${address.padEnd(15)} on ${env.links[i]}: NO REPLY\n`);
      }
    }
  });
  if (failures > 0) throw new Error(`${failures} secondary IPs got no reply`);
  if (keep) {
    keepPlayground(env, [agent.child.pid, helper.child.pid]);
    return;
  }
  agent.kill('SIGTERM');
  await agent.exited;
  helper.kill('SIGTERM');
  await helper.exited;
  step('done: every IP of every NIC answers; removing the namespaces');
}

/** Leaves the cloud running, writes down what it is made of, and prints what to try. */
function keepPlayground(env: CloudEnv, pids: (number | undefined)[]): void {
  for (const ns of [env.vm, env.cloud]) keepNamespace(ns);
  const record: Playground = { namespaces: [env.vm, env.cloud], dir: env.dir, pids: pids.filter((p): p is number => p !== undefined) };
  writeFileSync(PLAYGROUND_RECORD, JSON.stringify(record, null, 1) + '\n');
  const vm = `ip netns exec ${env.vm}`;
  const cnctl = `${vm} ${join(REPO, 'bin', 'cnctl')} --config ${env.configPath}`;
  const scenario = join(env.dir, 'scenario.json');
  const sim = `curl -s --unix-socket ${env.controlSocket} -H 'x-sim-control: 1'`;
  const link = env.links[1] ?? env.links[0]!;
  const nic = env.scenario.nics.length > 1 ? 1 : 0;
  step('the playground runs: try');
  process.stdout.write(
    [
      `# what the agent knows, and its REST API`,
      `${cnctl} status network`,
      `${vm} curl -s http://127.0.0.1:5209/api/v1/status`,
      `# the kernel, as the agent left it`,
      `${vm} ip rule show; ${vm} ip addr show ${link}`,
      `# take an address away behind the agent's back: it is back within a second`,
      `${vm} ip addr del ${env.scenario.nics[nic]!.ipv4.at(-1)}/${env.scenario.nics[nic]!.subnet.split('/')[1]} dev ${link}; sleep 1; ${vm} ip addr show ${link}`,
      `# the cloud gives ${link} one more IP: the agent reads the metadata every 5 s (or at once: cnctl reload)`,
      `${sim} http://sim/__sim/scenario | jq '.nics[${nic}].ipv4 += ["${nextAddress(env, nic)}"]' > ${scenario} && ${sim} -X POST --data-binary @${scenario} http://sim/__sim/scenario`,
      `${cnctl} reload; sleep 1; ${vm} ip addr show ${link}`,
      `# the logs`,
      `tail ${join(env.dir, 'agent.log')} ${join(env.dir, 'helper.log')}`,
      `# when done: everything the playground made goes`,
      `make demo-clean`,
      '',
    ].join('\n'),
  );
}

/** An address of the NIC's subnet that no NIC has yet. */
function nextAddress(env: CloudEnv, nic: number): string {
  const taken = new Set(env.scenario.nics.flatMap((n) => n.ipv4));
  const last = env.scenario.nics[nic]!.ipv4.at(-1)!.split('.').map(Number);
  for (let host = last[3]! + 1; host < 255; host++) {
    const candidate = `${last[0]}.${last[1]}.${last[2]}.${host}`;
    if (!taken.has(candidate)) return candidate;
  }
  throw new Error('the NIC has no free address left in its last /24');
}

/** Removes what a kept playground made, saying what. */
function cleanPlayground(): number {
  if (!existsSync(PLAYGROUND_RECORD)) {
    process.stdout.write(`no playground to remove (${PLAYGROUND_RECORD} does not exist)\n`);
    return 0;
  }
  const record = JSON.parse(readFileSync(PLAYGROUND_RECORD, 'utf8')) as Playground;
  for (const pid of record.pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  // removing a namespace kills what still runs in it (the simulator)
  for (const ns of record.namespaces) removeNamespace(ns);
  rmSync(record.dir, { recursive: true, force: true });
  rmSync(PLAYGROUND_RECORD, { force: true });
  process.stdout.write(`removed the playground: the agent and the helper (pids ${record.pids.join(', ')}), the namespaces ${record.namespaces.join(' and ')} with the IMDS simulator, ${record.dir}\n`);
  return 0;
}

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'azure' }, keep: { type: 'boolean', default: false }, clean: { type: 'boolean', default: false } } });
const provider = values.provider!;
if (!['azure', 'ec2', 'gcp'].includes(provider)) {
  process.stderr.write(`make demo: PROVIDER must be azure, ec2 or gcp (got ${provider})\n`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('make demo: run as root (it creates network namespaces)\n');
  process.exit(2);
}
try {
  execFileSync('ip', ['-V'], { stdio: 'ignore' });
} catch {
  process.stderr.write('make demo: needs iproute2 (apt-get install iproute2)\n');
  process.exit(2);
}
if (values.clean) process.exit(cleanPlayground());
if (values.keep && existsSync(PLAYGROUND_RECORD)) {
  process.stderr.write(`make playground: one runs already (${PLAYGROUND_RECORD}); make demo-clean removes it\n`);
  process.exit(1);
}
demo(provider, values.keep!).then(
  async () => {
    if (!values.keep) await cleanUp();
    process.exit(0);
  },
  async (error: unknown) => {
    // after Ctrl-C the demo's steps fail as their namespaces go: that is not the demo failing
    if (interrupted) return;
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await cleanUp();
    process.exit(1);
  },
);
