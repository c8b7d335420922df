// Clean-up steps for programs outside ava (the demo, the benchmarks, the reliability suite):
// registered like ava's t.teardown, run in reverse order, every step tried even if one fails.
import type { Teardown } from './netns.js';

export class TeardownStack implements Teardown {
  private readonly steps: (() => void | Promise<void>)[] = [];

  teardown(fn: () => void | Promise<void>): void {
    this.steps.push(fn);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        /* keep removing the rest */
      }
    }
  }
}
