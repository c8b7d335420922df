// The agent's configuration file as every program reads it: where it is, its TOML, how a bad
// value is reported, and the two keys a client of the agent needs (Listen=, where the REST API
// is on TCP; StateDir=, where its socket api.sock and agent.pid are). The agent checks every
// key (agent/process/config.ts); cnctl reads only those two, checked as the agent checks them.
import { readFile } from 'node:fs/promises';
import { parse as parseTomlText } from 'smol-toml';
import { DEFAULT_LISTEN, LISTEN_FORMS, parseListen } from './rest.js';

export const DEFAULT_CONFIG_PATH = '/etc/cloud-network/cloud-network.toml';

/** StateDir='s default: the agent's state files and pid file. */
export const DEFAULT_STATE_DIR = '/run/cloud-network';

/** The agent's pid file in StateDir, which cnctl reload signals when systemd is not there. */
export const PID_FILE = 'agent.pid';

/** A configuration file that cannot be used: the message names the file and what is wrong. */
export class ConfigError extends Error {
  constructor(
    readonly path: string,
    message: string,
    /** the errno code when the file could not be read ("ENOENT", "EACCES") */
    readonly code?: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface ReadOptions {
  /** the file was named on the command line (--config): its absence is an error, not the defaults */
  named?: boolean;
}

/** The file's text; undefined when there is no file and none was named (the defaults apply). */
async function readText(path: string, options: ReadOptions): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !options.named) return undefined;
    if (code === 'ENOENT') {
      throw new ConfigError(path, `no such file: a file named with --config must exist (without --config a missing ${DEFAULT_CONFIG_PATH} means the defaults)`, code);
    }
    throw new ConfigError(path, `cannot read the configuration file (${code ?? (error as Error).message})`, code);
  }
}

/** The file's TOML as data; undefined when there is no file and none was named (the defaults apply). */
export async function readConfigFile(path: string, options: ReadOptions = {}): Promise<Record<string, unknown> | undefined> {
  const text = await readText(path, options);
  return text === undefined ? undefined : parseToml(text, path);
}

export function parseToml(text: string, path: string): Record<string, unknown> {
  try {
    return parseTomlText(text) as Record<string, unknown>;
  } catch (error) {
    const e = error as { line?: number; column?: number; message: string };
    const where = e.line !== undefined ? `line ${e.line}, column ${e.column}: ` : '';
    // the message's first line says what is wrong; the lines after it quote the file
    const what = e.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigError(path, `not valid TOML: ${where}${what}`);
  }
}

/** A key whose value is refused, and what is allowed instead. */
export function valueError(path: string, section: string, key: string, value: unknown, allowed: string): ConfigError {
  return new ConfigError(path, `[${section}] ${key} = ${JSON.stringify(value)} is not allowed: ${allowed}`);
}

/**
 * The file's section and key names as `known` spells them: Viper, which the Go
 * cloud-network-setup read this file with, takes them in any case. Names not in `known` stay as
 * written; one name given twice in two spellings is an error.
 */
export function canonicalNames(data: Record<string, unknown>, known: Readonly<Record<string, readonly string[]>>, path: string): Record<string, unknown> {
  const spelled = (name: string, names: readonly string[]) => names.find((n) => n.toLowerCase() === name.toLowerCase()) ?? name;
  const out: Record<string, unknown> = {};
  const given: Record<string, string> = {};
  for (const [name, value] of Object.entries(data)) {
    const section = spelled(name, Object.keys(known));
    if (section in out) throw new ConfigError(path, `[${given[section]}] and [${name}] are the same section: write it once`);
    given[section] = name;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !(section in known)) {
      out[section] = value;
      continue;
    }
    const keys: Record<string, unknown> = {};
    const keysGiven: Record<string, string> = {};
    for (const [name2, value2] of Object.entries(value)) {
      const key = spelled(name2, known[section]!);
      if (key in keys) throw new ConfigError(path, `[${section}] ${keysGiven[key]} and ${name2} are the same key: set it once`);
      keysGiven[key] = name2;
      keys[key] = value2;
    }
    out[section] = keys;
  }
  return out;
}

/** Listen= as written (trimmed), or undefined when it is not one of LISTEN_FORMS. */
export function checkListen(text: string): string | undefined {
  try {
    parseListen(text);
    return text.trim();
  } catch {
    return undefined;
  }
}

/** A path setting (StateDir=, HelperSocket=), or undefined when it is not an absolute path. */
export function checkAbsolutePath(text: string): string | undefined {
  return text.startsWith('/') && !text.includes('\0') ? text : undefined;
}

/** What a client of the agent needs from its configuration. */
export interface ClientConfig {
  /** Listen=, the REST API's address */
  listen: string;
  /** StateDir=, where api.sock and agent.pid are */
  stateDir: string;
  /**
   * Why the file could not be used as a whole, when the defaults or a line-by-line read of the two
   * keys stand in for it (a file this user may not read, a file that is not TOML): for messages.
   */
  note?: string;
}

/**
 * Listen= and StateDir= of the agent's configuration file, or their defaults. A client looks when
 * something may be wrong, so a file it cannot use whole does not stop it: an unreadable one (0600,
 * read by another user) gives the defaults, one that is not TOML is searched line by line for the
 * two keys. A value the agent would refuse is an error, in the agent's words.
 */
export async function readClientConfig(path: string, options: ReadOptions = {}): Promise<ClientConfig> {
  let text: string | undefined;
  let note: string | undefined;
  try {
    text = await readText(path, options);
  } catch (error) {
    if (!(error instanceof ConfigError) || error.code === 'ENOENT') throw error;
    note = `${error.message}; the defaults were used`;
  }
  let data: Record<string, unknown> = {};
  if (text !== undefined) {
    try {
      data = parseToml(text, path);
    } catch (error) {
      note = `${(error as Error).message}; Listen= and StateDir= were read line by line`;
      data = keysLineByLine(text);
    }
    data = canonicalNames(data, { System: ['StateDir'], Network: ['Listen'] }, path);
  }
  const section = (name: string): Record<string, unknown> => {
    const value = data[name];
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  };
  const setting = (sectionName: string, key: string, fallback: string, check: (text: string) => string | undefined, allowed: string): string => {
    const value = section(sectionName)[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'string') throw valueError(path, sectionName, key, value, 'expected a quoted string');
    const checked = check(value);
    if (checked === undefined) throw valueError(path, sectionName, key, value, allowed);
    return checked;
  };
  return {
    listen: setting('Network', 'Listen', DEFAULT_LISTEN, checkListen, LISTEN_FORMS),
    stateDir: setting('System', 'StateDir', DEFAULT_STATE_DIR, checkAbsolutePath, 'an absolute path'),
    ...(note !== undefined && { note }),
  };
}

/** `[Section]` headers and `Key = "text"` lines of a file that is not valid TOML as a whole. */
function keysLineByLine(text: string): Record<string, Record<string, string>> {
  const data: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    const header = /^\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$/.exec(line);
    if (header) {
      // the first spelling of a section stands for all: the file is broken anyway
      const name = Object.keys(data).find((n) => n.toLowerCase() === header[1]!.toLowerCase()) ?? header[1]!;
      section = data[name] ??= {};
      continue;
    }
    const pair = /^\s*([A-Za-z0-9_-]+)\s*=\s*"([^"\\]*)"\s*(#.*)?$/.exec(line);
    if (pair && section) section[pair[1]!] = pair[2]!;
  }
  return data;
}
