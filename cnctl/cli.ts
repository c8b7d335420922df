// cnctl: what each command does, from the command line to the exit status (USAGE in
// command-line.ts and cnctl(1) list them: 0 success or converged, 1 not converged or an error,
// 2 usage error, 3 the agent does not answer, 4 not found).
import { existsSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR, readClientConfig } from '../protocol/config-file.js';
import {
  API_PATHS,
  apiSocketPath,
  DEFAULT_LISTEN,
  parseListen,
  statusProblems,
  urlForListen,
  type DocumentResource,
  type LinkResource,
  type NetworkResource,
  type SshKeysResource,
  type StatusResource,
  type SystemResource,
} from '../protocol/rest.js';
import { AgentClient, AgentError, AgentUnreachable } from './client.js';
import { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_NOT_RUNNING, EXIT_OK, runCli } from '../protocol/cli.js';
import { parseCommandLine, USAGE, type CommandLine } from './command-line.js';
import { style, wantsColour, type Style } from './output.js';
import { page, pagerCommand } from './pager.js';
import { reload, ReloadError } from './reload.js';
import { renderLink, renderList, renderNetwork, renderSshKeys, renderStatus, renderSystem } from './render.js';
import { waitConverged, waitReload, WaitTimeout } from './wait.js';

export interface Io {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export function run(argv: string[], io: Io): Promise<number> {
  return runCli(
    {
      name: 'cnctl',
      usage: USAGE,
      parse: parseCommandLine,
      asks: (line) => (line.command.kind === 'help' || line.command.kind === 'version' ? line.command.kind : undefined),
      run: (line) => runCommand(line, io),
    },
    argv,
    io,
  );
}

async function runCommand(line: CommandLine, io: Io): Promise<number> {
  let outcome: Outcome;
  try {
    outcome = await execute(line, io);
  } catch (error) {
    if (error instanceof AgentError || error instanceof ReloadError || error instanceof ConfigError || error instanceof WaitTimeout) {
      const s = style(wantsColour(io.stderr, io.env));
      io.stderr.write(`${s.paint('cnctl:', 'red')} ${error.message}\n`);
      const notRunning = error instanceof AgentUnreachable || (error instanceof WaitTimeout && error.unreachable) || (error instanceof ReloadError && error.notRunning);
      if (notRunning) return EXIT_NOT_RUNNING;
      return error instanceof AgentError && error.httpStatus === 404 ? EXIT_NOT_FOUND : EXIT_FAILED;
    }
    throw error;
  }
  const pager = outcome.output === '' ? undefined : pagerCommand(io.stdout, io.env, line.noPager);
  if (pager === undefined || !(await page(pager, outcome.output, io.env))) io.stdout.write(outcome.output);
  return outcome.code;
}

/** What a command prints on standard output, and its exit status. */
interface Outcome {
  output: string;
  code: number;
}

async function execute(line: CommandLine, io: Io): Promise<Outcome> {
  const { command } = line;
  const s = style(wantsColour(io.stdout, io.env));
  const json = (value: unknown) => (line.json === 'short' ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + '\n';
  const ok = (output: string): Outcome => ({ output, code: EXIT_OK });

  switch (command.kind) {
    case 'help':
    case 'version':
      return ok(''); // runCli answered these
    case 'reload':
      return reloadAndWait(line, s);
  }

  const client = await agentClient(line);
  switch (command.kind) {
    case 'list': {
      const network = await client.get<NetworkResource>(API_PATHS.network);
      return ok(line.json ? json(network) : renderList(network, s));
    }
    case 'status': {
      const status = await client.get<StatusResource>(API_PATHS.status);
      const output = line.json ? json(status) : renderStatus(status, s, Date.now());
      return { output, code: status.converged && statusProblems(status).length === 0 ? EXIT_OK : EXIT_FAILED };
    }
    case 'wait': {
      const status = await waitConverged(client, { timeoutMs: line.timeoutSeconds * 1000 });
      return ok(line.json ? json(status) : '');
    }
    case 'status-system': {
      const system = await client.get<SystemResource>(API_PATHS.system);
      return ok(line.json ? json(system) : renderSystem(system, s));
    }
    case 'status-network': {
      if (command.link !== undefined) {
        const link = await client.get<LinkResource>(API_PATHS.link(command.link));
        return ok(line.json ? json(link) : renderLink(link, s));
      }
      const network = await client.get<NetworkResource>(API_PATHS.network);
      return ok(line.json ? json(network) : renderNetwork(network, s));
    }
    case 'show-ssh-keys': {
      const keys = await client.get<SshKeysResource>(API_PATHS.sshKeys);
      return ok(line.json ? json(keys) : renderSshKeys(keys.sshKeys));
    }
    case 'show-document': {
      const document = await client.get<DocumentResource>(API_PATHS.document);
      return ok(json(line.json ? document : document.document));
    }
  }
}

/**
 * cnctl reload: asks for the reload, then (unless --no-wait) waits for the agent to say how it
 * ended; exits 1 when the configuration was refused or the kernel does not match after it.
 */
async function reloadAndWait(line: CommandLine, s: Style): Promise<Outcome> {
  const stateDir = line.stateDir ?? (await readClientConfig(line.config ?? DEFAULT_CONFIG_PATH, { named: line.config !== undefined })).stateDir;
  const ask = () => reload({ stateDir, explicitStateDir: line.stateDir !== undefined });
  if (line.noWait) return { output: `${await ask()}\n`, code: EXIT_OK };
  const client = await agentClient(line);
  let before: number;
  try {
    before = (await client.get<StatusResource>(API_PATHS.status)).reloads;
  } catch (error) {
    if (!(error instanceof AgentUnreachable)) throw error;
    // the reload itself needs no API: ask for it, and say why its outcome is not known
    return { output: `${await ask()}\nnot waiting for the outcome: ${error.message}\n`, code: EXIT_OK };
  }
  const asked = await ask();
  const ended = await waitReload(client, before, { timeoutMs: line.timeoutSeconds * 1000 });
  const failed = ended.outcome === 'refused' || ended.outcome === 'not-converged';
  const said = ended.outcome === 'refused' ? ended.detail : `reloaded: ${ended.detail}`;
  return { output: `${asked}\n${failed ? s.paint(said, 'red') : said}\n`, code: failed ? EXIT_FAILED : EXIT_OK };
}

/**
 * --url or --socket as given; else the agent's socket in its StateDir, where no other user can
 * take root's connections; else, when there is no socket file, Listen= over TCP.
 */
async function agentClient(line: CommandLine): Promise<AgentClient> {
  if (line.url !== undefined) return new AgentClient({ url: line.url }, '--url');
  if (line.socket !== undefined) return new AgentClient({ socket: line.socket }, '--socket');
  const path = line.config ?? DEFAULT_CONFIG_PATH;
  const config = await readClientConfig(path, { named: line.config !== undefined });
  const note = config.note ? `; ${config.note}` : '';
  const socket = apiSocketPath(line.stateDir ?? config.stateDir);
  if (existsSync(socket)) {
    return new AgentClient({ socket }, line.stateDir !== undefined ? '--state-dir' : `StateDir= in ${path}, default ${DEFAULT_STATE_DIR}${note}`);
  }
  return new AgentClient({ url: urlForListen(parseListen(config.listen)) }, `Listen= in ${path}, default ${DEFAULT_LISTEN}, as there is no ${socket}${note}`);
}
