// StateDir belongs to the agent's user (systemd-tmpfiles makes /run/cloud-network the
// cloud-network user's). A run as root, an operator's `cloud-network --once` or `--cleanup`,
// becomes that user before it touches StateDir, so that nothing it leaves there is root's: a
// root-owned state file, or a directory of them, would refuse every later write of the agent.
import { mkdirSync, statSync } from 'node:fs';

export interface StateDirOwner {
  uid: number;
  gid: number;
}

/**
 * When running as root and StateDir belongs to another user, becomes that user (its groups, then
 * its gid, then its uid) and returns who that is; undefined when nothing changed (not root, a
 * StateDir of root's own, or none yet). The configuration must have been read already.
 */
export function becomeStateDirOwner(stateDir: string): StateDirOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let owner: StateDirOwner;
  try {
    const info = statSync(stateDir);
    owner = { uid: info.uid, gid: info.gid };
  } catch {
    return undefined;
  }
  if (owner.uid === 0) return undefined;
  // Node has process.initgroups on POSIX; its types leave it out
  const initgroups = (process as { initgroups?: (user: number, extraGroup: number) => void }).initgroups;
  try {
    // the user's supplementary groups where the user database knows the uid; else the directory's group alone
    initgroups!.call(process, owner.uid, owner.gid);
  } catch {
    process.setgroups!([owner.gid]);
  }
  process.setgid!(owner.gid);
  process.setuid!(owner.uid);
  return owner;
}

/**
 * Makes sure StateDir exists before the agent writes there. Root does not create it: a StateDir
 * of root's would lock the agent's user out of it for good.
 */
export function ensureStateDir(stateDir: string): void {
  try {
    if (statSync(stateDir).isDirectory()) return;
    throw new Error(`StateDir ${stateDir} is not a directory`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (process.getuid?.() === 0) {
    throw new Error(
      `StateDir ${stateDir} does not exist, and root does not create it (the agent's user could not write there afterwards): ` +
        `create it for the agent's user (systemd-tmpfiles --create, or install -d -o cloud-network -g cloud-network ${stateDir})`,
    );
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
}
