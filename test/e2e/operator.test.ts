// What an operator meets after the quick start, on the real kernel in namespaces: configuration
// mistakes said at once, one agent at a time, --cleanup that is not undone, a root run that
// leaves nothing root-owned behind, a first pass that gives up in time (issue #21).
import test from 'ava';
import { join } from 'node:path';
import { createCloudEnv, missingFromKernel, type CloudEnv, type Proc } from '../lib/cloud-env.js';
import { builtinScenario, vmDump } from '../lib/e2e.js';
import { waitFor } from '../lib/netns.js';

/** The helper, once it listens: a --once run has no second try. */
async function listeningHelper(env: CloudEnv): Promise<Proc> {
  const helper = env.startHelper();
  await waitFor(() => helper.output().includes(' listening"'), () => `the helper to listen (${helper.output()})`, 60_000);
  return helper;
}

test.serial('--config naming a missing file is an error, and nothing is asked or configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  env.startHelper();
  const before = vmDump(env);
  const missing = join(env.dir, 'absent.toml');
  const result = await env.runAgent(['--once', '--config', missing]);
  t.is(result.code, 1, result.output);
  t.regex(result.output, new RegExp(`${missing}: no such file: a file named with --config must exist`));
  t.is(vmDump(env), before);
  t.is(Number((await env.simStats()).requests), 0);
});

test.serial('Supplementary = "eth0,eth1" is an error showing the spaces it takes, and nothing is configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  env.startHelper();
  env.writeConfig({ supplementary: ['eth0,eth1'] });
  const before = vmDump(env);
  const result = await env.runAgent(['--once']);
  t.is(result.code, 1, result.output);
  t.regex(result.output, /"eth0,eth1" is not an interface name: separate names with spaces \("eth0 eth1"\)/);
  t.is(vmDump(env), before);
});

test.serial('a Supplementary= interface that does not exist is a warning, and the rest is configured', async (t) => {
  const env = await createCloudEnv(t, builtinScenario('azure'), 'op');
  await listeningHelper(env);
  env.writeConfig({ supplementary: ['eth0', 'eth7'] });
  const result = await env.runAgent(['--once']);
  t.is(result.code, 0, result.output);
  t.regex(result.output, /WARNING Supplementary= names eth7, which is not an interface now/);
  t.deepEqual(missingFromKernel(env), []);
  t.regex(env.vmExec('ip', ['rule', 'show']), /from 10\.4\.0\.4 lookup 10000/, 'eth0 has its rules');
});
