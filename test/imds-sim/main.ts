// The simulator as a process: cloud-network-imds-sim --scenario FILE|builtin:NAME --listen HOST:PORT
// [--listen HOST:PORT ...] [--provider CLOUD] [--control-socket PATH]. Prints one "listening on ..."
// line when ready.
import { parseArgs } from 'node:util';
import { BUILTIN_SCENARIOS, loadScenario, ProviderSchema, type SimProvider } from './scenario.js';
import { startImdsSimulator } from './server.js';

const USAGE = `usage: cloud-network-imds-sim --scenario FILE|${BUILTIN_SCENARIOS.map((n) => `builtin:${n}`).join('|')} --listen HOST:PORT [--listen HOST:PORT ...] [--provider ${ProviderSchema.anyOf.map((s) => s.const).join('|')}] [--control-socket PATH]`;

function parseListen(text: string): { host: string; port: number } {
  // 169.254.169.254:80, [::1]:8080
  const match = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`--listen ${text}: expected HOST:PORT such as 169.254.169.254:80`);
  return { host: (match[1] ?? match[2])!, port };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      listen: { type: 'string', multiple: true },
      provider: { type: 'string' },
      'control-socket': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.scenario || !values.listen || values.listen.length === 0) throw new Error(`--scenario and --listen are required\n${USAGE}`);
  const providers = ProviderSchema.anyOf.map((schema) => schema.const);
  if (values.provider !== undefined && !(providers as string[]).includes(values.provider)) {
    throw new Error(`--provider ${values.provider}: choose one of ${providers.join(', ')}`);
  }
  const [{ host, port }, ...alsoListen] = values.listen.map(parseListen) as [{ host: string; port: number }, ...{ host: string; port: number }[]];
  const sim = await startImdsSimulator({
    host,
    port,
    alsoListen,
    scenario: loadScenario(values.scenario),
    ...(values.provider !== undefined && { provider: values.provider as SimProvider }),
    ...(values['control-socket'] !== undefined && { controlSocket: values['control-socket'] }),
  });
  const cloud = values.provider ?? sim.scenario().provider;
  const control = sim.controlSocket ? `, control on ${sim.controlSocket} and` : ',';
  const also = alsoListen.map((a) => ` and http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`).join('');
  console.log(`listening on ${sim.url}${also} as ${cloud}${control} /__sim/* with X-Sim-Control: 1`);
  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(`cloud-network-imds-sim: ${(error as Error).message}`);
  process.exit(2);
});
