// The helper's log: one JSON object per line on stdout (journald keeps it), in bunyan's record
// format (name, hostname, pid, level, the fields, msg, time, v), so `bunyan` and the agent's
// tools read both programs' logs alike. Not bunyan itself: bunyan and what it loads (assert,
// os, streams, safe-json-stringify) would be resident in every helper process for the five
// methods below (docs/performance.md, "Memory").
import { hostname } from 'node:os';
import { isJournalStream } from '../protocol/journal.js';

export type LevelName = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** bunyan's numbers for the levels */
const LEVELS: Record<LevelName, number> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

type Fields = Record<string, unknown>;

/** syslog priorities of the levels (debug 7, info 6, warning 4, err 3, crit 2) */
const JOURNAL_PRIORITY: Record<number, number> = { 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

export interface Log {
  debug(fieldsOrMessage: Fields | string, message?: string): void;
  info(fieldsOrMessage: Fields | string, message?: string): void;
  warn(fieldsOrMessage: Fields | string, message?: string): void;
  error(fieldsOrMessage: Fields | string, message?: string): void;
  fatal(fieldsOrMessage: Fields | string, message?: string): void;
}

/** An Error as bunyan's err serializer writes it; JSON.stringify would write {}. */
function errorFields(error: Error): Fields {
  const fields: Fields = { message: error.message, name: error.name, stack: error.stack };
  const { code, signal } = error as { code?: unknown; signal?: unknown };
  if (code !== undefined) fields.code = code;
  if (signal !== undefined) fields.signal = signal;
  return fields;
}

/** JSON of one record; a value JSON cannot write (a cycle, a BigInt) becomes a note, never a lost line. */
function serialize(record: Fields): string {
  try {
    return JSON.stringify(record, (_key, value: unknown) => (value instanceof Error ? errorFields(value) : value));
  } catch (error) {
    const { name, hostname: host, pid, level, msg, time, v } = record;
    return JSON.stringify({ name, hostname: host, pid, level, msg, logError: `the record's fields could not be written: ${(error as Error).message}`, time, v });
  }
}

export class JsonLineLog implements Log {
  private readonly threshold: number;
  private readonly host = hostname();
  private readonly write: (line: string) => void;
  private readonly journal: boolean;

  constructor(
    private readonly name: string,
    level: LevelName = 'info',
    write?: (line: string) => void,
  ) {
    this.threshold = LEVELS[level];
    this.write = write ?? ((line) => void process.stdout.write(line));
    // each line at its priority in the journal (sd-daemon(3)), so `journalctl -p warning` finds the refusals
    this.journal = write === undefined && isJournalStream(1);
  }

  debug(fieldsOrMessage: Fields | string, message?: string): void {
    this.emit(LEVELS.debug, fieldsOrMessage, message);
  }

  info(fieldsOrMessage: Fields | string, message?: string): void {
    this.emit(LEVELS.info, fieldsOrMessage, message);
  }

  warn(fieldsOrMessage: Fields | string, message?: string): void {
    this.emit(LEVELS.warn, fieldsOrMessage, message);
  }

  error(fieldsOrMessage: Fields | string, message?: string): void {
    this.emit(LEVELS.error, fieldsOrMessage, message);
  }

  fatal(fieldsOrMessage: Fields | string, message?: string): void {
    this.emit(LEVELS.fatal, fieldsOrMessage, message);
  }

  private emit(level: number, fieldsOrMessage: Fields | string, message?: string): void {
    if (level < this.threshold) return;
    const fields = typeof fieldsOrMessage === 'string' ? {} : fieldsOrMessage;
    const msg = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
    const record: Fields = { name: this.name, hostname: this.host, pid: process.pid, level };
    for (const key of Object.keys(fields)) {
      // the record's own fields stay bunyan's
      if (!(key in record) && key !== 'msg' && key !== 'time' && key !== 'v') record[key] = fields[key];
    }
    record.msg = msg;
    record.time = new Date().toISOString();
    record.v = 0;
    this.write((this.journal ? `<${JOURNAL_PRIORITY[level] ?? 6}>` : '') + serialize(record) + '\n');
  }
}
