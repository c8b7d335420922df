// The agent's configuration file (/etc/cloud-network/cloud-network.toml). A missing file means
// the defaults; anything present must be right: a misspelt key or a wrong value stops the agent
// with a message naming the file, the key and what is allowed, rather than being ignored.
import {
  canonicalNames,
  checkAbsolutePath,
  checkListen,
  ConfigError,
  DEFAULT_STATE_DIR,
  parseToml,
  readConfigFile,
  valueError,
  type ReadOptions,
} from '../../protocol/config-file.js';
import { DEFAULT_HELPER_SOCKET, DEFAULT_TABLE_RANGE } from '../../protocol/constants.js';
import { DEFAULT_LISTEN, LISTEN_FORMS } from '../../protocol/rest.js';

export { ConfigError };

export const LOG_LEVELS = ['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal', 'Panic'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const PROVIDER_CHOICES = ['auto', 'azure', 'ec2', 'gcp'] as const;
/** Provider=: auto, or one of the clouds of agent/metadata/providers/ (detect.ts checks they match). */
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];

export interface Config {
  system: {
    logLevel: LogLevel;
    logFormat: LogFormat;
    /** RefreshTimer in milliseconds */
    refreshTimerMs: number;
    provider: ProviderChoice;
    helperSocket: string;
    stateDir: string;
  };
  network: {
    /** "127.0.0.1:5209", "[::1]:5209" or "localhost:5209" */
    listen: string;
    /** interface names whose IPs all get policy rules, the primary IP included */
    supplementary: string[];
    routeTableBase: number;
    /** PrimaryAddress= of the Go cloud-network-setup: read, and without effect there and here */
    primaryAddress?: boolean;
  };
}

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  system: Object.freeze({
    logLevel: 'Info',
    logFormat: 'text',
    refreshTimerMs: 300_000,
    provider: 'auto',
    helperSocket: DEFAULT_HELPER_SOCKET,
    stateDir: DEFAULT_STATE_DIR,
  }),
  network: Object.freeze({
    listen: DEFAULT_LISTEN,
    supplementary: [] as string[],
    routeTableBase: DEFAULT_TABLE_RANGE.first,
  }),
}) as Readonly<Config>;

/**
 * RouteTableBase + a NIC index must stay inside the helper's managed tables (20000–29999).
 * EC2 indexes reach network-card × 32 + device-number, so the base leaves 1000 of them.
 */
export const ROUTE_TABLE_BASE_RANGE = { first: DEFAULT_TABLE_RANGE.first, last: DEFAULT_TABLE_RANGE.last + 1 - 1000 } as const;

/** RefreshTimer bounds: often enough to matter, rarely enough not to strain the IMDS. */
const REFRESH_MIN_MS = 1_000;
const REFRESH_MAX_MS = 24 * 3_600_000;

const SECTIONS = {
  System: ['LogLevel', 'LogFormat', 'RefreshTimer', 'Provider', 'HelperSocket', 'StateDir'],
  Network: ['Listen', 'Supplementary', 'RouteTableBase', 'PrimaryAddress'],
} as const;

/** Reads the file; a missing file means the defaults unless it was named (--config), an unreadable one is an error. */
export async function loadConfig(path: string, options: ReadOptions = {}): Promise<Config> {
  const data = await readConfigFile(path, options);
  return data === undefined ? (structuredClone(DEFAULT_CONFIG) as Config) : checkConfig(data, path);
}

export function parseConfig(text: string, path: string): Config {
  return checkConfig(parseToml(text, path), path);
}

function checkConfig(data: Record<string, unknown>, path: string): Config {
  const config = structuredClone(DEFAULT_CONFIG) as Config;
  for (const [section, values] of Object.entries(canonicalNames(data, SECTIONS, path))) {
    const isTable = typeof values === 'object' && values !== null && !Array.isArray(values);
    if (!isTable && !(section in SECTIONS)) {
      const home = Object.entries(SECTIONS).find(([, keys]) => (keys as readonly string[]).includes(section))?.[0];
      throw new ConfigError(path, `${section} is outside any section${home ? `: put it under [${home}]` : ` (sections: ${Object.keys(SECTIONS).map((s) => `[${s}]`).join(', ')})`}`);
    }
    if (!(section in SECTIONS)) {
      throw new ConfigError(path, `unknown section [${section}] (allowed: ${Object.keys(SECTIONS).map((s) => `[${s}]`).join(', ')})`);
    }
    const allowed: readonly string[] = SECTIONS[section as keyof typeof SECTIONS];
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw new ConfigError(path, `${section} must be a section ([${section}]), not a value`);
    }
    for (const [key, value] of Object.entries(values)) {
      if (!allowed.includes(key)) {
        throw new ConfigError(path, `unknown key [${section}] ${key} (allowed in [${section}]: ${allowed.join(', ')})`);
      }
      applyKey(config, section, key, value, path);
    }
  }
  return config;
}

function applyKey(config: Config, section: string, key: string, value: unknown, path: string): void {
  const fail = (allowed: string): never => {
    throw valueError(path, section, key, value, allowed);
  };
  const text = (): string => (typeof value === 'string' ? value : fail('expected a quoted string'));
  switch (`${section}.${key}`) {
    case 'System.LogLevel': {
      const wanted = text().trim().toLowerCase();
      const level = LOG_LEVELS.find((l) => l.toLowerCase() === wanted || (l === 'Warning' && wanted === 'warn'));
      config.system.logLevel = level ?? fail(`one of ${LOG_LEVELS.join(', ')} (any case)`);
      return;
    }
    case 'System.LogFormat': {
      const wanted = text().trim().toLowerCase();
      config.system.logFormat = LOG_FORMATS.find((f) => f === wanted) ?? fail(`one of ${LOG_FORMATS.join(', ')}`);
      return;
    }
    case 'System.RefreshTimer': {
      if (typeof value === 'number') fail(`a duration with a unit, such as "${value}s" or "5m"`);
      const ms = parseDuration(text());
      if (ms === undefined) fail('a duration such as "300s", "5m" or "1h30m" (units: ms, s, m, h)');
      if (ms! < REFRESH_MIN_MS || ms! > REFRESH_MAX_MS) fail('a duration between 1s and 24h');
      config.system.refreshTimerMs = ms!;
      return;
    }
    case 'System.Provider': {
      const wanted = text().trim().toLowerCase();
      config.system.provider = PROVIDER_CHOICES.find((p) => p === wanted) ?? fail(`one of ${PROVIDER_CHOICES.join(', ')}`);
      return;
    }
    case 'System.HelperSocket':
    case 'System.StateDir': {
      const p = checkAbsolutePath(text()) ?? fail('an absolute path');
      if (key === 'HelperSocket') config.system.helperSocket = p;
      else config.system.stateDir = p;
      return;
    }
    case 'Network.Listen': {
      config.network.listen = checkListen(text()) ?? fail(LISTEN_FORMS);
      return;
    }
    case 'Network.Supplementary': {
      const names =
        typeof value === 'string'
          ? value.split(/\s+/).filter((n) => n !== '')
          : Array.isArray(value) && value.every((n) => typeof n === 'string')
            ? (value as string[])
            : fail('interface names separated by spaces, e.g. "eth0 eth1"');
      const bad = names.find((n) => !isInterfaceName(n));
      if (bad !== undefined && bad.includes(',')) {
        fail(`${JSON.stringify(bad)} is not an interface name: separate names with spaces ("${bad.split(',').filter(Boolean).join(' ')}") or write a TOML array`);
      }
      if (bad !== undefined) fail(`${JSON.stringify(bad)} is not an interface name (1–15 printable ASCII characters, none of / : , " ' or spaces)`);
      config.network.supplementary = [...new Set(names)];
      return;
    }
    case 'Network.RouteTableBase': {
      const { first, last } = ROUTE_TABLE_BASE_RANGE;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < first || value > last) {
        fail(
          `an integer from ${first} to ${last}: route tables are RouteTableBase + NIC index and must stay inside the helper's managed range ${DEFAULT_TABLE_RANGE.first}–${DEFAULT_TABLE_RANGE.last}, with room for 1000 NIC indexes`,
        );
      }
      config.network.routeTableBase = value as number;
      return;
    }
    case 'Network.PrimaryAddress':
      config.network.primaryAddress = typeof value === 'boolean' ? value : fail('true or false');
      return;
  }
}

/** What the agent says about a configuration at start and at each reload: keys that do nothing. */
export function configNotes(config: Config): string[] {
  return config.network.primaryAddress === undefined
    ? []
    : ['PrimaryAddress= is read and does nothing, as in cloud-network-setup: the primary address is left to DHCP, and Supplementary= names the interfaces whose every address gets rules'];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Go-style durations: "300s", "5m", "1h30m", "1.5s", "250ms". Undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, number, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(number) * UNIT_MS[unit!]!;
  }
  return Math.round(total);
}

/**
 * Linux IFNAMSIZ is 16 including the NUL; "/" and whitespace are refused by the kernel, ":" is
 * alias syntax; a comma or a quote is a list or quoting mistake far more often than a name.
 */
function isInterfaceName(name: string): boolean {
  return name.length >= 1 && name.length <= 15 && /^[\x21-\x7e]+$/.test(name) && !/[\/:,"']/.test(name) && name !== '.' && name !== '..';
}
