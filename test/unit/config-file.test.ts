// The configuration file as a client of the agent reads it (protocol/config-file.ts): Listen=
// and StateDir=, checked as the agent checks them, the defaults when the file or a key is absent.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../agent/process/config.js';
import { ConfigError, DEFAULT_STATE_DIR, readClientConfig } from '../../protocol/config-file.js';
import { DEFAULT_LISTEN } from '../../protocol/rest.js';

async function configFile(t: import('ava').ExecutionContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cn-config-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'cloud-network.toml');
  await writeFile(path, text);
  return path;
}

test('without a file, a client gets the defaults the agent uses', async (t) => {
  t.deepEqual(await readClientConfig('/nonexistent/cloud-network.toml'), { listen: DEFAULT_LISTEN, stateDir: DEFAULT_STATE_DIR });
});

test('a client reads Listen= and StateDir= as the agent does', async (t) => {
  const text = '[System]\nStateDir = "/run/elsewhere"\n\n[Network]\nListen = "localhost:6000"\n';
  const path = await configFile(t, text);
  const agent = parseConfig(text, path);
  t.deepEqual(await readClientConfig(path), { listen: agent.network.listen, stateDir: agent.system.stateDir });
});

test('a Listen= the agent refuses is refused with the agent\'s words', async (t) => {
  const text = '[Network]\nListen = "example.org:5209"\n';
  const path = await configFile(t, text);
  const client = await t.throwsAsync(readClientConfig(path), { instanceOf: ConfigError });
  const agent = t.throws(() => parseConfig(text, path), { instanceOf: ConfigError });
  t.is(client!.message, agent!.message);
});

test('broken TOML is an error naming the file; keys a client does not read are left to the agent', async (t) => {
  await t.throwsAsync(readClientConfig(await configFile(t, '[Network\n')), { instanceOf: ConfigError, message: /not valid TOML/ });
  t.deepEqual(await readClientConfig(await configFile(t, '[System]\nLogLevel = "Loud"\n')), { listen: DEFAULT_LISTEN, stateDir: DEFAULT_STATE_DIR });
});
