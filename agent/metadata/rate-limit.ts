// Keeping under a metadata service's request limits: request starts at a steady rate (Azure
// answers 429 past 5/s; EC2 drops link-local traffic past 1,024 packets/s per ENI), with a
// burst of independent requests allowed to leave together where the limit counts packets
// rather than requests, and a bound on requests in flight. Retries go through the same gate
// as first attempts.

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
  /** when the next start is due at the steady rate (GCRA's theoretical arrival time) */
  private due?: number;
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  /** `burst` starts may leave at once after a pause; 1 spaces every start evenly. */
  constructor(
    private readonly perSecond: number,
    private readonly concurrency: number,
    private readonly now: () => number = Date.now,
    private readonly burst = 1,
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
    // a steady rate rather than a sliding window: with bursts, uneven latency on the way could
    // still put more than the limit into one second as the service counts it; only `burst`
    // starts may be early, so no second ever sees more than perSecond + burst - 1
    const spacing = 1000 / this.perSecond;
    const due = Math.max(this.due ?? this.now(), this.now());
    const wait = due - (this.burst - 1) * spacing - this.now();
    if (wait > 0) await sleep(Math.ceil(wait), signal);
    this.due = Math.max(due, this.now()) + spacing;
  }
}
