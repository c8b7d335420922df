// At LogLevel=Debug the metadata client says what each request did: one line per attempt, with
// the status, size and time, and one per wait before a retry, with the Retry-After it honours.
import test from 'ava';
import { createProvider } from '../../agent/metadata/providers/index.js';
import { azureServer, fastClient, status } from '../fixtures/metadata-server.js';

test('each attempt and each wait before a retry is one debug line', async (t) => {
  const server = await azureServer(t);
  server.faults.push(status(429, { 'Retry-After': '3' }));
  const lines: string[] = [];
  const provider = createProvider('azure', { ...fastClient(server.url), requestsPerSecond: 1000, sleep: async () => undefined, debug: (line: string) => lines.push(line) });
  await provider.fetch();
  const what = 'azure metadata: GET /metadata/instance?api-version=2021-02-01';
  t.is(lines.length, 3, lines.join('\n'));
  t.regex(lines[0]!, new RegExp(`^${escape(what)}: 429, \\d+ bytes in \\d+ ms$`));
  t.is(lines[1], `${what}: retry 1 of 2 in 3000 ms (Retry-After 3 s)`);
  t.regex(lines[2]!, new RegExp(`^${escape(what)}: 200, \\d+ bytes in \\d+ ms \\(attempt 2\\)$`));
});

test('a request that gets no answer is a debug line with the reason', async (t) => {
  const lines: string[] = [];
  const provider = createProvider('azure', { ...fastClient('http://127.0.0.1:9'), retries: 0, sleep: async () => undefined, debug: (line: string) => lines.push(line) });
  await t.throwsAsync(provider.fetch());
  t.regex(lines[0]!, /^azure metadata: GET \/metadata\/instance\?api-version=2021-02-01: ECONNREFUSED \(127\.0\.0\.1:9\) after \d+ ms$/);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
