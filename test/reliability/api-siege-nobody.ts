// Run as the user nobody by api-siege.ts: 1,000 idle connections to the agent's API socket,
// re-opened when closed, for SECONDS; meanwhile cnctl's client asks for the status every
// 400 ms as the same user. Prints one JSON line.
import { connect } from 'node:net';
import { AgentClient } from '../../cnctl/client.js';
import { API_PATHS } from '../../protocol/rest.js';
import { idleFlood, probeReport, sleep } from './api-siege-clients.js';

const [socketPath, secondsText] = process.argv.slice(2);
const end = Date.now() + Number(secondsText) * 1_000;
let running = true;
const flood = idleFlood(() => connect(socketPath!), 1_000, () => running);
await sleep(1_500);
const results: (number | string)[] = [];
while (Date.now() < end) {
  const next = sleep(400);
  const started = performance.now();
  try {
    await new AgentClient({ socket: socketPath! }, '--socket', 5_000).get(API_PATHS.status);
    results.push(performance.now() - started);
  } catch (error) {
    results.push((error as Error).message);
  }
  await next;
}
running = false;
flood.stop();
process.stdout.write(JSON.stringify({ flood: flood.report, probes: probeReport(results) }) + '\n');
process.exit(0);
