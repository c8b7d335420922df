// The clients the REST API siege is made of, shared by its processes (api-siege*.ts): an idle
// flood that re-opens what the server closes, one raw exchange, and timed probes.
import { connect, type Socket } from 'node:net';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface FloodReport {
  /** connections opened, the re-opened ones included */
  opened: number;
  /** of those, closed by the server while the flood ran */
  closedByServer: number;
}

/** How long the floods wait before they open again a connection the server closed. */
export const REOPEN_AFTER_MS = 1_000;

/**
 * `n` connections that never send a byte; each one the server closes is opened again
 * REOPEN_AFTER_MS later, as an attacker keeping the places filled would.
 */
export function idleFlood(open: () => Socket, n: number, running: () => boolean): { report: FloodReport; stop(): void } {
  const report: FloodReport = { opened: 0, closedByServer: 0 };
  const sockets = new Set<Socket>();
  const one = () => {
    if (!running()) return;
    const socket = open();
    report.opened++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
    socket.on('close', () => {
      sockets.delete(socket);
      if (!running()) return;
      report.closedByServer++;
      setTimeout(one, REOPEN_AFTER_MS);
    });
  };
  for (let i = 0; i < n; i++) one();
  return {
    report,
    stop: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

export interface ProbeReport {
  count: number;
  answered: number;
  /** slowest answer, ms */
  maxMs: number;
  medianMs: number;
  /** the first few probes that were not answered, and why */
  failures: string[];
}

/** Probe results (ms, or why there was no answer) as a report. */
export function probeReport(results: (number | string)[]): ProbeReport {
  const times = results.filter((r): r is number => typeof r === 'number').sort((a, b) => a - b);
  return {
    count: results.length,
    answered: times.length,
    maxMs: Math.round(times.at(-1) ?? 0),
    medianMs: Math.round(times[Math.floor(times.length / 2)] ?? 0),
    failures: results.filter((r): r is string => typeof r === 'string').slice(0, 5),
  };
}

/** One raw exchange on 127.0.0.1:5209: every status code the server sent before it closed (none: []). */
export function exchange(request: string | Buffer, timeoutMs = 15_000): Promise<number[]> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(5209, '127.0.0.1');
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))));
    socket.write(request);
  });
}

/** Status codes as counts: {"200": 100, "503": 1900}; 0 stands for a connection closed without one. */
export function tallyStatuses(statuses: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[String(s)] = (out[String(s)] ?? 0) + 1;
  return out;
}
