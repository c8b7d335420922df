// The file system calls the helper makes, as promises over node:fs's callback functions.
// node:fs/promises would load modules the helper never uses (readline for
// FileHandle.readLines, the file watchers, directory streams) into every helper process
// (docs/performance.md, "Memory").
import { chown as chownCallback, close, fsync, lstat as lstatCallback, mkdir as mkdirCallback, open, readFile as readFileCallback, rename as renameCallback, unlink as unlinkCallback, write } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

export const readFile = promisify(readFileCallback);
export const rename = promisify(renameCallback);
export const unlink = promisify(unlinkCallback);
export const lstat = promisify(lstatCallback);
export const chown = promisify(chownCallback);
const mkdirPromise = promisify(mkdirCallback);
const openPromise = promisify(open);
const fsyncPromise = promisify(fsync);
const closePromise = promisify(close);

export async function mkdir(path: string, mode: number): Promise<void> {
  await mkdirPromise(path, { recursive: true, mode });
}

/** Writes from `offset` on; resolves with the number of bytes the kernel took. */
function writeSome(fd: number, bytes: Uint8Array, offset: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, bytes, offset, bytes.length - offset, null, (error, written) => (error ? reject(error) : resolve(written))));
}

/** Opens `path`, runs `use` on the descriptor, and closes it whatever happened. */
async function withFile(path: string, flags: string, mode: number, use: (fd: number) => Promise<void>): Promise<void> {
  const fd = await openPromise(path, flags, mode);
  try {
    await use(fd);
  } finally {
    await closePromise(fd);
  }
}

/**
 * Replaces `path` with `text` so that a crash leaves the old or the new content, never a mix:
 * a temporary file, written and synced, renamed over it, and the directory synced so that the
 * rename reaches the disk too.
 */
export async function replaceFile(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await withFile(temporary, 'w', mode, async (fd) => {
    // write() may take less than all of it
    const bytes = Buffer.from(text);
    for (let done = 0; done < bytes.length; ) done += await writeSome(fd, bytes, done);
    await fsyncPromise(fd);
  });
  await rename(temporary, path);
  await withFile(dirname(path), 'r', 0, (fd) => fsyncPromise(fd));
}
