// The floor: the README's layout written by one `ip -batch` in the same namespaces, the
// kernel's own time for the work the converge does, and undone before the agent starts.
import { spawnSync } from 'node:child_process';
import type { Scenario } from '../test/imds-sim/scenario.js';
import { firstHost, parsePrefix } from '../protocol/ip.js';
import { kernelCounts, sameCounts, type Counts } from './kernel.js';

/**
 * The Azure layout of README.md ("Network layout") as `ip` commands: every metadata IP but the
 * DHCP one, a table per non-primary NIC with its subnet and default route, the main rule and a
 * `to` and a `from` rule per IP of a non-primary NIC. (iproute2 6.1 cannot tag addresses with
 * proto 201; the kernel work is the same.)
 */
export function floorCommands(scenario: Scenario, tableBase = 20000): { apply: string[]; undo: string[] } {
  const apply: string[] = [];
  const undo: string[] = [];
  scenario.nics.forEach((nic, i) => {
    const prefix = parsePrefix(nic.subnet)!.prefixLength;
    nic.ipv4.forEach((address, j) => {
      if (i === 0 && j === 0) return;
      apply.push(`address add ${address}/${prefix} dev eth${i} noprefixroute`);
      undo.push(`address del ${address}/${prefix} dev eth${i}`);
    });
  });
  apply.push('rule add priority 20000 lookup main suppress_prefixlength 0 protocol 201');
  undo.push('rule del priority 20000 lookup main suppress_prefixlength 0');
  scenario.nics.forEach((nic, i) => {
    if (i === 0) return;
    const table = tableBase + i;
    apply.push(`route replace ${nic.subnet} dev eth${i} table ${table} proto 201`);
    apply.push(`route replace default via ${nic.gateway ?? firstHost(nic.subnet)} dev eth${i} table ${table} proto 201`);
    undo.push(`route flush table ${table}`);
    for (const address of nic.ipv4) {
      apply.push(`rule add priority 20100 to ${address} lookup ${table} protocol 201`);
      undo.push(`rule del priority 20100 to ${address} lookup ${table}`);
    }
    for (const address of nic.ipv4) {
      apply.push(`rule add priority 20200 from ${address} lookup ${table} protocol 201`);
      undo.push(`rule del priority 20200 from ${address} lookup ${table}`);
    }
  });
  return { apply, undo };
}

/** Runs the floor's undo file and checks that the namespace is back at `before`. */
export async function undoFloor(ns: string, undoFile: string, before: Counts): Promise<void> {
  ipBatchMs(ns, undoFile, true);
  const after = await kernelCounts(ns);
  if (!sameCounts(before, after)) throw new Error(`undoing the floor left ${JSON.stringify(after)}, not ${JSON.stringify(before)}`);
}

export function ipBatchMs(ns: string, file: string, force = false): number {
  const start = performance.now();
  const result = spawnSync('ip', ['-n', ns, ...(force ? ['-force'] : []), '-batch', file], { encoding: 'utf8' });
  const ms = performance.now() - start;
  if (result.status !== 0 && !force) throw new Error(`ip -batch ${file} failed: ${result.stderr}`);
  return ms;
}
