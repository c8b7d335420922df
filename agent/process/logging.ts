// The agent's logger: bunyan, at the configured LogLevel, written as JSON lines or as one
// readable line per record ("2026-11-28T12:00:00Z INFO Successfully added address='10.4.0.5/24'
// on link='eth1'") for journald, which adds its own timestamps but keeps ours for copies.
import bunyan from 'bunyan';
import type Logger from 'bunyan';
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
  const stream: bunyan.Stream =
    options.format === 'json'
      ? { level, stream: out }
      : { level, type: 'raw', stream: { write: (record: object) => out.write(formatTextRecord(record as Record<string, unknown>) + '\n') } as NodeJS.WritableStream };
  return bunyan.createLogger({ name: options.name ?? 'cloud-network', streams: [stream], serializers: bunyan.stdSerializers });
}

/** One record as a line: time (to the second, UTC), level, message, then key='value' context. */
export function formatTextRecord(record: Record<string, unknown>): string {
  const time = record.time instanceof Date ? record.time : new Date(String(record.time ?? Date.now()));
  const stamp = Number.isNaN(time.getTime()) ? String(record.time) : time.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const level = LEVEL_NAME[record.level as number] ?? String(record.level);
  const parts = [stamp, level, String(record.msg ?? '')];
  for (const [key, value] of Object.entries(record)) {
    if (CORE_FIELDS.has(key) || value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.filter((p) => p !== '').join(' ');
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
