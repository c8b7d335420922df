// Run inside the vm namespace by api-cases.ts, as root, while api-siege.ts floods the agent's
// REST API: from a line on stdin on, the hostile requests of issue #27, one kind after the
// other: requests with 1 MiB of headers, 200 POSTs with 64 KiB bodies at once, 2,000 GETs
// pipelined on one connection. A process of its own, so that the floods' work does not delay
// its sending. Prints one JSON line.
import { once } from 'node:events';
import { exchange, sleep, tallyStatuses } from './api-siege-clients.js';

await once(process.stdin.resume(), 'data');

const headers: number[] = [];
for (let i = 0; i < 3; i++) {
  headers.push((await exchange(`GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`))[0] ?? 0);
  await sleep(500);
}

const body = Buffer.alloc(64 * 1024, 'a');
const post = Buffer.concat([Buffer.from(`POST /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
const posts = tallyStatuses((await Promise.all(Array.from({ length: 200 }, () => exchange(post)))).map((a) => a[0] ?? 0));

const pipelined = tallyStatuses(await exchange('GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(2_000), 20_000));

process.stdout.write(JSON.stringify({ headers, posts, pipelined }) + '\n');
process.exit(0);
