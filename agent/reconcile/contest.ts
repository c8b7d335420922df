// No tug of war: an object cloud-network configured that someone else removes again and again
// (networkd reconfiguring a link, a script of the operator's) is re-added at most
// CONTEST_LIMIT times in CONTEST_WINDOW_MS; the next removal leaves it removed, with one
// warning naming the object and the likely tool, until the next reload (SIGHUP). A removal is
// seen as a plan that adds again what an apply had put in place, or what a converged reconcile
// found in place under the same metadata: cloud-network never removes what it still wants.
import { describeOperation } from '../../netlink/describe.js';
import type { Operation } from '../../protocol/operations.js';

export const CONTEST_LIMIT = 5;
export const CONTEST_WINDOW_MS = 60_000;

/** An object cloud-network stopped re-adding. */
export interface ContestedObject {
  /** the operation it no longer applies, as `ip`-like text */
  object: string;
  /** removals seen within the window when it stopped */
  removals: number;
  /** the tool that likely removes it, when one is known */
  likelyTool?: string;
  /** when it stopped re-adding it */
  since: string;
}

const ADDS = new Set<Operation['kind']>(['address.add', 'route.replace', 'rule.add']);

export class Contest {
  /** objects an apply put in place: key → true */
  private readonly placed = new Set<string>();
  /** key → the times it was found removed, within the window */
  private readonly removals = new Map<string, number[]>();
  private readonly held = new Map<string, ContestedObject>();
  /** the metadata (model text) of the last reconcile that found every wanted object in place */
  private settledModel: string | undefined;
  /** keys counted as removed since that reconcile, through it rather than through an apply */
  private readonly countedSinceSettled = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The plan's operations minus those held back; notes the removals the plan shows, and holds
   * back an object once it was removed more than CONTEST_LIMIT times in the window. Returns the
   * objects newly held, for one warning each.
   */
  filter(operations: Operation[], likelyTool: (op: Operation) => string | undefined, modelText?: string): { operations: Operation[]; newlyHeld: ContestedObject[] } {
    const newlyHeld: ContestedObject[] = [];
    const kept: Operation[] = [];
    const now = this.now();
    for (const op of operations) {
      if (!ADDS.has(op.kind)) {
        kept.push(op);
        continue;
      }
      const key = describeOperation(op);
      if (this.held.has(key)) continue;
      // objects already in place when the agent started (ExecStartPre's --once) count from the first removal
      const wasSettled = modelText !== undefined && modelText === this.settledModel && !this.countedSinceSettled.has(key);
      if (this.placed.delete(key) || wasSettled) {
        if (wasSettled) this.countedSinceSettled.add(key);
        const times = (this.removals.get(key) ?? []).filter((t) => now - t < CONTEST_WINDOW_MS);
        times.push(now);
        this.removals.set(key, times);
        if (times.length > CONTEST_LIMIT) {
          const tool = likelyTool(op);
          const contested: ContestedObject = { object: key, removals: times.length, ...(tool !== undefined && { likelyTool: tool }), since: new Date(now).toISOString() };
          this.held.set(key, contested);
          newlyHeld.push(contested);
          continue;
        }
      }
      kept.push(op);
    }
    return { operations: kept, newlyHeld };
  }

  /** Records the adds an apply put in place (applied, or already there). */
  placedBy(operations: Operation[], outcomes: { index: number; outcome: string }[]): void {
    for (const { index, outcome } of outcomes) {
      const op = operations[index];
      if (op && ADDS.has(op.kind) && (outcome === 'applied' || outcome === 'already')) this.placed.add(describeOperation(op));
    }
  }

  /** A reconcile found every wanted object in place under this metadata. */
  settled(modelText: string): void {
    // what was placed under other metadata is no longer in question: the metadata may have taken
    // it away and brought it back, and what is in place now counts through settledModel
    if (modelText !== this.settledModel) this.placed.clear();
    this.settledModel = modelText;
    this.countedSinceSettled.clear();
  }

  /** Whether an operation is held back. */
  holds(op: Operation): boolean {
    return this.held.size > 0 && ADDS.has(op.kind) && this.held.has(describeOperation(op));
  }

  get contested(): ContestedObject[] {
    return [...this.held.values()];
  }

  /** A reload: re-add everything again, counting afresh. */
  clear(): void {
    this.held.clear();
    this.removals.clear();
    this.settledModel = undefined;
    this.countedSinceSettled.clear();
  }
}
