// System users and groups the tests need (created when missing, as `make install` would).
import { execFileSync } from 'node:child_process';

function lookup(database: 'passwd' | 'group', name: string): string[] | undefined {
  try {
    return execFileSync('getent', [database, name], { encoding: 'utf8' }).trim().split(':');
  } catch {
    return undefined;
  }
}

export function ensureGroup(name: string): number {
  let entry = lookup('group', name);
  if (!entry) {
    try {
      execFileSync('groupadd', ['--system', name], { stdio: 'ignore' });
    } catch {
      /* created concurrently by another test process */
    }
    entry = lookup('group', name);
  }
  if (!entry) throw new Error(`could not create group ${name}`);
  return Number(entry[2]);
}

/** A system user with its own group and no login; returns uid and gid. */
export function ensureUser(name: string): { uid: number; gid: number } {
  let entry = lookup('passwd', name);
  if (!entry) {
    ensureGroup(name);
    try {
      execFileSync('useradd', ['--system', '--gid', name, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name], {
        stdio: 'ignore',
      });
    } catch {
      /* created concurrently by another test process */
    }
    entry = lookup('passwd', name);
  }
  if (!entry) throw new Error(`could not create user ${name}`);
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}
