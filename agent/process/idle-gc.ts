// Gives back the memory an apply took, once the agent is quiet again.
//
// A reconcile that applies a plan allocates a lot at scale (the kernel dump, the plan, the
// helper's request and answer, a log line per operation) and V8 keeps the old-generation pages
// it grew to: its own memory reducer waits for an idle isolate, which a daemon answering its
// REST API and timers rarely is. One full collection after such work, once nothing like it has
// happened for a second, returns them. Reconciles that apply nothing (the refresh, the hourly
// kernel read) collect nothing: shrinking the heap each time would only make the next one grow
// it again. After the collection, glibc's malloc_trim hands back the buffers' memory it freed
// (malloc-trim.ts). docs/performance.md, "Memory".

import { setFlagsFromString } from 'node:v8';

/** How long after the last apply the collection runs: a burst of repairs shares one. */
export const IDLE_GC_DELAY_MS = 1_000;

type Collect = () => void;

/**
 * V8's collector when the process runs with --expose-gc (the unit's NODE_OPTIONS), else
 * undefined; the collection it runs also compacts (compacting).
 */
export function exposedGc(): Collect | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? compacting(gc as Collect) : undefined;
}

/**
 * A full collection that also compacts the old generation. A plain full collection frees the
 * dead objects but leaves the live ones where they are, scattered over the pages the apply
 * grew, and a page with one live object stays resident. V8 compacts every page only in its
 * memory-reducing collections, which wait for an idle isolate; the flag makes this one
 * collection such a collection, and is set back at once, so the collections during the work
 * keep V8's own heuristics.
 */
export function compacting(collect: Collect): Collect {
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/** How long after the collection malloc is trimmed: V8 frees buffers' memory on worker threads after it. */
export const TRIM_DELAY_MS = 200;

/** A collection, then a trim of malloc's free pages once V8 has freed the collected buffers. */
export function collectAndTrim(collect: Collect | undefined, trim: (() => void) | undefined): Collect | undefined {
  if (!collect) return undefined;
  if (!trim) return collect;
  return () => {
    collect();
    setTimeout(trim, TRIM_DELAY_MS).unref();
  };
}

export class IdleCollector {
  private timer?: NodeJS.Timeout;
  private collections = 0;

  constructor(
    private readonly collect: Collect | undefined,
    private readonly delayMs = IDLE_GC_DELAY_MS,
  ) {}

  /** Allocation-heavy work just ended: collect once nothing like it has happened for delayMs. */
  noteWork(): void {
    if (!this.collect) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collections++;
      this.collect!();
    }, this.delayMs);
    this.timer.unref();
  }

  /** how many collections ran */
  get count(): number {
    return this.collections;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
