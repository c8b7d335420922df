// Oracle Cloud Infrastructure IMDS v2, as described in docs/imds.md: /opc/v2/instance/ and
// /opc/v2/vnics/ with "Authorization: Bearer Oracle" (rejected without it), the legacy
// /opc/v1/ and /openstack/ paths answering 404 (legacy endpoints disabled), forwarded requests
// rejected. The VNIC list is printed as the captures in cloud-init's tests show it ("key" :
// value), primary VNIC first, one privateIp per VNIC: secondary private IPs are not listed.
import { formatIp, networkOf, parsePrefix } from '../../protocol/ip.js';
import { answer, jacksonJson, textAnswer, type Answer, type ProviderService, type SimRequest } from './answer.js';
import { gatewayOf, type Scenario, type ScenarioNic } from './scenario.js';

const JSON_TYPE = 'application/json';

/** OCI's short region keys for the regions the scenarios use; others keep the canonical name. */
const REGION_KEYS: Record<string, string> = {
  'us-phoenix-1': 'phx',
  'us-ashburn-1': 'iad',
  'eu-frankfurt-1': 'fra',
  'eu-amsterdam-1': 'ams',
  'uk-london-1': 'lhr',
};

function vnic(nic: ScenarioNic, region: string): Record<string, unknown> {
  const subnet = parsePrefix(nic.subnet!)!;
  const suffix = nic.mac.replaceAll(':', '');
  const entry: Record<string, unknown> = {
    vnicId: nic.interfaceId ?? `ocid1.vnic.oc1.${region}.abyhqljt${suffix}sim`,
    privateIp: nic.ipv4[0],
    // present on VMs too (meaningless there); on bare metal 0 is the physical NIC
    vlanTag: nic.vlanTag ?? 1000 + nic.deviceNumber * 2,
    // OCI prints MACs upper case (cloud-init's VM capture)
    macAddr: nic.mac.toUpperCase(),
    virtualRouterIp: gatewayOf(nic),
    subnetCidrBlock: `${formatIp(networkOf(subnet, subnet.prefixLength))}/${subnet.prefixLength}`,
  };
  if (nic.nicIndex !== undefined) entry.nicIndex = nic.nicIndex;
  if (nic.ipv6 && nic.ipv6.length > 0) {
    entry.ipv6Addresses = nic.ipv6;
    if (nic.ipv6Subnet) entry.ipv6SubnetCidrBlock = nic.ipv6Subnet;
    if (nic.ipv6Gateway) entry.ipv6VirtualRouterIp = nic.ipv6Gateway;
  }
  return entry;
}

/** GET /opc/v2/vnics/: the scenario's NICs in its order (the primary first). */
export function ociVnics(scenario: Scenario): Record<string, unknown>[] {
  return scenario.nics.map((nic) => vnic(nic, scenario.instance.region));
}

/** GET /opc/v2/instance/. */
export function ociInstance(scenario: Scenario): Record<string, unknown> {
  const { instance, secrets } = scenario;
  const key = REGION_KEYS[instance.region] ?? instance.region;
  const ad = instance.zone || `${key.toUpperCase()}-AD-1`;
  return {
    availabilityDomain: `qIZq:${ad}`,
    faultDomain: 'FAULT-DOMAIN-2',
    compartmentId: `ocid1.compartment.oc1..${instance.account ?? 'aaaaaaaasimcompartment'}`,
    displayName: instance.name,
    hostname: instance.name,
    id: instance.id,
    image: instance.image,
    metadata: {
      ssh_authorized_keys: scenario.sshKeys.map((k) => k.key).join('\n'),
      user_data: Buffer.from(secrets.userData).toString('base64'),
    },
    region: key,
    canonicalRegionName: instance.region,
    ociAdName: ad.toLowerCase(),
    shape: instance.size,
    state: 'Running',
    timeCreated: 1_714_641_267_318,
    agentConfig: { monitoringDisabled: true, managementDisabled: true },
  };
}

/** The instance principal's key: what a process on the VM could use to act as the instance. */
function instanceKey(scenario: Scenario): string {
  return `-----BEGIN PRIVATE KEY-----\n${scenario.secrets.signature}\n-----END PRIVATE KEY-----\n`;
}

const notFound = (): Answer => answer(404, 'Not Found', 'text/plain');

export class OciImds implements ProviderService {
  handle(request: SimRequest): Answer {
    const path = request.path.replace(/\/+$/, '');
    // legacy endpoints disabled: v1 and OpenStack answer 404 whatever the headers
    if (path.startsWith('/opc/v1') || path.startsWith('/openstack')) return notFound();
    if (!path.startsWith('/opc/v2')) return notFound();
    for (const header of ['forwarded', 'x-forwarded-for', 'x-forwarded-host']) {
      if (request.headers[header] !== undefined) return textAnswer(403, 'Forbidden');
    }
    if (request.headers.authorization !== 'Bearer Oracle') return textAnswer(401, 'Unauthorized');
    if (request.method !== 'GET' && request.method !== 'HEAD') return answer(405, '', 'text/plain', { Allow: 'GET, HEAD' });
    const scenario = request.scenario();
    if (path === '/opc/v2/vnics') return answer(200, jacksonJson(ociVnics(scenario)), JSON_TYPE);
    if (path === '/opc/v2/identity/key.pem') return textAnswer(200, instanceKey(scenario));
    if (path === '/opc/v2/instance' || path.startsWith('/opc/v2/instance/')) {
      let node: unknown = ociInstance(scenario);
      for (const segment of path.split('/').slice(4)) {
        node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[segment] : undefined;
        if (node === undefined) return notFound();
      }
      return typeof node === 'string' ? textAnswer(200, node) : answer(200, jacksonJson(node), JSON_TYPE);
    }
    return notFound();
  }

  scenarioChanged(): void {}

  close(): void {}
}
