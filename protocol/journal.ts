// journald's stream protocol (sd-daemon(3)): under systemd, JOURNAL_STREAM holds the device and
// inode of the stream a service's stdout and stderr are connected to, and "<N>" before a line
// gives that line syslog priority N, so that `journalctl -p warning` finds the warnings.
import { fstatSync } from 'node:fs';

/** The syslog priorities the programs use. */
export const PRIORITY = { crit: 2, err: 3, warning: 4, info: 6, debug: 7 } as const;

/** Whether file descriptor `fd` is the journal's stream. */
export function isJournalStream(fd: number): boolean {
  const expected = process.env.JOURNAL_STREAM;
  if (!expected) return false;
  try {
    const { dev, ino } = fstatSync(fd, { bigint: true });
    return expected === `${dev}:${ino}`;
  } catch {
    return false;
  }
}

/** `text` with "<priority>" before each of its lines. */
export function withPriority(text: string, priority: number): string {
  return text.replace(/^(?=.)/gm, `<${priority}>`);
}

let stderrIsJournal: boolean | undefined;

/** Writes `text` to stderr, each line at `priority` (an error by default) when stderr is the journal. */
export function writeStderr(text: string, priority: number = PRIORITY.err): void {
  stderrIsJournal ??= isJournalStream(2);
  process.stderr.write(stderrIsJournal ? withPriority(text, priority) : text);
}
