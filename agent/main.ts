// bin/cloud-network: the agent's entry point. Runs unprivileged: it reads the metadata and the
// kernel itself and sends every change to cloud-network-helper.
import type Logger from 'bunyan';
import { existsSync } from 'node:fs';
import { watchKernel } from '../netlink/events.js';
import { errorText, EXIT_FAILED, EXIT_OK, EXIT_PENDING, EXIT_USAGE, exitWhenDone, runCli } from '../protocol/cli.js';
import { describeOperation } from '../netlink/describe.js';
import { apiSocketPath } from '../protocol/rest.js';
import { PRIORITY, writeStderr } from '../protocol/journal.js';
import { packageVersion } from '../protocol/version.js';
import { detectProvider } from './metadata/detect.js';
import type { MetadataModel } from './metadata/model.js';
import { ProviderSource } from './metadata/source.js';
import { plan, type PlannerConfig } from './plan/planner.js';
import { parseCommandLine, USAGE, type CommandLine } from './process/command-line.js';
import { configNotes, loadConfig, type Config } from './process/config.js';
import { collectAndTrim, exposedGc, IdleCollector } from './process/idle-gc.js';
import { InstanceLock, isHeld } from './process/instance-lock.js';
import { createLogger, setLogLevel } from './process/logging.js';
import { loadMallocTrim } from './process/malloc-trim.js';
import { becomeStateDirOwner, ensureStateDir } from './process/state-dir.js';
import { readHostFacts } from './coexist/host.js';
import { Neighbourhood } from './coexist/neighbourhood.js';
import { Daemon } from './reconcile/daemon.js';
import { HelperClient } from './reconcile/helper-client.js';
import { NetlinkKernelReader } from './reconcile/kernel-reader.js';
import { Reconciler, type ReconcilerOptions } from './reconcile/reconciler.js';
import type { RunningApi } from './report/api/server.js';
import { Metrics } from './report/metrics.js';
import { StateFiles } from './report/state-files.js';

export const VERSION = packageVersion();

function plannerConfig(config: Config): PlannerConfig {
  return { routeTableBase: config.network.routeTableBase, supplementary: config.network.supplementary };
}

interface Runtime {
  config: Config;
  log: Logger;
  metrics: Metrics;
  source: ProviderSource;
  kernel: NetlinkKernelReader;
  helper: HelperClient;
  /** what the metadata client did last (its debug line), for a first pass that runs out of time */
  lastMetadataRequest?: string;
}

async function setUp(command: CommandLine, config: Config, log: Logger): Promise<Runtime> {
  const metrics = new Metrics();
  const kernel = new NetlinkKernelReader();
  let lastMetadataRequest: string | undefined;
  const clientSettings = {
    onResponse: (provider: string, outcome: number | 'timeout' | 'network-error') => metrics.imdsRequest(provider, outcome),
    debug: (line: string) => {
      lastMetadataRequest = line;
      log.debug(line);
    },
  };
  // the provider that detection settled on is the one that fetches: what its probe learnt (EC2's token) is kept
  const detection = await detectProvider({
    configured: config.system.provider,
    client: clientSettings,
    context: { kernelState: () => kernel.lastOrRead(), stateDir: config.system.stateDir, stateReadOnly: command.mode === 'dry-run' },
  });
  const name = detection.provider;
  log.info(`cloud: ${name} (${detection.evidence})`);
  const source = new ProviderSource(detection.instance);
  // The metadata service answers while the daemon sets itself up (the kernel watch, the
  // reconciler, the helper's connection). --cleanup reads no metadata.
  if (command.mode !== 'cleanup') source.startEarly();
  const helper = new HelperClient({ socketPath: config.system.helperSocket });
  helper.askLedgerEarly();
  log.debug(`provider ${name}, helper at ${config.system.helperSocket}`);
  return {
    config,
    log,
    metrics,
    source,
    kernel,
    helper,
    get lastMetadataRequest() {
      return lastMetadataRequest;
    },
  };
}

async function dryRun(rt: Runtime): Promise<number> {
  const snapshot = await rt.source.fetch();
  const kernel = await rt.kernel.read();
  let owned: { link: string; address: string }[] = [];
  try {
    owned = (await rt.helper.ownedAddresses()).addresses;
  } catch (error) {
    writeStderr(`note: ${errorText(error)}; addresses are judged ours by their protocol tag only\n`, PRIORITY.warning);
  }
  const neighbours = neighbourhood(rt);
  await neighbours.refresh();
  const survey = neighbours.survey(kernel);
  const result = plan(snapshot.model, plannerConfig(rt.config), kernel, owned, survey.neighbours);
  // a shell script: what it found as comments, each operation as the iproute2 command that does it
  const out: string[] = [`# cloud-network --dry-run: ${rt.source.name}, instance ${snapshot.model.instance.id}`];
  for (const tool of survey.tools) out.push(`# ${tool.tool} (${tool.stance}): ${tool.note}`);
  for (const nic of result.nics) {
    const where = nic.link ? `${nic.link.name} (ifindex ${nic.link.index})` : 'no link';
    const alone = nic.leftAlone ? `: managed by ${nic.leftAlone.tool}, left alone` : '';
    out.push(`# NIC ${nic.mac} → ${where}${nic.table !== undefined ? `, table ${nic.table}` : ''}${alone}${nic.problem ? `: ${nic.problem}` : ''}`);
  }
  if (result.operations.length === 0) {
    out.push('# nothing to do: the kernel matches the plan');
  } else {
    out.push(`# ${result.operations.length} operations would be applied; as root, these commands do the same:`);
    for (const op of result.operations) out.push(describeOperation(op));
  }
  process.stdout.write(out.join('\n') + '\n');
  return result.operations.length === 0 ? EXIT_OK : EXIT_PENDING;
}

/** Removes everything cloud-network owns: the plan for a VM whose metadata lists no NIC. */
async function cleanup(rt: Runtime): Promise<number> {
  const empty: MetadataModel = {
    instance: { provider: rt.source.name, id: '', name: '', region: '', zone: '', size: '', image: '', details: {} },
    nics: [],
  };
  const owned = (await rt.helper.ownedAddresses()).addresses;
  const result = plan(empty, plannerConfig(rt.config), await rt.kernel.read(), owned);
  if (result.operations.length === 0) {
    rt.log.info('cleanup: nothing of cloud-network is configured');
    return EXIT_OK;
  }
  const applied = await rt.helper.apply(result.operations);
  let failed = 0;
  for (const r of applied.results) {
    const op = result.operations[r.index]!;
    if (r.outcome === 'applied' || r.outcome === 'already') rt.log.info(`cleanup: ${describeOperation(op)}`);
    else {
      failed++;
      rt.log.error(`cleanup: ${describeOperation(op)} ${r.outcome}: ${r.reason ?? ''}`);
    }
  }
  return failed === 0 ? EXIT_OK : EXIT_FAILED;
}

/** The other network tools, recognised from the host's files and the kernel (README "Living with other tools"). */
function neighbourhood(rt: Runtime): Neighbourhood {
  const base = rt.config.network.routeTableBase;
  return new Neighbourhood({ readHost: () => readHostFacts(), readForeignRoutes: () => rt.kernel.readForeignRoutes(), tables: { first: base, last: base + 999 } });
}

function newReconciler(rt: Runtime, state: StateFiles, daemonHooks?: Pick<ReconcilerOptions, 'kernelEvents' | 'afterApply'>): Reconciler {
  return new Reconciler({
    neighbours: neighbourhood(rt),
    kernelWatched: daemonHooks?.kernelEvents !== undefined,
    ...daemonHooks,
    source: rt.source,
    kernel: rt.kernel,
    helper: rt.helper,
    state,
    log: rt.log,
    config: plannerConfig(rt.config),
  });
}

/**
 * The longest `--once` takes, counted from the process's start: the unit's first pass
 * (ExecStartPre=) ends well inside its TimeoutStartSec=60 whatever the metadata service does
 * (hangs, or asks for a Retry-After of a minute), so a slow cloud never fails the start.
 */
export const FIRST_PASS_BUDGET_MS = 30_000;

async function once(rt: Runtime): Promise<number> {
  const reconciler = newReconciler(rt, new StateFiles(rt.config.system.stateDir));
  let timer: NodeJS.Timeout | undefined;
  const spent = new Promise<'spent'>((resolve) => (timer = setTimeout(() => resolve('spent'), Math.max(0, FIRST_PASS_BUDGET_MS - performance.now()))));
  const outcome = await Promise.race([reconciler.request('start', true), spent]);
  clearTimeout(timer);
  if (outcome === 'spent') {
    // the process ends now: what is in flight (a metadata request, a retry's wait) goes with it
    rt.log.error(
      `first pass stopped after ${FIRST_PASS_BUDGET_MS / 1000} s, its budget inside the unit's TimeoutStartSec: ${notDone(rt, reconciler)}; ` +
        'the daemon keeps trying',
    );
    return EXIT_FAILED;
  }
  await reconciler.stop();
  if (outcome.converged) {
    rt.log.info('the kernel matches the plan');
    return EXIT_OK;
  }
  rt.log.error(`not converged: ${outcome.reason}`);
  return EXIT_FAILED;
}

/** What a first pass that ran out of time had not done, for its log line. */
function notDone(rt: Runtime, reconciler: Reconciler): string {
  if (!reconciler.current) {
    const last = rt.lastMetadataRequest;
    return `no metadata from ${rt.source.name} yet${last ? ` (last: ${last})` : ''}, nothing configured`;
  }
  const planned = reconciler.currentPlan?.operations.length;
  if (planned === undefined) return 'the metadata came, but the kernel was not read and planned yet, nothing configured';
  const helper = reconciler.status.helperError;
  return `the metadata came, but ${planned} planned operations were not confirmed in the kernel${helper ? ` (${helper})` : ''}`;
}

/** The longest the daemon's first reconcile holds the REST API back. */
export const API_START_DEADLINE_MS = 1_000;

async function daemon(rt: Runtime, command: CommandLine): Promise<number> {
  // the daemon below watches kernel events; the reconciler pauses them around each apply
  const kernelEvents = { pause: () => daemon.pauseKernelEvents(), resume: () => daemon.resumeKernelEvents() };
  // gives back the heap an apply grew, once applies stop (--expose-gc in the unit)
  const idleGc = new IdleCollector(collectAndTrim(exposedGc(), loadMallocTrim()));
  const reconciler = newReconciler(rt, new StateFiles(rt.config.system.stateDir), {
    kernelEvents,
    afterApply: () => idleGc.noteWork(),
  });
  rt.metrics.observe(() => reconciler.status, VERSION);
  let api: RunningApi | undefined;
  const daemon = new Daemon({
    reconciler,
    log: rt.log,
    config: rt.config,
    configPath: command.configPath,
    configNamed: command.configNamed,
    watchKernel: (onChange) =>
      watchKernel({
        onChange,
        onOverflow: () => {
          rt.log.warn('kernel events were lost (receive buffer overflow); re-reading everything');
          onChange();
        },
        onError: (error) => rt.log.debug({ err: error }, 'kernel event socket error'),
      }),
    ...(rt.source.waitForChange && { waitForMetadataChange: rt.source.waitForChange }),
    applyConfig: (config) => {
      setLogLevel(rt.log, config.system.logLevel);
      reconciler.setConfig(plannerConfig(config));
    },
    close: async () => {
      idleGc.stop();
      await api?.close();
      rt.kernel.close();
      rt.helper.close();
    },
  });
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      rt.log.info(`${signal}: stopping; the network stays as it is`);
      void daemon.stop().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // The REST API (its own bundle, dist/agent/api.js) loads once the first reconcile has ended, so
  // that its loading takes no CPU from the metadata, the plan or the helper's apply; a slow first
  // reconcile holds it back for API_START_DEADLINE_MS at most (docs/performance.md, "Start-up").
  await daemon.start();
  let deadline: NodeJS.Timeout | undefined;
  const deadlinePassed = new Promise<'deadline'>((resolve) => (deadline = setTimeout(() => resolve('deadline'), API_START_DEADLINE_MS)));
  const first = await Promise.race([daemon.firstReconcile, deadlinePassed]);
  clearTimeout(deadline);
  rt.log.debug(first === 'deadline' ? `loading the REST API: the first reconcile takes longer than ${API_START_DEADLINE_MS} ms` : 'loading the REST API');
  try {
    const { startApi } = await import('./report/api/server.js');
    api = await startApi({
      listen: rt.config.network.listen,
      socketPath: apiSocketPath(rt.config.system.stateDir),
      log: rt.log,
      metrics: rt.metrics,
      view: {
        version: VERSION,
        status: () => reconciler.status,
        snapshot: () => reconciler.current,
        plan: () => reconciler.currentPlan,
      },
    });
  } catch (error) {
    rt.log.error(`cannot serve the REST API: ${errorText(error)}; stopping, the network stays as it is`);
    await daemon.stop();
    return EXIT_FAILED;
  }
  rt.log.info(`cloud-network ${VERSION} on ${rt.source.name}; REST API on ${api.address}:${api.port} and ${api.socketPath}`);
  await stopped;
  return EXIT_OK;
}

export function main(argv: string[]): Promise<number> {
  return runCli(
    {
      name: 'cloud-network',
      usage: USAGE,
      parse: parseCommandLine,
      asks: (command) => (command.mode === 'help' || command.mode === 'version' ? command.mode : undefined),
      run,
    },
    argv,
  );
}

/** The mode the command line chose; EXIT_FAILED with one line on stderr when it cannot be done. */
async function run(command: CommandLine): Promise<number> {
  let rt: Runtime | undefined;
  let lock: InstanceLock | undefined;
  try {
    const config = await loadConfig(command.configPath, { named: command.configNamed });
    const log = createLogger({ level: config.system.logLevel, format: config.system.logFormat });
    for (const note of configNotes(config)) log.warn(`${command.configPath}: ${note}`);
    const stateDir = config.system.stateDir;
    const owner = becomeStateDirOwner(stateDir);
    if (owner) log.debug(`running as uid ${owner.uid} gid ${owner.gid}, the owner of StateDir ${stateDir}, not as root`);
    if (command.mode === 'once' || command.mode === 'daemon') {
      ensureStateDir(stateDir);
      const taken = InstanceLock.acquire(stateDir, { create: true });
      if (isHeld(taken)) {
        log.error(`another agent (${pidText(taken.heldBy)}) runs with StateDir ${stateDir}; this one changes nothing and exits`);
        return EXIT_FAILED;
      }
      lock = taken;
    } else if (command.mode === 'cleanup') {
      const taken = existsSync(stateDir) ? InstanceLock.acquire(stateDir, { create: true }) : undefined;
      if (isHeld(taken) && !command.force) {
        const pid = taken.heldBy;
        log.error(
          `cleanup refused: an agent (${pidText(pid)}) runs and would put back within a second what --cleanup removes; ` +
            `stop it first (systemctl stop cloud-network.service${pid ? `, or kill ${pid}` : ''}), or add --force`,
        );
        return EXIT_FAILED;
      }
      if (isHeld(taken)) log.warn(`cleanup --force: the agent (${pidText(taken.heldBy)}) runs and will put back what this removes`);
      else lock = taken;
    }
    rt = await setUp(command, config, log);
    switch (command.mode) {
      case 'dry-run':
        return await dryRun(rt);
      case 'cleanup':
        return await cleanup(rt);
      case 'once':
        return await once(rt);
      case 'daemon':
        return await daemon(rt, command);
    }
    return EXIT_USAGE;
  } catch (error) {
    writeStderr(`cloud-network: ${errorText(error)}\n`);
    return EXIT_FAILED;
  } finally {
    if (rt && command.mode !== 'daemon') {
      rt.kernel.close();
      rt.helper.close();
    }
    lock?.release();
  }
}

const pidText = (pid: number | undefined) => (pid === undefined ? 'pid unknown' : `pid ${pid}`);

process.on('unhandledRejection', (reason) => {
  writeStderr(`cloud-network: unexpected error: ${errorText(reason)}\n`);
});

exitWhenDone('cloud-network', main(process.argv.slice(2)));
