import test from 'ava';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import { GcpProvider, parseGcpDocument } from '../../agent/metadata/providers/gcp.js';
import { body, fastClient, fixtureText, gcpServer } from '../fixtures/metadata-server.js';

const provider = (url: string, waitTimeoutSec = 5) => new GcpProvider({ ...fastClient(url), waitTimeoutSec });

test('the GCP instance document becomes the model: nicN order, /32 host addresses, MTU, alias ranges and forwarded IPs routed', async (t) => {
  const server = await gcpServer(t);
  const snapshot = await provider(server.url).fetch();
  t.deepEqual(snapshot.model.instance, {
    provider: 'gcp',
    id: '7454466891239578912',
    name: 'gce-2',
    region: 'us-central1',
    zone: 'us-central1-a',
    size: 'n2-standard-4',
    image: 'debian-12-bookworm-v20241112',
    details: { hostname: 'gce-2.us-central1-a.c.example-project.internal', cpuPlatform: 'Intel Cascade Lake' },
  });
  t.deepEqual(snapshot.model.nics, [
    {
      mac: '42:01:0a:80:00:02',
      index: 0,
      primary: true,
      ipv4: [{ address: '10.128.0.2', prefixLength: 20, primary: true }],
      publicIpv4: ['34.70.1.2'],
      ipv6: [],
      subnet: { address: '10.128.0.0', prefixLength: 20 },
      gateway: '10.128.0.1',
      mtu: 1460,
      routedRanges: ['34.120.9.9/32'],
      hostAddresses: true,
      details: { network: 'projects/123456789012/networks/default', dnsServers: '169.254.169.254', accessConfigs: '34.70.1.2 (ONE_TO_ONE_NAT)' },
    },
    {
      mac: '42:01:0a:82:00:05',
      index: 1,
      primary: false,
      ipv4: [{ address: '10.130.0.5', prefixLength: 24, primary: true }],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '10.130.0.0', prefixLength: 24 },
      gateway: '10.130.0.1',
      mtu: 8896,
      routedRanges: ['10.130.8.0/24', '10.130.9.4/32'],
      hostAddresses: true,
      details: { network: 'projects/123456789012/networks/backend', dnsServers: '169.254.169.254' },
    },
  ]);
  t.deepEqual(snapshot.sshKeys, ['alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgcpalice alice', 'bob:ssh-rsa AAAAB3NzaC1yc2EAAAADAQABgcpbob bob']);
});

test('the 19-digit GCP instance id survives as text, in the model and in the document', async (t) => {
  const server = await gcpServer(t);
  const snapshot = await provider(server.url).fetch();
  t.is(snapshot.model.instance.id, '7454466891239578912');
  t.is((snapshot.document as { id: unknown }).id, '7454466891239578912');
  // a double would have made it ...79000
  t.not(String(JSON.parse(fixtureText('gcp-instance.json')).id), '7454466891239578912');
});

test('the GCP document leaves out startup scripts and anything token-like', async (t) => {
  const server = await gcpServer(t);
  const { document } = await provider(server.url).fetch();
  const text = JSON.stringify(document);
  t.false(text.includes('hunter2-startup'));
  t.false(text.includes('driftToken'));
  t.is((document as { name: string }).name, 'gce-2');
});

test('every GCP request carries Metadata-Flavor: Google', async (t) => {
  const server = await gcpServer(t);
  await provider(server.url).fetch();
  t.is(server.requests.length, 1);
  t.is(server.requests[0]!.url, '/computeMetadata/v1/instance/?recursive=true');
  t.is(server.requests[0]!.headers['metadata-flavor'], 'Google');
  t.is(server.requests[0]!.headers['x-forwarded-for'], undefined);
});

test('an answer without Metadata-Flavor: Google is not from GCE and is not used', async (t) => {
  const server = await gcpServer(t);
  server.faults.push(body(fixtureText('gcp-instance.json'), { ETag: 'abc' }));
  const error = await t.throwsAsync(provider(server.url).fetch(), { instanceOf: MetadataError });
  t.is(error!.kind, 'not-genuine');
  t.regex(error!.message, /without "Metadata-Flavor: Google"/);
});

test('the GCP long poll returns at once when the ETag it was given is stale', async (t) => {
  const server = await gcpServer(t);
  const gcp = provider(server.url);
  const change = await gcp.waitForChange('stale-etag');
  t.true(change.changed);
  t.is(change.etag, server.etag);
  t.is(change.snapshot.model.nics.length, 2);
});

test('the GCP long poll returns when the metadata changes, with the new model', async (t) => {
  const server = await gcpServer(t);
  const gcp = provider(server.url, 30);
  await gcp.fetch();
  const first = gcp.lastEtag!;
  const waiting = gcp.waitForChange(first);
  while (server.waiting() === 0) await new Promise((r) => setTimeout(r, 5));
  const doc = JSON.parse(fixtureText('gcp-instance.json').replace('"id":7454466891239578912', '"id":"7454466891239578912"'));
  doc.networkInterfaces[1].ipAliases.push('10.130.10.0/24');
  server.change(JSON.stringify(doc));
  const change = await waiting;
  t.true(change.changed);
  t.not(change.etag, first);
  t.deepEqual(change.snapshot.model.nics[1]!.routedRanges, ['10.130.8.0/24', '10.130.9.4/32', '10.130.10.0/24']);
  const poll = server.requests.at(-1)!;
  t.regex(poll.url, new RegExp(`wait_for_change=true&last_etag=${first}&timeout_sec=30`));
});

test('a GCP long poll that times out reports no change', async (t) => {
  const server = await gcpServer(t);
  const gcp = provider(server.url, 1);
  await gcp.fetch();
  const change = await gcp.waitForChange(gcp.lastEtag!);
  t.false(change.changed);
  t.is(change.etag, server.etag);
});

test('a GCP long poll can be cancelled', async (t) => {
  const server = await gcpServer(t);
  const gcp = provider(server.url, 30);
  await gcp.fetch();
  const controller = new AbortController();
  const waiting = gcp.waitForChange(gcp.lastEtag!, controller.signal);
  while (server.waiting() === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort(new Error('agent stopping'));
  const error = await t.throwsAsync(waiting, { instanceOf: MetadataError });
  t.is(error!.kind, 'aborted');
});

const defect = test.macro((t, change: (doc: any) => void, expected: { kind: MetadataErrorKind; nic?: string; message: RegExp }) => {
  const doc = JSON.parse(fixtureText('gcp-instance.json'));
  change(doc);
  const error = t.throws(() => parseGcpDocument(JSON.stringify(doc)), { instanceOf: MetadataError });
  t.is(error!.provider, 'gcp');
  t.is(error!.kind, expected.kind);
  t.is(error!.nic, expected.nic);
  t.regex(error!.message, expected.message);
});

test('an empty GCP NIC list is an error', defect, (d) => (d.networkInterfaces = []), { kind: 'incomplete', message: /networkInterfaces is empty/ });
test('a GCP NIC without a subnet mask is an error', defect, (d) => delete d.networkInterfaces[1].subnetmask, {
  kind: 'incomplete',
  nic: '42:01:0a:82:00:05',
  message: /networkInterfaces\[1\]\.subnetmask is missing/,
});
test('an invalid GCP address is an error', defect, (d) => (d.networkInterfaces[0].ip = '10.128.0'), {
  kind: 'malformed',
  nic: '42:01:0a:80:00:02',
  message: /networkInterfaces\[0\]\.ip "10\.128\.0" is not an IPv4 address/,
});
test('a GCP netmask with holes is an error', defect, (d) => (d.networkInterfaces[0].subnetmask = '255.0.255.0'), {
  kind: 'malformed',
  nic: '42:01:0a:80:00:02',
  message: /not a netmask/,
});
test('duplicate GCP MACs are an error', defect, (d) => (d.networkInterfaces[1].mac = '42:01:0a:80:00:02'), {
  kind: 'malformed',
  nic: '42:01:0a:80:00:02',
  message: /appears on two interfaces/,
});
test('an invalid GCP alias range is an error', defect, (d) => (d.networkInterfaces[1].ipAliases = ['10.130.8.0/40']), {
  kind: 'malformed',
  nic: '42:01:0a:82:00:05',
  message: /ipAliases\[0\]/,
});
test('a GCP MTU that is not a number is an error', defect, (d) => (d.networkInterfaces[0].mtu = '1460'), {
  kind: 'malformed',
  nic: '42:01:0a:80:00:02',
  message: /mtu/,
});
