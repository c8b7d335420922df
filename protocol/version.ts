// The version every program reports (agent, helper, cnctl): the package's, found from this
// file's URL both in the source tree (protocol/version.ts: ../package.json) and in a bundle
// (dist/<program>/main.js, whose own URL import.meta.url becomes, in the checkout or the
// installed copy: ../../package.json).
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const text = readFileSync(new URL(relative, import.meta.url), 'utf8');
      const parsed = JSON.parse(text) as { name?: string; version?: string };
      if (parsed.name === 'cloud-network' && parsed.version) return parsed.version;
    } catch {
      // not at this level; try the next
    }
  }
  return 'unknown';
}
