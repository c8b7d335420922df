// cnctl: what each command does, from the command line to the exit status
// (0 success, 1 the agent is unreachable or answered an error, 2 usage error, 4 not found).
import { existsSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR, readClientConfig } from '../protocol/config-file.js';
import {
  API_PATHS,
  apiSocketPath,
  DEFAULT_LISTEN,
  parseListen,
  urlForListen,
  type DocumentResource,
  type LinkResource,
  type NetworkResource,
  type SshKeysResource,
  type StatusResource,
  type SystemResource,
} from '../protocol/rest.js';
import { AgentClient, AgentError } from './client.js';
import { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, runCli } from '../protocol/cli.js';
import { parseCommandLine, USAGE, type CommandLine } from './command-line.js';
import { style, wantsColour } from './output.js';
import { reload, ReloadError } from './reload.js';
import { page, pagerCommand } from './pager.js';
import { renderLink, renderList, renderNetwork, renderSshKeys, renderStatus, renderSystem } from './render.js';

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
  let output: string;
  try {
    output = await execute(line, io);
  } catch (error) {
    if (error instanceof AgentError || error instanceof ReloadError || error instanceof ConfigError) {
      const s = style(wantsColour(io.stderr, io.env));
      io.stderr.write(`${s.paint('cnctl:', 'red')} ${error.message}\n`);
      return error instanceof AgentError && error.httpStatus === 404 ? EXIT_NOT_FOUND : EXIT_FAILED;
    }
    throw error;
  }
  const pager = pagerCommand(io.stdout, io.env, line.noPager);
  if (pager === undefined || !(await page(pager, output, io.env))) io.stdout.write(output);
  return EXIT_OK;
}

/** What the command prints on standard output. */
async function execute(line: CommandLine, io: Io): Promise<string> {
  const { command } = line;
  const s = style(wantsColour(io.stdout, io.env));
  const json = (value: unknown) => (line.json === 'short' ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + '\n';

  switch (command.kind) {
    case 'help':
    case 'version':
      return ''; // runCli answered these
    case 'reload': {
      const stateDir = line.stateDir ?? (await readClientConfig(line.config ?? DEFAULT_CONFIG_PATH)).stateDir;
      return (await reload({ stateDir, explicitStateDir: line.stateDir !== undefined })) + '\n';
    }
  }

  const client = await agentClient(line);
  const now = Date.now();
  switch (command.kind) {
    case 'list': {
      const network = await client.get<NetworkResource>(API_PATHS.network);
      return line.json ? json(network) : renderList(network, s);
    }
    case 'status': {
      const status = await client.get<StatusResource>(API_PATHS.status);
      return line.json ? json(status) : renderStatus(status, s, now);
    }
    case 'status-system': {
      const system = await client.get<SystemResource>(API_PATHS.system);
      return line.json ? json(system) : renderSystem(system, s);
    }
    case 'status-network': {
      if (command.link !== undefined) {
        const link = await client.get<LinkResource>(API_PATHS.link(command.link));
        return line.json ? json(link) : renderLink(link, s);
      }
      const network = await client.get<NetworkResource>(API_PATHS.network);
      return line.json ? json(network) : renderNetwork(network, s);
    }
    case 'show-ssh-keys': {
      const keys = await client.get<SshKeysResource>(API_PATHS.sshKeys);
      return line.json ? json(keys) : renderSshKeys(keys.sshKeys);
    }
    case 'show-document': {
      const document = await client.get<DocumentResource>(API_PATHS.document);
      return json(line.json ? document : document.document);
    }
  }
}

/**
 * --url or --socket as given; else the agent's socket in its StateDir, where no other user can
 * take root's connections; else, when there is no socket file, Listen= over TCP.
 */
async function agentClient(line: CommandLine): Promise<AgentClient> {
  if (line.url !== undefined) return new AgentClient({ url: line.url }, '--url');
  if (line.socket !== undefined) return new AgentClient({ socket: line.socket }, '--socket');
  const path = line.config ?? DEFAULT_CONFIG_PATH;
  const config = await readClientConfig(path);
  const socket = apiSocketPath(line.stateDir ?? config.stateDir);
  if (existsSync(socket)) {
    return new AgentClient({ socket }, line.stateDir !== undefined ? '--state-dir' : `StateDir= in ${path}, default ${DEFAULT_STATE_DIR}`);
  }
  return new AgentClient({ url: urlForListen(parseListen(config.listen)) }, `Listen= in ${path}, default ${DEFAULT_LISTEN}, as there is no ${socket}`);
}
