// What the helper does when no connection is open: exit after --idle-exit seconds when
// socket-activated (systemd starts it again on the next connection), and meanwhile give back the
// heap an apply grew.
import { setFlagsFromString } from 'node:v8';
import type { HelperServer } from './server.js';

export interface IdleOptions {
  /** 0: never exit */
  idleExitSeconds: number;
  /** only a socket-activated helper exits when idle: nothing would start it again otherwise */
  activated: boolean;
  stop(why: string): void;
}

export function whenIdle(helper: HelperServer, options: IdleOptions): void {
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdleExit = () => {
    if (!options.activated || options.idleExitSeconds === 0) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (helper.connectionCount === 0) options.stop(`no connection for ${options.idleExitSeconds} s (socket-activated; systemd starts the helper again on the next connection)`);
    }, options.idleExitSeconds * 1000);
  };
  helper.onBusy(() => clearTimeout(idleTimer));
  helper.onIdle(armIdleExit);
  const collect = idleCollection();
  if (collect) helper.onIdle(collect);
  armIdleExit();
}

/**
 * One full collection when the last connection closed (the agent's client closes after 1 s
 * without a request), with --expose-gc (the unit's NODE_OPTIONS): it gives back the heap an apply
 * grew for the rest of the idle time. It compacts, as the agent's does (agent/process/idle-gc.ts):
 * a plain one leaves the live objects scattered over the pages the apply grew. It also drops the
 * bytecode of every function not running (V8 otherwise flushes only bytecode left unused over
 * several collections): a request within the idle time compiles again what it runs
 * (docs/performance.md, "Memory"). Both flags are set for this one collection only.
 */
function idleCollection(): (() => void) | undefined {
  const collectGarbage = (globalThis as { gc?: unknown }).gc;
  if (typeof collectGarbage !== 'function') return undefined;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    setFlagsFromString('--stress-flush-code');
    try {
      collectGarbage();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
      setFlagsFromString('--no-stress-flush-code');
    }
  };
}
