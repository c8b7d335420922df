// The helper's command line.
import { parseOptions, UsageError } from '../protocol/cli.js';
import { DEFAULT_HELPER_SOCKET, DEFAULT_PRIORITY_RANGE, DEFAULT_TABLE_RANGE } from '../protocol/constants.js';
import { DEFAULT_LEDGER_PATH } from './ledger.js';
import type { NumberRange } from './policy.js';

export interface HelperOptions {
  mode: 'serve' | 'help' | 'version';
  /** used when not socket-activated */
  socketPath: string;
  /** group of the socket file (--socket only); undefined keeps the helper's own */
  group?: string;
  /** the one non-root user allowed to connect */
  allowUser?: string;
  /** exit after this many seconds without a connection, when socket-activated; 0 never */
  idleExitSeconds: number;
  ledgerPath: string;
  tables: NumberRange;
  priorities: NumberRange;
  deniedLinks: string[];
}

export const DEFAULT_IDLE_EXIT_SECONDS = 60;

export const USAGE = `Usage: cloud-network-helper [--socket PATH] [--group NAME] [--allow-user NAME] [--idle-exit SECONDS]
                            [--ledger PATH] [--tables FIRST-LAST] [--priorities FIRST-LAST]
                            [--deny-link NAME]...

The privileged half of cloud-network: accepts strictly validated JSON-RPC requests on a Unix
socket and changes addresses, routes and rules. Needs only CAP_NET_ADMIN. Writes one audit line
per request to standard output (journalctl -u cloud-network-helper).

Options:
  --socket PATH          socket to create when not socket-activated (default ${DEFAULT_HELPER_SOCKET}),
                         with mode 0660
  --group NAME           group of that socket (default: the helper's own group)
  --allow-user NAME      the one user besides root that may connect (e.g. cloud-network);
                         it must exist
  --idle-exit SECONDS    when socket-activated, exit after this long without a connection
                         (default ${DEFAULT_IDLE_EXIT_SECONDS}; 0 never)
  --ledger PATH          the ledger of addresses the helper created (default ${DEFAULT_LEDGER_PATH});
                         its directory should be writable by the helper alone
  --tables FIRST-LAST    route tables the helper manages (default ${DEFAULT_TABLE_RANGE.first}-${DEFAULT_TABLE_RANGE.last})
  --priorities FIRST-LAST  rule priorities the helper manages (default ${DEFAULT_PRIORITY_RANGE.first}-${DEFAULT_PRIORITY_RANGE.last})
  --deny-link NAME       never touch this interface (repeatable)
  --help                 show this help
  --version              show the version
`;

function parseRange(text: string, option: string, bounds: NumberRange): NumberRange {
  const match = /^([0-9]+)-([0-9]+)$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first > last || first < bounds.first || last > bounds.last) {
    throw new UsageError(`${option} ${text}: expected FIRST-LAST with ${bounds.first} ≤ FIRST ≤ LAST ≤ ${bounds.last}`);
  }
  return { first, last };
}

/** A path option: absolute, since a relative one would depend on whichever directory the helper was started in. */
function absolutePath(text: string | undefined, option: string, fallback: string): string {
  if (text === undefined) return fallback;
  if (!text.startsWith('/') || text.includes('\0')) throw new UsageError(`${option} ${text}: expected an absolute path (starting with /)`);
  return text;
}

export function parseHelperOptions(argv: string[]): HelperOptions {
  const { values } = parseOptions({
    args: argv,
    options: {
      socket: { type: 'string' },
      group: { type: 'string' },
      'allow-user': { type: 'string' },
      'idle-exit': { type: 'string' },
      ledger: { type: 'string' },
      tables: { type: 'string' },
      priorities: { type: 'string' },
      'deny-link': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const idle = values['idle-exit'] ?? String(DEFAULT_IDLE_EXIT_SECONDS);
  if (!/^[0-9]{1,7}$/.test(idle)) throw new UsageError(`--idle-exit ${idle}: expected a whole number of seconds`);
  // tables 253–255 (default, main, local) and 0 are the kernel's; rule priority 0 and 32766+ too
  const tables = parseRange(values.tables ?? `${DEFAULT_TABLE_RANGE.first}-${DEFAULT_TABLE_RANGE.last}`, '--tables', { first: 256, last: 0xfffffffe });
  const priorities = parseRange(values.priorities ?? `${DEFAULT_PRIORITY_RANGE.first}-${DEFAULT_PRIORITY_RANGE.last}`, '--priorities', { first: 1, last: 32_765 });
  return {
    mode: values.help ? 'help' : values.version ? 'version' : 'serve',
    socketPath: absolutePath(values.socket, '--socket', DEFAULT_HELPER_SOCKET),
    ...(values.group !== undefined ? { group: values.group } : {}),
    ...(values['allow-user'] !== undefined ? { allowUser: values['allow-user'] } : {}),
    idleExitSeconds: Number(idle),
    ledgerPath: absolutePath(values.ledger, '--ledger', DEFAULT_LEDGER_PATH),
    tables,
    priorities,
    deniedLinks: values['deny-link'] ?? [],
  };
}
