// The API's Listen= address: "127.0.0.1:5209", "[::1]:5209" or "localhost:5209". Shared by
// the server (where to listen) and cnctl (where to connect).
import { isIP } from 'node:net';

export const DEFAULT_LISTEN = '127.0.0.1:5209';

export interface ListenAddress {
  /** without brackets: "127.0.0.1", "::1", "localhost" */
  host: string;
  port: number;
}

export function parseListen(text: string): ListenAddress {
  const trimmed = text.trim();
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(trimmed) ?? /^([^:[\]]+):(\d+)$/.exec(trimmed);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (!match || !host) {
    throw new Error(`Listen=${JSON.stringify(text)} is not HOST:PORT (examples: 127.0.0.1:5209, [::1]:5209)`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`Listen=${JSON.stringify(text)}: port ${match[2]} is not between 0 and 65535`);
  }
  if (host.includes(':') && isIP(host) !== 6) {
    throw new Error(`Listen=${JSON.stringify(text)}: ${host} is not an IPv6 address`);
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){1,7}0{0,3}1$/.test(host) || host.toLowerCase().startsWith('::ffff:127.');
  return false;
}

/** The URL a local client uses: a wildcard listen address is reached over loopback. */
export function urlForListen(address: ListenAddress): string {
  let host = address.host;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${address.port}`;
}
