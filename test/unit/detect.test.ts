import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DetectionError, detectProvider } from '../../agent/metadata/detect.js';
import { AZURE_ASSET_TAG } from '../../agent/metadata/providers/azure.js';
import { azureServer, ec2Server, fastClient, gcpServer, simulatedServer, startServer, send } from '../fixtures/metadata-server.js';

/** A fake /sys with the given files (paths relative to it). */
async function sysfs(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'cn-sysfs-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), `${content}\n`);
  }
  return root;
}

const dmi = (name: string) => `class/dmi/id/${name}`;

/** Nothing listens here: a probe that got this far would fail, so a DMI answer must not probe. */
const NO_SERVICE = { ...fastClient('http://127.0.0.1:9'), retries: 0 };

test('Azure is recognised by its chassis asset tag', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Microsoft Corporation', [dmi('product_name')]: 'Virtual Machine', [dmi('chassis_asset_tag')]: AZURE_ASSET_TAG });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE }), { provider: 'azure', source: 'dmi' });
});

test('EC2 is recognised by its vendor string', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Amazon EC2', [dmi('product_name')]: 'c6i.2xlarge' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE }), { provider: 'ec2', source: 'dmi' });
});

test('older Xen EC2 instances are recognised by a UUID starting with ec2', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Xen', 'hypervisor/uuid': 'ec2e1916-9099-7caf-fd21-012345abcdef' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE }), { provider: 'ec2', source: 'dmi' });
  const upper = await sysfs(t, { [dmi('sys_vendor')]: 'Xen', [dmi('product_uuid')]: 'EC2E1916-9099-7CAF-FD21-012345ABCDEF' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: upper, client: NO_SERVICE }), { provider: 'ec2', source: 'dmi' });
});

test('GCP is recognised by Google in the DMI strings', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Google', [dmi('product_name')]: 'Google Compute Engine' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE }), { provider: 'gcp', source: 'dmi' });
});

test('OCI is recognised by its chassis asset tag, on VMs and bare metal alike', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'QEMU', [dmi('chassis_asset_tag')]: 'OracleCloud.com' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE }), { provider: 'oci', source: 'dmi' });
});

test('Alibaba Cloud is recognised by its vendor or product name', async (t) => {
  const vendor = await sysfs(t, { [dmi('sys_vendor')]: 'Alibaba Cloud', [dmi('product_name')]: 'Alibaba Cloud ECS' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: vendor, client: NO_SERVICE }), { provider: 'aliyun', source: 'dmi' });
  const product = await sysfs(t, { [dmi('sys_vendor')]: 'QEMU', [dmi('product_name')]: 'Alibaba Cloud ECS' });
  t.like(await detectProvider({ configured: 'auto', sysfsRoot: product, client: NO_SERVICE }), { provider: 'aliyun', source: 'dmi' });
});

test('Provider= overrides DMI', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Amazon EC2' });
  const detection = await detectProvider({ configured: 'gcp', sysfsRoot: root, client: NO_SERVICE });
  t.like(detection, { provider: 'gcp', source: 'config', evidence: 'Provider=gcp' });
  t.is(detection.instance.name, 'gcp');
});

test('a plain Hyper-V guest is not taken for Azure without the asset tag', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'Microsoft Corporation', [dmi('product_name')]: 'Virtual Machine', [dmi('chassis_asset_tag')]: 'None' });
  const error = await t.throwsAsync(detectProvider({ configured: 'auto', sysfsRoot: root, client: NO_SERVICE, probeTimeoutMs: 500 }), { instanceOf: DetectionError });
  t.regex(error!.message, /no cloud detected: DMI says sys_vendor="Microsoft Corporation"/);
  t.regex(error!.message, /set Provider= in \[System\]/);
});

for (const [name, start] of [
  ['azure', azureServer],
  ['ec2', ec2Server],
  ['gcp', gcpServer],
  ['oci', (t: ExecutionContext) => simulatedServer(t, 'oci')],
  ['aliyun', (t: ExecutionContext) => simulatedServer(t, 'aliyun')],
] as const) {
  test(`without DMI evidence, the ${name} metadata service answering its probe decides`, async (t) => {
    const root = await sysfs(t, { [dmi('sys_vendor')]: 'QEMU', [dmi('product_name')]: 'Standard PC (Q35 + ICH9, 2009)' });
    const server = await start(t);
    const detection = await detectProvider({ configured: 'auto', sysfsRoot: root, client: fastClient(server.url), probeTimeoutMs: 2_000 });
    t.like(detection, { provider: name, source: 'probe' });
  });
}

test('a service that answers everything without the clouds’ headers is no cloud', async (t) => {
  const root = await sysfs(t, {});
  const server = await startServer(t, (_req, res) => send(res, 200, '<html>captive portal</html>', { 'Content-Type': 'text/html' }));
  const error = await t.throwsAsync(detectProvider({ configured: 'auto', sysfsRoot: root, client: fastClient(server.url), probeTimeoutMs: 2_000 }), {
    instanceOf: DetectionError,
  });
  t.regex(error!.message, /no metadata service answered/);
  // each probe carried its own cloud's header
  t.true(server.requests.some((r) => r.headers.metadata === 'true'));
  t.true(server.requests.some((r) => r.headers['metadata-flavor'] === 'Google'));
  t.true(server.requests.some((r) => r.method === 'PUT' && r.headers['x-aws-ec2-metadata-token-ttl-seconds'] !== undefined));
});

test('a hanging metadata address ends the probes within their budget with an error', async (t) => {
  const root = await sysfs(t, {});
  const server = await startServer(t, () => undefined);
  const error = await t.throwsAsync(
    detectProvider({ configured: 'auto', sysfsRoot: root, client: { ...fastClient(server.url), requestTimeoutMs: 60_000 }, probeTimeoutMs: 300 }),
    { instanceOf: DetectionError },
  );
  t.regex(error!.message, /no cloud detected/);
  t.is(server.requests.length, 5, 'one probe per cloud');
});

test('EC2 found by its probe fetches with the probe\'s token: one token PUT at start, for the full lifetime', async (t) => {
  const root = await sysfs(t, { [dmi('sys_vendor')]: 'QEMU' });
  const server = await ec2Server(t);
  const detection = await detectProvider({ configured: 'auto', sysfsRoot: root, client: { ...fastClient(server.url), requestsPerSecond: 1000 }, probeTimeoutMs: 2_000 });
  t.like(detection, { provider: 'ec2', source: 'probe' });
  await detection.instance.fetch();
  const puts = server.requests.filter((r) => r.method === 'PUT' && r.headers['x-aws-ec2-metadata-token-ttl-seconds'] !== undefined);
  t.deepEqual(puts.map((r) => r.headers['x-aws-ec2-metadata-token-ttl-seconds']), ['21600']);
});
