// How long a change takes to reach the kernel: an IP added to the metadata and noticed by the
// refresh timer (Azure) or by a long poll (GCP), and a NIC's secondary IPs removed and restored
// at once (SIGHUP).
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCloudEnv, missingFromKernel, type CloudEnv } from '../test/lib/cloud-env.js';
import { TeardownStack } from '../test/lib/teardown-stack.js';
import { BENCH_SIZES, generateScenario } from '../test/imds-sim/generate.js';
import type { Scenario, SimProvider } from '../test/imds-sim/scenario.js';
import { formatIp, parseIp } from '../protocol/ip.js';
import { hasAddress, ipOut, waitUntil } from './kernel.js';
import { KernelWatch } from './kernel-watch.js';
import { startActivatedHelper, startAgent } from './processes.js';
import { spread, type SizeName, type Spread } from './report.js';

function offsetIp(address: string, offset: number): string {
  const bytes = parseIp(address)!.bytes;
  const value = ((bytes[0]! << 24) >>> 0) + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]! + offset;
  return formatIp({ family: 'inet', bytes: new Uint8Array([value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255]) });
}

export function withExtraIps(scenario: Scenario, nic: number, count: number): Scenario {
  const next = structuredClone(scenario);
  const last = next.nics[nic]!.ipv4.at(-1)!;
  for (let k = 1; k <= count; k++) next.nics[nic]!.ipv4.push(offsetIp(last, k));
  return next;
}

/** Rewrites the agent's RefreshTimer= and reloads it (SIGHUP), then lets that refresh pass. */
export async function setRefreshTimer(env: CloudEnv, agentPid: number, timer: string): Promise<void> {
  writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8').replace(/RefreshTimer = "[^"]*"/, `RefreshTimer = "${timer}"`));
  process.kill(agentPid, 'SIGHUP');
  await sleep(1_000);
}

/** An IP added to the metadata at a random phase against RefreshTimer=2s → on the NIC. */
export async function timerChanges(env: CloudEnv, watch: KernelWatch, scenario: Scenario, nic: number, agentPid: number, changes: number): Promise<number[]> {
  await setRefreshTimer(env, agentPid, '2s');
  const samples: number[] = [];
  for (let k = 1; k <= changes; k++) {
    await sleep(Math.random() * 2_000); // a random phase against the timer
    const next = withExtraIps(scenario, nic, k);
    const address = next.nics[nic]!.ipv4.at(-1)!;
    await env.setScenario(next);
    const start = performance.now();
    const seen = await watch.until(() => hasAddress(env, nic, address), 15_000, `${address} from the metadata to be applied`);
    samples.push(seen - start);
  }
  return samples;
}

/**
 * A NIC's secondary IPs leave the metadata at once (an ENI's IPs unassigned, a NIC detached in
 * the cloud's API), then come back: SIGHUP (a reload refetches the metadata) → none of their
 * addresses and rules left in the kernel, and → the whole plan back: removals at scale, which
 * the helper judges one map lookup each (docs/performance.md, "The helper's apply").
 */
export async function bulkChanges(env: CloudEnv, watch: KernelWatch, nic: number, agentPid: number, rounds: number): Promise<{ ips: number; removeMs: Spread; addBackMs: Spread }> {
  // what the metadata says now (the timer changes added IPs to the scenario the run started with)
  const scenario = env.scenario;
  // only the SIGHUP may notice the change: the timer goes back to its long default
  await setRefreshTimer(env, agentPid, '300s');
  const without = structuredClone(scenario);
  const removed = without.nics[nic]!.ipv4.splice(1);
  // what of those IPs the kernel holds: addresses on the NIC, and rules selecting them
  const held = async () => {
    const [addresses, rules] = await Promise.all([ipOut(env.vm, '-o', '-4', 'addr', 'show', 'dev', `eth${nic}`), ipOut(env.vm, '-4', 'rule')]);
    const onNic = new Set([...addresses.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!));
    const selected = new Set([...rules.matchAll(/\b(?:from|to) (\d+\.\d+\.\d+\.\d+)\b/g)].map((m) => m[1]!));
    return { addresses: removed.filter((a) => onNic.has(a)).length, rules: removed.filter((a) => selected.has(a)).length };
  };
  const removeMs: number[] = [];
  const addBackMs: number[] = [];
  for (let k = 0; k < rounds; k++) {
    // the kernel is dumped once the monitor has seen the addresses go (or come back), and on its
    // slow poll: checks after every event of the burst would compete with the agent and helper
    const whole = { addresses: watch.count('ADDR'), rules: watch.count('RULE') };
    await env.setScenario(without);
    let start = performance.now();
    process.kill(agentPid, 'SIGHUP');
    const removedSeen = await watch.until(
      async (woken) => {
        if (woken && watch.count('ADDR') > whole.addresses - removed.length) return false;
        const left = await held();
        return left.addresses === 0 && left.rules === 0;
      },
      30_000,
      `eth${nic}'s ${removed.length} secondary IPs to be removed`,
    );
    removeMs.push(removedSeen - start);
    // the agent spaces its metadata requests to the provider's rate limit (Azure: 5 per second)
    await sleep(500);
    await env.setScenario(scenario);
    start = performance.now();
    process.kill(agentPid, 'SIGHUP');
    const backSeen = await watch.until(
      async (woken) => {
        if (woken && (watch.count('ADDR') < whole.addresses || watch.count('RULE') < whole.rules)) return false;
        const back = await held();
        return back.addresses === removed.length && back.rules === removed.length;
      },
      30_000,
      `eth${nic}'s ${removed.length} secondary IPs to be back`,
    );
    addBackMs.push(backSeen - start);
    await sleep(500);
  }
  return { ips: removed.length, removeMs: spread(removeMs), addBackMs: spread(addBackMs) };
}

/** GCP: the agent long-polls the metadata (wait_for_change); an added alias IP becomes a local route. */
export async function gcpLongPollChanges(size: SizeName, changes: number): Promise<number[]> {
  const { nics, ipsPerNic } = BENCH_SIZES[size];
  const scenario = generateScenario('gcp' as SimProvider, nics, ipsPerNic);
  const cleanup = new TeardownStack();
  try {
    const env = await createCloudEnv(cleanup, scenario, `benchg${size}`);
    env.writeConfig({ logLevel: 'Info', refreshTimer: '300s' });
    const helper = startActivatedHelper(cleanup, env);
    await waitUntil(() => helper.lines.includes('listening'), 10_000, 'the socket activator');
    const watch = await KernelWatch.start(cleanup, env.vm);
    const agent = startAgent(cleanup, env);
    await waitUntil(() => missingFromKernel(env).length === 0, 120_000, `the GCP ${size} plan in the kernel`, 100).catch((error: Error) => {
      throw new Error(`${error.message}\n--- agent ---\n${agent.output().slice(-3000)}`);
    });
    await sleep(1_000); // the long-poll has learnt the current ETag
    const samples: number[] = [];
    const nic = nics > 1 ? 1 : 0;
    for (let k = 1; k <= changes; k++) {
      const next = withExtraIps(scenario, nic, k);
      const address = next.nics[nic]!.ipv4.at(-1)!;
      await env.setScenario(next);
      const start = performance.now();
      const seen = await watch.until(async () => (await ipOut(env.vm, 'route', 'show', 'table', 'local')).includes(`local ${address} dev eth${nic} `), 15_000, `${address} from the GCP metadata to be applied`);
      samples.push(seen - start);
      await sleep(300);
    }
    return samples;
  } finally {
    await cleanup.run();
  }
}
