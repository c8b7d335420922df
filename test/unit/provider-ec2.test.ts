import test from 'ava';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import { Ec2Provider, type Ec2Options } from '../../agent/metadata/providers/ec2.js';
import { ec2Server, fastClient, status, type Ec2Server } from '../fixtures/metadata-server.js';

const PRIMARY = '0a:1f:9a:00:00:09';
const SECOND = '0a:1f:9a:00:00:02';

function provider(server: Ec2Server, options: Ec2Options = {}): Ec2Provider {
  return new Ec2Provider({ ...fastClient(server.url), requestsPerSecond: 1000, eniAttempts: 3, eniRetryDelayMs: 1, ...options });
}

test('the EC2 meta-data tree becomes the model: ENIs by device number whatever the listing order, every local IPv4, prefixes routed', async (t) => {
  const server = await ec2Server(t);
  const snapshot = await provider(server).fetch();
  t.deepEqual(snapshot.model.instance, {
    provider: 'ec2',
    id: 'i-0123456789abcdef0',
    name: 'ip-172-31-16-10',
    region: 'eu-west-1',
    zone: 'eu-west-1b',
    size: 'c6i.2xlarge',
    image: 'ami-0abcdef1234567890',
    details: { accountId: '123456789012', architecture: 'x86_64' },
  });
  t.deepEqual(snapshot.model.nics, [
    {
      mac: PRIMARY,
      index: 0,
      primary: true,
      ipv4: [
        { address: '172.31.16.10', prefixLength: 20, primary: true },
        { address: '172.31.16.11', prefixLength: 20, primary: false },
        { address: '172.31.16.12', prefixLength: 20, primary: false },
      ],
      publicIpv4: ['54.155.10.20'],
      ipv6: [{ address: '2a05:d018:1:2300:aaaa:bbbb:cccc:1', prefixLength: 64 }],
      subnet: { address: '172.31.16.0', prefixLength: 20 },
      gateway: '172.31.16.1',
      routedRanges: [],
      hostAddresses: false,
      details: { 'interface-id': 'eni-0aaa1111', 'device-number': '0', 'subnet-id': 'subnet-0aaa', 'vpc-id': 'vpc-0abc', 'security-group-ids': 'sg-0aaa1111, sg-0ccc3333' },
    },
    {
      mac: SECOND,
      index: 1,
      primary: false,
      ipv4: [
        { address: '172.31.32.10', prefixLength: 20, primary: true },
        { address: '172.31.32.11', prefixLength: 20, primary: false },
      ],
      publicIpv4: [],
      ipv6: [],
      subnet: { address: '172.31.32.0', prefixLength: 20 },
      gateway: '172.31.32.1',
      routedRanges: ['172.31.40.16/28'],
      hostAddresses: false,
      details: { 'interface-id': 'eni-0bbb2222', 'device-number': '1', 'subnet-id': 'subnet-0bbb', 'vpc-id': 'vpc-0abc', 'security-group-ids': 'sg-0bbb2222' },
    },
  ]);
  t.deepEqual(snapshot.sshKeys, ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIec2ops ops@bastion']);
});

test('EC2 credentials are never fetched and never in the document', async (t) => {
  const server = await ec2Server(t);
  const { document } = await provider(server).fetch();
  // the identity document is read (instance facts in one answer), its signatures never
  t.false(server.requests.some((r) => /iam|identity-credentials|user-data|signature|pkcs7|rsa2048/.test(r.url)));
  const text = JSON.stringify(document);
  t.false(text.includes('ASIAEXAMPLE'));
  const metaData = (document as { 'meta-data': any })['meta-data'];
  t.is(metaData['instance-id'], 'i-0123456789abcdef0');
  t.is(metaData.placement.region, 'eu-west-1');
  t.is(metaData.network.interfaces.macs[SECOND]['ipv4-prefix'], '172.31.40.16/28');
});

test('every EC2 GET carries the session token, and the token PUT its TTL', async (t) => {
  const server = await ec2Server(t);
  await provider(server, { tokenTtlSeconds: 900 }).fetch();
  const puts = server.requests.filter((r) => r.method === 'PUT');
  const gets = server.requests.filter((r) => r.method === 'GET');
  t.is(puts.length, 1);
  t.is(puts[0]!.url, '/latest/api/token');
  t.is(puts[0]!.headers['x-aws-ec2-metadata-token-ttl-seconds'], '900');
  t.true(gets.length > 10);
  for (const get of gets) t.true(server.tokens.has(String(get.headers['x-aws-ec2-metadata-token'])), get.url);
  t.false(server.requests.some((r) => r.headers['x-forwarded-for'] !== undefined));
});

test('one EC2 token per TTL across several fetches, and a new one once it is due', async (t) => {
  const server = await ec2Server(t);
  let now = 1_000_000;
  const ec2 = provider(server, { tokenTtlSeconds: 600, now: () => now });
  await ec2.fetch();
  await ec2.fetch();
  now += 500_000; // still inside the 600 s lifetime, before the early-renewal margin
  await ec2.fetch();
  t.is(server.issued, 1);
  now += 100_000; // 600 s after the first PUT: renewed before the token expires
  await ec2.fetch();
  t.is(server.issued, 2);
  t.is(server.requests.filter((r) => r.method === 'PUT').length, 2);
});

test('an EC2 GET answered 401 fetches one new token and succeeds', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  await ec2.fetch();
  server.tokens.clear(); // as after an IMDS restart: the cached token is no longer valid
  const snapshot = await ec2.fetch();
  t.is(snapshot.model.nics.length, 2);
  t.is(server.issued, 2);
});

test('a refused EC2 token PUT is an error that says IMDSv2 is required', async (t) => {
  const server = await ec2Server(t);
  server.faults.push(status(403), status(403), status(403));
  const error = await t.throwsAsync(provider(server).fetch(), { instanceOf: MetadataError });
  t.is(error!.status, 403);
  t.regex(error!.message, /IMDSv2/);
  t.false(server.requests.some((r) => r.method === 'GET'), 'no IMDSv1 fallback');
});

test('an ENI still attaching (404 on device-number) is retried until it is complete', async (t) => {
  const server = await ec2Server(t);
  const key = `network/interfaces/macs/${SECOND}/device-number`;
  const value = server.tree[key]!;
  delete server.tree[key];
  let waits = 0;
  const ec2 = provider(server, {
    sleep: async () => {
      if (++waits === 2) server.tree[key] = value;
    },
  });
  const snapshot = await ec2.fetch();
  t.deepEqual(
    snapshot.model.nics.map((n) => [n.mac, n.index]),
    [
      [PRIMARY, 0],
      [SECOND, 1],
    ],
  );
});

test('an ENI that keeps answering 404 is an error after the attempts, not a model without it', async (t) => {
  const server = await ec2Server(t);
  delete server.tree[`network/interfaces/macs/${SECOND}/subnet-ipv4-cidr-block`];
  const error = await t.throwsAsync(provider(server).fetch(), { instanceOf: MetadataError });
  t.is(error!.nic, SECOND);
  t.is(error!.kind, 'incomplete');
  t.regex(error!.message, /lists local-ipv4s but not subnet-ipv4-cidr-block yet after 3 attempts/);
});

test('a key the ENI\'s directory lists but that answers 404 is retried, then an error', async (t) => {
  const server = await ec2Server(t);
  server.tree[`network/interfaces/macs/${SECOND}/`] = 'device-number\nlocal-ipv4s\nsubnet-ipv4-cidr-block\nvpc-id\nsubnet-id';
  delete server.tree[`network/interfaces/macs/${SECOND}/vpc-id`];
  const error = await t.throwsAsync(provider(server).fetch(), { instanceOf: MetadataError });
  t.is(error!.nic, SECOND);
  t.regex(error!.message, /vpc-id is listed but answered 404 after 3 attempts/);
});

test('a second ENI claiming device-number 0 is retried, then an error', async (t) => {
  const server = await ec2Server(t);
  server.tree[`network/interfaces/macs/${SECOND}/device-number`] = '0';
  const error = await t.throwsAsync(provider(server).fetch(), { instanceOf: MetadataError });
  t.is(error!.nic, SECOND);
  t.regex(error!.message, /device-number says 0.*primary ENI is 0a:1f:9a:00:00:09/);
  const asked = server.requests.filter((r) => r.url.endsWith(`${SECOND}/device-number`)).length;
  t.is(asked, 3);
});

test('network-card counts 32 indexes per card on multi-card instance types', async (t) => {
  const server = await ec2Server(t);
  server.tree[`network/interfaces/macs/${SECOND}/network-card`] = '1';
  server.tree[`network/interfaces/macs/${SECOND}/device-number`] = '0';
  const snapshot = await provider(server).fetch();
  t.deepEqual(
    snapshot.model.nics.map((n) => [n.mac, n.index]),
    [
      [PRIMARY, 0],
      [SECOND, 32],
    ],
  );
});

const defect = test.macro(async (t, change: (tree: Record<string, string>) => void, expected: { kind: MetadataErrorKind; nic?: string; message: RegExp }) => {
  const server = await ec2Server(t);
  change(server.tree);
  const error = await t.throwsAsync(provider(server).fetch(), { instanceOf: MetadataError });
  t.is(error!.provider, 'ec2');
  t.is(error!.kind, expected.kind);
  t.is(error!.nic, expected.nic);
  t.regex(error!.message, expected.message);
});

test('an empty EC2 MAC listing is an error', defect, (tree) => (tree['network/interfaces/macs/'] = ''), { kind: 'incomplete', message: /macs\/ is empty/ });
test('an invalid EC2 local IPv4 is an error', defect, (tree) => (tree[`network/interfaces/macs/${SECOND}/local-ipv4s`] = '172.31.32.10\n172.31.32.999'), {
  kind: 'malformed',
  nic: SECOND,
  message: /"172\.31\.32\.999" is not an IPv4 address/,
});
test('an invalid EC2 subnet is an error', defect, (tree) => (tree[`network/interfaces/macs/${PRIMARY}/subnet-ipv4-cidr-block`] = '172.31.16.0'), {
  kind: 'malformed',
  nic: PRIMARY,
  message: /not an IPv4 CIDR block/,
});
test('an EC2 MAC listed twice is an error', defect, (tree) => (tree['network/interfaces/macs/'] = `${SECOND}/\n${PRIMARY}/\n${SECOND}/`), {
  kind: 'malformed',
  nic: SECOND,
  message: /lists this MAC twice/,
});
test('a listing without the primary ENI is an error', defect, (tree) => (tree['network/interfaces/macs/'] = `${SECOND}/`), {
  kind: 'incomplete',
  nic: PRIMARY,
  message: /does not list the primary ENI/,
});
test('an invalid EC2 ipv4-prefix is an error', defect, (tree) => (tree[`network/interfaces/macs/${SECOND}/ipv4-prefix`] = '172.31.40.16/33'), {
  kind: 'malformed',
  nic: SECOND,
  message: /ipv4-prefix/,
});

// ---- requests per refresh

/** GETs and PUTs the provider sent since `from`, by path. */
function sent(server: Ec2Server, from = 0) {
  const requests = server.requests.slice(from);
  return { puts: requests.filter((r) => r.method === 'PUT').length, gets: requests.filter((r) => r.method === 'GET').map((r) => r.url) };
}

test('a refresh in which nothing changed costs the MAC listing plus two requests per ENI, and returns the same snapshot', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  const first = await ec2.fetch();
  const mark = server.requests.length;
  const second = await ec2.fetch();
  t.is(second, first);
  const { puts, gets } = sent(server, mark);
  t.is(puts, 0, 'the token is cached');
  t.deepEqual([...gets].sort(), [
    '/latest/meta-data/network/interfaces/macs/',
    `/latest/meta-data/network/interfaces/macs/${SECOND}/`,
    `/latest/meta-data/network/interfaces/macs/${SECOND}/local-ipv4s`,
    `/latest/meta-data/network/interfaces/macs/${PRIMARY}/`,
    `/latest/meta-data/network/interfaces/macs/${PRIMARY}/local-ipv4s`,
  ].sort());
});

test('instance facts are read once: the identity document, the primary MAC, the hostname and the keys', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  await ec2.fetch();
  await ec2.fetch();
  await ec2.fetch(undefined, { thorough: true });
  const asked = (path: string) => server.requests.filter((r) => r.url === path).length;
  t.is(asked('/latest/dynamic/instance-identity/document'), 1);
  t.is(asked('/latest/meta-data/mac'), 1);
  t.is(asked('/latest/meta-data/local-hostname'), 1);
  t.is(asked('/latest/meta-data/public-keys/'), 1);
  for (const path of ['instance-id', 'instance-type', 'placement/region', 'placement/availability-zone', 'ami-id']) t.is(asked(`/latest/meta-data/${path}`), 0, path);
});

test('an ENI whose addresses changed is read in full, the others are not, and the model follows', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  const first = await ec2.fetch();
  server.tree[`network/interfaces/macs/${SECOND}/local-ipv4s`] = '172.31.32.10\n172.31.32.11\n172.31.32.12';
  const mark = server.requests.length;
  const second = await ec2.fetch();
  t.not(second, first);
  t.deepEqual(second.model.nics[1]!.ipv4.map((ip) => ip.address), ['172.31.32.10', '172.31.32.11', '172.31.32.12']);
  const { gets } = sent(server, mark);
  t.true(gets.includes(`/latest/meta-data/network/interfaces/macs/${SECOND}/subnet-ipv4-cidr-block`), 'the changed ENI is read in full');
  t.false(gets.includes(`/latest/meta-data/network/interfaces/macs/${PRIMARY}/subnet-ipv4-cidr-block`), 'the unchanged ENI is not');
  t.is(gets.filter((path) => path.endsWith(`${SECOND}/local-ipv4s`)).length, 1, 'the quick answer is not asked for again');
});

test('an ENI\'s security groups stay in the model through quick refreshes, a change of them shows at the next full read', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server, { fullReadEvery: 2 });
  const first = await ec2.fetch();
  t.is(first.model.nics[0]!.details['security-group-ids'], 'sg-0aaa1111, sg-0ccc3333');
  server.tree[`network/interfaces/macs/${PRIMARY}/security-group-ids`] = 'sg-0ddd4444';
  // the other ENI changes: its full read must not cost the primary ENI its details
  server.tree[`network/interfaces/macs/${SECOND}/local-ipv4s`] = '172.31.32.10';
  const quick = await ec2.fetch();
  t.not(quick, first);
  t.deepEqual(quick.model.nics[0]!.details, first.model.nics[0]!.details, 'the quick refresh keeps the last full read\'s details');
  t.deepEqual(quick.model.nics[1]!.details, first.model.nics[1]!.details);
  t.is(await ec2.fetch(), quick, 'a second quick refresh: the same snapshot, no flapping');
  const full = await ec2.fetch();
  t.is(full.model.nics[0]!.details['security-group-ids'], 'sg-0ddd4444', 'the full read');
  t.is(full.model.nics[0]!.details['interface-id'], 'eni-0aaa1111');
});

test('a key that appears in an ENI\'s directory (a first IPv6 address) is noticed by a quick refresh', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  await ec2.fetch();
  server.tree[`network/interfaces/macs/${SECOND}/ipv6s`] = '2a05:d018:1:2400::7';
  server.tree[`network/interfaces/macs/${SECOND}/subnet-ipv6-cidr-blocks`] = '2a05:d018:1:2400::/64';
  const snapshot = await ec2.fetch();
  t.deepEqual(snapshot.model.nics[1]!.ipv6, [{ address: '2a05:d018:1:2400::7', prefixLength: 64 }]);
});

test('a thorough fetch (start, reload) and every FULL_READ_EVERY-th refresh read every ENI in full', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server, { fullReadEvery: 2 });
  await ec2.fetch();
  // a change the quick look cannot see: a second IPv6 address on an ENI that has one
  server.tree[`network/interfaces/macs/${PRIMARY}/ipv6s`] = '2a05:d018:1:2300:aaaa:bbbb:cccc:1\n2a05:d018:1:2300:aaaa:bbbb:cccc:2';
  t.is((await ec2.fetch()).model.nics[0]!.ipv6.length, 1, 'first quick refresh');
  t.is((await ec2.fetch()).model.nics[0]!.ipv6.length, 1, 'second quick refresh');
  t.is((await ec2.fetch()).model.nics[0]!.ipv6.length, 2, 'the full read after two quick ones');
  server.tree[`network/interfaces/macs/${PRIMARY}/ipv6s`] = '2a05:d018:1:2300:aaaa:bbbb:cccc:1';
  t.is((await ec2.fetch(undefined, { thorough: true })).model.nics[0]!.ipv6.length, 1, 'a thorough fetch');
});

test('an ENI on an IPv6-only subnet (no local-ipv4s) becomes a NIC with IPv6 addresses and no IPv4', async (t) => {
  const server = await ec2Server(t);
  for (const key of ['local-ipv4s', 'subnet-ipv4-cidr-block']) delete server.tree[`network/interfaces/macs/${SECOND}/${key}`];
  server.tree[`network/interfaces/macs/${SECOND}/ipv6s`] = '2a05:d018:1:2400::7\n2a05:d018:1:2400::8';
  server.tree[`network/interfaces/macs/${SECOND}/subnet-ipv6-cidr-blocks`] = '2a05:d018:1:2400::/64';
  const ec2 = provider(server);
  const nic = (await ec2.fetch()).model.nics[1]!;
  t.deepEqual(nic.ipv4, []);
  t.is(nic.subnet, undefined);
  t.is(nic.gateway, undefined);
  t.deepEqual(nic.ipv6.map((ip) => ip.address), ['2a05:d018:1:2400::7', '2a05:d018:1:2400::8']);
  // its quick look asks for ipv6s, never for the absent local-ipv4s
  const mark = server.requests.length;
  await ec2.fetch();
  t.deepEqual(
    sent(server, mark).gets.filter((path) => path.includes(SECOND)),
    [`/latest/meta-data/network/interfaces/macs/${SECOND}/`, `/latest/meta-data/network/interfaces/macs/${SECOND}/ipv6s`].sort((a, b) => (a < b ? -1 : 1)),
  );
});

// ---- the IMDS's two addresses

test('when the first IMDS address does not answer, the second one is used and kept', async (t) => {
  const server = await ec2Server(t);
  const ec2 = new Ec2Provider({ ...fastClient(server.url), baseUrl: undefined, endpointUrls: ['http://127.0.0.1:9', server.url], requestsPerSecond: 1000 });
  const snapshot = await ec2.fetch();
  t.is(snapshot.model.nics.length, 2);
  await ec2.fetch();
  t.is(server.issued, 1);
});

test('on a VM without any IPv4 address the IPv6 address of the IMDS is asked first', async (t) => {
  const v4 = await ec2Server(t);
  const v6 = await ec2Server(t);
  const kernel = {
    links: [
      { index: 1, name: 'lo', mac: '00:00:00:00:00:00', up: true, mtu: 65536, loopback: true },
      { index: 2, name: 'eth0', mac: PRIMARY, up: true, mtu: 9001, loopback: false },
    ],
    addresses: [
      { ifindex: 1, family: 'inet' as const, address: '127.0.0.1', prefixLength: 8, dynamic: false, noPrefixRoute: false, scope: 254 },
      { ifindex: 2, family: 'inet6' as const, address: '2a05:d018:1:2300:aaaa:bbbb:cccc:1', prefixLength: 128, dynamic: true, noPrefixRoute: true, scope: 0 },
    ],
    routes: [],
    rules: [],
  };
  const ec2 = new Ec2Provider({ ...fastClient(v4.url), baseUrl: undefined, endpointUrls: [v4.url, v6.url], requestsPerSecond: 1000, kernelState: async () => kernel });
  await ec2.fetch();
  t.is(v4.requests.length, 0);
  t.true(v6.requests.length > 0);
});

test('the detection probe\'s token is the one the fetches use: one token PUT at start', async (t) => {
  const server = await ec2Server(t);
  const ec2 = provider(server);
  t.true(await ec2.detectByProbe());
  await ec2.fetch();
  t.is(server.requests.filter((r) => r.method === 'PUT').length, 1);
  t.is(server.requests.find((r) => r.method === 'PUT')!.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
});

test('when the address in use stops answering, a later fetch finds the IMDS at the other one', async (t) => {
  const first = await ec2Server(t);
  const second = await ec2Server(t);
  const ec2 = new Ec2Provider({ ...fastClient(first.url), baseUrl: undefined, endpointUrls: [first.url, second.url], requestsPerSecond: 1000 });
  await ec2.fetch();
  first.refuse();
  // the fetch that meets the silence fails (the last good model stays in force meanwhile)
  await t.throwsAsync(ec2.fetch(undefined, { thorough: true }), { instanceOf: MetadataError });
  const snapshot = await ec2.fetch(undefined, { thorough: true });
  t.is(snapshot.model.nics.length, 2);
  t.is(second.issued, 1);
});

test('an IMDS address that is gone when the token is renewed is left for the other one too', async (t) => {
  const first = await ec2Server(t);
  const second = await ec2Server(t);
  let now = 1_000_000;
  const ec2 = new Ec2Provider({ ...fastClient(first.url), baseUrl: undefined, endpointUrls: [first.url, second.url], requestsPerSecond: 1000, tokenTtlSeconds: 60, now: () => now });
  await ec2.fetch();
  first.refuse();
  now += 60_000; // the token is due: the next request is the PUT
  await t.throwsAsync(ec2.fetch(undefined, { thorough: true }), { instanceOf: MetadataError });
  t.is((await ec2.fetch(undefined, { thorough: true })).model.nics.length, 2);
  t.is(second.issued, 1);
});
