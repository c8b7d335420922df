// The agent's configuration file as every program reads it: where it is, its TOML, how a bad
// value is reported, and the two keys a client of the agent needs (Listen=, where the REST API
// is on TCP; StateDir=, where its socket api.sock and agent.pid are). The agent checks every
// key (agent/process/config.ts); cnctl reads only those two, checked as the agent checks them.
import { readFile } from 'node:fs/promises';
import toml from 'toml';
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
  ) {
    super(`${path}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** The file's TOML as data; undefined when there is no file (the defaults apply). */
export async function readConfigFile(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ConfigError(path, `cannot read the configuration file (${code ?? (error as Error).message})`);
  }
  return parseToml(text, path);
}

export function parseToml(text: string, path: string): Record<string, unknown> {
  try {
    return toml.parse(text) as Record<string, unknown>;
  } catch (error) {
    const e = error as { line?: number; column?: number; message: string };
    const where = e.line !== undefined ? `line ${e.line}, column ${e.column}: ` : '';
    throw new ConfigError(path, `not valid TOML: ${where}${e.message}`);
  }
}

/** A key whose value is refused, and what is allowed instead. */
export function valueError(path: string, section: string, key: string, value: unknown, allowed: string): ConfigError {
  return new ConfigError(path, `[${section}] ${key} = ${JSON.stringify(value)} is not allowed: ${allowed}`);
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
}

/** Listen= and StateDir= of the agent's configuration file, or their defaults. */
export async function readClientConfig(path: string): Promise<ClientConfig> {
  const data = (await readConfigFile(path)) ?? {};
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
  };
}
