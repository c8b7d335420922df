// Which capabilities the helper runs with, from the kernel's own account (/proc/self/status):
// without CAP_NET_ADMIN every change it is asked for fails, so it says so at start.
import { readFileSync } from 'node:fs';

/** linux/capability.h */
const CAP_NET_ADMIN = 12n;

/** Whether CAP_NET_ADMIN is in this process's effective set; undefined when /proc cannot tell. */
export function holdsNetAdmin(status = readStatus()): boolean | undefined {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status ?? '')?.[1];
  if (effective === undefined) return undefined;
  return ((BigInt(`0x${effective}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

function readStatus(): string | undefined {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
}
