// The cloud around the system test's machine: a "cloud" network namespace with the IMDS
// simulator on 169.254.169.254 and a gateway per subnet, and, at each power-on, a fresh network
// namespace for the machine (its kernel forgets everything at a reboot, as a VM's does) whose
// NICs start the way DHCP leaves a VM: the primary NIC's primary IP, a default route and a
// route to the metadata service.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNamespace, ip, vethPair, waitFor, type Teardown } from '../lib/netns.js';
import { gatewayOf, type Scenario } from '../imds-sim/index.js';
import type { Fault } from '../imds-sim/index.js';
import { parsePrefix } from '../../protocol/ip.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** An address in the cloud namespace that stands for "the internet" (TEST-NET-2). */
export const REMOTE_ADDRESS = '198.51.100.1';

export class Cloud {
  private constructor(
    readonly ns: string,
    private readonly controlSocket: string,
    private readonly simulator: ChildProcess,
    private readonly simulatorOutput: () => string,
    private scenarioNow: Scenario,
  ) {}

  /** The cloud namespace and the simulator serving `scenario`; both go at teardown. */
  static async create(t: Teardown, dir: string, scenario: Scenario): Promise<Cloud> {
    const ns = createNamespace(t, 'syscloud');
    ip(ns, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo');
    ip(ns, 'addr', 'add', `${REMOTE_ADDRESS}/32`, 'dev', 'lo');
    const scenarioPath = join(dir, 'scenario.json');
    writeFileSync(scenarioPath, JSON.stringify(scenario));
    const controlSocket = join(dir, 'sim-control.sock');
    const simulator = spawn(
      'ip',
      ['netns', 'exec', ns, join(REPO, 'bin/cloud-network-imds-sim'), '--scenario', scenarioPath, '--listen', '169.254.169.254:80', '--control-socket', controlSocket],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.teardown(() => {
      if (simulator.exitCode === null) simulator.kill('SIGKILL');
    });
    let output = '';
    simulator.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    simulator.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(() => output.includes('listening'), () => `the IMDS simulator to listen (${output})`, 20_000);
    return new Cloud(ns, controlSocket, simulator, () => output, scenario);
  }

  get scenario(): Scenario {
    return this.scenarioNow;
  }

  /**
   * Wires a new machine network namespace to the cloud: one veth per scenario NIC (eth0, eth1,
   * ... with the scenario's MACs), the gateways on the cloud's side, and the DHCP state.
   */
  async powerOn(vm: string): Promise<void> {
    const gateways = new Set<string>();
    this.scenarioNow.nics.forEach((nic, i) => {
      vethPair(vm, `eth${i}`, this.ns, `gw${i}`, nic.mac);
      const gateway = gatewayOf(nic);
      if (!gateways.has(gateway)) {
        ip(this.ns, 'addr', 'add', `${gateway}/${parsePrefix(nic.subnet)!.prefixLength}`, 'dev', `gw${i}`);
        gateways.add(gateway);
      }
    });
    const primary = this.scenarioNow.nics[0]!;
    ip(vm, 'addr', 'add', `${primary.ipv4[0]}/${parsePrefix(primary.subnet)!.prefixLength}`, 'dev', 'eth0');
    ip(vm, 'route', 'add', 'default', 'via', gatewayOf(primary), 'dev', 'eth0', 'proto', 'dhcp');
    ip(vm, 'route', 'add', '169.254.169.254/32', 'via', gatewayOf(primary), 'dev', 'eth0', 'proto', 'dhcp');
    await waitFor(() => !ip(vm, '-6', 'addr', 'show').includes('tentative'), 'IPv6 duplicate address detection to finish');
  }

  /** The metadata changes (a NIC gains an address, ...). */
  async setScenario(scenario: Scenario): Promise<void> {
    await this.control('POST', '/__sim/scenario', scenario);
    this.scenarioNow = scenario;
  }

  /** A fault in the metadata service; null clears it. */
  async setFault(fault: Fault | null): Promise<void> {
    await this.control('POST', '/__sim/fault', fault);
  }

  get running(): boolean {
    return this.simulator.exitCode === null;
  }

  private control(method: string, path: string, body?: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // a connection per request: the runner's long synchronous waits would leave a pooled
      // keep-alive connection that the simulator has closed meanwhile
      const req = request({ socketPath: this.controlSocket, path, method, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => ((res.statusCode ?? 500) >= 300 ? reject(new Error(`simulator ${path}: ${res.statusCode} ${text}`)) : resolve(text ? JSON.parse(text) : undefined)));
      });
      req.on('error', (error) =>
        reject(new Error(`simulator ${path}: ${error.message} (the simulator ${this.running ? 'runs' : `exited ${this.simulator.exitCode ?? this.simulator.signalCode}`}; it said: ${this.simulatorOutput().trim().slice(-2000)})`)),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}

/**
 * What of the scenario's layout the machine's kernel lacks, read with `ip` from outside: every
 * address on its NIC, and for every NIC but the primary its table's default route and a
 * `from` rule per address. [] when the whole plan is in place.
 */
export function missingFromKernel(vm: string, scenario: Scenario, tableBase = 20000): string[] {
  const missing: string[] = [];
  const rules = ip(vm, 'rule', 'show');
  scenario.nics.forEach((nic, i) => {
    const link = `eth${i}`;
    const addresses = ip(vm, '-o', '-4', 'addr', 'show', 'dev', link);
    for (const address of nic.ipv4) if (!addresses.includes(` ${address}/`)) missing.push(`address ${address} on ${link}`);
    if (i === 0) return;
    const table = tableBase + nic.deviceNumber;
    let routes = '';
    try {
      routes = ip(vm, 'route', 'show', 'table', String(table));
    } catch {
      /* the table does not exist yet */
    }
    if (!routes.includes(`default via ${gatewayOf(nic)} dev ${link}`)) missing.push(`default via ${gatewayOf(nic)} in table ${table}`);
    for (const address of nic.ipv4) if (!new RegExp(`from ${address.replaceAll('.', '\\.')} lookup ${table}\\b`).test(rules)) missing.push(`rule from ${address} lookup ${table}`);
  });
  return missing;
}
