import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import { AzureProvider, parseAzureDocument } from '../../agent/metadata/providers/azure.js';
import type { KernelState } from '../../netlink/types.js';
import { azureServer, fastClient, fixtureText, send, startServer } from '../fixtures/metadata-server.js';

const fixture = () => JSON.parse(fixtureText('azure-instance.json')) as { compute: Record<string, unknown>; network: { interface: Array<Record<string, any>> } };

test('the Azure instance document becomes the model: primary NIC 0, the others by MAC, secondary IPs, IPv6, gateways', async (t) => {
  const server = await azureServer(t);
  const snapshot = await new AzureProvider(fastClient(server.url)).fetch();
  t.deepEqual(snapshot.model.instance, {
    provider: 'azure',
    id: 'b7a4c2f0-5c2e-4d3b-9a61-3f1e2d4c5b6a',
    name: 'web-2',
    region: 'westeurope',
    zone: '2',
    size: 'Standard_D8s_v5',
    image: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202411010',
    details: { subscriptionId: '8d10da13-8125-4ba9-a717-bf7490507b3d', resourceGroupName: 'rg-web' },
  });
  // listed 68, 67, 66 with 68 first (primary): 66 then 67 follow in MAC order
  t.deepEqual(
    snapshot.model.nics.map((n) => [n.mac, n.index, n.primary]),
    [
      ['00:0d:3a:5d:2d:68', 0, true],
      ['00:0d:3a:5d:2d:67', 2, false],
      ['00:0d:3a:5d:2d:66', 1, false],
    ],
  );
  t.deepEqual(snapshot.model.nics[0], {
    mac: '00:0d:3a:5d:2d:68',
    index: 0,
    primary: true,
    ipv4: [
      { address: '10.4.0.4', prefixLength: 24, primary: true },
      { address: '10.4.0.10', prefixLength: 24, primary: false },
    ],
    publicIpv4: ['20.61.15.7'],
    ipv6: [{ address: 'ace:cab:deca::4', prefixLength: 128 }],
    subnet: { address: '10.4.0.0', prefixLength: 24 },
    gateway: '10.4.0.1',
    gateway6: 'fe80::1234:5678:9abc',
    routedRanges: [],
    hostAddresses: false,
    details: {},
  });
  const third = snapshot.model.nics[2]!;
  t.deepEqual(third.ipv4.map((a) => `${a.address}/${a.prefixLength}${a.primary ? ' primary' : ''}`), ['10.4.1.5/24 primary', '10.4.1.6/24', '10.4.1.7/24']);
  t.is(third.gateway, '10.4.1.1');
  t.is(third.gateway6, undefined);
  t.is(snapshot.model.nics[1]!.gateway, '10.4.2.1');
  t.deepEqual(snapshot.sshKeys, ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIazurekey azureuser@laptop']);
});

test('the Azure document keeps its own shape without user data or secret tags', async (t) => {
  const server = await azureServer(t);
  const { document } = await new AzureProvider(fastClient(server.url)).fetch();
  const text = JSON.stringify(document);
  t.false(text.includes('c2VjcmV0LXVzZXItZGF0YQ'));
  t.false(text.includes('tag-secret-value-123'));
  t.is((document as { compute: { vmSize: string } }).compute.vmSize, 'Standard_D8s_v5');
  t.is((document as { network: { interface: unknown[] } }).network.interface.length, 3);
});

test('every Azure request carries Metadata: true and the api-version, and nothing a proxy would add', async (t) => {
  const server = await azureServer(t);
  await new AzureProvider(fastClient(server.url)).fetch();
  t.is(server.requests.length, 1);
  const [request] = server.requests;
  t.is(request!.url, '/metadata/instance?api-version=2021-02-01');
  t.is(request!.headers.metadata, 'true');
  t.is(request!.headers['x-forwarded-for'], undefined);
  t.is(request!.headers['proxy-authorization'], undefined);
});

test('a known primary MAC decides the Azure primary NIC whatever the listing order', async (t) => {
  const server = await azureServer(t);
  const snapshot = await new AzureProvider({ ...fastClient(server.url), primaryMac: () => '00:0d:3a:5d:2d:66' }).fetch();
  t.deepEqual(
    snapshot.model.nics.map((n) => [n.mac, n.index, n.primary]),
    [
      ['00:0d:3a:5d:2d:68', 2, false],
      ['00:0d:3a:5d:2d:67', 1, false],
      ['00:0d:3a:5d:2d:66', 0, true],
    ],
  );
});

test("the link of main's default route in the kernel names the Azure primary NIC", async (t) => {
  const server = await azureServer(t);
  const kernel: KernelState = {
    links: [{ index: 3, name: 'eth1', mac: '00:0d:3a:5d:2d:67', up: true, mtu: 1500, loopback: false }],
    addresses: [],
    routes: [{ table: 254, family: 'inet', destination: '0.0.0.0/0', gateway: '10.4.2.1', ifindex: 3, protocol: 16, type: 'unicast', scope: 'universe' }],
    rules: [],
  };
  const snapshot = await new AzureProvider({ ...fastClient(server.url), kernelState: async () => kernel }).fetch();
  t.deepEqual(snapshot.model.nics.find((n) => n.primary)?.mac, '00:0d:3a:5d:2d:67');
});

test('the kernel is read while the metadata service answers, not after', async (t) => {
  let kernelAsked = false;
  let askedBeforeAnswer: boolean | undefined;
  // the service answers once the kernel has been asked for, or after 2 s
  const server = await startServer(t, (_req, res) => {
    const started = Date.now();
    const answer = () => {
      if (!kernelAsked && Date.now() - started < 2_000) return void setTimeout(answer, 5);
      askedBeforeAnswer = kernelAsked;
      send(res, 200, fixtureText('azure-instance.json'), { 'Content-Type': 'application/json; charset=utf-8' });
    };
    answer();
  });
  const kernel: KernelState = { links: [], addresses: [], routes: [], rules: [] };
  const kernelState = async () => {
    kernelAsked = true;
    return kernel;
  };
  await new AzureProvider({ ...fastClient(server.url), requestTimeoutMs: 5_000, kernelState }).fetch();
  t.true(askedBeforeAnswer);
});

test('with a state directory, Azure NICs keep their indexes when another is attached', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-azure-indexes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const full = fixture();
  const attached = full.network.interface;
  // at first without 00:0d:3a:5d:2d:66, which sorts before the other secondary NIC's MAC
  full.network.interface = attached.filter((i) => i.macAddress !== '000D3A5D2D66');
  let document = JSON.stringify(full);
  const server = await startServer(t, (_req, res) => send(res, 200, document, { 'Content-Type': 'application/json; charset=utf-8' }));
  const provider = new AzureProvider({ ...fastClient(server.url), stateDir: dir });
  const indexes = (nics: { mac: string; index: number }[]) => Object.fromEntries(nics.map((n) => [n.mac, n.index]));
  const before = await provider.fetch();
  t.deepEqual(indexes(before.model.nics), { '00:0d:3a:5d:2d:68': 0, '00:0d:3a:5d:2d:67': 1 });
  t.is(await provider.fetch(), before, 'an unchanged document comes back as the same snapshot');
  full.network.interface = attached;
  document = JSON.stringify(full);
  const after = await provider.fetch();
  // by MAC order alone the new NIC would take index 1 and move 67 to table base + 2
  t.deepEqual(indexes(after.model.nics), { '00:0d:3a:5d:2d:68': 0, '00:0d:3a:5d:2d:67': 1, '00:0d:3a:5d:2d:66': 2 });
});

test('HTTP_PROXY is ignored: the metadata request goes straight to the service', async (t) => {
  let proxied = 0;
  const proxy = http.createServer((_req, res) => {
    proxied++;
    res.writeHead(502).end();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => proxy.close());
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
  process.env.HTTP_PROXY = proxyUrl;
  process.env.http_proxy = proxyUrl;
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });
  const server = await azureServer(t);
  const snapshot = await new AzureProvider(fastClient(server.url)).fetch();
  t.is(snapshot.model.nics.length, 3);
  t.is(proxied, 0);
  t.is(server.requests.length, 1);
});

test('Azure fetches stay under 5 requests per second: a burst of fetches is never throttled', async (t) => {
  const server = await azureServer(t, { perSecond: 5 });
  // no retries: a single 429 would fail a fetch
  const provider = new AzureProvider({ ...fastClient(server.url), retries: 0 });
  const results = await Promise.all(Array.from({ length: 8 }, () => provider.fetch()));
  t.is(results.length, 8);
  t.is(server.throttled, 0);
  t.is(server.requests.length, 8);
});

// ---- document defects: each is an error naming the field and the NIC, never a smaller model

function withDocument(change: (doc: ReturnType<typeof fixture>) => void): string {
  const doc = fixture();
  change(doc);
  return JSON.stringify(doc);
}

const defect = test.macro(async (t, change: (doc: ReturnType<typeof fixture>) => void, expected: { kind: MetadataErrorKind; field: RegExp; nic?: string }) => {
  const server = await azureServer(t, { document: withDocument(change) });
  const error = await t.throwsAsync(new AzureProvider(fastClient(server.url)).fetch(), { instanceOf: MetadataError });
  t.is(error!.provider, 'azure');
  t.is(error!.kind, expected.kind);
  t.regex(error!.field ?? '', expected.field);
  t.is(error!.nic, expected.nic);
  t.regex(error!.message, /^azure metadata: .*not used$/);
  if (expected.nic) t.true(error!.message.includes(`NIC ${expected.nic}`));
});

test('an empty Azure NIC list is an error', defect, (d) => (d.network.interface = []), { kind: 'incomplete', field: /^network\.interface$/ });
test('an Azure NIC without a subnet is an error', defect, (d) => (d.network.interface[2]!.ipv4.subnet = []), {
  kind: 'incomplete',
  field: /ipv4\.subnet/,
  nic: '00:0d:3a:5d:2d:66',
});
test('an invalid Azure address is an error', defect, (d) => (d.network.interface[2]!.ipv4.ipAddress[1].privateIpAddress = '10.4.1.300'), {
  kind: 'malformed',
  field: /ipAddress\[1\]\.privateIpAddress/,
  nic: '00:0d:3a:5d:2d:66',
});
test('an Azure address outside its subnet is an error', defect, (d) => (d.network.interface[1]!.ipv4.ipAddress[0].privateIpAddress = '10.9.9.9'), {
  kind: 'malformed',
  field: /privateIpAddress/,
  nic: '00:0d:3a:5d:2d:67',
});
test('duplicate Azure MACs are an error', defect, (d) => (d.network.interface[1]!.macAddress = '000D3A5D2D66'), {
  kind: 'malformed',
  field: /macAddress/,
  nic: '00:0d:3a:5d:2d:66',
});
test('an Azure MAC that is not 12 hex digits is an error', defect, (d) => (d.network.interface[0]!.macAddress = '00-0D-3A-5D-2D-68'), {
  kind: 'malformed',
  field: /network\.interface\[0\]\.macAddress/,
});
test('an Azure prefix that is not a number is an error', defect, (d) => (d.network.interface[0]!.ipv4.subnet[0].prefix = 'twenty-four'), {
  kind: 'malformed',
  field: /subnet\[0\]\.prefix/,
  nic: '00:0d:3a:5d:2d:68',
});
test('an Azure NIC without IPv4 addresses is an error', defect, (d) => (d.network.interface[1]!.ipv4.ipAddress = []), {
  kind: 'incomplete',
  field: /ipv4\.ipAddress/,
  nic: '00:0d:3a:5d:2d:67',
});
test('an invalid Azure IPv6 address is an error', defect, (d) => (d.network.interface[0]!.ipv6.ipAddress = [{ privateIpAddress: '10.4.0.4' }]), {
  kind: 'malformed',
  field: /ipv6\.ipAddress\[0\]/,
  nic: '00:0d:3a:5d:2d:68',
});

test('the parser alone rejects a document that is not JSON', (t) => {
  const error = t.throws(() => parseAzureDocument('{"compute": {'), { instanceOf: MetadataError });
  t.is(error!.kind, 'malformed');
});

test('CLOUD_NETWORK_IMDS_URL points the providers at another metadata address', async (t) => {
  const server = await azureServer(t);
  const saved = process.env.CLOUD_NETWORK_IMDS_URL;
  process.env.CLOUD_NETWORK_IMDS_URL = server.url;
  t.teardown(() => {
    if (saved === undefined) delete process.env.CLOUD_NETWORK_IMDS_URL;
    else process.env.CLOUD_NETWORK_IMDS_URL = saved;
  });
  const { baseUrl, ...settings } = fastClient(server.url);
  void baseUrl;
  const snapshot = await new AzureProvider(settings).fetch();
  t.is(snapshot.model.nics.length, 3);
  t.is(server.requests.length, 1);
});

test('addresses come out in canonical text: surrounding spaces dropped, IPv6 lower-case and compressed', (t) => {
  const doc = fixture();
  const first = doc.network.interface[0]!;
  first.ipv4.ipAddress[1].privateIpAddress = ' 10.4.0.10 ';
  first.ipv4.ipAddress[0].publicIpAddress = '20.61.15.7 ';
  first.ipv6.ipAddress[0].privateIpAddress = 'ACE:CAB:DECA:0:0:0:0:4';
  const nic = parseAzureDocument(JSON.stringify(doc), first.macAddress).model.nics.find((n) => n.primary)!;
  t.deepEqual(nic.ipv4.map((a) => a.address), ['10.4.0.4', '10.4.0.10']);
  t.deepEqual(nic.publicIpv4, ['20.61.15.7']);
  t.deepEqual(nic.ipv6.map((a) => a.address), ['ace:cab:deca::4']);
});
