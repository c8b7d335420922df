// The helper's methods: `apply` judges every operation by the policy against a fresh read of
// the kernel and carries out the allowed ones in order; `ownedAddresses` reconciles the ledger
// with the kernel. The server runs these one at a time.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { canonicalPrefix, rememberingParsePrefix } from '../protocol/ip.js';
import type { Operation } from '../protocol/operations.js';
import type { ApplyResult, HelperInfoResult, OperationResult, OwnedAddressesResult } from '../protocol/methods.js';
import { release as osRelease } from 'node:os';
import type { ObservedAddress, ObservedRoute } from '../netlink/types.js';
import type { StatePart } from '../netlink/read.js';
import type { KernelAccess, WriteResult } from './kernel.js';
import { KernelPicture } from './kernel-picture.js';
import type { AddressLedger } from './ledger.js';
import { addressText } from '../netlink/objects/address.js';
import { checkOperation, ownsAddress, type PolicyConfig } from './policy.js';
import { recordApplied } from './state-after.js';

export interface ApplierOptions {
  kernel: KernelAccess;
  ledger: AddressLedger;
  policy: PolicyConfig;
  version: string;
  /** whether the kernel stamps addresses with IFA_PROTO; default: from its version (kernelTagsAddresses) */
  tagsAddresses?: boolean;
}

const isRemoval = (op: Operation) => op.kind.endsWith('.remove');

/** What judging `operations` looks at besides the links: a full read costs far more than a small repair. */
function partsFor(operations: readonly Operation[]): Set<StatePart> {
  const parts = new Set<StatePart>(['addresses']); // the ledger is checked against the addresses
  for (const op of operations) {
    // addresses are judged against other tools' gateways and preferred sources too
    if (op.kind.startsWith('route.') || op.kind.startsWith('address.')) parts.add('routes');
    // a rule's selector must be an address of this machine or a range it delivers locally
    else if (op.kind.startsWith('rule.')) parts.add('rules').add('routes');
  }
  return parts;
}

function addsAddress(operations: readonly Operation[], start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (operations[i]!.kind === 'address.add') return true;
  return false;
}

/** "link address/len" of the addresses that pass `wanted`, for lookups in constant time. */
function addressKeys(state: KernelPicture, wanted: (a: ObservedAddress) => boolean): Set<string> {
  const names = new Map(state.links.map((l) => [l.index, l.name]));
  const keys = new Set<string>();
  for (const a of state.addresses()) {
    if (!wanted(a)) continue;
    const link = names.get(a.ifindex);
    if (link !== undefined) keys.add(`${link} ${addressText(a)}`);
  }
  return keys;
}

/** Whether the running kernel stamps addresses with IFA_PROTO (Linux 5.18 and later). */
export function kernelTagsAddresses(release: string = osRelease()): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (!match) return false;
  const major = Number(match[1]);
  return major > 5 || (major === 5 && Number(match[2]) >= 18);
}

/** An approved operation and what the policy found for it (the exact object a removal names). */
interface Approved {
  index: number;
  op: Operation;
  target?: ObservedAddress | ObservedRoute;
}

export class Applier {
  /** once an address with IFA_PROTO is seen, the kernel tags them, whatever its version says */
  private tagsAddresses: boolean;

  constructor(private readonly options: ApplierOptions) {
    this.tagsAddresses = options.tagsAddresses ?? kernelTagsAddresses();
  }

  info(): HelperInfoResult {
    const { tables, priorities } = this.options.policy;
    return {
      version: this.options.version,
      protocolNumber: RTPROT_CLOUD_NETWORK,
      tables: { first: tables.first, last: tables.last },
      priorities: { first: priorities.first, last: priorities.last },
    };
  }

  /**
   * Judges and executes `operations` in order. They are taken in runs of removals and runs of
   * additions. Each operation is judged against the kernel as the operations approved before it
   * leave it (a fresh read at the start, kept current as each is approved, and read again after
   * any operation failed or left the kernel unforeseeable); each run is executed in batches.
   */
  async apply(operations: Operation[]): Promise<ApplyResult> {
    const { kernel, ledger, policy } = this.options;
    // each address is parsed once, when judged, for the whole request
    const parse = rememberingParsePrefix();
    const parts = partsFor(operations);
    let state = await this.readKernel(parts);
    await this.forgetVanished(state);
    const results: OperationResult[] = [];
    for (let start = 0; start < operations.length; ) {
      let end = start + 1;
      while (end < operations.length && isRemoval(operations[end]!) === isRemoval(operations[start]!)) end++;

      const approved: Approved[] = [];
      const recorded: { link: string; address: string }[] = [];
      const ours = addsAddress(operations, start, end) ? addressKeys(state, (a) => a.protocol === RTPROT_CLOUD_NETWORK) : new Set<string>();
      let foreseeable = true;
      // index loops: under --jitless an entries() iterator allocates and destructures per step
      for (let index = start; index < end; index++) {
        const op = operations[index]!;
        const verdict = checkOperation(op, state, ledger, policy, parse);
        if (verdict.decision === 'allow') {
          approved.push(verdict.target ? { index, op, target: verdict.target } : { index, op });
          // the next operations, a duplicate of this one among them, are judged as if it was done
          if (!recordApplied(state, op, verdict, parse)) foreseeable = false;
          if (op.kind === 'address.add') {
            const address = canonicalPrefix(op.address, parse)!;
            if (!ledger.has(op.link, address) && !ours.has(`${op.link} ${address}`)) recorded.push({ link: op.link, address });
          }
        } else {
          results[index] = { index, kind: op.kind, outcome: verdict.decision === 'refuse' ? 'refused' : 'already', reason: verdict.reason };
        }
      }

      // Record new addresses in the ledger before adding them, so a crash in between cannot
      // leave an address the helper made but does not know it owns.
      let ledgerError: string | undefined;
      if (recorded.length > 0) {
        await ledger.add(...recorded).catch((error: Error) => {
          ledgerError = `cannot record the address in the ledger ${ledger.path}: ${error.message}; not added`;
        });
      }
      const toExecute = ledgerError ? approved.filter(({ op }) => op.kind !== 'address.add') : approved;
      if (ledgerError) {
        for (const { index, op } of approved) if (op.kind === 'address.add') results[index] = { index, kind: op.kind, outcome: 'failed', reason: ledgerError };
      }

      let written: WriteResult[];
      try {
        written = await kernel.execute(
          toExecute.map(({ op, target }) => (target ? { op, target } : { op })),
          new Map(state.links.map((l) => [l.name, l.index])),
          parse,
        );
      } catch (error) {
        written = toExecute.map(() => ({ outcome: 'failed', reason: `the kernel request failed: ${(error as Error).message}` }));
      }

      let surprised = !foreseeable || ledgerError !== undefined;
      const recordedKeys = new Set(recorded.map((r) => `${r.link} ${r.address}`));
      const notOurs: { link: string; address: string }[] = [];
      const removed: { link: string; address: string }[] = [];
      for (let i = 0; i < toExecute.length; i++) {
        const { index, op } = toExecute[i]!;
        const result = written[i] ?? { outcome: 'failed', reason: 'the kernel layer returned no result' };
        results[index] = { index, kind: op.kind, outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}) };
        // the picture assumed every approved operation changes the kernel
        if (result.outcome !== 'applied') surprised = true;
        if (op.kind === 'address.add' && result.outcome !== 'applied') {
          const address = canonicalPrefix(op.address, parse)!;
          // not ours after all: it failed, or someone else added it since we looked
          if (recordedKeys.has(`${op.link} ${address}`)) notOurs.push({ link: op.link, address });
        }
        if (op.kind === 'address.remove' && result.outcome !== 'failed') removed.push({ link: op.link, address: canonicalPrefix(op.address, parse)! });
      }
      await ledger.remove(...notOurs, ...removed).catch(() => undefined);
      start = end;
      // our picture of the kernel may be wrong now: judge the next run against a fresh read
      if (surprised && start < operations.length) state = await this.readKernel(parts);
    }
    return { results };
  }

  async ownedAddresses(): Promise<OwnedAddressesResult> {
    const state = await this.readKernel(new Set(['addresses']));
    await this.forgetVanished(state);
    const names = new Map(state.links.map((l) => [l.index, l.name]));
    const owned = new Map<string, { link: string; address: string }>();
    for (const a of state.addresses()) {
      const link = names.get(a.ifindex);
      if (link === undefined || !ownsAddress(a, link, this.options.ledger, state)) continue;
      owned.set(`${link} ${addressText(a)}`, { link, address: addressText(a) });
    }
    return { addresses: [...owned.values()] };
  }

  private async readKernel(parts: ReadonlySet<StatePart>): Promise<KernelPicture> {
    let read;
    try {
      read = await this.options.kernel.read(parts);
    } catch (error) {
      throw new Error(`cannot read the kernel's network state: ${(error as Error).message}; nothing was changed`);
    }
    if (!this.tagsAddresses && read.addresses.some((a) => a.protocol !== undefined)) this.tagsAddresses = true;
    return new KernelPicture(read, { tagsAddresses: this.tagsAddresses });
  }

  /**
   * Drops ledger entries whose address is gone from its link, is now held with a lifetime by
   * someone else, or is untagged on a kernel that tags addresses (someone else's since).
   */
  private async forgetVanished(state: KernelPicture): Promise<void> {
    const present = addressKeys(state, (a) => !a.dynamic && (!state.tagsAddresses || a.protocol === RTPROT_CLOUD_NETWORK));
    await this.options.ledger.retain((entry) => present.has(`${entry.link} ${entry.address}`));
  }
}
