// Shared steps of the end-to-end tests: a cloud with a running helper and agent.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCloudEnv, REPO, waitConverged, type AgentSettings, type CloudEnv, type Proc } from './cloud-env.js';
import { ip, kernelDump, waitFor, type Teardown } from './netns.js';
import { parseScenario, type Scenario } from '../imds-sim/scenario.js';

export function builtinScenario(provider: string): Scenario {
  return parseScenario(JSON.parse(readFileSync(join(REPO, 'test', 'scenarios', `${provider}.json`), 'utf8')), provider);
}

export interface Running {
  env: CloudEnv;
  helper: Proc;
  agent: Proc;
}

/** A cloud whose agent has converged; `agentEnvironment` adds to the agent's environment. */
export async function convergedCloud(
  t: Teardown & { log?: (...values: unknown[]) => void },
  scenario: Scenario,
  settings: AgentSettings = {},
  agentEnvironment: Record<string, string> = {},
): Promise<Running> {
  const env = await createCloudEnv(t, scenario);
  const helper = env.startHelper();
  env.writeConfig(settings);
  const agent = env.startAgent([], agentEnvironment);
  try {
    await waitConverged(env);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- agent ---\n${agent.output()}\n--- helper ---\n${helper.output().slice(-4000)}`);
  }
  // IPv6 addresses get their local route only once duplicate address detection is over
  await waitFor(() => !ip(env.vm, '-6', 'addr', 'show').includes('tentative'), 'IPv6 duplicate address detection to finish');
  return { env, helper, agent };
}

/** The vm's kernel state without what the kernel changes on its own. */
export function vmDump(env: CloudEnv): string {
  return kernelDump(env.vm);
}

/** Lines of `ip rule` that appear more than once (duplicates the agent would have made). */
export function duplicateRules(env: CloudEnv): string[] {
  const lines = env.vmExec('ip', ['rule', 'show']).split('\n').filter(Boolean);
  return lines.filter((line, i) => lines.indexOf(line) !== i);
}

/** The capability sets of a process, from /proc (CapEff as a number). */
export function effectiveCapabilities(pid: number): bigint {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith('CapEff:'))!;
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}

export const CAP_NET_ADMIN = 1n << 12n;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
