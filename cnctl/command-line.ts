// cnctl's command line: what to do and where the agent is. Options may come anywhere.
import { parseOptions, suggest, UsageError } from '../protocol/cli.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR } from '../protocol/config-file.js';
import { API_SOCKET_NAME, DEFAULT_LISTEN } from '../protocol/rest.js';

export type Command =
  | { kind: 'list' }
  | { kind: 'status' }
  | { kind: 'status-system' }
  | { kind: 'status-network'; link?: string }
  | { kind: 'reload' }
  | { kind: 'wait' }
  | { kind: 'show-ssh-keys' }
  | { kind: 'show-document' }
  | { kind: 'help' }
  | { kind: 'version' };

/** --json (pretty), --json=pretty, --json=short (one line), as networkctl's --json= */
export type JsonMode = false | 'pretty' | 'short';

export interface CommandLine {
  command: Command;
  json: JsonMode;
  /** never page the output, even on a terminal */
  noPager: boolean;
  /** reload: return once the reload is asked for, without waiting for its outcome */
  noWait: boolean;
  url?: string;
  socket?: string;
  config?: string;
  stateDir?: string;
  /** wait: how long, in seconds; 0 without limit */
  timeoutSeconds: number;
}

/** How long `cnctl wait` waits unless told: inside a unit's default start timeout (90 s). */
export const DEFAULT_WAIT_SECONDS = 60;

export const USAGE = `Usage: cnctl [OPTIONS] COMMAND

Shows what the cloud-network agent configured, from its REST API.

Commands:
  list                    one line per interface: index, name, MAC, NIC, table, IPs, state
  status                  the agent's own health: provider, last refresh, errors, helper
  status system           the instance: provider, id, name, region, zone, size, image
  status network [LINK]   every NIC (or LINK): addresses, subnet, gateway, table, state
  show ssh-keys           the public SSH keys in the metadata
  show document           the provider's metadata document (without secrets), as JSON
  reload [--no-wait]      make the agent re-read its configuration and refresh now, and say
                          how that ended (applied, refused with the reason, nothing changed)
  wait [--timeout S]      wait until the agent has converged (for scripts and units
                          ordered after cloud-network)

Options:
  --json[=MODE]      print the API's JSON instead of text (for scripts): pretty (the
                     default) or short (one line)
  --no-pager         do not pipe the output into a pager (on a terminal, long output goes
                     through $CNCTL_PAGER, $SYSTEMD_PAGER, $PAGER or less)
  --socket PATH      the agent's API on its Unix socket (default: ${API_SOCKET_NAME} in the
                     agent's StateDir, else Listen= over TCP when there is no socket)
  --url URL          the agent's API over TCP (default Listen= of the configuration,
                     else http://${DEFAULT_LISTEN})
  --config PATH      the configuration file, which must exist (default ${DEFAULT_CONFIG_PATH});
                     only Listen= and StateDir= are read
  --state-dir DIR    the agent's StateDir, where ${API_SOCKET_NAME} and agent.pid are (default:
                     StateDir of the configuration, else ${DEFAULT_STATE_DIR}); reload then
                     signals the agent whose pid is in DIR/agent.pid instead of systemctl reload
  --timeout S        wait, reload: give up after S seconds (default ${DEFAULT_WAIT_SECONDS}; 0 waits without limit)
  --no-wait          reload: return once the reload is asked for
  -h, --help         show this help
  --version          show cnctl's version

Exit status:
  0  success; status: converged and no failure reported; wait: converged
  1  status: not converged, or a failure reported (each in its own field);
     wait: not converged in time; others: the agent answered an error
  2  usage error
  3  the agent does not answer at its address, or does not run (reload)
`;

export function parseCommandLine(argv: string[]): CommandLine {
  // --json takes its mode only as --json=MODE: "--json status" must not read status as the mode
  let json = false as JsonMode;
  const args = argv.filter((arg) => {
    const mode = /^--json=(.*)$/.exec(arg)?.[1];
    if (mode === undefined) return true;
    if (mode !== 'pretty' && mode !== 'short') throw new UsageError(`--json=${mode}: choose --json=pretty or --json=short`);
    json = mode;
    return false;
  });
  const { values, positionals } = parseOptions({
    args,
    options: {
      json: { type: 'boolean' },
      'no-pager': { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      url: { type: 'string' },
      socket: { type: 'string' },
      config: { type: 'string' },
      'state-dir': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.url !== undefined && values.socket !== undefined) throw new UsageError('--url and --socket both name the agent\'s API: give one');
  const options = {
    json: (json === false && values.json ? 'pretty' : json) as JsonMode,
    noPager: values['no-pager'] ?? false,
    noWait: values['no-wait'] ?? false,
    ...(values.url !== undefined && { url: checkUrl(values.url) }),
    ...(values.socket !== undefined && { socket: checkSocket(values.socket) }),
    ...(values.config !== undefined && { config: values.config }),
    ...(values['state-dir'] !== undefined && { stateDir: values['state-dir'] }),
    timeoutSeconds: seconds(values.timeout),
  };
  if (values.help) return { command: { kind: 'help' }, ...options };
  if (values.version) return { command: { kind: 'version' }, ...options };
  const chosen = command(positionals);
  if (values.timeout !== undefined && chosen.kind !== 'wait' && chosen.kind !== 'reload') throw new UsageError('--timeout goes with wait and reload only');
  if (values['no-wait'] && chosen.kind !== 'reload') throw new UsageError('--no-wait goes with reload only');
  return { command: chosen, ...options };
}

const COMMANDS = ['list', 'status', 'show', 'reload', 'wait', 'help', 'version'];
const STATUS_NOUNS = ['system', 'network'];
const SHOW_NOUNS = ['ssh-keys', 'document'];

/** The Go cloud-network-setup's cnctl short forms, which scripts still use. */
const GO_VERBS: Record<string, string> = { s: 'status' };
const GO_SHOW_NOUNS: Record<string, string> = { k: 'ssh-keys', d: 'document' };
/** What the Go tool's cnctl showed that cloud-network does not keep, and why. */
const DROPPED_SHOW_NOUNS: Record<string, string> = {
  credentials: 'the instance credentials are secrets: cloud-network never reads them',
  c: 'the instance credentials are secrets: cloud-network never reads them',
  pkcs7: 'the identity signatures are not read (show document has the identity facts)',
  signature: 'the identity signatures are not read (show document has the identity facts)',
  rsa2048: 'the identity signatures are not read (show document has the identity facts)',
  r: 'the identity signatures are not read (show document has the identity facts)',
  project: "GCP's project metadata is not read (its attributes hold keys and scripts)",
  p: "the Go tool's \"show p\" meant pkcs7 or project, neither of which cloud-network reads",
  s: "the Go tool's \"show s\" meant the identity signature, which cloud-network does not read",
};

function unknown(what: string, word: string, choices: string[]): UsageError {
  const guess = suggest(word, choices);
  return new UsageError(`unknown ${what} ${JSON.stringify(word)}${guess ? `; did you mean ${guess}?` : ` (choose ${choices.join(', ')})`}`);
}

function command(words: string[]): Command {
  const [given, noun, arg, ...rest] = words;
  const verb = given !== undefined ? (GO_VERBS[given] ?? given) : undefined;
  const extra = (allowed: number) => {
    if (words.length > allowed) throw new UsageError(`unexpected argument ${JSON.stringify(words[allowed])} after "${words.slice(0, allowed).join(' ')}"`);
  };
  switch (verb) {
    case undefined:
      throw new UsageError('missing command (list, status, status system, status network, show ssh-keys, show document, reload, wait)');
    case 'list':
      extra(1);
      return { kind: 'list' };
    case 'help':
      return { kind: 'help' };
    case 'version':
      return { kind: 'version' };
    case 'reload':
      extra(1);
      return { kind: 'reload' };
    case 'wait':
      extra(1);
      return { kind: 'wait' };
    case 'status':
      switch (noun) {
        case undefined:
          return { kind: 'status' };
        case 'system':
          extra(2);
          return { kind: 'status-system' };
        case 'network':
          if (rest.length > 0) extra(3);
          return arg === undefined ? { kind: 'status-network' } : { kind: 'status-network', link: arg };
        default:
          throw unknown('status', noun, STATUS_NOUNS);
      }
    case 'show': {
      if (noun !== undefined && Object.hasOwn(DROPPED_SHOW_NOUNS, noun)) throw new UsageError(`show ${noun}: not available: ${DROPPED_SHOW_NOUNS[noun]}`);
      switch (noun !== undefined ? (GO_SHOW_NOUNS[noun] ?? noun) : undefined) {
        case 'ssh-keys':
          extra(2);
          return { kind: 'show-ssh-keys' };
        case 'document':
          extra(2);
          return { kind: 'show-document' };
        case undefined:
          throw new UsageError('show what? (choose ssh-keys or document)');
        default:
          throw unknown('show', noun!, SHOW_NOUNS);
      }
    }
    default:
      throw unknown('command', verb, COMMANDS);
  }
}

function seconds(text: string | undefined): number {
  if (text === undefined) return DEFAULT_WAIT_SECONDS;
  if (!/^\d{1,6}$/.test(text)) throw new UsageError(`--timeout ${text}: expected a whole number of seconds (0 waits without limit)`);
  return Number(text);
}

function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(text)} is not a URL (example: http://127.0.0.1:5209)`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`--url ${text}: only http:// is served by the agent`);
  return url.origin;
}

function checkSocket(text: string): string {
  if (text === '' || text.includes('\0')) throw new UsageError(`--socket ${JSON.stringify(text)} is not a path (example: /run/cloud-network/${API_SOCKET_NAME})`);
  return text;
}
