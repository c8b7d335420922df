// Run inside the vm namespace by api-cases.ts, as root, while api-siege.ts abuses the agent's
// REST API: a process of its own, so that the attackers' work does not delay its clocks. From
// a line on stdin on, for SECONDS, every 400 ms a fresh TCP connection and cnctl's own client on
// the agent's socket each ask for /api/v1/status, timed from the connect to the whole answer.
// Prints one JSON line.
import { once } from 'node:events';
import { connect } from 'node:net';
import { AgentClient } from '../../cnctl/client.js';
import { API_PATHS, type StatusResource } from '../../protocol/rest.js';
import { probeReport, sleep, type ProbeReport } from './api-siege-clients.js';

const [socketPath, secondsText] = process.argv.slice(2);
await once(process.stdin.resume(), 'data');
const begun = Date.now();
const end = begun + Number(secondsText) * 1_000;
const at = () => `${((Date.now() - begun) / 1000).toFixed(1)} s in`;

/** A fresh TCP connection, as curl or the Go tool would make: ms to the whole answer. */
function tcpProbe(): Promise<number | string> {
  const started = performance.now();
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(5209, '127.0.0.1');
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1];
      resolve(status === '200' ? performance.now() - started : `${at()}: ${status ? `answered ${status}` : 'closed without an answer'} after ${Math.round(performance.now() - started)} ms`);
    });
    socket.write(`GET ${API_PATHS.status} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

/** cnctl's client (cnctl/client.ts) on the agent's socket: ms to the parsed status. */
async function socketProbe(): Promise<number | string> {
  const started = performance.now();
  try {
    const status = await new AgentClient({ socket: socketPath! }, '--socket', 5_000).get<StatusResource>(API_PATHS.status);
    return status.ready ? performance.now() - started : `${at()}: not ready`;
  } catch (error) {
    return `${at()}: ${(error as Error).message.slice(0, 200)}`;
  }
}

async function probeLoop(probe: () => Promise<number | string>): Promise<ProbeReport> {
  const results: (number | string)[] = [];
  while (Date.now() < end) {
    const next = sleep(400);
    results.push(await probe());
    await next;
  }
  return probeReport(results);
}

const [tcp, socket] = await Promise.all([probeLoop(tcpProbe), probeLoop(socketProbe)]);
process.stdout.write(JSON.stringify({ tcp, socket }) + '\n');
process.exit(0);
