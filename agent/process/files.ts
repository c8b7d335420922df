// Files the agent writes under StateDir (state files, nic-indexes.json, agent.pid): each one
// whole or not at all, for readers that may look at any moment (cnctl, local tools).
import { rename, writeFile } from 'node:fs/promises';

/** Writes a temporary file beside `path`, mode 0644, and renames it over `path`. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o644 });
  await rename(temp, path);
}
