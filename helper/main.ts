// The helper's entry point: parse the command line, open the ledger and the kernel, listen,
// serve until SIGTERM (or, when socket-activated, until --idle-exit seconds without a connection:
// idle.ts).
import { createServer } from 'node:net';
import { EXIT_FAILED, EXIT_OK, exitWhenDone, runCli } from '../protocol/cli.js';
import { Applier } from './applier.js';
import { AuditLog } from './audit.js';
import { holdsNetAdmin } from './capabilities.js';
import { unlink } from './files.js';
import { whenIdle } from './idle.js';
import { AddressLedger } from './ledger.js';
import { listen } from './listen.js';
import { JsonLineLog } from './log.js';
import { NetlinkKernel } from './netlink-kernel.js';
import { parseHelperOptions, USAGE, type HelperOptions } from './options.js';
import { lookupGid, lookupUid } from './peer.js';
import { HelperServer } from './server.js';
import { packageVersion } from '../protocol/version.js';

function main(): Promise<number> {
  return runCli(
    {
      name: 'cloud-network-helper',
      usage: USAGE,
      parse: parseHelperOptions,
      asks: (options) => (options.mode === 'help' || options.mode === 'version' ? options.mode : undefined),
      run: serve,
    },
    process.argv.slice(2),
  );
}

async function serve(options: HelperOptions): Promise<number> {
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
      return EXIT_FAILED;
    }
  }
  // checked once here, as --group is: a misspelt name would otherwise refuse the agent at every connection
  if (options.allowUser !== undefined && lookupUid(options.allowUser) === undefined) {
    log.fatal(`the user ${options.allowUser} (--allow-user) does not exist; create it (the package's sysusers.d entry does) or name an existing user`);
    return EXIT_FAILED;
  }
  if (holdsNetAdmin() === false) {
    log.error(
      'the helper runs without CAP_NET_ADMIN: the kernel will refuse every change it is asked for; ' +
        'run it from cloud-network-helper.service (AmbientCapabilities=CAP_NET_ADMIN), as root, or with the capability (setpriv --ambient-caps +net_admin)',
    );
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
    return EXIT_FAILED;
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
      resolve(EXIT_OK);
    };
    process.on('SIGTERM', () => void stop('SIGTERM; the request in progress was finished'));
    process.on('SIGINT', () => void stop('SIGINT'));

    whenIdle(helper, { idleExitSeconds: options.idleExitSeconds, activated: listening.activated, stop: (why) => void stop(why) });

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

exitWhenDone('cloud-network-helper', main());
