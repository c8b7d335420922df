// Transport faults, the same for every cloud: each ends in a MetadataError (never a model with
// less in it), transient ones are retried within the limits, and Retry-After is honoured.
import test, { type ExecutionContext } from 'ava';
import { MetadataError, type MetadataErrorKind } from '../../agent/metadata/errors.js';
import type { ProviderName } from '../../agent/metadata/model.js';
import { createProvider, type AnyProviderOptions, type Provider } from '../../agent/metadata/providers/index.js';
import { azureServer, body, ec2Server, endless, fastClient, fixtureText, gcpServer, hang, simulatedServer, status, truncate, type Fault, type TestServer } from '../fixtures/metadata-server.js';
import { jacksonJson } from '../imds-sim/answer.js';
import { ociVnics } from '../imds-sim/oci.js';
import { loadScenario } from '../imds-sim/scenario.js';

// the main document's path for EC2 and Alibaba is the MAC listing, for OCI the VNIC list
const GCP_FLAVOR = { 'Metadata-Flavor': 'Google', ETag: 'e1' };

interface Setup {
  server: TestServer;
  provider: Provider;
  delays: number[];
  /** the main document's text, for truncation */
  document: string;
  /** headers a genuine answer carries */
  headers: Record<string, string>;
}

async function setup(t: ExecutionContext, name: ProviderName, options: AnyProviderOptions = {}): Promise<Setup> {
  const delays: number[] = [];
  const sleep = async (ms: number) => {
    delays.push(ms);
  };
  const server =
    name === 'azure'
      ? await azureServer(t)
      : name === 'ec2'
        ? await ec2Server(t, { faultPath: /\/macs\/$/ })
        : name === 'oci'
          ? await simulatedServer(t, 'oci', /\/opc\/v2\/vnics/)
          : name === 'aliyun'
            ? await simulatedServer(t, 'aliyun', /\/macs\/$/)
            : await gcpServer(t);
  const documents: Record<ProviderName, () => string> = {
    azure: () => fixtureText('azure-instance.json'),
    gcp: () => fixtureText('gcp-instance.json'),
    ec2: () => '0a:1f:9a:00:00:02/\n0a:1f:9a:00:00:09/',
    oci: () => jacksonJson(ociVnics(loadScenario('builtin:oci'))),
    aliyun: () => '00:16:3e:0f:a1:27/\n00:16:3e:30:3e:ca/',
  };
  const document = documents[name]();
  const provider = createProvider(name, { ...fastClient(server.url), requestsPerSecond: 1000, sleep, ...options });
  return { server, provider, delays, document, headers: name === 'gcp' ? GCP_FLAVOR : {} };
}

const PROVIDERS: ProviderName[] = ['azure', 'ec2', 'gcp', 'oci', 'aliyun'];

/** Faults answer the request for the main document (EC2: the MAC listing). */
function inject(s: Setup, ...faults: Fault[]): void {
  s.server.faults.push(...faults);
}

async function fails(t: ExecutionContext, s: Setup, kind: MetadataErrorKind): Promise<MetadataError> {
  const error = await t.throwsAsync(s.provider.fetch(), { instanceOf: MetadataError });
  t.is(error!.kind, kind, error!.message);
  t.is(error!.provider, s.provider.name);
  return error!;
}

for (const name of PROVIDERS) {
  test(`${name}: a 500 that persists is an error after the retries`, async (t) => {
    const s = await setup(t, name);
    inject(s, status(500), status(500), status(500));
    const error = await fails(t, s, 'status');
    t.is(error.status, 500);
    t.is(s.delays.length, 2, 'two retries, then the error');
  });

  test(`${name}: a 503 that clears is retried and the fetch succeeds`, async (t) => {
    const s = await setup(t, name);
    inject(s, status(503), status(503));
    const snapshot = await s.provider.fetch();
    t.is(snapshot.model.nics.length, name === 'azure' ? 3 : 2);
    t.is(s.delays.length, 2);
  });

  test(`${name}: a 429 waits as long as Retry-After says before trying again`, async (t) => {
    const s = await setup(t, name);
    inject(s, status(429, { 'Retry-After': '3' }));
    await s.provider.fetch();
    t.deepEqual(s.delays.length, 1);
    t.true(s.delays[0]! >= 3000, `waited ${s.delays[0]} ms`);
  });

  test(`${name}: a service that never answers is a timeout error`, async (t) => {
    const s = await setup(t, name, { retries: 0, requestTimeoutMs: 200 });
    inject(s, hang);
    const error = await fails(t, s, 'timeout');
    t.regex(error.message, /no complete answer within 200 ms/);
  });

  test(`${name}: a truncated body is an error`, async (t) => {
    const s = await setup(t, name, { retries: 1 });
    inject(s, truncate(s.document, s.headers), truncate(s.document, s.headers));
    await fails(t, s, 'truncated');
  });

  test(`${name}: a body larger than the limit is an error, and reading stops`, async (t) => {
    // time enough to read past the limit on a busy machine: a timeout would be retried and the retry answered
    const s = await setup(t, name, { maxBodyBytes: 256 * 1024, requestTimeoutMs: 10_000 });
    inject(s, endless);
    const error = await fails(t, s, 'too-large');
    t.regex(error.message, /exceeds the 262144 bytes accepted; stopped reading/);
  });

  test(`${name}: a declared Content-Length over the limit is refused before reading`, async (t) => {
    const s = await setup(t, name, { maxBodyBytes: 1024 });
    inject(s, body(' '.repeat(4096), s.headers));
    const error = await fails(t, s, 'too-large');
    t.regex(error.message, /declares 4096 bytes, more than the 1024 accepted/);
  });
}

for (const name of ['azure', 'gcp', 'oci'] as const) {
  test(`${name}: malformed JSON is an error`, async (t) => {
    const s = await setup(t, name);
    inject(s, body(name === 'oci' ? '[ {\n  "vnicId" : "ocid1.vnic.oc1' : '{"compute": {"vmId": "x"', s.headers));
    const error = await fails(t, s, 'malformed');
    t.regex(error.message, /not valid JSON/);
  });
}

test('a refused connection is a network error naming the address', async (t) => {
  const provider = createProvider('azure', { ...fastClient('http://127.0.0.1:9'), retries: 1, sleep: async () => undefined });
  const error = await t.throwsAsync(provider.fetch(), { instanceOf: MetadataError });
  t.is(error!.kind, 'network');
  t.regex(error!.message, /ECONNREFUSED \(127\.0\.0\.1:9\)/);
});
