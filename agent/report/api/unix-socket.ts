// The REST API's Unix socket (StateDir/api.sock), cnctl's way in: a peer there has a uid
// (SO_PEERCRED), so root, the agent's own user and everyone else each have places of their own.
// A socket file a crashed agent left is replaced; one that another process still answers on is
// left to it.
import { chmod, lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { PeerCredentials } from '../../../netlink/libc.js';

/**
 * Whom a connection on the socket counts as. The unit's PrivateUsers= puts the agent in a user
 * namespace that maps only root and its own user, so SO_PEERCRED shows every other user as the
 * overflow uid 65534: the agent can tell those three apart and no more, and counts the same way
 * when it runs without the namespace.
 */
export type PeerClass = 'root' | 'agent' | 'others';

export const PEER_CLASSES: readonly PeerClass[] = ['root', 'agent', 'others'];

/** The class of a peer; one whose credentials cannot be read counts as everyone else. */
export function peerClass(peer: PeerCredentials | Error, agentUid: number): PeerClass {
  if (peer instanceof Error) return 'others';
  if (peer.uid === 0) return 'root';
  return peer.uid === agentUid ? 'agent' : 'others';
}

/**
 * Anyone may connect, as anyone may read the same API on loopback TCP: a user shut out of the
 * socket would only fall back to the TCP listener, which cannot tell users apart.
 */
export const API_SOCKET_MODE = 0o666;

/** How long a connect to an existing socket file may take before it counts as answered. */
const PROBE_TIMEOUT_MS = 1_000;

/** Listens on `path` (mode API_SOCKET_MODE) and hands every accepted socket to `onConnection`. */
export async function listenOnSocket(path: string, backlog: number, onConnection: (socket: Socket) => void): Promise<Server> {
  await removeStaleSocket(path);
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    await chmod(path, API_SOCKET_MODE);
  } catch (error) {
    server.close();
    throw error;
  }
  return server;
}

/** Removes `path` when it is a socket nobody answers on; throws when it is anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; remove it`);
  if (await answers(path)) {
    throw new Error(`another process (an agent with the same StateDir?) answers on ${path}; stop it first`);
  }
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Whether something accepts connections on the socket; only a refusal means nobody does. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const done = (live: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(live);
    };
    // a listener too busy to accept at once is still alive
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') done(false);
      else if (error.code === 'EAGAIN') done(true);
      else {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      }
    });
  });
}
