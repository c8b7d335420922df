// The protocol-aware policy fuzzer: the real helper in a namespace where another tool's objects
// sit right next to the helper's own, and at least 10,000 schema-valid operations that reach its
// policy, drawn from a printed seed. After every request the kernel is read again: every
// object another tool (or the kernel, for another tool's address) made must be byte-identical,
// since SECURITY.md promises a compromised agent cannot change any of them. The helper is a
// black box here (its socket and the kernel), so the fuzzer judges any rewrite of it alike.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HelperClient, HelperRequestError } from '../../agent/reconcile/helper-client.js';
import { DEFAULT_PRIORITY_RANGE, DEFAULT_TABLE_RANGE } from '../../protocol/constants.js';
import { describeOperation } from '../../netlink/describe.js';
import { canonicalNetwork } from '../../protocol/ip.js';
import type { OperationResult } from '../../protocol/methods.js';
import type { Operation } from '../../protocol/operations.js';
import { ROOT, startHelper, type HelperStart, type RunningHelper } from '../lib/helper-harness.js';
import { startRunner } from '../lib/netlink-client.js';
import { createNamespace, waitFor, type Teardown } from '../lib/netns.js';
import { TeardownStack } from '../lib/teardown-stack.js';
import type { KernelState } from '../../netlink/types.js';
import { clearRound, createLinks, planRound, prepareNamespace, readdUntagged, runForeign, type AppendedNexthop } from './fuzz-layout.js';
import { isSchemaValid, OperationGenerator, poolsFrom } from './fuzz-operations.js';
import {
  addressKey,
  foreignChanges,
  foreignCount,
  hasTentativeForeign,
  nexthopKey,
  takeSnapshot,
  type AddressObject,
  type AddressProtocols,
  type ForeignChange,
  type ForeignFacts,
  type RouteObject,
  type RuleObject,
  type Snapshot,
} from './kernel-objects.js';
import { SeededRandom } from './seeded-random.js';
import { CaseFailure, check, type Scoreboard, type Tally } from './scoreboard.js';
import { causeOf, CAUSES } from './violation-causes.js';

const CATEGORY = 'policy fuzz';
const REQUESTS_PER_ROUND = 24;
/** How often another tool deletes and re-adds a helper address untagged before a request. */
const READD_CHANCE = 0.03;
const MANAGED = { tables: DEFAULT_TABLE_RANGE, priorities: DEFAULT_PRIORITY_RANGE };
const REPORTED_VIOLATIONS = 20;

const sameSubnet = (a: AddressObject, b: AddressObject) => a.prefixLength === b.prefixLength && canonicalNetwork(`${a.ip}/${a.prefixLength}`) === canonicalNetwork(`${b.ip}/${b.prefixLength}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One fuzz run: how many operations must reach the policy, within how long, against a helper started how. */
interface Variant {
  name: string;
  seed: number;
  /** the run sends requests until this many operations reached the policy */
  target: number;
  /** fewer than this reaching the policy within timeLimitMs fails the case */
  minimum: number;
  timeLimitMs: number;
  helper: HelperStart;
}

/** The helper as its unit runs it: an unprivileged uid with CAP_NET_ADMIN as its only capability, the bundle under --jitless when it is current. */
const capNetAdminOnly = (): HelperStart => ({
  uid: 65534,
  wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin', '--bounding-set=-all,+net_admin'],
  built: bundleIsCurrent(),
});

/** Whether `make build`'s helper bundle is newer than every source it is built from (else the sources run, through tsx). */
function bundleIsCurrent(): boolean {
  const bundle = join(ROOT, 'dist', 'helper', 'main.js');
  if (!existsSync(bundle)) return false;
  const built = statSync(bundle).mtimeMs;
  const sources = ['helper', 'protocol', 'netlink'].flatMap((dir) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts')).map((f) => join(ROOT, dir, f)));
  return sources.every((file) => statSync(file).mtimeMs <= built);
}

interface Violation {
  round: number;
  request: number;
  cause: number;
  change: ForeignChange;
  operations: Operation[];
  results: OperationResult[];
}

interface Figures {
  tried: number;
  reached: number;
  applied: number;
  already: number;
  refused: number;
  failed: number;
  /** generated operations typebox's Value.Check refused: the generator's bugs, never sent */
  generatorBugs: number;
  generatorBugExamples: string[];
  /** operations the helper refused with -32602 although Value.Check accepted them */
  schemaRefused: number;
  requests: number;
  rounds: number;
  foreignChecks: number;
  foreignUnchanged: number;
  /** changes seen once but gone at the second look: the fuzzer's own noise, never counted as violations */
  transient: number;
  readdedByOtherTool: number;
  layoutRefused: string[];
}

/** One fuzz run against one helper: its namespace, its client, what it counted and found. */
class FuzzRun {
  readonly figures: Figures = { tried: 0, reached: 0, applied: 0, already: 0, refused: 0, failed: 0, generatorBugs: 0, generatorBugExamples: [], schemaRefused: 0, requests: 0, rounds: 0, foreignChecks: 0, foreignUnchanged: 0, transient: 0, readdedByOtherTool: 0, layoutRefused: [] };
  readonly violations: Violation[] = [];
  private readonly facts: ForeignFacts = { appendedNexthops: new Set() };
  private readonly readded = new Set<string>();
  private readonly generator: OperationGenerator;
  private current!: Snapshot;

  constructor(
    private readonly ns: string,
    private readonly client: HelperClient,
    private readonly readProtocols: () => Promise<AddressProtocols>,
    private readonly random: SeededRandom,
  ) {
    this.generator = new OperationGenerator(random, MANAGED);
  }

  private snapshot(): Promise<Snapshot> {
    return takeSnapshot(this.ns, this.readProtocols, this.facts);
  }

  /** A snapshot once no foreign IPv6 address is in duplicate address detection: one failing it later would change with nobody removing it. */
  private settledSnapshot(): Promise<Snapshot> {
    return waitFor(async () => {
      const s = await this.snapshot();
      return hasTentativeForeign(s) ? undefined : s;
    }, `duplicate address detection to finish in ${this.ns}`);
  }

  async run(target: number, deadline: number): Promise<void> {
    this.current = await this.snapshot();
    while (this.figures.reached < target && Date.now() < deadline) {
      await this.startRound();
      for (let i = 0; i < REQUESTS_PER_ROUND && this.figures.reached < target; i++) {
        if (this.random.chance(READD_CHANCE)) await this.readdHelperAddress();
        await this.send(this.generator.request(poolsFrom(this.current, MANAGED)), true);
      }
    }
  }

  /** Fresh NICs, then the helper's objects, another tool's twins around them, and the helper's secondaries. */
  private async startRound(): Promise<void> {
    this.figures.rounds++;
    clearRound(this.ns, this.current.objects.filter((o): o is RuleObject => o.kind === 'rule' && o.priority >= MANAGED.priorities.first && o.priority <= MANAGED.priorities.last));
    this.facts.appendedNexthops.clear();
    this.readded.clear();
    createLinks(this.ns);
    // lets the helper drop its ledger entries for the addresses that went with the old NICs
    await this.client.ownedAddresses();
    this.figures.requests++;
    const layout = planRound(this.random);
    this.current = await this.settledSnapshot();
    await this.send(layout.helperFirst, false);
    this.figures.layoutRefused.push(...runForeign(this.ns, layout.foreign));
    this.recordAppended(layout.appended, await this.snapshot());
    this.current = await this.settledSnapshot();
    await this.send(layout.helperAfter, false);
  }

  /** Remembers, as the next hops they became in the kernel, the next hops another tool appended. */
  private recordAppended(appended: AppendedNexthop[], snapshot: Snapshot): void {
    for (const a of appended) {
      for (const route of snapshot.objects.filter((o): o is RouteObject => o.kind === 'route' && o.table === a.table && o.destination === a.destination)) {
        const hop = route.nexthops.find((n) => n.gateway === a.gateway && n.link === a.link);
        if (hop) this.facts.appendedNexthops.add(nexthopKey(route, hop));
      }
    }
  }

  /** Another tool deletes one of the helper's IPv4 addresses and adds it again untagged: that tool's from now on. */
  private async readdHelperAddress(): Promise<void> {
    const addresses = this.current.objects.filter((o): o is AddressObject => o.kind === 'address' && o.family === 'inet');
    // not a primary with secondaries: deleting it would take them along (promote_secondaries=0)
    const hasSecondaries = (p: AddressObject) => addresses.some((a) => a.secondary && a.link === p.link && a.identity !== p.identity && sameSubnet(a, p));
    const candidates = addresses.filter((a) => a.owner === 'helper' && !a.dynamic && (a.secondary || !hasSecondaries(a)));
    if (candidates.length === 0) return;
    const a = this.random.pick(candidates);
    readdUntagged(this.ns, a.link, `${a.ip}/${a.prefixLength}`, a.noPrefixRoute);
    this.readded.add(`${a.link} ${a.ip}/${a.prefixLength}`);
    this.figures.readdedByOtherTool++;
    this.current = await this.snapshot();
  }

  /** Sends one apply, then compares every foreign object with how it was before. */
  private async send(generated: Record<string, unknown>[], fuzzed: boolean): Promise<void> {
    const operations = generated.filter(isSchemaValid);
    if (fuzzed) {
      const invalid = generated.filter((op) => !isSchemaValid(op));
      this.figures.generatorBugs += invalid.length;
      this.figures.generatorBugExamples.push(...invalid.slice(0, 3 - this.figures.generatorBugExamples.length).map((op) => JSON.stringify(op)));
      this.figures.tried += operations.length;
    }
    const before = this.current;
    let results: OperationResult[] = [];
    try {
      results = (await this.client.apply(operations)).results;
    } catch (error) {
      if (!(error instanceof HelperRequestError && error.code === -32602)) throw error;
      this.figures.schemaRefused += operations.length;
    }
    this.figures.requests++;
    if (fuzzed) this.count(results);
    this.current = await this.compare(before, operations, results);
  }

  private count(results: OperationResult[]): void {
    for (const r of results) {
      this.figures.reached++;
      this.figures[r.outcome]++;
    }
  }

  /** The snapshot after a request; a foreign change counts only if a second look, after a pause, still shows it. */
  private async compare(before: Snapshot, operations: Operation[], results: OperationResult[]): Promise<Snapshot> {
    let after = await this.snapshot();
    let changes = foreignChanges(before, after);
    if (changes.length > 0) {
      await sleep(100);
      after = await this.snapshot();
      const firstLook = new Set(changes.map((c) => c.object.text));
      const secondLook = foreignChanges(before, after);
      this.figures.transient += changes.length - secondLook.filter((c) => firstLook.has(c.object.text)).length;
      changes = secondLook.filter((c) => firstLook.has(c.object.text));
      this.record(changes, operations, results, before, after);
    }
    const checked = foreignCount(before);
    this.figures.foreignChecks += checked;
    this.figures.foreignUnchanged += checked - changes.length;
    return after;
  }

  private record(changes: ForeignChange[], operations: Operation[], results: OperationResult[], before: Snapshot, after: Snapshot): void {
    // 'already' and 'refused' say the helper changed nothing: the cause is among the rest
    const carriedOut = results.filter((r) => r.outcome === 'applied' || r.outcome === 'failed').map((r) => operations[r.index]!);
    const evidence = { carriedOut, readdedByOtherTool: this.readded, changed: changes, before, after };
    for (const change of changes) {
      this.violations.push({ round: this.figures.rounds, request: this.figures.requests, cause: causeOf(change.object, evidence), change, operations, results });
    }
  }
}

/** The helper's IFA_PROTO per address, read over netlink by a runner inside the namespace (iproute2 here does not print it). */
function protocolReader(t: Teardown, ns: string): () => Promise<AddressProtocols> {
  const runner = startRunner(t, ns);
  return async () => {
    const state = await runner.send<KernelState>({ cmd: 'read' });
    return new Map(state.addresses.map((a) => [addressKey(a.ifindex, a.address, a.prefixLength), a.protocol]));
  };
}

function violationsByCause(violations: Violation[]): string {
  const counts = new Map<number, number>();
  for (const v of violations) counts.set(v.cause, (counts.get(v.cause) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => (a === 0 ? 99 : a) - (b === 0 ? 99 : b))
    .map(([cause, n]) => `${n} × cause ${cause} (${CAUSES[cause]})`)
    .join('; ');
}

/** The first violations, each with the foreign object before and after and the operations the helper carried out. */
function violationReport(violations: Violation[], seed: number): string {
  const lines = [`policy fuzz (seed ${seed}): ${violations.length} foreign objects changed; the first ${Math.min(REPORTED_VIOLATIONS, violations.length)}:`];
  violations.slice(0, REPORTED_VIOLATIONS).forEach((v, i) => {
    const carriedOut = v.results.filter((r) => r.outcome !== 'refused');
    lines.push(
      `  #${i + 1} round ${v.round}, request ${v.request}, cause ${v.cause}: ${CAUSES[v.cause]}`,
      `     before: ${v.change.object.text}`,
      `     after:  ${v.change.now.length > 0 ? v.change.now.join('\n             ') : '(gone)'}`,
      `     the request's ${v.operations.length} operations, ${carriedOut.length} not refused:`,
      ...carriedOut.map((r) => `       [${r.index}] ${r.outcome.padEnd(7)} ${describeOperation(v.operations[r.index]!)}`),
    );
  });
  return lines.join('\n') + '\n';
}

/** Every violation with its whole request as JSON, for replaying one by hand. */
function writeViolationFile(violations: Violation[], seed: number): string {
  const path = `/tmp/cloud-network-policy-fuzz-${seed}.json`;
  const entries = violations.map((v) => ({ round: v.round, request: v.request, cause: v.cause, before: v.change.object.text, after: v.change.now, request_json: { operations: v.operations }, results: v.results }));
  writeFileSync(path, JSON.stringify({ seed, violations: entries }, null, 1));
  return path;
}

function auditLines(helper: RunningHelper): number {
  return helper.output().split('\n').filter((line) => line.includes('"audit":"request"')).length;
}

function figuresLine(f: Figures, violations: number, seed: number): string {
  return [
    `${f.tried} operations tried in ${f.requests} requests (${f.rounds} rounds)`,
    `${f.reached} reaching the policy`,
    `${f.applied} applied, ${f.already} already, ${f.refused} refused, ${f.failed} failed`,
    `violations ${violations}`,
    `foreign objects checked unchanged ${f.foreignUnchanged}/${f.foreignChecks}`,
    `${f.readdedByOtherTool} helper addresses re-added by another tool`,
    `${f.transient} changes gone at a second look`,
    ...(f.layoutRefused.length > 0 ? [`${f.layoutRefused.length} layout commands refused (first: ${f.layoutRefused[0]})`] : []),
    `seed ${seed}`,
  ].join('; ');
}

/** Runs one variant and removes its namespace, helper and runner when it ends (`t` as well, on Ctrl-C). */
async function fuzzCase(t: Teardown, variant: Variant): Promise<Tally> {
  const cleanups = new TeardownStack();
  t.teardown(() => cleanups.run());
  try {
    return await fuzzVariant(cleanups, variant);
  } finally {
    await cleanups.run();
  }
}

async function fuzzVariant(t: Teardown, variant: Variant): Promise<Tally> {
  const ns = createNamespace(t, 'polfuzz');
  prepareNamespace(ns);
  const readProtocols = protocolReader(t, ns);
  const helper = await startHelper(t, ns, variant.helper);
  const client = new HelperClient({ socketPath: helper.socketPath, idleCloseMs: 0 });
  t.teardown(() => client.close());
  const run = new FuzzRun(ns, client, readProtocols, new SeededRandom(variant.seed));
  await run.run(variant.target, Date.now() + variant.timeLimitMs);
  const f = run.figures;
  const tally = (): Tally => ({ badInputs: f.tried, detail: figuresLine(f, run.violations.length, variant.seed) });
  // the helper still serves, and wrote one audit line per request (this info one included)
  await client.info();
  f.requests++;
  check(helper.child.exitCode === null && helper.child.signalCode === null, `the helper exited: ${helper.output().slice(-500)}`, tally());
  await waitFor(() => auditLines(helper) >= f.requests, 'the last audit line', 2_000).catch(() => undefined);
  check(auditLines(helper) === f.requests, () => `${f.requests} requests but ${auditLines(helper)} audit lines`, tally());
  check(f.generatorBugs === 0 && f.schemaRefused === 0, `generator bugs: ${f.generatorBugs} operations failed Value.Check (${f.generatorBugExamples.join(', ')}), ${f.schemaRefused} passed it but the helper answered -32602`, tally());
  check(f.reached >= variant.minimum, `only ${f.reached} operations reached the policy within ${variant.timeLimitMs / 1000} s (at least ${variant.minimum} must)`, tally());
  if (run.violations.length > 0) {
    process.stdout.write(violationReport(run.violations, variant.seed));
    const file = writeViolationFile(run.violations, variant.seed);
    throw new CaseFailure(`${run.violations.length} foreign objects changed: ${violationsByCause(run.violations)}. ${figuresLine(f, run.violations.length, variant.seed)}; every violation with its request in ${file}`, tally());
  }
  return tally();
}

const DONE =
  "schema-valid requests of 1-40 operations drawn from protocol/operations.ts and the live objects (the helper's and another tool's twins: the same IP with other prefix lengths, secondaries, same-destination routes of other metrics and protocols, prepend/append, IPv6 multipath, rules with extra selectors, IPv6), with repeats and near-twins; another tool now and then re-adds a helper address untagged";
const HOLDS =
  'after every request every foreign address, route, next hop and rule is byte-identical (ip -d, lifetimes masked; a change must still show at a second look); the helper answers every request and writes one audit line per request';

function helperDescription(start: HelperStart): string {
  const who = start.wrapper ? 'uid 65534 via setpriv, CAP_NET_ADMIN only' : 'root';
  return `${who}, ${start.built ? 'dist/helper/main.js under --jitless' : 'the sources through tsx'}`;
}

export async function policyFuzzCases(board: Scoreboard, t: Teardown, seed: number): Promise<void> {
  process.stdout.write(`policy fuzz: seed ${seed} (CLOUD_NETWORK_FUZZ_SEED=${seed} or --seed ${seed} repeats this run)\n`);
  const variants: Variant[] = [
    { name: '10,000 policy-reaching operations next to another tool\'s objects', seed, target: 10_500, minimum: 10_000, timeLimitMs: 170_000, helper: {} },
    { name: 'the same with a helper that holds only CAP_NET_ADMIN', seed: (seed + 1) >>> 0, target: 1_500, minimum: 1_000, timeLimitMs: 40_000, helper: capNetAdminOnly() },
  ];
  for (const variant of variants) {
    await board.run(CATEGORY, {
      name: variant.name,
      done: `the real helper (${helperDescription(variant.helper)}) gets ${DONE}`,
      holds: HOLDS,
      run: () => fuzzCase(t, variant),
    });
  }
}
