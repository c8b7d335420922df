// cnctl: what each command does, from the command line to the exit status (USAGE in
// command-line.ts and cnctl(1) list them: 0 success or converged, 1 not converged or an error,
// 2 usage error, 3 the agent does not answer).
import { ConfigError, DEFAULT_CONFIG_PATH, readClientConfig } from '../protocol/config-file.js';
import {
  API_PATHS,
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
import { EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, runCli } from '../protocol/cli.js';
import { parseCommandLine, USAGE, type CommandLine } from './command-line.js';
import { style, wantsColour } from './output.js';
import { reload, ReloadError } from './reload.js';
import { renderLink, renderNetwork, renderSshKeys, renderStatus, renderSystem } from './render.js';
import { waitConverged, WaitTimeout } from './wait.js';

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
  try {
    return await execute(line, io);
  } catch (error) {
    if (error instanceof AgentError || error instanceof ReloadError || error instanceof ConfigError || error instanceof WaitTimeout) {
      const s = style(wantsColour(io.stderr, io.env));
      io.stderr.write(`${s.paint('cnctl:', 'red')} ${error.message}\n`);
      const notRunning = error instanceof AgentUnreachable || (error instanceof WaitTimeout && error.unreachable) || (error instanceof ReloadError && error.notRunning);
      return notRunning ? EXIT_NOT_RUNNING : EXIT_FAILED;
    }
    throw error;
  }
}

async function execute(line: CommandLine, io: Io): Promise<number> {
  const { command } = line;
  const s = style(wantsColour(io.stdout, io.env));
  const print = (text: string) => io.stdout.write(text);
  const json = (value: unknown) => print(JSON.stringify(value, null, 2) + '\n');

  switch (command.kind) {
    case 'help':
    case 'version':
      return EXIT_OK; // runCli answered these
    case 'reload': {
      const stateDir = line.stateDir ?? (await readClientConfig(line.config ?? DEFAULT_CONFIG_PATH, { named: line.config !== undefined })).stateDir;
      print((await reload({ stateDir, explicitStateDir: line.stateDir !== undefined })) + '\n');
      return EXIT_OK;
    }
  }

  const client = line.url !== undefined ? new AgentClient(line.url, '--url') : await clientFromConfig(line);
  switch (command.kind) {
    case 'status': {
      const status = await client.get<StatusResource>(API_PATHS.status);
      line.json ? json(status) : print(renderStatus(status, s));
      return status.converged && statusProblems(status).length === 0 ? EXIT_OK : EXIT_FAILED;
    }
    case 'wait': {
      const status = await waitConverged(client, { timeoutMs: line.timeoutSeconds * 1000 });
      if (line.json) json(status);
      return EXIT_OK;
    }
    case 'status-system': {
      const system = await client.get<SystemResource>(API_PATHS.system);
      line.json ? json(system) : print(renderSystem(system, s));
      return EXIT_OK;
    }
    case 'status-network': {
      if (command.link !== undefined) {
        const link = await client.get<LinkResource>(API_PATHS.link(command.link));
        line.json ? json(link) : print(renderLink(link, s));
      } else {
        const network = await client.get<NetworkResource>(API_PATHS.network);
        line.json ? json(network) : print(renderNetwork(network, s));
      }
      return EXIT_OK;
    }
    case 'show-ssh-keys': {
      const keys = await client.get<SshKeysResource>(API_PATHS.sshKeys);
      line.json ? json(keys) : print(renderSshKeys(keys.sshKeys));
      return EXIT_OK;
    }
    case 'show-document': {
      const document = await client.get<DocumentResource>(API_PATHS.document);
      json(line.json ? document : document.document);
      return EXIT_OK;
    }
  }
  return EXIT_OK;
}

async function clientFromConfig(line: CommandLine): Promise<AgentClient> {
  const path = line.config ?? DEFAULT_CONFIG_PATH;
  const { listen, note } = await readClientConfig(path, { named: line.config !== undefined });
  return new AgentClient(urlForListen(parseListen(listen)), `Listen= in ${path}, default ${DEFAULT_LISTEN}${note ? `; ${note}` : ''}`);
}
