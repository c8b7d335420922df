// The reliability suite's scoreboard: one line per case (what was done, what must hold, the
// result) and the totals the README quotes. A case passes by returning its tally and fails by
// throwing an Error whose message says what did not hold.

export interface Tally {
  /** faults injected that the system had to survive */
  faults?: number;
  /** hostile or malformed inputs sent */
  badInputs?: number;
  /** managed addresses, routes and rules that disappeared and were not there at the end */
  lost?: number;
  /** one line of evidence: what was observed */
  detail?: string;
}

export interface CaseSpec {
  name: string;
  /** what the case does */
  done: string;
  /** what must hold */
  holds: string;
  run(): Promise<Tally>;
}

export interface CaseResult extends Required<Omit<Tally, 'detail'>> {
  category: string;
  name: string;
  done: string;
  holds: string;
  ok: boolean;
  detail: string;
  seconds: number;
}

export class Scoreboard {
  readonly results: CaseResult[] = [];

  constructor(private readonly write: (text: string) => void = (text) => process.stdout.write(text)) {}

  /** Runs one case and prints its result as soon as it is known. */
  async run(category: string, spec: CaseSpec): Promise<CaseResult> {
    const started = Date.now();
    let result: CaseResult;
    try {
      const tally = await spec.run();
      result = this.result(category, spec, started, true, tally);
    } catch (error) {
      result = this.result(category, spec, started, false, { detail: error instanceof Error ? error.message : String(error) });
      if (error instanceof CaseFailure) Object.assign(result, error.tally, { ok: false, detail: error.message });
    }
    this.results.push(result);
    this.write(formatResult(result));
    return result;
  }

  /** Records a case that could not even start (its environment failed). */
  fail(category: string, spec: Pick<CaseSpec, 'name' | 'done' | 'holds'>, reason: string): void {
    const result = this.result(category, spec, Date.now(), false, { detail: reason });
    this.results.push(result);
    this.write(formatResult(result));
  }

  private result(category: string, spec: Pick<CaseSpec, 'name' | 'done' | 'holds'>, started: number, ok: boolean, tally: Tally): CaseResult {
    return {
      category,
      name: spec.name,
      done: spec.done,
      holds: spec.holds,
      ok,
      faults: tally.faults ?? 0,
      badInputs: tally.badInputs ?? 0,
      lost: tally.lost ?? 0,
      detail: tally.detail ?? '',
      seconds: (Date.now() - started) / 1000,
    };
  }

  totals(): { cases: number; passed: number; failed: number; faults: number; badInputs: number; lost: number } {
    const sum = (key: 'faults' | 'badInputs' | 'lost') => this.results.reduce((n, r) => n + r[key], 0);
    const passed = this.results.filter((r) => r.ok).length;
    return { cases: this.results.length, passed, failed: this.results.length - passed, faults: sum('faults'), badInputs: sum('badInputs'), lost: sum('lost') };
  }

  /** The summary table, one row per category, then the totals. */
  summary(): string {
    const categories = [...new Set(this.results.map((r) => r.category))];
    const rows = categories.map((category) => {
      const rs = this.results.filter((r) => r.category === category);
      const sum = (key: 'faults' | 'badInputs' | 'lost') => rs.reduce((n, r) => n + r[key], 0);
      return [category, `${rs.filter((r) => r.ok).length}/${rs.length}`, String(sum('faults')), String(sum('badInputs')), String(sum('lost'))];
    });
    const t = this.totals();
    rows.push(['total', `${t.passed}/${t.cases}`, String(t.faults), String(t.badInputs), String(t.lost)]);
    const header = ['category', 'passed', 'faults survived', 'bad inputs tried', 'objects lost'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    const failed = this.results.filter((r) => !r.ok).map((r) => `  FAILED ${r.category} / ${r.name}: ${r.detail}`);
    return [
      '',
      line(header),
      line(widths.map((w) => '-'.repeat(w))),
      ...rows.map(line),
      '',
      `cases: ${t.cases}, passed: ${t.passed}, failed: ${t.failed}, faults survived: ${t.faults}, bad inputs tried: ${t.badInputs}, objects lost: ${t.lost}`,
      ...failed,
      '',
    ].join('\n');
  }
}

/** A failed check that still carries what the case counted (objects lost, inputs sent). */
export class CaseFailure extends Error {
  constructor(message: string, readonly tally: Tally = {}) {
    super(message);
  }
}

/** Throws a CaseFailure with `message` unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string), tally: Tally = {}): asserts condition {
  if (!condition) throw new CaseFailure(typeof message === 'function' ? message() : message, tally);
}

function formatResult(r: CaseResult): string {
  const counts = [r.faults && `faults ${r.faults}`, r.badInputs && `bad inputs ${r.badInputs}`, `lost ${r.lost}`].filter(Boolean).join(', ');
  return [
    `${r.ok ? 'PASS' : 'FAIL'}  ${r.category} / ${r.name}  (${r.seconds.toFixed(1)} s; ${counts})`,
    `      done:  ${r.done}`,
    `      holds: ${r.holds}`,
    `      ${r.ok ? 'seen' : 'why'}:  ${r.detail}`,
    '',
  ].join('\n');
}
