// Alibaba Cloud ECS metadata in security hardening mode only, as described in docs/imds.md: a
// token from PUT /latest/api/token (X-aliyun-ecs-metadata-token-ttl-seconds, 1–21600) on every
// GET as X-aliyun-ecs-metadata-token; a GET without one 403, with an unknown or expired one
// 401. The tree is served under /latest/ and /2016-01-01/. Per MAC: private-ipv4s as a JSON
// list (the primary not first here, as the metadata does not promise it), ipv6s as a bracketed
// unquoted list (404 without IPv6), the gateway the scenario gives (the vSwitch's .253 in real
// data), keys that do not apply absent.
import { randomBytes } from 'node:crypto';
import { formatIp, networkOf, parsePrefix } from '../../protocol/ip.js';
import { answer, textAnswer, type Answer, type ProviderService, type SimRequest } from './answer.js';
import { dir, lookup, nodeText, type Directory, type Node } from './meta-data-tree.js';
import { gatewayOf, type Scenario, type ScenarioNic } from './scenario.js';

export interface AliyunOptions {
  clock: () => number;
  onTokenIssued: () => void;
}

function netmask(prefixLength: number): string {
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 32; i++) if (i < prefixLength) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return formatIp({ family: 'inet', bytes });
}

function cidr(text: string): string {
  const prefix = parsePrefix(text)!;
  return `${formatIp(networkOf(prefix, prefix.prefixLength))}/${prefix.prefixLength}`;
}

/** The VPC: the vSwitch's /16 (the scenarios' VPCs are /16s or larger). */
function vpcCidr(nic: ScenarioNic): string {
  const subnet = parsePrefix(nic.subnet!)!;
  const length = Math.min(16, subnet.prefixLength);
  return `${formatIp(networkOf(subnet, length))}/${length}`;
}

/** private-ipv4s: a JSON list; the primary last when there are several (no order is promised). */
function privateIpv4s(nic: ScenarioNic): string {
  const [primary, ...others] = nic.ipv4;
  return JSON.stringify([...others, primary]);
}

function macDirectory(nic: ScenarioNic): Directory {
  const suffix = nic.mac.replaceAll(':', '');
  const ipv6 = nic.ipv6 ?? [];
  return dir({
    gateway: gatewayOf(nic),
    'ipv6-gateway': ipv6.length > 0 ? nic.ipv6Gateway : undefined,
    ipv6s: ipv6.length > 0 ? `[${ipv6.join(',')}]` : undefined,
    netmask: netmask(parsePrefix(nic.subnet!)!.prefixLength),
    'network-interface-id': nic.interfaceId ?? `eni-bp1${suffix}sim`,
    'primary-ip-address': nic.ipv4[0],
    'private-ipv4s': privateIpv4s(nic),
    'vpc-cidr-block': vpcCidr(nic),
    'vpc-id': nic.vpcId ?? 'vpc-bp1simvpc00000001',
    'vswitch-cidr-block': cidr(nic.subnet!),
    'vswitch-id': nic.subnetId ?? `vsw-bp1${suffix}`,
    'vswitch-ipv6-cidr-block': ipv6.length > 0 ? nic.ipv6Subnet : undefined,
  });
}

/** The whole tree under /latest/ (and /2016-01-01/) for a scenario. */
export function aliyunTree(scenario: Scenario): Directory {
  const { instance, secrets } = scenario;
  const primary = scenario.nics.find((nic) => nic.deviceNumber === 0) ?? scenario.nics[0];
  const macs = [...scenario.nics].sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  const keys: Record<string, Node> = {};
  for (const key of scenario.sshKeys) keys[`${key.name}/`] = dir({ 'openssh-key': key.key });
  const credentials = JSON.stringify(
    {
      AccessKeyId: secrets.accessKeyId,
      AccessKeySecret: secrets.secretAccessKey,
      Expiration: '2024-05-02T15:40:12Z',
      SecurityToken: secrets.sessionToken,
      LastUpdated: '2024-05-02T09:40:12Z',
      Code: 'Success',
    },
    null,
    2,
  );
  const account = instance.account ?? '1609000000000000';
  const identity = JSON.stringify({
    'zone-id': instance.zone,
    'serial-number': '4acd2b47-b328-4762-852f-998000000001',
    'instance-id': instance.id,
    'region-id': instance.region,
    'private-ipv4': primary?.ipv4[0],
    'owner-account-id': account,
    mac: primary?.mac,
    'image-id': instance.image,
    'instance-type': instance.size,
  });
  const metaData = dir({
    'dns-conf/': dir({ nameservers: '100.100.2.136\r\n100.100.2.138' }),
    eipv4: primary?.publicIpv4,
    hostname: instance.name,
    'image-id': instance.image,
    'instance-id': instance.id,
    'instance/': dir({ 'instance-name': instance.name, 'instance-type': instance.size }),
    mac: primary?.mac,
    'network-type': 'vpc',
    'network/': dir({ 'interfaces/': dir({ 'macs/': dir(Object.fromEntries(macs.map((nic) => [`${nic.mac}/`, macDirectory(nic)]))) }) }),
    'owner-account-id': account,
    'private-ipv4': primary?.ipv4[0],
    'public-keys/': scenario.sshKeys.length > 0 ? dir(keys) : undefined,
    'ram/': dir({ 'security-credentials/': dir({ [secrets.iamRole]: credentials }) }),
    'region-id': instance.region,
    'serial-number': '4acd2b47-b328-4762-852f-998000000001',
    'source-address': 'http://mirrors.cloud.aliyuncs.com',
    'vpc-cidr-block': primary && vpcCidr(primary),
    'vpc-id': primary?.vpcId ?? 'vpc-bp1simvpc00000001',
    'vswitch-cidr-block': primary && cidr(primary.subnet!),
    'vswitch-id': primary?.subnetId ?? (primary && `vsw-bp1${primary.mac.replaceAll(':', '')}`),
    'zone-id': instance.zone,
  });
  return dir({
    'dynamic/': dir({ 'instance-identity/': dir({ document: identity, pkcs7: secrets.signature }) }),
    'meta-data/': metaData,
    'user-data': secrets.userData,
  });
}

const notFound = (): Answer =>
  answer(404, '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n</body>\r\n</html>\r\n', 'text/html');

export const ALIYUN_MAX_TOKEN_TTL = 21600;

export class AliyunImds implements ProviderService {
  /** token → expiry (ms since epoch, on the simulator's clock) */
  private readonly tokens = new Map<string, number>();

  constructor(private readonly options: AliyunOptions) {}

  handle(request: SimRequest): Answer {
    if (request.path === '/latest/api/token') return this.issueToken(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') return answer(405, '', 'text/plain');
    const match = /^\/(latest|2016-01-01)(\/.*)?$/.exec(request.path);
    if (!match) return notFound();
    const token = request.headers['x-aliyun-ecs-metadata-token'];
    // hardened mode only: no token is forbidden, a wrong or expired one unauthorized
    if (typeof token !== 'string') return textAnswer(403, 'Forbidden');
    if (!this.validToken(token)) return textAnswer(401, 'Unauthorized');
    const segments = (match[2] ?? '').split('/').filter(Boolean);
    const node = lookup(aliyunTree(request.scenario()), segments);
    if (node === undefined) return notFound();
    return textAnswer(200, nodeText(node));
  }

  private issueToken(request: SimRequest): Answer {
    if (request.method !== 'PUT') return answer(405, '', 'text/plain');
    if (request.headers['x-forwarded-for'] !== undefined) return textAnswer(403, 'Forbidden');
    const ttlText = request.headers['x-aliyun-ecs-metadata-token-ttl-seconds'];
    const ttl = typeof ttlText === 'string' && /^[0-9]{1,6}$/.test(ttlText) ? Number(ttlText) : NaN;
    if (!(ttl >= 1 && ttl <= ALIYUN_MAX_TOKEN_TTL)) return textAnswer(400, 'Bad Request');
    const now = this.options.clock();
    for (const [token, expiry] of this.tokens) if (expiry <= now) this.tokens.delete(token);
    const token = randomBytes(36).toString('base64url');
    this.tokens.set(token, now + ttl * 1000);
    this.options.onTokenIssued();
    return textAnswer(200, token);
  }

  private validToken(token: string): boolean {
    const expiry = this.tokens.get(token);
    return expiry !== undefined && expiry > this.options.clock();
  }

  scenarioChanged(): void {}

  close(): void {
    this.tokens.clear();
  }
}
