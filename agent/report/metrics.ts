// The agent's metrics: a small in-process registry of counters and gauges with labels,
// rendered in the Prometheus text exposition format (version 0.0.4) for GET /metrics.
// Two kinds of values live here: events counted where they happen (IMDS requests, by the
// metadata client) and values read from the reconciler's status when /metrics is scraped
// (reconciles, operations, last success, helper availability), so the reconciler needs no
// metrics code of its own.
import type { ReconcileStatus } from '../reconcile/reconciler.js';

export type Labels = Record<string, string>;

type Kind = 'counter' | 'gauge';

class Family {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
  ) {}

  add(labels: Labels, by: number): void {
    const entry = this.entry(labels);
    entry.value += by;
  }

  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }

  get(labels: Labels = {}): number | undefined {
    return this.series.get(seriesKey(labels))?.value;
  }

  clear(): void {
    this.series.clear();
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.kind}`];
    for (const { labels, value } of this.series.values()) {
      lines.push(`${this.name}${renderLabels(labels)} ${renderValue(value)}`);
    }
    return lines.join('\n') + '\n';
  }

  private entry(labels: Labels): { labels: Labels; value: number } {
    const key = seriesKey(labels);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, value: 0 };
      this.series.set(key, entry);
    }
    return entry;
  }
}

export class Counter {
  constructor(private readonly family: Family) {}
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.family.name} cannot decrease (got ${by})`);
    this.family.add(labels, by);
  }
  /** For totals kept elsewhere (the reconciler's counts), which only ever grow. */
  setTotal(labels: Labels, value: number): void {
    this.family.set(labels, value);
  }
  get(labels: Labels = {}): number | undefined {
    return this.family.get(labels);
  }
}

export class Gauge {
  constructor(private readonly family: Family) {}
  set(labels: Labels, value: number): void {
    this.family.set(labels, value);
  }
  /** Drops every series, for gauges whose label sets come and go. */
  clear(): void {
    this.family.clear();
  }
  get(labels: Labels = {}): number | undefined {
    return this.family.get(labels);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A registry: families in registration order, rendered as one text document. */
export class Registry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string): Counter {
    return new Counter(this.family(name, help, 'counter'));
  }

  gauge(name: string, help: string): Gauge {
    return new Gauge(this.family(name, help, 'gauge'));
  }

  /** Runs before every render: for values that are read rather than counted. */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  render(): string {
    for (const collect of this.collectors) collect();
    return [...this.families.values()].map((f) => f.render()).join('');
  }

  private family(name: string, help: string, kind: Kind): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    if (this.families.has(name)) throw new Error(`metric ${name} is registered twice`);
    const family = new Family(name, help, kind);
    this.families.set(name, family);
    return family;
  }
}

/** What the metadata client reports per request: the HTTP status, or why there was none. */
export type ImdsOutcome = number | 'timeout' | 'network-error';

/** The agent's metrics. One instance per agent, shared by the metadata client and the API. */
export class Metrics {
  readonly registry = new Registry();
  private readonly info = this.registry.gauge('cloud_network_info', 'The agent version and provider (always 1).');
  readonly imdsRequests = this.registry.counter(
    'cloud_network_imds_requests_total',
    'Requests to the instance metadata service, by provider and HTTP status (or timeout / network-error).',
  );
  readonly imdsErrors = this.registry.counter(
    'cloud_network_imds_errors_total',
    'Metadata requests that did not succeed (status not 2xx, timeout, network error), by provider and status.',
  );
  private readonly reconciles = this.registry.counter('cloud_network_reconciles_total', 'Reconciles started since the agent started.');
  private readonly operations = this.registry.counter(
    'cloud_network_operations_total',
    'Operations sent to the helper, by kind and result (applied / failed).',
  );
  private readonly pending = this.registry.gauge('cloud_network_pending_operations', 'Operations of the last plan not yet in the kernel.');
  private readonly lastSuccess = this.registry.gauge(
    'cloud_network_last_success_timestamp_seconds',
    'When the last reconcile succeeded (Unix time); 0 before the first.',
  );
  private readonly lastMetadata = this.registry.gauge(
    'cloud_network_last_metadata_success_timestamp_seconds',
    'When metadata was last fetched successfully (Unix time); 0 before the first.',
  );
  private readonly helperUp = this.registry.gauge(
    'cloud_network_helper_up',
    'Whether the privileged helper answered the last request (1) or not (0); absent before the first.',
  );
  private readonly apiConnectionsClosed = this.registry.counter(
    'cloud_network_api_connections_closed_total',
    'REST API connections the agent closed, by listener (tcp / socket) and reason: evicted (made room for a new one), refused (no room), timeout.',
  );
  private readonly converged = this.registry.gauge('cloud_network_converged', 'Whether the kernel matched the plan after the last reconcile.');
  // the usual process and Node.js names, so existing dashboards and alerts apply
  private readonly residentMemory = this.registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  private readonly heapUsed = this.registry.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.');
  private readonly heapTotal = this.registry.gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved, in bytes.');
  private readonly externalMemory = this.registry.gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers included), in bytes.');

  constructor() {
    this.registry.onCollect(() => {
      const memory = process.memoryUsage();
      this.residentMemory.set({}, memory.rss);
      this.heapUsed.set({}, memory.heapUsed);
      this.heapTotal.set({}, memory.heapTotal);
      this.externalMemory.set({}, memory.external);
    });
  }

  /** Counts one metadata request; anything but a 2xx status also counts as an error. */
  imdsRequest(provider: string, outcome: ImdsOutcome): void {
    const labels = { provider, status: String(outcome) };
    this.imdsRequests.inc(labels);
    if (typeof outcome !== 'number' || outcome < 200 || outcome > 299) this.imdsErrors.inc(labels);
  }

  /** Counts a REST API connection the agent closed rather than its client (a flood makes thousands a second: a plain tally, labelled at scrape time). */
  apiConnectionClosed(listener: 'tcp' | 'socket', reason: 'evicted' | 'refused' | 'timeout'): void {
    if (!this.apiClosed) {
      this.apiClosed = {};
      this.registry.onCollect(() => {
        for (const [key, value] of Object.entries(this.apiClosed!)) {
          const [l, r] = key.split(' ');
          this.apiConnectionsClosed.setTotal({ listener: l!, reason: r! }, value);
        }
      });
    }
    const key = `${listener} ${reason}`;
    this.apiClosed[key] = (this.apiClosed[key] ?? 0) + 1;
  }

  private apiClosed?: Record<string, number>;

  private source?: { status: () => ReconcileStatus; version: string };

  /** Reads the reconciler's status at every scrape. Calling it again replaces the source. */
  observe(status: () => ReconcileStatus, version: string): void {
    if (!this.source) this.registry.onCollect(() => this.source && this.record(this.source.status(), this.source.version));
    this.source = { status, version };
  }

  render(): string {
    return this.registry.render();
  }

  private record(status: ReconcileStatus, version: string): void {
    this.info.clear();
    this.info.set({ version, provider: status.provider }, 1);
    this.reconciles.setTotal({}, status.reconciles);
    for (const [result, counts] of [
      ['applied', status.operations.applied],
      ['failed', status.operations.failed],
    ] as const) {
      for (const [kind, value] of Object.entries(counts)) this.operations.setTotal({ kind, result }, value);
    }
    this.pending.set({}, status.pendingOperations);
    this.lastSuccess.set({}, unixSeconds(status.lastSuccess));
    this.lastMetadata.set({}, unixSeconds(status.lastMetadataSuccess));
    if (status.helperReachable !== undefined) this.helperUp.set({}, status.helperReachable ? 1 : 0);
    this.converged.set({}, status.converged ? 1 : 0);
  }
}

function unixSeconds(iso: string | undefined): number {
  if (!iso) return 0;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : ms / 1000;
}

function seriesKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

function renderLabels(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length === 0) return '';
  const parts = names.map((name) => {
    if (!LABEL.test(name)) throw new Error(`invalid label name ${JSON.stringify(name)}`);
    return `${name}="${escapeLabel(labels[name] ?? '')}"`;
  });
  return `{${parts.join(',')}}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

// The exposition format escapes \ and newline in help text, and also " in label values.
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
