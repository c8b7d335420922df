// The helper's entry point: parse the command line, open the ledger and the kernel, listen,
// serve until SIGTERM (or, when socket-activated, until --idle-exit seconds without a connection).
import { createServer } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { Applier } from './applier.js';
import { AuditLog } from './audit.js';
import { unlink } from './files.js';
import { AddressLedger } from './ledger.js';
import { listen } from './listen.js';
import { JsonLineLog } from './log.js';
import { NetlinkKernel } from './netlink-kernel.js';
import { parseHelperOptions, UsageError, USAGE, type HelperOptions } from './options.js';
import { lookupGid } from './peer.js';
import { HelperServer } from './server.js';
import { packageVersion } from '../protocol/version.js';

async function main(): Promise<number> {
  let options: HelperOptions;
  try {
    options = parseHelperOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`cloud-network-helper: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.mode === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options.mode === 'version') {
    process.stdout.write(`cloud-network-helper ${packageVersion()}\n`);
    return 0;
  }

  const log = new JsonLineLog('cloud-network-helper');
  // Nothing a peer sends may stop the helper; a bug that escapes every handler is logged,
  // and the helper keeps serving.
  process.on('uncaughtException', (error) => log.error({ err: error }, 'unexpected error; the helper keeps running'));
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unexpected rejected promise; the helper keeps running'));

  let gid: number | undefined;
  if (options.group !== undefined) {
    gid = lookupGid(options.group);
    if (gid === undefined) {
      log.fatal(`the group ${options.group} (--group) does not exist; create it or leave the option out`);
      return 1;
    }
  }
  const ledger = await AddressLedger.open(options.ledgerPath, log);
  const kernel = new NetlinkKernel();
  const applier = new Applier({
    kernel,
    ledger,
    version: packageVersion(),
    policy: { tables: options.tables, priorities: options.priorities, deniedLinks: new Set(options.deniedLinks) },
  });
  const helper = new HelperServer({ applier, audit: new AuditLog(log), log, ...(options.allowUser ? { allowUser: options.allowUser } : {}) });
  const server = createServer({ pauseOnConnect: false });
  helper.attach(server);
  server.on('error', (error) => log.error({ err: error }, 'listening socket error'));

  let listening;
  try {
    listening = await listen(server, options.socketPath, gid);
  } catch (error) {
    log.fatal(`cannot listen: ${(error as Error).message}`);
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`stopping: ${why}`);
      server.close();
      await helper.stop();
      kernel.close();
      if (listening.path) await unlink(listening.path).catch(() => undefined);
      resolve(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM; the request in progress was finished'));
    process.on('SIGINT', () => void stop('SIGINT'));

    let idleTimer: NodeJS.Timeout | undefined;
    const armIdleExit = () => {
      if (!listening.activated || options.idleExitSeconds === 0) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (helper.connectionCount === 0) void stop(`no connection for ${options.idleExitSeconds} s (socket-activated; systemd starts the helper again on the next connection)`);
      }, options.idleExitSeconds * 1000);
    };
    helper.onBusy(() => clearTimeout(idleTimer));
    helper.onIdle(armIdleExit);
    // The last connection closed (the agent's client closes after 1 s without a request): give
    // back the heap an apply grew for the rest of the idle time. The collection compacts, as the
    // agent's does (agent/process/idle-gc.ts): a plain one leaves the live objects scattered over
    // the pages the apply grew. It also drops the bytecode of every function not running (V8
    // otherwise flushes only bytecode left unused over several collections): a request within the
    // idle time compiles again what it runs (docs/performance.md, "Memory").
    const collectGarbage = (globalThis as { gc?: unknown }).gc;
    if (typeof collectGarbage === 'function') {
      helper.onIdle(() => {
        setFlagsFromString('--compact-on-every-full-gc');
        setFlagsFromString('--stress-flush-code');
        try {
          collectGarbage();
        } finally {
          setFlagsFromString('--no-compact-on-every-full-gc');
          setFlagsFromString('--no-stress-flush-code');
        }
      });
    }
    armIdleExit();

    log.info(
      {
        socket: listening.path ?? '(systemd socket activation)',
        allowUser: options.allowUser ?? null,
        tables: options.tables,
        priorities: options.priorities,
        deniedLinks: options.deniedLinks,
        ledger: options.ledgerPath,
        uid: process.getuid?.(),
      },
      `cloud-network-helper ${packageVersion()} listening`,
    );
  });
}

main().then(
  (code) => {
    // let the last log lines reach stdout before exiting
    process.stdout.write('', () => process.exit(code));
  },
  (error: Error) => {
    process.stderr.write(`cloud-network-helper: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
