// A throwaway cloud for end-to-end tests and the demo: a "cloud" namespace with the IMDS
// simulator on the cloud's metadata addresses (169.254.169.254; EC2 also fd00:ec2::254,
// Alibaba 100.100.100.200) and one gateway per subnet, and a "vm" namespace whose NICs (veth,
// with the scenario's MACs) start the way DHCP leaves a real VM: only the primary NIC's primary
// IP, a default route and a route to the metadata service. A primary NIC without IPv4 (an
// IPv6-only EC2 subnet) starts with its first IPv6 address as DHCPv6 leaves it, the subnet as
// router advertisements leave it, and an IPv6 route to the metadata service only.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNamespace, ip, vethPair, waitFor, type Teardown } from './netns.js';
import { ensureUser } from './users.js';
import { firstHost, parsePrefix } from '../../protocol/ip.js';
import { gatewayOf, IMDS_ADDRESSES, type Scenario, type ScenarioNic } from '../imds-sim/scenario.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSX = join(REPO, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
/** An address in the cloud namespace that stands for "the internet" (TEST-NET-2). */
export const REMOTE_ADDRESS = '198.51.100.1';

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** resolves with the exit code (or signal name) */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Where a process's output goes: kept in memory (tests), or a file of its own, so it can outlive this process (the playground). */
type OutputSink = { kind: 'memory' } | { kind: 'file'; path: string };

function spawnTracked(command: string, args: string[], sink: OutputSink, t: Teardown): Proc {
  if (sink.kind === 'memory') return track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }), t);
  const fd = openSync(sink.path, 'a');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  return track(child, t, () => readFileSync(sink.path, 'utf8'));
}

function track(child: ChildProcess, t: Teardown, readOutput?: () => string): Proc {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: readOutput ?? (() => output), exited, kill: (signal = 'SIGTERM') => child.kill(signal) };
}

export interface AgentSettings {
  refreshTimer?: string;
  supplementary?: string[];
  logLevel?: string;
  /** LogFormat=: "text" (the default) or "json" */
  logFormat?: string;
  listen?: string;
}

export interface CloudEnv {
  vm: string;
  cloud: string;
  dir: string;
  /** the simulator's control socket (curl --unix-socket … http://sim/__sim/scenario) */
  controlSocket: string;
  scenario: Scenario;
  /** vm-side link name of each scenario NIC, by position */
  links: string[];
  helperSocket: string;
  stateDir: string;
  configPath: string;
  /** replaces the simulator's scenario (the metadata changes) */
  setScenario(scenario: Scenario): Promise<void>;
  /** injects a fault into the simulator; null clears it */
  setFault(fault: Record<string, unknown> | null): Promise<void>;
  simStats(): Promise<Record<string, unknown>>;
  /** clears the simulator's counters and request log */
  resetStats(): Promise<void>;
  startHelper(extraArgs?: string[]): Proc;
  writeConfig(settings?: AgentSettings): void;
  /** the agent as the unprivileged cloud-network user, no capabilities; `environment` adds to the caller's (a unit's Environment=) */
  startAgent(args?: string[], environment?: Record<string, string>): Proc;
  /** runs the agent to completion (e.g. --once, --dry-run) */
  runAgent(args: string[]): Promise<{ code: number | string; output: string }>;
  /** a command inside the vm namespace */
  vmExec(command: string, args: string[]): string;
}

function nsCommand(ns: string, argv: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, ...argv]];
}

/** The agent and helper run as these; created when missing. */
export function serviceUser(): { uid: number; gid: number } {
  return ensureUser('cloud-network');
}

export interface CloudEnvOptions {
  /** the simulator, agent and helper write to files in the env's directory and may outlive this process (the playground) */
  detached?: boolean;
}

export async function createCloudEnv(t: Teardown, scenario: Scenario, purpose = 'e2e', options: CloudEnvOptions = {}): Promise<CloudEnv> {
  const user = serviceUser();
  const vm = createNamespace(t, `${purpose}vm`);
  const cloud = createNamespace(t, `${purpose}cl`);
  const dir = mkdtempSync(join(tmpdir(), 'cn-env-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { mode: 0o755 });
  chownSync(stateDir, user.uid, user.gid);
  const helperDir = join(dir, 'helper');
  mkdirSync(helperDir, { mode: 0o750 });
  chownSync(helperDir, 0, user.gid);
  const helperSocket = join(helperDir, 'helper.sock');
  const configPath = join(dir, 'cloud-network.toml');
  const sink = (name: string): OutputSink => (options.detached ? { kind: 'file', path: join(dir, `${name}.log`) } : { kind: 'memory' });

  // the cloud side: a gateway per subnet, the metadata service, and a remote host
  const links: string[] = [];
  const gateways = new Set<string>();
  scenario.nics.forEach((nic, i) => {
    const link = `eth${i}`;
    links.push(link);
    vethPair(vm, link, cloud, `gw${i}`, nic.mac);
    const gateway = gatewayOf(nic);
    if (gateway !== undefined && !gateways.has(gateway)) {
      ip(cloud, 'addr', 'add', `${gateway}/${parsePrefix(nic.subnet!)!.prefixLength}`, 'dev', `gw${i}`);
      gateways.add(gateway);
    }
  });
  const imdsAddresses = IMDS_ADDRESSES[scenario.provider];
  for (const address of imdsAddresses) {
    if (address.includes(':')) ip(cloud, '-6', 'addr', 'add', `${address}/128`, 'dev', 'lo', 'nodad');
    else ip(cloud, 'addr', 'add', `${address}/32`, 'dev', 'lo');
  }
  ip(cloud, 'addr', 'add', `${REMOTE_ADDRESS}/32`, 'dev', 'lo');

  // the vm side, as DHCP leaves it
  const primary = scenario.nics[0]!;
  const primaryGateway = gatewayOf(primary);
  if (primaryGateway !== undefined) {
    const prefixLength = scenario.provider === 'gcp' ? 32 : parsePrefix(primary.subnet!)!.prefixLength;
    ip(vm, 'addr', 'add', `${primary.ipv4[0]}/${prefixLength}`, 'dev', 'eth0', 'valid_lft', '86400', 'preferred_lft', '86400');
    if (scenario.provider === 'gcp') ip(vm, 'route', 'add', `${primaryGateway}/32`, 'dev', 'eth0', 'scope', 'link', 'proto', 'dhcp');
    ip(vm, 'route', 'add', 'default', 'via', primaryGateway, 'dev', 'eth0', 'proto', 'dhcp');
    for (const address of imdsAddresses.filter((a) => !a.includes(':'))) {
      ip(vm, 'route', 'add', `${address}/32`, 'via', primaryGateway, 'dev', 'eth0', 'proto', 'dhcp');
    }
  } else {
    // IPv6 only: the router is the subnet's first address on the cloud side
    const subnet = parsePrefix(primary.ipv6Subnet!)!;
    const router = firstHost(primary.ipv6Subnet!)!;
    ip(cloud, '-6', 'addr', 'add', `${router}/${subnet.prefixLength}`, 'dev', 'gw0', 'nodad');
    ip(vm, '-6', 'addr', 'add', `${primary.ipv6![0]}/128`, 'dev', 'eth0', 'valid_lft', '450', 'preferred_lft', '140', 'noprefixroute', 'nodad');
    ip(vm, '-6', 'route', 'add', primary.ipv6Subnet!, 'dev', 'eth0', 'proto', 'ra');
    ip(vm, '-6', 'route', 'add', 'default', 'via', router, 'dev', 'eth0', 'proto', 'ra');
    for (const address of imdsAddresses.filter((a) => a.includes(':'))) {
      ip(vm, '-6', 'route', 'add', `${address}/128`, 'via', router, 'dev', 'eth0', 'proto', 'ra');
    }
  }

  // link-local addresses finish duplicate address detection before anyone compares dumps
  await waitFor(() => !ip(vm, '-6', 'addr', 'show').includes('tentative'), 'IPv6 duplicate address detection to finish');

  // the metadata service
  const scenarioPath = join(dir, 'scenario.json');
  writeFileSync(scenarioPath, JSON.stringify(scenario));
  const controlSocket = join(dir, 'sim-control.sock');
  const [simCmd, simArgs] = nsCommand(cloud, [
    join(REPO, 'bin', 'cloud-network-imds-sim'),
    '--scenario',
    scenarioPath,
    ...imdsAddresses.flatMap((address) => ['--listen', address.includes(':') ? `[${address}]:80` : `${address}:80`]),
    '--control-socket',
    controlSocket,
  ]);
  const sim = spawnTracked(simCmd, simArgs, sink('imds-sim'), t);
  await waitFor(() => sim.output().includes('listening'), `the IMDS simulator to listen (${sim.output()})`, 20_000);

  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const { request } = await import('node:http');
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: controlSocket, path, method, headers: { 'content-type': 'application/json', 'x-sim-control': '1' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300) reject(new Error(`simulator ${path}: ${res.statusCode} ${text}`));
            else resolve(text ? JSON.parse(text) : undefined);
          });
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  };

  const env: CloudEnv = {
    vm,
    cloud,
    dir,
    controlSocket,
    scenario,
    links,
    helperSocket,
    stateDir,
    configPath,
    setScenario: async (next) => {
      env.scenario = next;
      await control('POST', '/__sim/scenario', next);
    },
    setFault: async (fault) => {
      await control('POST', '/__sim/fault', fault);
    },
    simStats: async () => (await control('GET', '/__sim/stats')) as Record<string, unknown>,
    resetStats: async () => {
      await control('POST', '/__sim/stats/reset');
    },
    startHelper: (extraArgs = []) => {
      // root's uid, but only CAP_NET_ADMIN, in the cloud-network group so the socket is its
      const [cmd, args] = nsCommand(vm, [
        'setpriv',
        `--regid=${user.gid}`,
        '--clear-groups',
        '--inh-caps=-all,+net_admin',
        '--ambient-caps=-all,+net_admin',
        '--bounding-set=-all,+net_admin',
        '--',
        process.execPath,
        `--import=${TSX}`,
        join(REPO, 'helper', 'main.ts'),
        '--socket',
        helperSocket,
        '--allow-user',
        'cloud-network',
        '--ledger',
        join(helperDir, 'ledger.json'),
        ...extraArgs,
      ]);
      return spawnTracked(cmd, args, sink('helper'), t);
    },
    writeConfig: (settings = {}) => {
      writeFileSync(
        configPath,
        [
          '[System]',
          `Provider = "${scenario.provider}"`,
          `LogLevel = "${settings.logLevel ?? 'Debug'}"`,
          ...(settings.logFormat ? [`LogFormat = "${settings.logFormat}"`] : []),
          `RefreshTimer = "${settings.refreshTimer ?? '300s'}"`,
          `HelperSocket = "${helperSocket}"`,
          `StateDir = "${stateDir}"`,
          '[Network]',
          `Listen = "${settings.listen ?? '127.0.0.1:5209'}"`,
          `Supplementary = "${(settings.supplementary ?? []).join(' ')}"`,
          '',
        ].join('\n'),
        { mode: 0o644 },
      );
    },
    startAgent: (args = [], environment = {}) => {
      const assignments = Object.entries(environment).map(([name, value]) => `${name}=${value}`);
      const [cmd, argv] = nsCommand(vm, [...(assignments.length > 0 ? ['env', ...assignments] : []), ...agentArgv(user, configPath, args)]);
      return spawnTracked(cmd, argv, sink('agent'), t);
    },
    runAgent: async (args) => {
      const [cmd, argv] = nsCommand(vm, agentArgv(user, configPath, args));
      const proc = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }), t);
      const code = await proc.exited;
      return { code, output: proc.output() };
    },
    vmExec: (command, args) => execFileSync('ip', ['netns', 'exec', vm, command, ...args], { encoding: 'utf8' }),
  };
  return env;
}

function agentArgv(user: { uid: number; gid: number }, configPath: string, args: string[]): string[] {
  return [
    'setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
    process.execPath,
    `--import=${TSX}`,
    join(REPO, 'agent', 'main.ts'),
    '--config',
    configPath,
    ...args,
  ];
}

/**
 * Whether the vm's kernel holds the whole layout for the current scenario, checked with `ip`
 * from outside (not from the agent's own claim). Returns what is missing, or [] when complete.
 */
export function missingFromKernel(env: CloudEnv, tableBase = 20000): string[] {
  const missing: string[] = [];
  // "ADDRESS TABLE" of every `from ADDRESS lookup TABLE` rule and "ADDRESS LINK" of every local
  // route, parsed once: a pattern per address over the whole dump took ~0.4 s at 2,048 IPs
  const fromRules = new Set([...ip(env.vm, 'rule', 'show').matchAll(/\bfrom (\S+?)(?:\/32)? lookup (\d+)\b/g)].map((m) => `${m[1]} ${m[2]}`));
  const localRoutes = new Set([...ip(env.vm, 'route', 'show', 'table', 'local').matchAll(/^local (\S+) dev (\S+) /gm)].map((m) => `${m[1]} ${m[2]}`));
  env.scenario.nics.forEach((nic, i) => {
    const link = env.links[i]!;
    if (isVlanVnic(nic)) return; // not handled (reported): nothing is expected on its link
    if (nic.ipv4.length === 0) {
      const v6 = ip(env.vm, '-o', '-6', 'addr', 'show', 'dev', link);
      for (const address of nic.ipv6 ?? []) if (!v6.includes(` ${address}/`)) missing.push(`address ${address} on ${link}`);
      return;
    }
    const addresses = ip(env.vm, '-o', '-4', 'addr', 'show', 'dev', link);
    nic.ipv4.forEach((address, j) => {
      // GCP serves a NIC's further addresses as alias ranges: local routes, not addresses
      if (env.scenario.provider === 'gcp' && j > 0) {
        if (!localRoutes.has(`${address} ${link}`)) missing.push(`local route ${address} on ${link}`);
      } else if (!addresses.includes(` ${address}/`)) {
        missing.push(`address ${address} on ${link}`);
      }
    });
    if (i === 0) return;
    const table = tableBase + nic.deviceNumber + (nic.networkCard ?? 0) * 32;
    let routes = '';
    try {
      routes = ip(env.vm, 'route', 'show', 'table', String(table));
    } catch {
      /* the table does not exist yet */
    }
    const gateway = gatewayOf(nic)!;
    if (!routes.includes(`default via ${gateway} dev ${link}`)) missing.push(`default via ${gateway} in table ${table}`);
    for (const address of nic.ipv4) {
      if (!fromRules.has(`${address} ${table}`)) missing.push(`rule from ${address} lookup ${table}`);
    }
  });
  return missing;
}

/** An OCI bare-metal VNIC on a VLAN of a physical NIC: cloud-network reports it and leaves it alone. */
export function isVlanVnic(nic: ScenarioNic): boolean {
  return nic.nicIndex !== undefined && (nic.vlanTag ?? 0) !== 0;
}

export async function waitConverged(env: CloudEnv, what = 'the kernel to hold the whole plan', timeoutMs = 30_000): Promise<void> {
  let last: string[] = [];
  await waitFor(
    () => {
      last = missingFromKernel(env);
      return last.length === 0;
    },
    () => `${what}; still missing: ${last.join(', ')}`,
    timeoutMs,
  );
}
