// make demo [PROVIDER=azure|ec2|gcp|oci|aliyun]: the main job on a built-in simulated cloud.
// Creates a "cloud" and a "vm" namespace, the IMDS simulator on the cloud's metadata address, the helper
// (only CAP_NET_ADMIN) and the agent (an unprivileged user), waits until the kernel holds the
// plan, shows it, and sends one real packet from every secondary IP. Removes everything it
// created when it ends, also on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCloudEnv, REMOTE_ADDRESS, REPO, waitConverged, type CloudEnv } from './lib/cloud-env.js';
import { IMDS_ADDRESSES, parseScenario, ProviderSchema } from './imds-sim/scenario.js';
import { TeardownStack } from './lib/teardown-stack.js';

const teardown = new TeardownStack();
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= teardown.run();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stdout.write(`\n${signal}: removing the demo's namespaces\n`);
    void cleanUp().then(() => process.exit(130));
  });
}

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => process.stdout.write(`\n${bold(`== ${s}`)}\n`);

function show(env: CloudEnv, title: string, argv: string[]): void {
  step(title);
  process.stdout.write(env.vmExec(argv[0]!, argv.slice(1)));
}

async function demo(provider: string): Promise<void> {
  const scenario = parseScenario(
    JSON.parse(readFileSync(join(REPO, 'test', 'scenarios', `${provider}.json`), 'utf8')),
    `built-in ${provider} scenario`,
  );
  step(`a simulated ${provider} VM with ${scenario.nics.length} NICs: ${scenario.nics.map((n) => n.ipv4.join(', ')).join(' | ')}`);
  const env = await createCloudEnv(teardown, scenario, 'demo');
  process.stdout.write(`namespaces: vm=${env.vm} cloud=${env.cloud}; IMDS simulator on ${IMDS_ADDRESSES[scenario.provider].join(' and ')} port 80 in ${env.cloud}\n`);
  show(env, 'before: what DHCP configured', ['ip', '-br', 'addr', 'show']);

  const helper = env.startHelper();
  env.writeConfig({ logLevel: 'Info' });
  const agent = env.startAgent();
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
  agent.kill('SIGTERM');
  await agent.exited;
  helper.kill('SIGTERM');
  await helper.exited;
  if (failures > 0) throw new Error(`${failures} secondary IPs got no reply`);
  step('done: every IP of every NIC answers; removing the namespaces');
}

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'azure' } } });
const provider = values.provider!;
const clouds = ProviderSchema.anyOf.map((schema) => schema.const as string);
if (!clouds.includes(provider)) {
  process.stderr.write(`make demo: PROVIDER must be one of ${clouds.join(', ')} (got ${provider})\n`);
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
demo(provider).then(
  async () => {
    await cleanUp();
    process.exit(0);
  },
  async (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await cleanUp();
    process.exit(1);
  },
);
