// Google Compute Engine metadata server, as described in /work/shared/IMDS.md: Metadata-Flavor
// both ways, an ETag on every answer, wait_for_change, and an instance id above 2^53 written
// as a bare JSON number.
import { createHash } from 'node:crypto';
import { formatIp, parsePrefix } from '../../protocol/ip.js';
import { answer, type Answer, type ProviderService, type SimRequest } from './answer.js';
import { gatewayOf, type Scenario, type ScenarioNic } from './scenario.js';

/** A number kept as its decimal text, so it is written without rounding (the instance id). */
export class RawNumber {
  constructor(readonly digits: string) {}
}

type Value = string | number | boolean | null | RawNumber | Value[] | { [key: string]: Value };

/** JSON text of `value`; unlike JSON.stringify it writes RawNumber digits verbatim. */
export function toJsonText(value: Value): string {
  if (value instanceof RawNumber) return value.digits;
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}:${toJsonText(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function netmask(subnet: string): string {
  const length = parsePrefix(subnet)!.prefixLength;
  const bytes = new Uint8Array(4);
  for (let bit = 0; bit < length; bit++) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return formatIp({ family: 'inet', bytes });
}

function projectNumber(scenario: Scenario): string {
  return scenario.instance.account && /^[0-9]+$/.test(scenario.instance.account) ? scenario.instance.account : '123456789012';
}

function networkInterface(nic: ScenarioNic, scenario: Scenario): Value {
  const project = projectNumber(scenario);
  const entry: { [key: string]: Value } = {
    accessConfigs: nic.publicIpv4 ? [{ externalIp: nic.publicIpv4, type: 'ONE_TO_ONE_NAT' }] : [],
    dnsServers: ['169.254.169.254'],
    forwardedIps: nic.forwardedIps ?? [],
    gateway: gatewayOf(nic)!,
    ip: nic.ipv4[0]!,
    ipAliases: [...(nic.ipAliases ?? []), ...nic.ipv4.slice(1).map((address) => `${address}/32`)],
    mac: nic.mac,
    mtu: nic.mtu ?? 1460,
    network: nic.network ?? `projects/${project}/networks/default`,
    subnetmask: netmask(nic.subnet!),
    targetInstanceIps: [],
  };
  if (nic.ipv6 && nic.ipv6.length > 0) entry['ipv6s'] = nic.ipv6;
  return entry;
}

/** The root of /computeMetadata/v1/: { instance, project }, in recursive (camelCase) form. */
export function gcpDocument(scenario: Scenario): { [key: string]: Value } {
  const { instance, secrets } = scenario;
  const project = projectNumber(scenario);
  const projectId = 'cloud-network-sim';
  const account = { aliases: ['default'], email: secrets.serviceAccountEmail, scopes: ['https://www.googleapis.com/auth/cloud-platform'] };
  const sshKeys = scenario.sshKeys.map((key) => `${key.name}:${key.key}`).join('\n');
  return {
    instance: {
      attributes: {
        'enable-oslogin': 'FALSE',
        'ssh-keys': sshKeys,
        // a customer's startup script often holds credentials; real GCE serves it to the VM
        'startup-script': secrets.userData,
      },
      cpuPlatform: 'Intel Cascade Lake',
      description: '',
      disks: [{ deviceName: 'persistent-disk-0', index: 0, interface: 'SCSI', mode: 'READ_WRITE', type: 'PERSISTENT-BALANCED' }],
      guestAttributes: {},
      hostname: `${instance.name}.${instance.zone}.c.${projectId}.internal`,
      id: new RawNumber(instance.id),
      image: `projects/debian-cloud/global/images/${instance.image}`,
      licenses: [],
      machineType: `projects/${project}/machineTypes/${instance.size}`,
      maintenanceEvent: 'NONE',
      name: instance.name,
      networkInterfaces: [...scenario.nics].sort((a, b) => a.deviceNumber - b.deviceNumber).map((nic) => networkInterface(nic, scenario)),
      preempted: 'FALSE',
      remainingCpuTime: -1,
      scheduling: { automaticRestart: 'TRUE', onHostMaintenance: 'MIGRATE', preemptible: 'FALSE' },
      serviceAccounts: { [secrets.serviceAccountEmail]: account, default: account },
      tags: [],
      virtualClock: { driftToken: '0' },
      zone: `projects/${project}/zones/${instance.zone}`,
    },
    project: {
      attributes: { 'ssh-keys': sshKeys },
      numericProjectId: new RawNumber(project),
      projectId,
    },
  };
}

/** camelCase → kebab-case: paths use network-interfaces where the JSON says networkInterfaces. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function descend(root: Value, segments: string[]): Value | undefined {
  let node: Value = root;
  for (const segment of segments) {
    if (Array.isArray(node) && /^[0-9]+$/.test(segment)) {
      const next: Value | undefined = node[Number(segment)];
      if (next === undefined) return undefined;
      node = next;
    } else if (node !== null && typeof node === 'object' && !Array.isArray(node) && !(node instanceof RawNumber)) {
      const key = Object.keys(node).find((k) => k === segment || kebab(k) === segment);
      if (key === undefined) return undefined;
      node = node[key]!;
    } else return undefined;
  }
  return node;
}

function isDirectory(node: Value): node is Value[] | { [key: string]: Value } {
  return node !== null && typeof node === 'object' && !(node instanceof RawNumber);
}

function listing(node: Value[] | { [key: string]: Value }): string {
  const entries = Array.isArray(node) ? node.map((item, i) => [String(i), item] as const) : Object.entries(node).map(([k, v]) => [kebab(k), v] as const);
  return entries.map(([name, item]) => (isDirectory(item) ? `${name}/` : name)).join('\n') + '\n';
}

function leafText(node: Value): string {
  if (node instanceof RawNumber) return node.digits;
  if (typeof node === 'string') return node;
  return toJsonText(node);
}

export function etagOf(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

const FLAVOR = { 'Metadata-Flavor': 'Google' };

function withEtag(status: number, body: string, contentType: string): Answer {
  return answer(status, body, contentType, { ...FLAVOR, ETag: etagOf(body) });
}

function forbidden(path: string): Answer {
  return withEtag(
    403,
    `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 403 (Forbidden)!!1</title>\n  <p><b>403.</b> <ins>That’s an error.</ins>\n  <p>Your client does not have permission to get URL <code>${path}</code> from this server. Missing Metadata-Flavor:Google header. <ins>That’s all we know.</ins>\n`,
    'text/html; charset=UTF-8',
  );
}

function notFound(path: string): Answer {
  return withEtag(404, `<!DOCTYPE html>\n<html lang=en>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${path}</code> was not found on this server. <ins>That’s all we know.</ins>\n`, 'text/html; charset=UTF-8');
}

function badRequest(message: string): Answer {
  return withEtag(400, `${message}\n`, 'text/plain; charset=utf-8');
}

interface Waiter {
  render: () => Answer;
  etag: string;
  resolve: (answer: Answer) => void;
  timer?: NodeJS.Timeout;
}

export interface GcpOptions {
  onWaitersChanged?: (count: number) => void;
}

export class GcpImds implements ProviderService {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly options: GcpOptions = {}) {}

  get waiting(): number {
    return this.waiters.size;
  }

  handle(request: SimRequest): Answer | Promise<Answer> {
    if (request.headers['x-forwarded-for'] !== undefined) return forbidden(request.path);
    if (request.headers['metadata-flavor'] !== 'Google') return forbidden(request.path);
    if (request.method !== 'GET') return withEtag(405, 'Method not allowed\n', 'text/plain; charset=utf-8');
    if (request.path !== '/computeMetadata/v1' && !request.path.startsWith('/computeMetadata/v1/')) return notFound(request.path);
    const segments = request.path.split('/').slice(3).filter(Boolean);
    const recursive = request.query.get('recursive') === 'true';
    const wait = request.query.get('wait_for_change') === 'true';

    const token = this.credentials(request, segments);
    if (token) return token;

    const render = (): Answer => {
      const node = descend(gcpDocument(request.scenario()), segments);
      if (node === undefined) return notFound(request.path);
      if (!isDirectory(node)) return withEtag(200, leafText(node), 'application/text');
      if (recursive) return withEtag(200, toJsonText(node), 'application/json');
      return withEtag(200, listing(node), 'application/text');
    };
    const first = render();
    if (!wait || first.status !== 200) return first;
    const node = descend(gcpDocument(request.scenario()), segments);
    if (node !== undefined && isDirectory(node) && !recursive) return badRequest('Non-recursive directory listings do not support wait_for_change option.');

    const timeoutText = request.query.get('timeout_sec');
    if (timeoutText !== null && !/^[0-9]+$/.test(timeoutText)) return badRequest(`Invalid timeout_sec ${timeoutText}: expected a whole number of seconds.`);
    const lastEtag = request.query.get('last_etag');
    // a different last_etag means the client's copy is stale: answer at once
    if (lastEtag !== null && lastEtag !== first.headers['ETag']) return first;
    return this.waitForChange(render, first, timeoutText === null ? undefined : Number(timeoutText), request.signal);
  }

  /** The service-account token and identity endpoints, which the recursive listing leaves out. */
  private credentials(request: SimRequest, segments: string[]): Answer | undefined {
    if (segments.length !== 4 || segments[0] !== 'instance' || segments[1] !== 'service-accounts') return undefined;
    const scenario = request.scenario();
    const account = segments[2];
    if (account !== 'default' && account !== scenario.secrets.serviceAccountEmail) return undefined;
    if (segments[3] === 'token') {
      return withEtag(200, JSON.stringify({ access_token: scenario.secrets.accessToken, expires_in: 3599, token_type: 'Bearer' }), 'application/json');
    }
    if (segments[3] === 'identity') {
      if (!request.query.get('audience')) return badRequest('non-empty audience parameter required');
      return withEtag(200, `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(scenario.secrets.accessToken).toString('base64url')}.${scenario.secrets.signature}`, 'text/html; charset=utf-8');
    }
    return undefined;
  }

  private waitForChange(render: () => Answer, current: Answer, timeoutSec: number | undefined, signal: AbortSignal): Promise<Answer> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        render,
        etag: current.headers['ETag']!,
        resolve: (result) => {
          if (waiter.timer) clearTimeout(waiter.timer);
          if (!this.waiters.delete(waiter)) return;
          this.options.onWaitersChanged?.(this.waiters.size);
          resolve(result);
        },
      };
      this.waiters.add(waiter);
      this.options.onWaitersChanged?.(this.waiters.size);
      // on timeout: the unchanged content with the same ETag
      if (timeoutSec !== undefined) waiter.timer = setTimeout(() => waiter.resolve(render()), timeoutSec * 1000);
      signal.addEventListener('abort', () => waiter.resolve(current), { once: true });
    });
  }

  scenarioChanged(): void {
    for (const waiter of [...this.waiters]) {
      const now = waiter.render();
      if (now.headers['ETag'] !== waiter.etag) waiter.resolve(now);
    }
  }

  close(): void {
    for (const waiter of [...this.waiters]) waiter.resolve(waiter.render());
  }
}
