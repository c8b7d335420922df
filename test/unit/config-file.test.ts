// The configuration file as a client of the agent reads it (protocol/config-file.ts): Listen=
// and StateDir=, checked as the agent checks them, the defaults when the file or a key is absent.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../agent/process/config.js';
import { ConfigError, DEFAULT_STATE_DIR, readClientConfig } from '../../protocol/config-file.js';
import { DEFAULT_LISTEN } from '../../protocol/rest.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

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

test('a client reads the keys in any case, as the agent does', async (t) => {
  const path = await configFile(t, '[network]\nlisten = "127.0.0.1:7000"\n[system]\nstatedir = "/run/cn-x"\n');
  t.deepEqual(await readClientConfig(path), { listen: '127.0.0.1:7000', stateDir: '/run/cn-x' });
  // and in a file that is not TOML, line by line
  const broken = await configFile(t, '[NETWORK]\nLISTEN = "127.0.0.1:7001"\nthis is not toml\n');
  t.is((await readClientConfig(broken)).listen, '127.0.0.1:7001');
});

test('a Listen= the agent refuses is refused with the agent\'s words', async (t) => {
  const text = '[Network]\nListen = "example.org:5209"\n';
  const path = await configFile(t, text);
  const client = await t.throwsAsync(readClientConfig(path), { instanceOf: ConfigError });
  const agent = t.throws(() => parseConfig(text, path), { instanceOf: ConfigError });
  t.is(client!.message, agent!.message);
});

test('a file that is not TOML still gives Listen= and StateDir=, read line by line, and says so', async (t) => {
  const path = await configFile(t, '[System]\nStateDir = "/run/elsewhere"\nLogLevel = Info\n[Network\n[Network]\nListen = "127.0.0.1:6000" # the API\n');
  const client = await readClientConfig(path);
  t.like(client, { listen: '127.0.0.1:6000', stateDir: '/run/elsewhere' });
  t.regex(client.note!, new RegExp(`^${path}: not valid TOML: line 3.*; Listen= and StateDir= were read line by line$`));
  // keys a client does not read are left to the agent
  t.deepEqual(await readClientConfig(await configFile(t, '[System]\nLogLevel = "Loud"\n')), { listen: DEFAULT_LISTEN, stateDir: DEFAULT_STATE_DIR });
});

test('a file named with --config must exist for a client too', async (t) => {
  await t.throwsAsync(readClientConfig('/nonexistent/cloud-network.toml', { named: true }), { instanceOf: ConfigError, message: /no such file: a file named with --config must exist/ });
});

test('a file this user may not read gives the defaults, and says why', async (t) => {
  const path = await configFile(t, '[Network]\nListen = "127.0.0.1:6000"\n');
  // root reads any file: it runs the check as nobody, for whom a 0600 file (in a 0700 directory) is closed
  await chmod(path, process.getuid?.() === 0 ? 0o600 : 0o000);
  const script = `import { readClientConfig } from ${JSON.stringify(join(ROOT, 'protocol/config-file.ts'))};
process.stdout.write(JSON.stringify(await readClientConfig(${JSON.stringify(path)})));`;
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HOME: tmpdir() }, ...asUser });
  t.is(run.status, 0, run.stderr);
  const client = JSON.parse(run.stdout) as { listen: string; stateDir: string; note?: string };
  t.like(client, { listen: DEFAULT_LISTEN, stateDir: DEFAULT_STATE_DIR });
  t.regex(client.note!, /cannot read the configuration file \(EACCES\); the defaults were used/);
});
