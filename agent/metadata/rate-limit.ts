// Keeping under a metadata service's request limits: request starts spaced evenly (Azure
// answers 429 past 5/s; EC2 drops link-local traffic past 1,024 packets/s per ENI) and a bound
// on requests in flight. Retries go through the same gate as first attempts.

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const sleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class RequestGate {
  private lastStart?: number;
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly perSecond: number,
    private readonly concurrency: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Waits for a slot in the window and in the in-flight bound; call release() when done. */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.inFlight < this.concurrency) this.inFlight++;
    // a released slot is handed straight to the next waiter, so none can jump the queue
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    // one waiter at a time decides its start, so the window is never overrun by a burst
    const turn = this.queue.then(() => this.waitForWindow(signal));
    this.queue = turn.catch(() => undefined);
    try {
      await turn;
    } catch (error) {
      this.release();
      throw error;
    }
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  private async waitForWindow(signal?: AbortSignal): Promise<void> {
    // evenly spaced starts rather than a sliding window: with bursts, uneven latency on the way
    // could still put more than the limit into one second as the service counts it
    const spacing = 1000 / this.perSecond;
    const wait = this.lastStart === undefined ? 0 : this.lastStart + spacing - this.now();
    if (wait > 0) await sleep(Math.ceil(wait), signal);
    this.lastStart = this.now();
  }
}
