// Run inside the vm namespace by api-cases.ts, as root: the floods of issue #27 against the
// agent's REST API for SECONDS, 1,000 idle TCP connections and 100 slowloris clients, and the
// same idle flood on the socket from the user nobody (api-siege-nobody.ts). The hostile
// requests (api-siege-requests.ts) and the clients that must be answered (api-siege-probe.ts)
// are processes of their own, so that this one's load does not slow their sending. Prints
// "siege" once the floods are in place, then the report as one JSON line.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { idleFlood, sleep, type FloodReport, type ProbeReport } from './api-siege-clients.js';

const HOST = '127.0.0.1';
const PORT = 5209;
const [socketPath, secondsText] = process.argv.slice(2);
const SECONDS = Number(secondsText);
const HERE = dirname(fileURLToPath(import.meta.url));

const tcp = () => connect(PORT, HOST);
let running = true;

/** Clients that send a header line a second and never end their request; reconnect when cut off. */
function slowloris(clients: number): { clients: number; cutOff: number } {
  const report = { clients, cutOff: 0 };
  const one = () => {
    if (!running) return;
    const socket = tcp();
    let line = 0;
    socket.write('GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const timer = setInterval(() => socket.write(`X-Slow-${line++}: v\r\n`), 1_000);
    socket.on('error', () => {});
    socket.resume();
    socket.on('close', () => {
      clearInterval(timer);
      if (!running) return;
      report.cutOff++;
      setTimeout(one, 1_000);
    });
    stopping.push(() => socket.destroy());
  };
  for (let i = 0; i < clients; i++) one();
  return report;
}

const stopping: (() => void)[] = [];

/** The same idle flood on the socket, from the user nobody. */
function nobodyFlood(): Promise<{ flood: FloodReport; probes: ProbeReport } | { error: string }> {
  const child = spawn(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, '--import=tsx', join(HERE, 'api-siege-nobody.ts'), socketPath!, String(SECONDS)],
    { cwd: join(HERE, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    // 'close': the report may still be in the pipe when the process has exited
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as { flood: FloodReport; probes: ProbeReport });
      } catch {
        resolve({ error: `the nobody flood exited ${code}: ${err.slice(-400)}` });
      }
    }),
  );
}

const end = Date.now() + SECONDS * 1_000;
const nobody = nobodyFlood();
const tcpFlood = idleFlood(tcp, 1_000, () => running);
const loris = slowloris(100);
// let the floods fill every place before the clients that must be answered come
await sleep(1_500);
process.stdout.write('siege\n');
await sleep(end - Date.now());
running = false;
tcpFlood.stop();
for (const stop of stopping) stop();
const report = {
  tcpFlood: tcpFlood.report,
  slowloris: loris,
  nobody: await nobody,
};
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
