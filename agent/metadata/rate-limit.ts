// Keeping under a metadata service's request limits: a sliding one-second window of request
// starts (Azure answers 429 past 5/s; EC2 drops link-local traffic past 1,024 packets/s per
// ENI) and a bound on requests in flight. Retries go through the same gate as first attempts.

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
  private readonly starts: number[] = [];
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
    for (;;) {
      const now = this.now();
      while (this.starts.length > 0 && this.starts[0]! <= now - 1000) this.starts.shift();
      if (this.starts.length < this.perSecond) {
        this.starts.push(now);
        return;
      }
      await sleep(this.starts[0]! + 1000 - now + 1, signal);
    }
  }
}
