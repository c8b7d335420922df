// Azure says which NIC is primary nowhere in its metadata, and lists NICs in no guaranteed
// order. The primary NIC is the one DHCP configured, which carries the default route: read
// (never change) that route's link from /proc/net/route and its MAC from sysfs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalMac } from './document-fields.js';

/** The MAC of the link with the main table's best IPv4 default route; undefined when none. */
export async function defaultRouteMac(procRoot = '/proc', sysRoot = '/sys'): Promise<string | undefined> {
  try {
    const table = await readFile(join(procRoot, 'net', 'route'), 'utf8');
    let best: { link: string; metric: number } | undefined;
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; the default route is 0/0
    for (const line of table.split('\n').slice(1)) {
      const [link, destination, , , , , metric, mask] = line.trim().split(/\s+/);
      if (!link || destination !== '00000000' || mask !== '00000000') continue;
      if (!best || Number(metric) < best.metric) best = { link, metric: Number(metric) };
    }
    if (!best || best.link.includes('/') || best.link.startsWith('.')) return undefined;
    return canonicalMac(await readFile(join(sysRoot, 'class', 'net', best.link, 'address'), 'utf8'));
  } catch {
    return undefined;
  }
}
