// Helper, kernel and agent faults, on one simulated Azure VM with three NICs: the helper
// killed mid-apply, missing at start or refusing; objects removed or created behind the
// agent's back, a NIC vanishing mid-apply; the agent killed mid-apply, a broken config on
// SIGHUP, a burst of SIGHUPs. After each: the agent still runs and converges, without a loop.
import { writeFileSync } from 'node:fs';
import { createCloudEnv, type CloudEnv, type Proc } from '../lib/cloud-env.js';
import { ip, waitFor, type Teardown } from '../lib/netns.js';
import { generateScenario } from '../imds-sim/generate.js';
import type { Scenario } from '../imds-sim/scenario.js';
import { alive, apiGet, duplicates, lostObjects, managedObjects, sleep, status, waitKernelConverged, waitStatus } from './probe.js';
import { CaseFailure, check, type CaseSpec, type Scoreboard } from './scoreboard.js';

/** IPs per NIC while idle; a "large apply" restores the full 200 per NIC. */
const SMALL = 20;
/** Reconciles a single repair may take (one for the event, a retry or two); more is a loop. */
const RECONCILES_PER_REPAIR = 6;

interface System {
  env: CloudEnv;
  helper: Proc;
  agent: Proc;
  full: Scenario;
  small: Scenario;
}

function trimmed(scenario: Scenario, perNic: number): Scenario {
  const next = structuredClone(scenario);
  for (const nic of next.nics) nic.ipv4 = nic.ipv4.slice(0, perNic);
  return next;
}

async function useScenario(sys: System, scenario: Scenario): Promise<void> {
  await sys.env.setScenario(scenario);
  sys.env.scenario = scenario;
}

function addressCount(env: CloudEnv, link: string): number {
  return ip(env.vm, '-o', '-4', 'addr', 'show', 'dev', link).split('\n').filter(Boolean).length;
}

/** Waits until `link` has more addresses than `from`, polling fast: the apply is under way. */
async function applyUnderWay(env: CloudEnv, link: string, from: number): Promise<number> {
  return waitFor(() => {
    const n = addressCount(env, link);
    return n > from ? n : 0;
  }, `addresses to start appearing on ${link}`, 20_000, 5);
}

/** Reconciles over a quiet period: a loop would show as many. */
async function reconcilesOver(env: CloudEnv, ms: number): Promise<number> {
  const before = (await status(env)).reconciles;
  await sleep(ms);
  return (await status(env)).reconciles - before;
}

async function stopHelper(sys: System): Promise<void> {
  sys.helper.kill('SIGTERM');
  await sys.helper.exited;
}

function helperCases(sys: System): CaseSpec[] {
  const { env } = sys;
  return [
    {
      name: 'unavailable when the agent starts',
      done: 'the agent starts with no helper listening; the helper comes 3 s later',
      holds: 'the agent keeps running, status says the helper is unreachable, converges once it is there',
      run: async () => {
        sys.agent = env.startAgent();
        const down = await waitStatus(env, (s) => s.helperReachable === false && /not reachable/.test(s.lastError ?? ''), 'status to say the helper is unreachable');
        await sleep(3_000);
        check(alive(sys.agent), `the agent exited without a helper: ${sys.agent.output().slice(-500)}`);
        sys.helper = env.startHelper();
        await waitKernelConverged(env, 'the agent to converge once the helper is there', 60_000);
        await waitStatus(env, (s) => s.converged && s.helperReachable === true, 'status to say converged');
        return { faults: 1, detail: `status said "${down.lastError}"; converged after the helper started` };
      },
    },
    {
      name: 'killed during a large apply',
      done: 'the metadata grows by 540 IPs (about 1,600 operations); the helper gets SIGKILL once the first appear, and is restarted',
      holds: 'the agent keeps running and converges with the restarted helper, no duplicates, nothing lost',
      run: async () => {
        const before = managedObjects(env);
        const from = addressCount(env, 'eth2');
        await useScenario(sys, sys.full);
        sys.agent.kill('SIGHUP');
        const seen = await applyUnderWay(env, 'eth2', from);
        sys.helper.kill('SIGKILL');
        await sys.helper.exited;
        const partial = addressCount(env, 'eth2');
        await waitStatus(env, (s) => s.helperReachable === false || (!s.reconciling && !s.converged), 'status to report the lost helper');
        check(alive(sys.agent), 'the agent exited when the helper died');
        sys.helper = env.startHelper();
        await waitKernelConverged(env, 'the agent to converge with the restarted helper', 60_000);
        const dups = duplicates(env);
        check(dups.length === 0, `duplicates: ${dups.slice(0, 3).join('; ')}`, { faults: 1 });
        const lost = lostObjects(before, managedObjects(env));
        check(lost.length === 0, `lost: ${lost.join('; ')}`, { faults: 1, lost: lost.length });
        const size = managedObjects(env).size;
        // back to the small layout, so the next large apply is large again
        await useScenario(sys, sys.small);
        sys.agent.kill('SIGHUP');
        await waitFor(() => addressCount(env, 'eth2') === SMALL, 'eth2 to be back to its small layout', 30_000);
        return { faults: 1, detail: `killed with ${seen}–${partial} of 200 addresses on eth2; converged to ${size} managed objects, no duplicates` };
      },
    },
    {
      name: 'refusing an operation',
      done: 'the helper is restarted with --deny-link eth2 while the metadata drops an IP of eth2',
      holds: 'the agent keeps running, reports the refusal on eth2, does not loop, converges once the helper allows it',
      run: async () => {
        await stopHelper(sys);
        sys.helper = env.startHelper(['--deny-link', 'eth2']);
        const next = structuredClone(sys.env.scenario);
        next.nics[2]!.ipv4 = next.nics[2]!.ipv4.slice(0, -1);
        await useScenario(sys, next);
        sys.agent.kill('SIGHUP');
        const refused = await waitStatus(env, (s) => /deny list/.test(s.linkErrors.eth2 ?? ''), 'status to report the refusal on eth2');
        const reconciles = await reconcilesOver(env, 4_000);
        check(reconciles <= RECONCILES_PER_REPAIR, `${reconciles} reconciles in 4 s while refused: a loop`, { faults: 1 });
        check(alive(sys.agent), 'the agent exited');
        await stopHelper(sys);
        sys.helper = env.startHelper();
        sys.agent.kill('SIGHUP');
        await waitStatus(env, (s) => s.converged && Object.keys(s.linkErrors).length === 0, 'the agent to converge once allowed');
        await waitFor(() => addressCount(env, 'eth2') === next.nics[2]!.ipv4.length, 'the dropped IP to be gone from eth2');
        return { faults: 1, detail: `status said "${refused.linkErrors.eth2}"; ${reconciles} reconciles in 4 s while refused; converged after` };
      },
    },
  ];
}

function kernelCases(sys: System): CaseSpec[] {
  const { env } = sys;
  const repairCase = (name: string, what: string, remove: () => string): CaseSpec => ({
    name,
    done: `${what} is deleted with ip(8)`,
    holds: 'repaired, with a bounded number of reconciles, the agent still running',
    run: async () => {
      const start = (await status(env)).reconciles;
      const removed = remove();
      await waitKernelConverged(env, `${removed} to be repaired`, 15_000);
      const after = (await status(env)).reconciles - start;
      const later = await reconcilesOver(env, 2_000);
      check(after <= RECONCILES_PER_REPAIR && later <= 1, `${after} reconciles for one repair, ${later} more in the next 2 s: a loop`, { faults: 1 });
      check(alive(sys.agent), 'the agent exited', { faults: 1 });
      return { faults: 1, detail: `${removed} repaired in ${after} reconciles; ${later} in the 2 s after` };
    },
  });
  return [
    repairCase('a managed address removed', 'a secondary address of eth1', () => {
      const address = env.scenario.nics[1]!.ipv4[3]!;
      const line = ip(env.vm, '-o', '-4', 'addr', 'show', 'dev', 'eth1').split('\n').find((l) => l.includes(` ${address}/`))!;
      const prefix = / inet (\S+)/.exec(line)![1]!;
      ip(env.vm, 'addr', 'del', prefix, 'dev', 'eth1');
      return `address ${prefix} on eth1`;
    }),
    repairCase('a managed rule removed', 'the `from` rule of an eth1 address', () => {
      const address = env.scenario.nics[1]!.ipv4[4]!;
      ip(env.vm, 'rule', 'del', 'from', address, 'lookup', '20001', 'priority', '20200');
      return `rule from ${address} lookup 20001`;
    }),
    repairCase('a managed route removed', 'the default route of table 20001', () => {
      ip(env.vm, 'route', 'del', 'default', 'table', '20001');
      return 'default route in table 20001';
    }),
    {
      name: 'a NIC removed mid-apply (ENODEV)',
      done: 'the metadata grows eth2 by 180 IPs; eth2 is deleted once the first appear',
      holds: 'the agent keeps running, reports eth2, does not loop; eth0 and eth1 keep everything; stale rules go once the NIC leaves the metadata',
      run: async () => {
        const keep = [...managedObjects(env)].filter((o) => !o.includes('eth2') && !o.includes('20002'));
        const from = addressCount(env, 'eth2');
        const grown = structuredClone(env.scenario);
        grown.nics[2]!.ipv4 = sys.full.nics[2]!.ipv4;
        await useScenario(sys, grown);
        sys.agent.kill('SIGHUP');
        const seen = await applyUnderWay(env, 'eth2', from);
        ip(env.vm, 'link', 'del', 'eth2');
        // a metadata NIC without a link is reported in GET /api/v1/network, as for a NIC not attached yet
        const mac = env.scenario.nics[2]!.mac;
        const reported = await waitFor(async () => {
          const network = (await apiGet(env, '/api/v1/network')).body as { unmatched?: { mac: string; problem: string }[] };
          return network.unmatched?.find((u) => u.mac.toLowerCase() === mac)?.problem;
        }, `GET /api/v1/network to report ${mac} as unmatched`, 15_000, 250);
        const kernelErrors = sys.agent.output().split('\n').filter((l) => /kernel refused/.test(l)).length;
        const loops = await reconcilesOver(env, 4_000);
        check(loops <= RECONCILES_PER_REPAIR, `${loops} reconciles in 4 s after the NIC went: a loop`, { faults: 1 });
        check(alive(sys.agent), 'the agent exited', { faults: 1 });
        const now = managedObjects(env);
        const lost = keep.filter((o) => !now.has(o));
        check(lost.length === 0, `objects of eth0/eth1 lost: ${lost.slice(0, 3).join('; ')}`, { faults: 1, lost: lost.length });
        // the NIC leaves the metadata too (detached): its rules must go
        const without = structuredClone(env.scenario);
        without.nics.pop();
        await useScenario(sys, without);
        env.links.pop();
        sys.agent.kill('SIGHUP');
        await waitFor(() => !ip(env.vm, 'rule', 'show').includes('lookup 20002'), 'the rules of the removed NIC to be removed', 20_000);
        await waitStatus(env, (s) => s.converged, 'the agent to converge without eth2');
        return { faults: 1, detail: `eth2 deleted with ${seen} addresses on it; ${kernelErrors} operations refused by the kernel; reported "${reported}"; ${loops} reconciles in 4 s; its rules removed once it left the metadata` };
      },
    },
    {
      name: 'EEXIST from an object someone else created',
      done: 'another tool adds an address and its `from` rule (proto static) before the metadata lists that address',
      holds: 'the other tool\'s objects are left as they are, the agent converges or reports, no loop',
      run: async () => {
        const next = structuredClone(env.scenario);
        // an address of eth1's subnet that no scenario here uses
        const address = sys.full.nics[1]!.subnet.replace(/\.\d+\/\d+$/, '.250');
        next.nics[1]!.ipv4.push(address);
        ip(env.vm, 'addr', 'add', `${address}/24`, 'dev', 'eth1', 'noprefixroute');
        ip(env.vm, 'rule', 'add', 'priority', '20200', 'from', address, 'lookup', '20001', 'protocol', 'static');
        const start = (await status(env)).reconciles;
        await useScenario(sys, next);
        sys.agent.kill('SIGHUP');
        const settled = await waitStatus(env, (s) => s.reconciles > start && !s.reconciling, 'a reconcile with the new address');
        const loops = await reconcilesOver(env, 4_000);
        check(loops <= RECONCILES_PER_REPAIR, `${loops} reconciles in 4 s: a loop`, { faults: 1 });
        check(alive(sys.agent), 'the agent exited', { faults: 1 });
        const rules = ip(env.vm, 'rule', 'show').split('\n').filter((l) => l.includes(`from ${address} `));
        check(rules.some((l) => !l.includes('proto 201')), `the other tool's rule is gone: ${rules.join('; ')}`, { faults: 1 });
        check(ip(env.vm, '-o', 'addr', 'show', 'dev', 'eth1').includes(` ${address}/24`), 'the other tool\'s address is gone', { faults: 1 });
        const outcome = settled.converged ? 'converged' : `reported "${settled.lastError}"`;
        // hand the objects back: the scenario without the address, the other tool's objects removed
        ip(env.vm, 'rule', 'del', 'priority', '20200', 'from', address, 'lookup', '20001', 'protocol', 'static');
        const back = structuredClone(next);
        back.nics[1]!.ipv4.pop();
        await useScenario(sys, back);
        sys.agent.kill('SIGHUP');
        await waitStatus(env, (s) => s.converged, 'the agent to converge');
        return { faults: 1, detail: `${outcome}; rules for it: ${rules.length} (${rules.map((l) => l.split('\t')[1]).join(' | ')}); ${loops} reconciles in 4 s` };
      },
    },
  ];
}

function agentCases(sys: System): CaseSpec[] {
  const { env } = sys;
  return [
    {
      name: 'SIGKILL mid-apply and restart',
      done: 'the metadata grows eth1 by 180 IPs; the agent gets SIGKILL once the first appear; the metadata then drops 90 of them; the agent restarts',
      holds: 'converges with no duplicates; the addresses it added that the metadata no longer lists are removed',
      run: async () => {
        const from = addressCount(env, 'eth1');
        const grown = structuredClone(env.scenario);
        grown.nics[1]!.ipv4 = sys.full.nics[1]!.ipv4;
        await useScenario(sys, grown);
        sys.agent.kill('SIGHUP');
        const seen = await applyUnderWay(env, 'eth1', from);
        sys.agent.kill('SIGKILL');
        await sys.agent.exited;
        const partial = addressCount(env, 'eth1');
        const shrunk = structuredClone(grown);
        const dropped = shrunk.nics[1]!.ipv4.splice(110);
        await useScenario(sys, shrunk);
        sys.agent = env.startAgent();
        await waitKernelConverged(env, 'the restarted agent to converge', 60_000);
        await waitStatus(env, (s) => s.converged, 'status to say converged', 30_000);
        const addresses = ip(env.vm, '-o', 'addr', 'show', 'dev', 'eth1');
        const stale = dropped.filter((a) => addresses.includes(` ${a}/`));
        check(stale.length === 0, `${stale.length} dropped addresses remain, e.g. ${stale[0]}`, { faults: 1 });
        const dups = duplicates(env);
        check(dups.length === 0, `duplicates: ${dups.slice(0, 3).join('; ')}`, { faults: 1 });
        return { faults: 1, detail: `killed with ${seen}–${partial} addresses on eth1; after restart ${addressCount(env, 'eth1')} (as listed), ${dropped.length} dropped ones absent, no duplicates` };
      },
    },
    {
      name: 'SIGHUP with a broken config',
      done: 'the config gets LogLevel = "Loud" and an unknown key, then SIGHUP',
      holds: 'the reload is refused with a log line naming the problem; the running config and the network stay',
      run: async () => {
        const before = managedObjects(env);
        const good = (await import('node:fs')).readFileSync(env.configPath, 'utf8');
        writeFileSync(env.configPath, good.replace(/LogLevel = "\w+"/, 'LogLevel = "Loud"') + 'Colour = "blue"\n');
        const logged = sys.agent.output().length;
        sys.agent.kill('SIGHUP');
        try {
          const line = await waitFor(() => sys.agent.output().slice(logged).split('\n').find((l) => l.includes('reload refused')), 'a "reload refused" log line', 10_000);
          check(alive(sys.agent), 'the agent exited');
          const s = await status(env);
          check(s.converged, `not converged after the refused reload: ${s.lastError}`);
          const lost = lostObjects(before, managedObjects(env));
          check(lost.length === 0, `lost: ${lost.join('; ')}`, { lost: lost.length });
          return { faults: 1, badInputs: 1, detail: line.replace(/^\S+ /, '').slice(0, 220) };
        } finally {
          writeFileSync(env.configPath, good);
        }
      },
    },
    {
      name: '100 SIGHUPs in a burst',
      done: '100 SIGHUPs sent back to back',
      holds: 'coalesced into a few refreshes; Azure\'s metadata never rate-limits (under 5 requests/s); the agent converges',
      run: async () => {
        const stats = await env.simStats();
        const startReconciles = (await status(env)).reconciles;
        const started = Date.now();
        for (let i = 0; i < 100; i++) process.kill(sys.agent.child.pid!, 'SIGHUP');
        await sleep(3_000);
        const settled = await waitStatus(env, (s) => !s.reconciling && s.converged, 'the agent to settle');
        const after = await env.simStats();
        const seconds = (Date.now() - started) / 1000;
        const requests = Number(after.requests) - Number(stats.requests);
        const limited = Number(after.rateLimited) - Number(stats.rateLimited);
        const reconciles = settled.reconciles - startReconciles;
        check(alive(sys.agent), 'the agent exited');
        check(limited === 0, `${limited} requests were rate-limited`, { faults: 1 });
        check(requests <= 5 * seconds && requests <= 10, `${requests} metadata requests in ${seconds.toFixed(1)} s`, { faults: 1 });
        return { faults: 1, detail: `100 signals: ${reconciles} reconciles, ${requests} metadata requests in ${seconds.toFixed(1)} s, 0 rate-limited` };
      },
    },
  ];
}

export async function processCases(board: Scoreboard, t: Teardown): Promise<void> {
  const full = generateScenario('azure', 3, 200);
  const small = trimmed(full, SMALL);
  const env = await createCloudEnv(t, small, 'rel');
  env.writeConfig({ logLevel: 'Info' });
  const sys = { env, full, small } as System;
  const run = async (category: string, specs: CaseSpec[]) => {
    for (const spec of specs) {
      const result = await board.run(category, spec);
      // a failed case may leave the system anywhere: the later ones would fail for its reason
      if (!result.ok) throw new CaseFailure(`stopped after "${spec.name}" failed`);
    }
  };
  await run('helper', helperCases(sys));
  await run('kernel', kernelCases(sys));
  await run('agent', agentCases(sys));
}
