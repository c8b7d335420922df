// The agent's logger: bunyan, at the configured LogLevel, written as JSON lines or as one
// readable line per record ("2026-11-28T12:00:00Z INFO Successfully added address='10.4.0.5/24'
// on link='eth1'"). In the journal each line starts with its priority ("<6>INFO Successfully
// ..."), and a text line has no time of its own: journald records when each line came.
import bunyan from 'bunyan';
import type Logger from 'bunyan';
import { isJournalStream } from '../../protocol/journal.js';
import type { LogFormat, LogLevel } from './config.js';

const BUNYAN_LEVEL: Record<LogLevel, bunyan.LogLevelString> = {
  Trace: 'trace',
  Debug: 'debug',
  Info: 'info',
  Warning: 'warn',
  Error: 'error',
  // bunyan has no level above fatal; Panic means "only the worst"
  Fatal: 'fatal',
  Panic: 'fatal',
};

const LEVEL_NAME: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'FATAL',
};

/** syslog priorities of bunyan's levels (debug 7, info 6, warning 4, err 3, crit 2) */
const JOURNAL_PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

/** bunyan's own record fields; everything else is the caller's context. */
const CORE_FIELDS = new Set(['name', 'hostname', 'pid', 'level', 'time', 'msg', 'v', 'src']);

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  name?: string;
  /** where lines go; default stderr (journald under systemd) */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.stream ?? process.stderr;
  const level = BUNYAN_LEVEL[options.level];
  const journal = options.stream === undefined && isJournalStream(2);
  const line = (record: Record<string, unknown>, text: string) => (journal ? `<${JOURNAL_PRIORITY[record.level as number] ?? 6}>` : '') + text + '\n';
  const raw = (format: (record: Record<string, unknown>) => string): bunyan.Stream => ({
    level,
    type: 'raw',
    stream: { write: (record: Record<string, unknown>) => out.write(line(record, format(record))) } as unknown as NodeJS.WritableStream,
  });
  const stream: bunyan.Stream =
    options.format === 'json'
      ? journal
        ? raw((record) => JSON.stringify(record, bunyan.safeCycles()))
        : { level, stream: out }
      : raw(journal ? (record) => formatTextRecord(record, { time: false }) : formatTextRecord);
  return bunyan.createLogger({ name: options.name ?? 'cloud-network', streams: [stream], serializers: bunyan.stdSerializers });
}

/**
 * One record as a line: time (to the second, UTC; left out with `time: false`), level, message,
 * then key='value' context.
 */
export function formatTextRecord(record: Record<string, unknown>, options: { time?: boolean } = {}): string {
  const level = LEVEL_NAME[record.level as number] ?? String(record.level);
  const parts = [...(options.time === false ? [] : [timeStamp(record.time)]), level, String(record.msg ?? '')];
  for (const [key, value] of Object.entries(record)) {
    if (CORE_FIELDS.has(key) || value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.filter((p) => p !== '').join(' ');
}

function timeStamp(value: unknown): string {
  const time = value instanceof Date ? value : new Date(String(value ?? Date.now()));
  return Number.isNaN(time.getTime()) ? String(value) : time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return `'${value.replace(/\n/g, '\\n')}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value instanceof Error) return `'${value.message}'`;
  // bunyan's err serializer turns errors into { message, name, stack }
  if (typeof value === 'object' && 'message' in value && 'stack' in value) return `'${String((value as { message: unknown }).message)}'`;
  return JSON.stringify(value);
}

/** Changes the level of a running logger (SIGHUP with a new LogLevel=). */
export function setLogLevel(log: Logger, level: LogLevel): void {
  log.level(BUNYAN_LEVEL[level]);
}
