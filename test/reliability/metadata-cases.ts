// Metadata faults: every way the metadata service can fail or lie. Each case injects one
// fault, asks the agent to refresh (SIGHUP), and checks that the last good configuration
// stays in the kernel, that GET /api/v1/status names the error, and that the agent converges
// once the fault is cleared.
import { convergedCloud, builtinScenario, type Running } from '../lib/e2e.js';
import { ip, type Teardown } from '../lib/netns.js';
import type { Scenario } from '../imds-sim/scenario.js';
import { alive, apiGet, lostObjects, managedObjects, peakMemoryMiB, status, waitKernelConverged, waitStatus } from './probe.js';
import { check, type CaseSpec, type Scoreboard, type Tally } from './scoreboard.js';

const CATEGORY = 'metadata';

interface FaultSpec {
  name: string;
  done: string;
  inject(running: Running): Promise<void>;
  clear(running: Running): Promise<void>;
  /** what /api/v1/status metadataError must say */
  expect: RegExp;
  timeoutMs?: number;
  /** further checks while the fault is in force */
  during?(running: Running, injectedAt: number): Promise<string | void>;
}

const HOLDS = 'managed objects unchanged; status names the error; converges after the fault is cleared';

/** One fault through its whole life: inject, refresh, observe, clear, recover. */
function faultCase(running: Running, spec: FaultSpec): CaseSpec {
  return {
    name: spec.name,
    done: spec.done,
    holds: HOLDS,
    run: async (): Promise<Tally> => {
      const { env, agent } = running;
      const before = managedObjects(env);
      const start = await status(env);
      await spec.inject(running);
      let cleared = false;
      const clear = async () => {
        if (!cleared) await spec.clear(running);
        cleared = true;
      };
      try {
        const injectedAt = Date.now();
        agent.kill('SIGHUP');
        const during = await waitStatus(
          env,
          (s) => s.reconciles > start.reconciles && spec.expect.test(s.metadataError ?? ''),
          `status to report ${spec.expect}`,
          spec.timeoutMs ?? 30_000,
        );
        const extra = await spec.during?.(running, injectedAt);
        const lost = lostObjects(before, managedObjects(env));
        check(lost.length === 0, `managed objects disappeared during the fault: ${lost.join('; ')}`, { faults: 1, lost: lost.length });
        check(alive(agent), 'the agent exited', { faults: 1 });
        await clear();
        agent.kill('SIGHUP');
        await waitStatus(env, (s) => s.metadataError === null && s.converged && !s.reconciling, 'the agent to converge after the fault was cleared');
        await waitKernelConverged(env, 'the kernel to hold the whole plan after the fault');
        const lostAfter = lostObjects(before, managedObjects(env));
        check(lostAfter.length === 0, `managed objects missing after recovery: ${lostAfter.join('; ')}`, { faults: 1, lost: lostAfter.length });
        return { faults: 1, lost: 0, detail: `${before.size} managed objects kept; status said "${during.metadataError}"${extra ? `; ${extra}` : ''}; recovered` };
      } finally {
        // a failed case must not leave its fault for the next one
        await clear().catch(() => undefined);
      }
    },
  };
}

const simFault = (fault: Record<string, unknown>) => ({
  inject: async ({ env }: Running) => env.setFault(fault),
  clear: async ({ env }: Running) => env.setFault(null),
});

/** The Azure answer's interface[0] is the scenario's last NIC (the simulator reverses the order). */
function azureCases(running: Running): CaseSpec[] {
  const primaryMac = running.env.scenario.nics[0]!.mac.replace(/:/g, '').toUpperCase();
  const specs: FaultSpec[] = [
    {
      name: 'connect timeout',
      done: 'the metadata address is withdrawn from the cloud namespace, so SYNs go unanswered',
      inject: async ({ env }) => void ip(env.cloud, 'addr', 'del', '169.254.169.254/32', 'dev', 'lo'),
      clear: async ({ env }) => void ip(env.cloud, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo'),
      expect: /no connection to 169\.254\.169\.254 within/,
    },
    {
      name: 'hang mid-body',
      done: 'headers and 200 body bytes, then silence (every attempt)',
      ...simFault({ kind: 'hang', afterBytes: 200 }),
      expect: /no complete answer within/,
      timeoutMs: 90_000,
      during: async ({ env }) => {
        const s = await status(env);
        return `the API kept answering (reconciles ${s.reconciles})`;
      },
    },
    { name: 'HTTP 500', done: 'every request answers 500', ...simFault({ kind: 'status', status: 500 }), expect: /answered 500/ },
    { name: 'HTTP 503', done: 'every request answers 503', ...simFault({ kind: 'status', status: 503 }), expect: /answered 503/ },
    {
      name: '429 with Retry-After',
      done: 'every request answers 429 with Retry-After: 2',
      ...simFault({ kind: 'rateLimit', retryAfter: 2 }),
      expect: /answered 429/,
      during: async ({ env }, injectedAt) => {
        const stats = await env.simStats();
        const seconds = (Date.now() - injectedAt) / 1000;
        const limited = Number(stats.rateLimited);
        // five attempts with Retry-After: 2 between them cannot take less than 8 s; without it, about 2 s
        check(seconds >= 8, `Retry-After not honoured: ${limited} answers of 429 took only ${seconds.toFixed(1)} s`, { faults: 1 });
        return `Retry-After honoured: ${limited} answers of 429 over ${seconds.toFixed(1)} s`;
      },
    },
    { name: 'malformed JSON', done: 'half the document followed by a NUL and garbage', ...simFault({ kind: 'malformed' }), expect: /unavailable/ },
    { name: 'truncated body', done: 'Content-Length of the whole document, half sent, connection closed', ...simFault({ kind: 'truncated' }), expect: /unavailable/ },
    {
      name: '100 MB body',
      done: 'a 200 streaming 100 MiB without Content-Length',
      ...simFault({ kind: 'hugeBody' }),
      expect: /exceeds the \d+ bytes accepted/,
      during: async ({ agent }) => {
        const peak = peakMemoryMiB(agent.child.pid!);
        check(peak < 200, `the agent's peak memory reached ${peak.toFixed(0)} MiB`, { faults: 1 });
        return `reading stopped at the limit; agent peak memory ${peak.toFixed(0)} MiB`;
      },
    },
    { name: 'empty NIC list', done: 'the document lists no NIC at all', ...simFault({ kind: 'emptyNics' }), expect: /./ },
    {
      name: 'NIC without a subnet',
      done: 'the second NIC\'s ipv4.subnet is []',
      ...simFault({ kind: 'corrupt', set: { '/network/interface/0/ipv4/subnet': [] } }),
      expect: /subnet/,
    },
    {
      name: 'invalid addresses',
      done: 'a private IP of 10.4.1.300 and a subnet prefix of "33"',
      ...simFault({ kind: 'corrupt', set: { '/network/interface/0/ipv4/ipAddress/1/privateIpAddress': '10.4.1.300', '/network/interface/1/ipv4/subnet/0/prefix': '33' } }),
      expect: /10\.4\.1\.300|33/,
    },
    {
      name: 'duplicate MACs',
      done: 'the second NIC reports the primary NIC\'s MAC',
      ...simFault({ kind: 'corrupt', set: { '/network/interface/0/macAddress': primaryMac } }),
      expect: /two interfaces|twice|duplicate/i,
    },
  ];
  return specs.map((spec) => faultCase(running, spec));
}

/** A NIC in the metadata with no link of that MAC: reported, nothing else changes. */
function unmatchedMacCase(running: Running): CaseSpec {
  const mac = '00:0d:3a:5d:2d:99';
  return {
    name: 'a MAC with no matching link',
    done: `the metadata gains a NIC ${mac} that no link has`,
    holds: 'managed objects unchanged; GET /api/v1/network lists the NIC as unmatched; converges when it goes',
    run: async () => {
      const { env, agent } = running;
      const scenario = env.scenario;
      const before = managedObjects(env);
      const next: Scenario = structuredClone(scenario);
      next.nics.push({ mac, deviceNumber: 2, ipv4: ['10.4.9.5'], subnet: '10.4.9.0/24' });
      await env.setScenario(next);
      agent.kill('SIGHUP');
      let problem = '';
      await waitStatus(env, (s) => s.converged, 'a reconcile with the new metadata');
      const network = await apiGet(env, '/api/v1/network');
      const unmatched = (network.body as { unmatched?: { mac: string; problem: string }[] }).unmatched ?? [];
      problem = unmatched.find((u) => u.mac.toLowerCase() === mac)?.problem ?? '';
      check(problem !== '', `GET /api/v1/network does not report ${mac}: ${JSON.stringify(unmatched)}`, { faults: 1 });
      const lost = lostObjects(before, managedObjects(env));
      check(lost.length === 0, `managed objects disappeared: ${lost.join('; ')}`, { faults: 1, lost: lost.length });
      await env.setScenario(scenario);
      agent.kill('SIGHUP');
      await waitStatus(env, (s) => s.converged && s.metadataError === null, 'the agent to converge without the extra NIC');
      await waitKernelConverged(env, 'the kernel to hold the whole plan');
      return { faults: 1, detail: `reported as unmatched: "${problem}"; ${before.size} managed objects kept` };
    },
  };
}

async function providerCase(t: Teardown, provider: 'ec2' | 'gcp' | 'oci' | 'aliyun', spec: Omit<FaultSpec, 'inject' | 'clear'> & { fault: Record<string, unknown> }): Promise<CaseSpec> {
  let running: Running | undefined;
  return {
    name: spec.name,
    done: spec.done,
    holds: HOLDS,
    run: async () => {
      running ??= await convergedCloud(t, builtinScenario(provider));
      return faultCase(running, { ...spec, ...simFault(spec.fault) }).run();
    },
  };
}

/**
 * The agent caches its session token (EC2 IMDSv2, Alibaba's hardening mode), so a refused PUT
 * matters when there is no token yet: an agent restarted while the PUT is refused.
 */
async function tokenRefusedCase(t: Teardown, provider: 'ec2' | 'aliyun'): Promise<CaseSpec> {
  return {
    name: `${provider === 'ec2' ? 'EC2' : 'Alibaba'} token PUT refused`,
    done: 'the agent is restarted while PUT /latest/api/token answers 403',
    holds: 'managed objects unchanged; status names the token error; converges after the fault is cleared',
    run: async () => {
      const running = await convergedCloud(t, builtinScenario(provider));
      const { env } = running;
      const before = managedObjects(env);
      running.agent.kill('SIGTERM');
      await running.agent.exited;
      await env.setFault({ kind: 'tokenRefused' });
      try {
        running.agent = env.startAgent();
        const during = await waitStatus(env, (s) => /token/i.test(s.metadataError ?? ''), 'status to report the refused token');
        const lost = lostObjects(before, managedObjects(env));
        check(lost.length === 0, `managed objects disappeared: ${lost.join('; ')}`, { faults: 1, lost: lost.length });
        const stats = await env.simStats();
        await env.setFault(null);
        await waitStatus(env, (s) => s.converged && s.metadataError === null, 'the agent to converge once tokens are issued', 60_000);
        await waitKernelConverged(env, 'the kernel to hold the whole plan');
        return { faults: 1, detail: `${before.size} managed objects kept; ${String(stats.tokenPuts)} token PUTs refused; status said "${during.metadataError}"; recovered` };
      } finally {
        await env.setFault(null).catch(() => undefined);
      }
    },
  };
}

export async function metadataCases(board: Scoreboard, t: Teardown): Promise<void> {
  const running = await convergedCloud(t, builtinScenario('azure'));
  for (const spec of [...azureCases(running), unmatchedMacCase(running)]) await board.run(CATEGORY, spec);
  await board.run(CATEGORY, await tokenRefusedCase(t, 'ec2'));
  await board.run(CATEGORY, await tokenRefusedCase(t, 'aliyun'));
  const gcp = await providerCase(t, 'gcp', {
    name: 'GCP answer without Metadata-Flavor',
    done: 'every answer lacks the Metadata-Flavor: Google header',
    fault: { kind: 'noFlavorHeader' },
    expect: /Metadata-Flavor/,
  });
  await board.run(CATEGORY, gcp);
  const oci = await providerCase(t, 'oci', {
    name: 'OCI VNIC outside its subnet',
    done: 'the second VNIC\'s privateIp lies outside its subnetCidrBlock',
    fault: { kind: 'corrupt', path: '/opc/v2/vnics', set: { '/1/privateIp': '10.0.9.5' } },
    expect: /10\.0\.9\.5 is outside the subnet/,
  });
  await board.run(CATEGORY, oci);
}
