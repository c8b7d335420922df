// The address ledger: the addresses the helper created, kept in a JSON file so that ownership
// survives restarts on kernels without IFA_PROTO (before Linux 5.18). Written atomically
// (temporary file, fsync, rename), so a crash leaves either the old or the new ledger.
// A ledger that cannot be read is set aside and started empty: that can only make the helper
// refuse to remove an address it made, never remove one it did not.
import { dirname } from 'node:path';
import { lstat, mkdir, readFile, rename, replaceFile } from './files.js';
import type { Log } from './log.js';
import type { LedgerView } from './policy.js';

/**
 * The helper's own runtime directory (the unit's RuntimeDirectory=, mode 0700): never the agent's
 * StateDir, where the agent's user could rewrite what the helper may remove.
 */
export const DEFAULT_LEDGER_PATH = '/run/cloud-network-helper/ledger.json';

export interface LedgerEntry {
  link: string;
  /** canonical "address/length" */
  address: string;
  /** when the helper added it (ISO 8601) */
  added: string;
}

interface LedgerFile {
  version: 1;
  addresses: LedgerEntry[];
}

const key = (link: string, address: string) => `${link} ${address}`;

function isEntry(value: unknown): value is LedgerEntry {
  const v = value as LedgerEntry;
  return typeof v === 'object' && v !== null && typeof v.link === 'string' && typeof v.address === 'string' && typeof v.added === 'string';
}

export class AddressLedger implements LedgerView {
  private readonly entries = new Map<string, LedgerEntry>();

  private constructor(readonly path: string) {}

  static async open(path: string, log: Log): Promise<AddressLedger> {
    const ledger = new AddressLedger(path);
    await warnIfOthersWrite(dirname(path), log);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ledger;
      throw new Error(`cannot read the address ledger ${path}: ${(error as Error).message}`);
    }
    try {
      const parsed = JSON.parse(text) as LedgerFile;
      if (parsed?.version !== 1 || !Array.isArray(parsed.addresses) || !parsed.addresses.every(isEntry)) {
        throw new Error('not a version 1 ledger');
      }
      for (const entry of parsed.addresses) ledger.entries.set(key(entry.link, entry.address), entry);
    } catch (error) {
      const aside = `${path}.unreadable-${Date.now()}`;
      await rename(path, aside).catch(() => undefined);
      log.warn(
        { ledger: path, movedTo: aside, err: (error as Error).message },
        'the address ledger is unreadable; starting with an empty one (addresses without the cloud-network protocol tag will not be removed)',
      );
    }
    return ledger;
  }

  has(link: string, address: string): boolean {
    return this.entries.has(key(link, address));
  }

  list(): LedgerEntry[] {
    return [...this.entries.values()];
  }

  /** Records addresses (link and canonical "address/length") in one write. */
  async add(...addresses: { link: string; address: string }[]): Promise<void> {
    const added = new Date().toISOString();
    let changed = false;
    for (const { link, address } of addresses) {
      if (this.has(link, address)) continue;
      this.entries.set(key(link, address), { link, address, added });
      changed = true;
    }
    if (changed) await this.save();
  }

  async remove(...addresses: { link: string; address: string }[]): Promise<void> {
    let changed = false;
    for (const { link, address } of addresses) changed = this.entries.delete(key(link, address)) || changed;
    if (changed) await this.save();
  }

  /** Keeps only the entries `stillPresent` accepts; saves when something was dropped. */
  async retain(stillPresent: (entry: LedgerEntry) => boolean): Promise<void> {
    let dropped = false;
    for (const [k, entry] of this.entries) {
      if (!stillPresent(entry)) {
        this.entries.delete(k);
        dropped = true;
      }
    }
    if (dropped) await this.save();
  }

  private async save(): Promise<void> {
    const content: LedgerFile = { version: 1, addresses: this.list() };
    await mkdir(dirname(this.path), 0o700);
    await replaceFile(this.path, JSON.stringify(content, null, 1) + '\n', 0o600);
  }
}

/**
 * Whoever may write the ledger's directory may replace the ledger, and so decide which untagged
 * addresses the helper will remove: only root and the helper itself should.
 */
async function warnIfOthersWrite(directory: string, log: Log): Promise<void> {
  const info = await lstat(directory).catch(() => undefined);
  if (!info) return; // created by the first save, mode 0700
  const self = process.getuid?.() ?? 0;
  const otherOwner = info.uid !== self && info.uid !== 0;
  const shared = (info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0;
  if (!otherOwner && !shared) return;
  const who = otherOwner ? `its owner, uid ${info.uid}` : info.mode & 0o002 ? 'every user' : `the members of group ${info.gid}`;
  log.warn(
    { directory, owner: info.uid, mode: `0${(info.mode & 0o7777).toString(8)}` },
    `the ledger's directory ${directory} can be written by ${who}, who could then change which addresses the helper removes; give it a directory only the helper writes (the unit's /run/cloud-network-helper)`,
  );
}
