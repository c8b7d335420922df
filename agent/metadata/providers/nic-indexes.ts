// Stable NIC indexes for clouds that give none. Azure lists NICs in no guaranteed order and
// has no device number, so its provider numbers them by position; a NIC attached later could
// then shift the others into different route tables. This keeps the first assignment of
// every MAC for as long as the VM runs: the assignments live in StateDir (a tmpfs, cleared at
// boot), and a new MAC takes the lowest free index. The Azure provider applies it (azure.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetadataModel } from '../model.js';
import { writeAtomically } from '../../process/files.js';

export class NicIndexes {
  private assignments?: Map<string, number>;

  constructor(
    private readonly stateDir: string,
    /** assign as usual but keep the assignments in memory only (--dry-run writes nothing) */
    private readonly options: { readOnly?: boolean } = {},
  ) {}

  private get file(): string {
    return join(this.stateDir, 'nic-indexes.json');
  }

  /** Returns the model with indexes replaced by the stable ones, persisting new assignments. */
  async stabilise(model: MetadataModel): Promise<MetadataModel> {
    if (!this.assignments) this.assignments = await this.load();
    const assignments = this.assignments;
    let changed = false;
    const primary = model.nics.find((n) => n.primary);
    // the primary NIC is 0 on every cloud; keep it so even if an older file says otherwise
    if (primary && assignments.get(primary.mac) !== 0) {
      for (const [mac, index] of assignments) if (index === 0) assignments.delete(mac);
      assignments.set(primary.mac, 0);
      changed = true;
    }
    const used = new Set(assignments.values());
    for (const nic of [...model.nics].sort((a, b) => a.index - b.index)) {
      if (assignments.has(nic.mac)) continue;
      let index = 1;
      while (used.has(index)) index++;
      assignments.set(nic.mac, index);
      used.add(index);
      changed = true;
    }
    if (changed && !this.options.readOnly) {
      await writeAtomically(this.file, JSON.stringify(Object.fromEntries(assignments), null, 2) + '\n');
    }
    return { ...model, nics: model.nics.map((nic) => ({ ...nic, index: assignments.get(nic.mac)! })) };
  }

  private async load(): Promise<Map<string, number>> {
    try {
      const data: unknown = JSON.parse(await readFile(this.file, 'utf8'));
      const map = new Map<string, number>();
      if (data && typeof data === 'object') {
        for (const [mac, index] of Object.entries(data)) {
          if (Number.isInteger(index) && (index as number) >= 0 && (index as number) < 1000) map.set(mac, index as number);
        }
      }
      return map;
    } catch {
      return new Map(); // none yet, or unreadable: start afresh (tables are rebuilt anyway)
    }
  }
}
