// One cloud-neutral description of a VM, rendered by the simulator as Azure, EC2, GCP, OCI or
// Alibaba Cloud metadata.
// The schema and the TypeScript type are the same declaration; scenarios arrive from JSON files
// and from the control endpoint, so both are validated with it.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstHost, parseIp, parsePrefix, prefixContains } from '../../protocol/ip.js';

const Mac = Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', description: 'lower-case, colon-separated' });
const Cidr = Type.String({ pattern: '^[0-9a-fA-F.:]+/[0-9]{1,3}$' });
const Ip = Type.String({ pattern: '^[0-9a-fA-F.:]+$' });

export const ProviderSchema = Type.Union([Type.Literal('azure'), Type.Literal('ec2'), Type.Literal('gcp'), Type.Literal('oci'), Type.Literal('aliyun')]);
export type SimProvider = Static<typeof ProviderSchema>;

/**
 * Where each cloud's metadata service answers (docs/imds.md): EC2 also at fd00:ec2::254 (Nitro,
 * IPv6 endpoint enabled), Alibaba Cloud at 100.100.100.200.
 */
export const IMDS_ADDRESSES: Record<SimProvider, readonly string[]> = {
  azure: ['169.254.169.254'],
  ec2: ['169.254.169.254', 'fd00:ec2::254'],
  gcp: ['169.254.169.254'],
  oci: ['169.254.169.254'],
  aliyun: ['100.100.100.200'],
};

export const ScenarioNicSchema = Type.Object(
  {
    mac: Mac,
    /**
     * EC2 device-number, GCP the N of nicN, the position in OCI's VNIC list and in Alibaba's MAC
     * listing; Azure has no index (its order is not guaranteed)
     */
    deviceNumber: Type.Integer({ minimum: 0, maximum: 31 }),
    /** EC2 network-card, only on multi-card instance types (absent: the path answers 404) */
    networkCard: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
    /** private IPv4 addresses, the NIC's primary first; none on an IPv6-only subnet (EC2) */
    ipv4: Type.Array(Ip),
    /** the public IPv4 associated with the NIC's primary private IP */
    publicIpv4: Type.Optional(Ip),
    /** the IPv4 subnet; absent exactly when the NIC has no IPv4 */
    subnet: Type.Optional(Cidr),
    /** default: the subnet's first host */
    gateway: Type.Optional(Ip),
    ipv6: Type.Optional(Type.Array(Ip)),
    ipv6Subnet: Type.Optional(Cidr),
    /** OCI ipv6VirtualRouterIp, Alibaba ipv6-gateway (both link-local or the subnet's router) */
    ipv6Gateway: Type.Optional(Ip),
    /** GCP */
    mtu: Type.Optional(Type.Integer({ minimum: 1280, maximum: 9000 })),
    ipAliases: Type.Optional(Type.Array(Cidr)),
    forwardedIps: Type.Optional(Type.Array(Ip)),
    network: Type.Optional(Type.String()),
    /** EC2 prefix delegations */
    ipv4Prefixes: Type.Optional(Type.Array(Cidr)),
    ipv6Prefixes: Type.Optional(Type.Array(Cidr)),
    interfaceId: Type.Optional(Type.String()),
    subnetId: Type.Optional(Type.String()),
    vpcId: Type.Optional(Type.String()),
    /** OCI: the VNIC's VLAN tag (on VMs any number; on bare metal 0 is the physical NIC itself) */
    vlanTag: Type.Optional(Type.Integer({ minimum: 0, maximum: 4094 })),
    /** OCI bare metal only: the physical NIC the VNIC rides on (its presence makes the instance bare metal) */
    nicIndex: Type.Optional(Type.Integer({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);
export type ScenarioNic = Static<typeof ScenarioNicSchema>;

/**
 * Credentials a real metadata service hands to anyone on the VM. The simulator serves them
 * where the real one does so tests can prove the agent never passes them on.
 */
export const ScenarioSecretsSchema = Type.Object(
  {
    /** EC2 iam/security-credentials/<role>, Alibaba ram/security-credentials/<role> */
    iamRole: Type.String(),
    accessKeyId: Type.String(),
    secretAccessKey: Type.String(),
    sessionToken: Type.String(),
    /** GCP instance/service-accounts/default/token, Azure /metadata/identity/oauth2/token */
    accessToken: Type.String(),
    serviceAccountEmail: Type.String(),
    /** EC2 and Alibaba user-data, Azure compute.userData and OCI metadata.user_data (base64), GCP attributes.startup-script */
    userData: Type.String(),
    /** EC2 instance-identity signature, Azure attested document signature, Alibaba pkcs7, OCI's instance principal key */
    signature: Type.String(),
  },
  { additionalProperties: false },
);
export type ScenarioSecrets = Static<typeof ScenarioSecretsSchema>;

export const ScenarioSchema = Type.Object(
  {
    provider: ProviderSchema,
    instance: Type.Object(
      {
        /** GCP: decimal digits, usually > 2^53 (kept as text here, served as a bare JSON number) */
        id: Type.String({ minLength: 1 }),
        name: Type.String({ minLength: 1 }),
        region: Type.String({ minLength: 1 }),
        zone: Type.String(),
        size: Type.String({ minLength: 1 }),
        image: Type.String({ minLength: 1 }),
        /** Azure subscription, EC2 account id, GCP project id */
        account: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    nics: Type.Array(ScenarioNicSchema),
    sshKeys: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
    secrets: ScenarioSecretsSchema,
    /**
     * Azure only: the order of network.interface[]. Azure does not guarantee one, so the
     * default is the reverse of `nics`, which puts a secondary NIC first.
     */
    azureNicOrder: Type.Optional(Type.Union([Type.Literal('reversed'), Type.Literal('given'), Type.Literal('shuffled')])),
  },
  { additionalProperties: false },
);
export type Scenario = Static<typeof ScenarioSchema>;

const checkScenario = TypeCompiler.Compile(ScenarioSchema);

/** Validates an untrusted scenario (file or control request); throws an Error naming the field. */
export function parseScenario(value: unknown, source = 'scenario'): Scenario {
  if (!checkScenario.Check(value)) {
    const first = checkScenario.Errors(value).First();
    throw new Error(`${source}: ${first?.path || '/'}: ${first?.message ?? 'does not match the scenario schema'}`);
  }
  const scenario = value;
  const macs = new Set<string>();
  scenario.nics.forEach((nic, i) => {
    const where = `${source}: /nics/${i}`;
    if (macs.has(nic.mac)) throw new Error(`${where}/mac: ${nic.mac} appears twice`);
    macs.add(nic.mac);
    if ((nic.subnet === undefined) !== (nic.ipv4.length === 0)) {
      throw new Error(`${where}: a NIC has a subnet exactly when it has IPv4 addresses (IPv6-only NICs have neither)`);
    }
    if (nic.ipv4.length === 0 && (nic.ipv6 ?? []).length === 0) throw new Error(`${where}: a NIC needs an IPv4 or an IPv6 address`);
    if (nic.ipv4.length === 0 && scenario.provider !== 'ec2') throw new Error(`${where}: only EC2 scenarios may have IPv6-only NICs`);
    const subnet = nic.subnet === undefined ? undefined : parsePrefix(nic.subnet);
    if (nic.subnet !== undefined && (!subnet || subnet.family !== 'inet')) throw new Error(`${where}/subnet: ${nic.subnet} is not an IPv4 CIDR`);
    nic.ipv4.forEach((address, j) => {
      const ip = parseIp(address);
      if (!ip || ip.family !== 'inet') throw new Error(`${where}/ipv4/${j}: ${address} is not an IPv4 address`);
      if (!prefixContains(subnet!, ip)) throw new Error(`${where}/ipv4/${j}: ${address} is outside the NIC's subnet ${nic.subnet}`);
    });
    for (const [field, list, family] of [
      ['ipv6', nic.ipv6, 'inet6'],
      ['forwardedIps', nic.forwardedIps, 'inet'],
    ] as const) {
      list?.forEach((address, j) => {
        if (parseIp(address)?.family !== family) throw new Error(`${where}/${field}/${j}: ${address} is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
      });
    }
    for (const [field, list] of [
      ['ipAliases', nic.ipAliases],
      ['ipv4Prefixes', nic.ipv4Prefixes],
      ['ipv6Prefixes', nic.ipv6Prefixes],
    ] as const) {
      list?.forEach((cidr, j) => {
        if (!parsePrefix(cidr)) throw new Error(`${where}/${field}/${j}: ${cidr} is not a CIDR`);
      });
    }
    if (nic.publicIpv4 !== undefined && parseIp(nic.publicIpv4)?.family !== 'inet') throw new Error(`${where}/publicIpv4: ${nic.publicIpv4} is not an IPv4 address`);
    if (nic.gateway !== undefined && parseIp(nic.gateway)?.family !== 'inet') throw new Error(`${where}/gateway: ${nic.gateway} is not an IPv4 address`);
    if (nic.ipv6Gateway !== undefined && parseIp(nic.ipv6Gateway)?.family !== 'inet6') throw new Error(`${where}/ipv6Gateway: ${nic.ipv6Gateway} is not an IPv6 address`);
    if (nic.ipv6Subnet !== undefined && parsePrefix(nic.ipv6Subnet)?.family !== 'inet6') throw new Error(`${where}/ipv6Subnet: ${nic.ipv6Subnet} is not an IPv6 CIDR`);
  });
  const bareMetal = scenario.nics.filter((nic) => nic.nicIndex !== undefined).length;
  if (bareMetal > 0 && (scenario.provider !== 'oci' || bareMetal !== scenario.nics.length)) {
    throw new Error(`${source}: /nics: nicIndex marks an OCI bare-metal instance, so every NIC of an OCI scenario has one or none does`);
  }
  if (scenario.provider === 'gcp' && !/^[0-9]+$/.test(scenario.instance.id)) {
    throw new Error(`${source}: /instance/id: GCP instance ids are decimal digits, got ${scenario.instance.id}`);
  }
  return scenario;
}

/** The NIC's IPv4 gateway: the scenario's, else the subnet's first host (Azure, EC2, GCP and OCI do that); undefined without IPv4. */
export function gatewayOf(nic: ScenarioNic): string | undefined {
  return nic.gateway ?? (nic.subnet === undefined ? undefined : firstHost(nic.subnet)!);
}

/** Every secret string a scenario makes the simulator serve (for "never exposed" assertions). */
export function secretValues(scenario: Scenario): string[] {
  const s = scenario.secrets;
  return [s.accessKeyId, s.secretAccessKey, s.sessionToken, s.accessToken, s.userData, s.signature, Buffer.from(s.userData).toString('base64')];
}

export const BUILTIN_SCENARIOS = ['azure', 'ec2', 'gcp', 'oci', 'aliyun', 'ec2-ipv6only'] as const;
const scenariosDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'scenarios');

/** Loads `builtin:NAME` (test/scenarios/NAME.json) or a JSON file path, validated. */
export function loadScenario(spec: string): Scenario {
  const path = spec.startsWith('builtin:') ? join(scenariosDir, `${spec.slice('builtin:'.length)}.json`) : spec;
  if (spec.startsWith('builtin:') && !(BUILTIN_SCENARIOS as readonly string[]).includes(spec.slice('builtin:'.length))) {
    throw new Error(`unknown built-in scenario ${spec}: choose one of ${BUILTIN_SCENARIOS.map((n) => `builtin:${n}`).join(', ')}`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read scenario ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`scenario ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseScenario(json, path);
}
