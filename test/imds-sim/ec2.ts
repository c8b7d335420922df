// EC2 IMDSv2, as described in docs/imds.md: a session token from PUT /latest/api/token (TTL
// 1–21600 s) on every GET, text listings with sub-directories ending in "/", MACs listed in MAC
// order, keys that do not apply absent (404): no local-ipv4s or IPv4 subnet on an IPv6-only
// subnet (amazon-ec2-net-utils#40).
import { randomBytes } from 'node:crypto';
import { parsePrefix, formatIp, networkOf } from '../../protocol/ip.js';
import { answer, jacksonJson, textAnswer, type Answer, type ProviderService, type SimRequest } from './answer.js';
import { dir, lookup, nodeText, type Directory, type Node } from './meta-data-tree.js';
import type { Scenario, ScenarioNic } from './scenario.js';

export interface Ec2Options {
  clock: () => number;
  onTokenIssued: () => void;
}

function lines(values: string[] | undefined): string | undefined {
  return values && values.length > 0 ? values.join('\n') : undefined;
}

function vpcCidr(nic: ScenarioNic): string | undefined {
  if (nic.subnet === undefined) return undefined;
  // the default VPC is a /16; use the subnet's /16 when the scenario does not say
  const subnet = parsePrefix(nic.subnet)!;
  const length = Math.min(16, subnet.prefixLength);
  return `${formatIp(networkOf(subnet, length))}/${length}`;
}

/** The hostname EC2 gives: IP-based where the NIC has IPv4, resource-based (the instance id) on an IPv6-only subnet. */
function hostnameOf(nic: ScenarioNic, instanceId: string, region: string): string {
  return nic.ipv4.length > 0 ? `ip-${nic.ipv4[0]!.replaceAll('.', '-')}.${region}.compute.internal` : `${instanceId}.${region}.compute.internal`;
}

function macDirectory(nic: ScenarioNic, instanceId: string, region: string): Directory {
  const suffix = nic.mac.replaceAll(':', '');
  const subnet = nic.subnet === undefined ? undefined : parsePrefix(nic.subnet)!;
  const publics = nic.publicIpv4 ? [nic.publicIpv4] : undefined;
  return dir({
    'device-number': String(nic.deviceNumber),
    'interface-id': nic.interfaceId ?? `eni-0${suffix}00000`,
    'ipv4-associations/': publics && nic.ipv4.length > 0 ? dir({ [publics[0]!]: nic.ipv4[0]! }) : undefined,
    'ipv4-prefix': lines(nic.ipv4Prefixes),
    'ipv6-prefix': lines(nic.ipv6Prefixes),
    ipv6s: lines(nic.ipv6),
    'local-hostname': hostnameOf(nic, instanceId, region),
    'local-ipv4s': lines(nic.ipv4),
    mac: nic.mac,
    'network-card': nic.networkCard === undefined ? undefined : String(nic.networkCard),
    'owner-id': '123456789012',
    'public-ipv4s': lines(publics),
    'security-group-ids': 'sg-0sim0000000000001',
    'security-groups': 'default',
    'subnet-id': nic.subnetId ?? `subnet-0${suffix}0000`,
    'subnet-ipv4-cidr-block': subnet && `${formatIp(networkOf(subnet, subnet.prefixLength))}/${subnet.prefixLength}`,
    'subnet-ipv6-cidr-blocks': nic.ipv6 && nic.ipv6.length > 0 ? nic.ipv6Subnet : undefined,
    'vpc-id': nic.vpcId ?? 'vpc-0sim000000000001',
    'vpc-ipv4-cidr-block': vpcCidr(nic),
    'vpc-ipv4-cidr-blocks': vpcCidr(nic),
  });
}

/** The identity document, as the IMDS prints it ("key" : value); privateIp is the IPv6 address on an IPv6-only instance. */
function identityDocument(scenario: Scenario, primary: ScenarioNic | undefined): string {
  const { instance } = scenario;
  return jacksonJson(
    {
      accountId: instance.account ?? '123456789012',
      architecture: 'x86_64',
      availabilityZone: instance.zone,
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: instance.image,
      instanceId: instance.id,
      instanceType: instance.size,
      kernelId: null,
      pendingTime: '2024-05-02T09:14:27Z',
      privateIp: primary?.ipv4[0] ?? primary?.ipv6?.[0] ?? null,
      ramdiskId: null,
      region: instance.region,
      version: '2017-09-30',
    },
  );
}

/** The whole /latest/ tree of a scenario. */
export function ec2Tree(scenario: Scenario): Directory {
  const { instance, secrets } = scenario;
  // the primary ENI is device 0 on network card 0
  const primary = scenario.nics.find((nic) => nic.deviceNumber === 0 && (nic.networkCard ?? 0) === 0) ?? scenario.nics[0];
  const macs = [...scenario.nics].sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  const keys: Record<string, Node> = {};
  const keyLabels: Record<string, string> = {};
  scenario.sshKeys.forEach((key, i) => {
    keys[`${i}/`] = dir({ 'openssh-key': key.key });
    keyLabels[`${i}/`] = `${i}=${key.name}`;
  });
  const credentials = JSON.stringify(
    {
      Code: 'Success',
      LastUpdated: '2024-05-02T09:15:02Z',
      Type: 'AWS-HMAC',
      AccessKeyId: secrets.accessKeyId,
      SecretAccessKey: secrets.secretAccessKey,
      Token: secrets.sessionToken,
      Expiration: '2024-05-02T15:40:12Z',
    },
    null,
    2,
  );
  const metaData = dir({
    'ami-id': instance.image,
    'ami-launch-index': '0',
    hostname: primary && hostnameOf(primary, instance.id, instance.region),
    'iam/': dir({
      info: JSON.stringify({ Code: 'Success', LastUpdated: '2024-05-02T09:15:02Z', InstanceProfileArn: `arn:aws:iam::123456789012:instance-profile/${secrets.iamRole}`, InstanceProfileId: 'AIPASIM000000000001' }, null, 2),
      'security-credentials/': dir({ [secrets.iamRole]: credentials }),
    }),
    'instance-id': instance.id,
    'instance-type': instance.size,
    'local-hostname': primary && hostnameOf(primary, instance.id, instance.region),
    'local-ipv4': primary?.ipv4[0],
    mac: primary?.mac,
    'network/': dir({ 'interfaces/': dir({ 'macs/': dir(Object.fromEntries(macs.map((nic) => [`${nic.mac}/`, macDirectory(nic, instance.id, instance.region)]))) }) }),
    'placement/': dir({ 'availability-zone': instance.zone, region: instance.region }),
    'public-ipv4': primary?.publicIpv4,
    'public-keys/': scenario.sshKeys.length > 0 ? dir(keys, keyLabels) : undefined,
    'security-groups': 'default',
  });
  return dir({
    'dynamic/': dir({
      'instance-identity/': dir({
        document: identityDocument(scenario, primary),
        pkcs7: secrets.signature,
        signature: secrets.signature,
      }),
    }),
    'meta-data/': metaData,
    'user-data': secrets.userData,
  });
}

const notFound = (): Answer =>
  answer(
    404,
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n </body>\n</html>\n',
    'text/html',
  );

const unauthorized = (): Answer =>
  answer(
    401,
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>401 - Unauthorized</title>\n </head>\n <body>\n  <h1>401 - Unauthorized</h1>\n </body>\n</html>\n',
    'text/html',
  );

export const EC2_MAX_TOKEN_TTL = 21600;

export class Ec2Imds implements ProviderService {
  /** token → expiry (ms since epoch, on the simulator's clock) */
  private readonly tokens = new Map<string, number>();

  constructor(private readonly options: Ec2Options) {}

  handle(request: SimRequest): Answer {
    if (request.path === '/latest/api/token') return this.issueToken(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') return answer(405, '', 'text/plain', { Allow: 'GET, HEAD' });
    if (!request.path.startsWith('/latest/') && request.path !== '/latest') return notFound();
    if (!this.validToken(request.headers['x-aws-ec2-metadata-token'])) return unauthorized();
    const segments = request.path.split('/').slice(2).filter(Boolean);
    const node = lookup(ec2Tree(request.scenario()), segments);
    if (node === undefined) return notFound();
    return textAnswer(200, nodeText(node));
  }

  private issueToken(request: SimRequest): Answer {
    if (request.method !== 'PUT') return answer(405, '', 'text/plain', { Allow: 'OPTIONS, PUT' });
    if (request.headers['x-forwarded-for'] !== undefined) return answer(403, '', 'text/plain');
    const ttlText = request.headers['x-aws-ec2-metadata-token-ttl-seconds'];
    const ttl = typeof ttlText === 'string' && /^[0-9]{1,6}$/.test(ttlText) ? Number(ttlText) : NaN;
    if (!(ttl >= 1 && ttl <= EC2_MAX_TOKEN_TTL)) return answer(400, '', 'text/plain');
    const now = this.options.clock();
    for (const [token, expiry] of this.tokens) if (expiry <= now) this.tokens.delete(token);
    // 42 random bytes are 56 base64 characters, the length of a real token
    const token = randomBytes(42).toString('base64');
    this.tokens.set(token, now + ttl * 1000);
    this.options.onTokenIssued();
    return textAnswer(200, token, { 'X-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
  }

  private validToken(token: string | string[] | undefined): boolean {
    if (typeof token !== 'string') return false;
    const expiry = this.tokens.get(token);
    return expiry !== undefined && expiry > this.options.clock();
  }

  scenarioChanged(): void {}

  close(): void {
    this.tokens.clear();
  }
}
