// cnctl's command line: what to do and where the agent is. Options may come anywhere.
import { parseOptions, UsageError } from '../protocol/cli.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR } from '../protocol/config-file.js';
import { API_SOCKET_NAME, DEFAULT_LISTEN } from '../protocol/rest.js';

export type Command =
  | { kind: 'status' }
  | { kind: 'status-system' }
  | { kind: 'status-network'; link?: string }
  | { kind: 'reload' }
  | { kind: 'show-ssh-keys' }
  | { kind: 'show-document' }
  | { kind: 'help' }
  | { kind: 'version' };

export interface CommandLine {
  command: Command;
  json: boolean;
  url?: string;
  socket?: string;
  config?: string;
  stateDir?: string;
}

export const USAGE = `Usage: cnctl [OPTIONS] COMMAND

Shows what the cloud-network agent configured, from its REST API.

Commands:
  status                  the agent's own health: provider, last refresh, errors, helper
  status system           the instance: provider, id, name, region, zone, size, image
  status network [LINK]   every NIC (or LINK): addresses, subnet, gateway, table, state
  show ssh-keys           the public SSH keys in the metadata
  show document           the provider's metadata document (without secrets), as JSON
  reload                  make the agent re-read its configuration and refresh now

Options:
  --json             print the API's JSON instead of text (for scripts)
  --socket PATH      the agent's API on its Unix socket (default: ${API_SOCKET_NAME} in the
                     agent's StateDir, else Listen= over TCP when there is no socket)
  --url URL          the agent's API over TCP (default Listen= of the configuration,
                     else http://${DEFAULT_LISTEN})
  --config PATH      the configuration file (default ${DEFAULT_CONFIG_PATH})
  --state-dir DIR    the agent's StateDir, where ${API_SOCKET_NAME} and agent.pid are (default:
                     StateDir of the configuration, else ${DEFAULT_STATE_DIR}); reload then
                     signals the agent whose pid is in DIR/agent.pid instead of systemctl reload
  -h, --help         show this help
  --version          show cnctl's version

Exit status: 0 success, 1 the agent is unreachable or answered an error, 2 usage error.
`;

export function parseCommandLine(argv: string[]): CommandLine {
  const { values, positionals } = parseOptions({
    args: argv,
    options: {
      json: { type: 'boolean' },
      url: { type: 'string' },
      socket: { type: 'string' },
      config: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.url !== undefined && values.socket !== undefined) throw new UsageError('--url and --socket both name the agent\'s API: give one');
  const options = {
    json: values.json ?? false,
    ...(values.url !== undefined && { url: checkUrl(values.url) }),
    ...(values.socket !== undefined && { socket: checkSocket(values.socket) }),
    ...(values.config !== undefined && { config: values.config }),
    ...(values['state-dir'] !== undefined && { stateDir: values['state-dir'] }),
  };
  if (values.help) return { command: { kind: 'help' }, ...options };
  if (values.version) return { command: { kind: 'version' }, ...options };
  return { command: command(positionals), ...options };
}

function command(words: string[]): Command {
  const [verb, noun, arg, ...rest] = words;
  const extra = (allowed: number) => {
    if (words.length > allowed) throw new UsageError(`unexpected argument ${JSON.stringify(words[allowed])} after "${words.slice(0, allowed).join(' ')}"`);
  };
  switch (verb) {
    case undefined:
      throw new UsageError('missing command (status, status system, status network, show ssh-keys, show document, reload)');
    case 'help':
      return { kind: 'help' };
    case 'version':
      return { kind: 'version' };
    case 'reload':
      extra(1);
      return { kind: 'reload' };
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
          throw new UsageError(`unknown status ${JSON.stringify(noun)} (choose system or network)`);
      }
    case 'show':
      switch (noun) {
        case 'ssh-keys':
          extra(2);
          return { kind: 'show-ssh-keys' };
        case 'document':
          extra(2);
          return { kind: 'show-document' };
        default:
          throw new UsageError(`show what? ${noun === undefined ? 'missing' : `unknown ${JSON.stringify(noun)}`} (choose ssh-keys or document)`);
      }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(verb)}`);
  }
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
