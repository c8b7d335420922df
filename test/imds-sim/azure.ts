// Azure Instance Metadata Service, as described in /work/shared/IMDS.md: header and api-version
// checks, every primitive a string, MACs as 12 upper-case hex digits, interfaces in no
// guaranteed order, 5 requests per second.
import { parsePrefix, formatIp, networkOf } from '../../protocol/ip.js';
import { jsonAnswer, textAnswer, type Answer, type ProviderService, type SimRequest } from './answer.js';
import type { Scenario, ScenarioNic } from './scenario.js';

/** Versions the simulator accepts; an unknown one gets an error naming the newest. */
export const AZURE_API_VERSIONS = [
  '2017-03-01', '2017-04-02', '2017-08-01', '2017-10-01', '2017-12-01', '2018-02-01', '2018-04-02',
  '2018-10-01', '2019-02-01', '2019-03-11', '2019-04-30', '2019-06-01', '2019-06-04', '2019-08-01',
  '2019-08-15', '2019-11-01', '2020-06-01', '2020-07-15', '2020-09-01', '2020-10-01', '2020-12-01',
  '2021-01-01', '2021-02-01', '2021-03-01', '2021-05-01', '2021-08-01', '2021-10-01', '2021-11-01',
  '2021-11-15', '2021-12-13', '2022-02-01', '2022-03-01', '2022-05-01', '2022-07-01', '2022-08-01',
  '2022-09-01', '2023-07-01',
];

export interface AzureOptions {
  clock: () => number;
  /** Azure throttles at 5 requests per second per VM */
  requestsPerSecond: number;
  onRateLimited: () => void;
}

function azureMac(mac: string): string {
  return mac.replaceAll(':', '').toUpperCase();
}

function imageParts(image: string): { publisher: string; offer: string; sku: string; version: string } {
  // an Azure image URN is publisher:offer:sku:version
  const [publisher = '', offer = '', sku = '', version = ''] = image.includes(':') ? image.split(':') : ['', image, '', ''];
  return { publisher, offer, sku, version };
}

function azureInterface(nic: ScenarioNic): unknown {
  // only EC2 scenarios have IPv6-only NICs (parseScenario)
  const subnet = parsePrefix(nic.subnet!)!;
  return {
    ipv4: {
      ipAddress: nic.ipv4.map((address, i) => ({ privateIpAddress: address, publicIpAddress: i === 0 ? (nic.publicIpv4 ?? '') : '' })),
      subnet: [{ address: formatIp(networkOf(subnet, subnet.prefixLength)), prefix: String(subnet.prefixLength) }],
    },
    ipv6: { ipAddress: (nic.ipv6 ?? []).map((address) => ({ privateIpAddress: address })) },
    macAddress: azureMac(nic.mac),
  };
}

function orderedNics(scenario: Scenario): ScenarioNic[] {
  const order = scenario.azureNicOrder ?? 'reversed';
  if (order === 'given') return scenario.nics;
  if (order === 'reversed') return [...scenario.nics].reverse();
  const shuffled = [...scenario.nics];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled;
}

/** The document of GET /metadata/instance (api-version 2021-02-01 shape). */
export function azureInstanceDocument(scenario: Scenario): unknown {
  const { instance, secrets } = scenario;
  const image = imageParts(instance.image);
  const subscription = instance.account ?? '8d10da13-8125-4ba9-a717-bf7490507b3d';
  const resourceGroup = 'cloud-network-sim';
  return {
    compute: {
      azEnvironment: 'AzurePublicCloud',
      customData: '',
      evictionPolicy: '',
      isHostCompatibilityLayerVm: 'false',
      licenseType: '',
      location: instance.region,
      name: instance.name,
      offer: image.offer,
      osProfile: { adminUsername: 'azureuser', computerName: instance.name, disablePasswordAuthentication: 'true' },
      osType: 'Linux',
      placementGroupId: '',
      plan: { name: '', product: '', publisher: '' },
      platformFaultDomain: '0',
      platformUpdateDomain: '0',
      priority: '',
      provider: 'Microsoft.Compute',
      publicKeys: scenario.sshKeys.map((key) => ({ keyData: key.key, path: '/home/azureuser/.ssh/authorized_keys' })),
      publisher: image.publisher,
      resourceGroupName: resourceGroup,
      resourceId: `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/virtualMachines/${instance.name}`,
      securityProfile: { secureBootEnabled: 'true', virtualTpmEnabled: 'true' },
      sku: image.sku,
      storageProfile: {
        dataDisks: [],
        imageReference: { id: '', offer: image.offer, publisher: image.publisher, sku: image.sku, version: image.version },
        osDisk: {
          caching: 'ReadWrite',
          createOption: 'FromImage',
          diskSizeGB: '30',
          diffDiskSettings: { option: '' },
          encryptionSettings: { enabled: 'false' },
          image: { uri: '' },
          managedDisk: { id: '', storageAccountType: 'Premium_LRS' },
          name: `${instance.name}_OsDisk_1`,
          osType: 'Linux',
          vhd: { uri: '' },
          writeAcceleratorEnabled: 'false',
        },
      },
      subscriptionId: subscription,
      tags: 'role:cloud-network-sim',
      tagsList: [{ name: 'role', value: 'cloud-network-sim' }],
      // userData is the customer's own script: real IMDS serves it to anyone on the VM
      userData: Buffer.from(secrets.userData).toString('base64'),
      version: image.version,
      vmId: instance.id,
      vmScaleSetName: '',
      vmSize: instance.size,
      zone: instance.zone,
    },
    network: { interface: orderedNics(scenario).map(azureInterface) },
  };
}

/** Follows /metadata/instance/<a>/<b>/0/... into the document; undefined when absent. */
function descend(document: unknown, segments: string[]): unknown {
  let node = document;
  for (const segment of segments) {
    if (Array.isArray(node) && /^[0-9]+$/.test(segment)) node = node[Number(segment)];
    else if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.hasOwn(node, segment)) node = (node as Record<string, unknown>)[segment];
    else return undefined;
  }
  return node;
}

function error(status: number, message: string, extra: Record<string, unknown> = {}): Answer {
  return jsonAnswer(status, { error: message, ...extra });
}

export class AzureImds implements ProviderService {
  /** acceptance times (ms) within the last second */
  private recent: number[] = [];

  constructor(private readonly options: AzureOptions) {}

  handle(request: SimRequest): Answer {
    if (!request.path.startsWith('/metadata/')) return error(404, 'Not found');
    if (this.throttled()) {
      this.options.onRateLimited();
      return error(429, 'Too many requests');
    }
    if (request.method !== 'GET') return error(405, `Method ${request.method} not allowed: IMDS answers only GET`);
    if (request.headers['x-forwarded-for'] !== undefined) return error(400, 'Bad request. Requests with X-Forwarded-For are not allowed.');
    if (request.headers['metadata'] !== 'true') return error(400, 'Bad request. Required metadata header not specified');
    const version = request.query.get('api-version');
    if (request.path === '/metadata/versions') return jsonAnswer(200, { apiVersions: AZURE_API_VERSIONS });
    if (!version || !AZURE_API_VERSIONS.includes(version)) {
      return error(400, 'Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds', {
        'newest-versions': AZURE_API_VERSIONS.slice(-3).reverse(),
      });
    }
    const scenario = request.scenario();
    const path = request.path.replace(/\/+$/, '');
    if (path === '/metadata/identity/oauth2/token') {
      if (!request.query.get('resource')) return error(400, 'invalid_request: Required query variable \'resource\' is missing');
      const now = Math.floor(this.options.clock() / 1000);
      return jsonAnswer(200, {
        access_token: scenario.secrets.accessToken,
        client_id: '5f7b2d7c-0000-4000-8000-000000000001',
        expires_in: '86399',
        expires_on: String(now + 86399),
        ext_expires_in: '86399',
        not_before: String(now),
        resource: request.query.get('resource'),
        token_type: 'Bearer',
      });
    }
    if (path === '/metadata/attested/document') {
      return jsonAnswer(200, { encoding: 'pkcs7', signature: scenario.secrets.signature });
    }
    if (path !== '/metadata/instance' && !path.startsWith('/metadata/instance/')) return error(404, 'Not found');
    const segments = path.split('/').slice(3).filter(Boolean);
    const node = descend(azureInstanceDocument(scenario), segments);
    if (node === undefined) return error(404, 'Not found');
    const isLeaf = typeof node === 'string';
    const format = request.query.get('format') ?? (isLeaf ? undefined : 'json');
    if (format === 'text' && isLeaf) return textAnswer(200, node);
    if (format === 'text') return error(400, 'Bad request. format=text is only valid for leaf nodes');
    if (isLeaf && format !== 'json') return error(400, 'Bad request. Query parameter format=json or format=text is required for leaf nodes');
    return jsonAnswer(200, node);
  }

  /** Counts this request; true when 5 (or the configured number) were already accepted this second. */
  private throttled(): boolean {
    const now = this.options.clock();
    this.recent = this.recent.filter((at) => now - at < 1000);
    if (this.recent.length >= this.options.requestsPerSecond) return true;
    this.recent.push(now);
    return false;
  }

  scenarioChanged(): void {}

  close(): void {}
}
