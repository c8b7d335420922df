// Where the helper listens: the socket systemd passed (socket activation: LISTEN_PID/LISTEN_FDS,
// the first descriptor is 3), or a socket file it creates with mode 0660.
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { chown, lstat, mkdir, unlink } from './files.js';

const SD_LISTEN_FDS_START = 3;

export interface Listening {
  server: Server;
  activated: boolean;
  /** the socket file, when the helper created it (removed on exit) */
  path?: string;
}

/** Whether systemd passed this process a listening socket. */
export function socketActivated(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LISTEN_PID === String(process.pid) && Number(env.LISTEN_FDS) >= 1;
}

function listenOn(server: Server, target: { fd: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** True when something answers on the socket file: another helper is running. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export async function listen(server: Server, socketPath: string, gid: number | undefined): Promise<Listening> {
  if (socketActivated()) {
    // not for children: the variables describe this process only
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_FDNAMES;
    await listenOn(server, { fd: SD_LISTEN_FDS_START });
    return { server, activated: true };
  }
  await mkdir(dirname(socketPath), 0o755);
  const existing = await lstat(socketPath).catch(() => undefined);
  if (existing) {
    if (!existing.isSocket()) throw new Error(`${socketPath} exists and is not a socket; not replacing it`);
    if (await answers(socketPath)) throw new Error(`another helper is already listening on ${socketPath}`);
    await unlink(socketPath); // left behind by a helper that did not exit cleanly
  }
  // 0660 from the start: no moment in which the socket is open to everyone
  const previous = process.umask(0o117);
  try {
    await listenOn(server, { path: socketPath });
  } finally {
    process.umask(previous);
  }
  if (gid !== undefined) await chown(socketPath, -1, gid);
  return { server, activated: false, path: socketPath };
}

export { createServer };
