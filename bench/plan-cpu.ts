// Profiling aid: the agent's planner on an L-size model (8 NICs × 256 IPs), no process, no
// kernel: against a kernel that already holds the whole plan (the case of every reconcile after
// the first), and the first plan of a fresh process, against the kernel as DHCP left it.
// Run: node --import=tsx bench/plan-cpu.ts (add --cpu-prof for a profile).
import { performance } from 'node:perf_hooks';
import { Planner } from '../agent/plan/planner.js';
import type { MetadataModel } from '../agent/metadata/model.js';
import type { KernelState } from '../netlink/types.js';
import { applied } from '../test/lib/fake-kernel.js';

const NICS = 8;
const IPS = 256;
const host = (n: number, i: number) => `10.${n}.${i >> 6}.${(i & 63) + 4}`;
const model: MetadataModel = {
  instance: { provider: 'azure', id: 'vm-1', name: 'vm', region: 'westeurope', zone: '1', size: 'Standard_D64s_v5', image: 'ubuntu', details: {} },
  nics: Array.from({ length: NICS }, (_, n) => ({
    mac: `00:0d:3a:00:00:0${n}`,
    index: n,
    primary: n === 0,
    ipv4: Array.from({ length: IPS }, (_, i) => ({ address: host(n, i), prefixLength: 18, primary: i === 0 })),
    publicIpv4: [],
    ipv6: [],
    subnet: { address: `10.${n}.0.0`, prefixLength: 18 },
    gateway: `10.${n}.0.1`,
    routedRanges: [],
    hostAddresses: false,
    details: {},
  })),
};
const empty: KernelState = {
  links: model.nics.map((nic, n) => ({ index: 2 + n, name: `eth${n}`, mac: nic.mac, up: true, mtu: 1500, loopback: false })),
  addresses: [
    // what DHCP configured: the primary IP of the primary NIC, with a lifetime
    { ifindex: 2, family: 'inet', address: host(0, 0), prefixLength: 18, dynamic: true, noPrefixRoute: false, scope: 0 },
    // and what the kernel gives every link, on an IPv4-only VM too: loopback, and IPv6 link-local addresses
    { ifindex: 1, family: 'inet6', address: '::1', prefixLength: 128, dynamic: false, noPrefixRoute: false, scope: 254 },
    ...model.nics.map((_, n) => ({ ifindex: 2 + n, family: 'inet6' as const, address: `fe80::20d:3aff:fe00:${n}`, prefixLength: 64, dynamic: false, noPrefixRoute: false, scope: 253 })),
  ],
  routes: [{ table: 254, family: 'inet', destination: '0.0.0.0/0', protocol: 16, type: 'unicast', scope: 'universe', gateway: '10.0.0.1', ifindex: 2 }],
  rules: [],
};
const config = { routeTableBase: 20000, supplementary: [] };
// one planner, as the reconciler has: every plan after the first finds what it remembers
const planner = new Planner();
const tCold = performance.now();
const first = planner.plan(model, config, empty, []);
const coldMs = performance.now() - tCold;
const converged = applied(empty, first.operations);

const times: number[] = [];
let operations = -1;
for (let round = 0; round < 15; round++) {
  const t0 = performance.now();
  operations = planner.plan(model, config, converged, []).operations.length;
  times.push(performance.now() - t0);
}
const median = [...times].sort((a, b) => a - b)[times.length >> 1]!;
process.stdout.write(
  `plan of ${first.operations.length} operations against a kernel that holds them (${converged.addresses.length} addresses, ${converged.rules.length} rules): ` +
    `${operations} left, median of ${times.length} ${median.toFixed(1)} ms (first ${times[0]!.toFixed(1)} ms); ` +
    `the first plan, against the kernel as DHCP left it, in a fresh process: ${coldMs.toFixed(1)} ms\n`,
);
