// Synthetic scenarios of any size for the benchmarks (S 2×64, M 4×50, L 8×256): realistic
// address ranges per cloud, deterministic so two runs measure the same thing.
import { formatIp, parseIp } from '../../protocol/ip.js';
import type { Scenario, ScenarioNic, ScenarioSecrets, SimProvider } from './scenario.js';

export const BENCH_SIZES = {
  S: { nics: 2, ipsPerNic: 64 },
  M: { nics: 4, ipsPerNic: 50 },
  L: { nics: 8, ipsPerNic: 256 },
} as const;

/** Secrets every generated scenario carries; each contains "SIMSECRET" so a leak is easy to find. */
export function simulatedSecrets(): ScenarioSecrets {
  return {
    iamRole: 'cloud-network-sim-role',
    accessKeyId: 'ASIASIMSECRETAKID0001',
    secretAccessKey: 'SIMSECRETwJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY',
    sessionToken: 'SIMSECRET-session-token-IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQCIA',
    accessToken: 'ya29.SIMSECRET-access-token-c.b0AXv0zTPx9kQ2oRmLvB8',
    serviceAccountEmail: '123456789012-compute@developer.gserviceaccount.com',
    userData: '#!/bin/sh\nexport DB_PASSWORD=SIMSECRET-db-password-7f3a\n',
    signature: 'SIMSECRETsignatureMIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCAJIAEggHbewog',
  };
}

const PLAN = {
  azure: { base: '10.4.0.0', firstHostOffset: 4, lastReserved: 1, mac: [0x00, 0x0d, 0x3a] },
  ec2: { base: '172.31.0.0', firstHostOffset: 4, lastReserved: 1, mac: [0x02, 0x5e, 0x11] },
  gcp: { base: '10.128.0.0', firstHostOffset: 2, lastReserved: 1, mac: [0x42, 0x01, 0x0a] },
  // OCI reserves a subnet's first two addresses; 02:00:17 starts its VNIC MACs
  oci: { base: '10.0.0.0', firstHostOffset: 2, lastReserved: 1, mac: [0x02, 0x00, 0x17] },
  // Alibaba reserves a vSwitch's first and last three addresses, the gateway the last but two; 00:16:3e starts its MACs
  aliyun: { base: '172.16.0.0', firstHostOffset: 1, lastReserved: 3, mac: [0x00, 0x16, 0x3e] },
} as const;

function addToIpv4(base: string, offset: number): string {
  const bytes = parseIp(base)!.bytes;
  let value = ((bytes[0]! << 24) >>> 0) + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]! + offset;
  const out = new Uint8Array(4);
  for (let i = 3; i >= 0; i--) {
    out[i] = value & 0xff;
    value = Math.floor(value / 256);
  }
  return formatIp({ family: 'inet', bytes: out });
}

const INSTANCES = {
  azure: { id: '9f2b7c1e-5d3a-4e8f-b6a1-0c2d3e4f5a6b', region: 'westeurope', zone: '1', size: 'Standard_D16s_v5', image: 'debian-12' },
  ec2: { id: 'i-0bench00000000001', region: 'eu-west-1', zone: 'eu-west-1a', size: 'c6in.8xlarge', image: 'ami-0bench000000000001' },
  gcp: { id: '4520031799277581759', region: 'us-central1', zone: 'us-central1-a', size: 'n2-standard-16', image: 'debian-12' },
  oci: { id: 'ocid1.instance.oc1.eu-frankfurt-1.antheljtbench000001', region: 'eu-frankfurt-1', zone: 'EU-FRANKFURT-1-AD-1', size: 'VM.Standard.E5.Flex', image: 'ocid1.image.oc1.eu-frankfurt-1.aaaaaaaabench' },
  aliyun: { id: 'i-bp1bench000000000001', region: 'cn-hangzhou', zone: 'cn-hangzhou-i', size: 'ecs.g7.4xlarge', image: 'aliyun_3_x64_20G_alibase_20240528.vhd' },
} as const;

/**
 * A VM on `provider` with `nics` NICs of `ipsPerNic` private IPv4 each. Each NIC gets its own
 * subnet, just large enough (at most /24) for its IPs plus the cloud's reserved addresses.
 */
export function generateScenario(provider: SimProvider, nics: number, ipsPerNic: number): Scenario {
  if (!Number.isInteger(nics) || nics < 1 || nics > 32) throw new Error(`generateScenario: ${nics} NICs is not between 1 and 32`);
  if (!Number.isInteger(ipsPerNic) || ipsPerNic < 1 || ipsPerNic > 4000) throw new Error(`generateScenario: ${ipsPerNic} IPs per NIC is not between 1 and 4000`);
  // OCI's metadata lists one private IP per VNIC: more could not be served
  if (provider === 'oci' && ipsPerNic !== 1) throw new Error(`generateScenario: OCI's metadata lists one private IP per VNIC, not ${ipsPerNic}`);
  const plan = PLAN[provider];
  const needed = ipsPerNic + plan.firstHostOffset + plan.lastReserved;
  const hostBits = Math.max(8, Math.ceil(Math.log2(needed)));
  const blockSize = 2 ** hostBits;
  const list: ScenarioNic[] = [];
  for (let n = 0; n < nics; n++) {
    const subnetBase = addToIpv4(plan.base, n * blockSize);
    const ipv4 = Array.from({ length: ipsPerNic }, (_, i) => addToIpv4(subnetBase, plan.firstHostOffset + i));
    const mac = [...plan.mac, 0x10 + n, 0x20, 0x30].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const nic: ScenarioNic = { mac, deviceNumber: n, ipv4, subnet: `${subnetBase}/${32 - hostBits}` };
    if (provider === 'aliyun') nic.gateway = addToIpv4(subnetBase, blockSize - 3);
    if (n === 0) nic.publicIpv4 = addToIpv4('203.0.113.0', 10);
    if (provider === 'gcp') {
      nic.mtu = 1460;
      nic.network = `projects/123456789012/networks/vpc-${n}`;
    }
    if (provider === 'ec2') {
      nic.interfaceId = `eni-0sim${String(n).padStart(12, '0')}`;
      nic.subnetId = `subnet-0sim${String(n).padStart(12, '0')}`;
      nic.vpcId = 'vpc-0sim000000000001';
    }
    list.push(nic);
  }
  return {
    provider,
    instance: {
      ...INSTANCES[provider],
      name: `bench-${nics}x${ipsPerNic}`,
    },
    nics: list,
    sshKeys: [{ name: 'bench', key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBenchBe bench@sim' }],
    secrets: simulatedSecrets(),
  };
}
