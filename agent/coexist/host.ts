// What the agent reads of the file system to recognise other network tools (tools.ts judges
// it). Only what the agent's sandbox lets an unprivileged user read without D-Bus:
// ProtectSystem=strict leaves /etc, /usr and /run readable. Unit state comes from files systemd
// keeps: /run/systemd/units/invocation:UNIT exists while a unit is loaded after it started,
// /etc/systemd/system/*.wants/UNIT while it is enabled. A missing or unreadable place is
// simply nothing found there.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostFacts } from './tools.js';

/** Where networkd reads networkd.conf.d drop-ins, highest precedence first (systemd's CONF_PATHS). */
const NETWORKD_CONF_DIRS = ['/etc/systemd/networkd.conf.d', '/run/systemd/networkd.conf.d', '/usr/local/lib/systemd/networkd.conf.d', '/usr/lib/systemd/networkd.conf.d'];
const MARKERS = ['/run/amazon-ec2-net-utils'];
/** State files are a few hundred bytes; a larger one is not what we look for. */
const MAX_STATE_FILE = 64 * 1024;

async function entries(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return [];
  }
}

async function text(path: string): Promise<string | undefined> {
  try {
    const content = await readFile(path);
    return content.length > MAX_STATE_FILE ? undefined : content.toString('utf8');
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** ifindex → the text of each numbered state file in a directory. */
async function statesByIndex(root: string, dir: string): Promise<Map<number, string>> {
  const states = new Map<number, string>();
  for (const name of await entries(join(root, dir))) {
    if (!/^[0-9]{1,10}$/.test(name)) continue;
    const content = await text(join(root, dir, name));
    if (content !== undefined) states.set(Number(name), content);
  }
  return states;
}

/** Reads the host's facts under `root` ("/" on a VM; a directory in tests). */
export async function readHostFacts(root = '/'): Promise<HostFacts> {
  const runningUnits = new Set(
    (await entries(join(root, '/run/systemd/units')))
      .filter((name) => name.startsWith('invocation:'))
      .map((name) => name.slice('invocation:'.length)),
  );
  const enabledUnits = new Set<string>();
  for (const dir of await entries(join(root, '/etc/systemd/system'))) {
    if (!dir.endsWith('.wants')) continue;
    for (const unit of await entries(join(root, '/etc/systemd/system', dir))) enabledUnits.add(unit);
  }
  // networkd.conf, then the drop-ins by file name, a name in an earlier directory hiding the later ones
  const networkdConf: { path: string; text: string }[] = [];
  const main = await text(join(root, '/etc/systemd/networkd.conf'));
  if (main !== undefined) networkdConf.push({ path: '/etc/systemd/networkd.conf', text: main });
  const dropIns = new Map<string, string>();
  for (const dir of NETWORKD_CONF_DIRS) {
    for (const name of await entries(join(root, dir))) if (name.endsWith('.conf') && !dropIns.has(name)) dropIns.set(name, join(dir, name));
  }
  for (const name of [...dropIns.keys()].sort()) {
    const path = dropIns.get(name)!;
    const content = await text(join(root, path));
    if (content !== undefined) networkdConf.push({ path, text: content });
  }
  const present = new Set<string>();
  for (const marker of MARKERS) if (await exists(join(root, marker))) present.add(marker);
  return {
    runningUnits,
    enabledUnits,
    runtimeNetworkFiles: await entries(join(root, '/run/systemd/network')),
    networkdLinks: await statesByIndex(root, '/run/systemd/netif/links'),
    networkManagerDevices: await statesByIndex(root, '/run/NetworkManager/devices'),
    networkdConf,
    present,
  };
}
