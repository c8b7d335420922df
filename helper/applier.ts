// The helper's methods: `apply` judges every operation by the policy against a fresh read of
// the kernel and carries out the allowed ones in order; `ownedAddresses` reconciles the ledger
// with the kernel. The server runs these one at a time.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { formatIp, parsePrefix } from '../protocol/ip.js';
import type { Operation } from '../protocol/operations.js';
import type { ApplyResult, HelperInfoResult, OperationResult, OwnedAddressesResult } from '../protocol/methods.js';
import type { KernelState } from '../netlink/types.js';
import type { KernelAccess, WriteResult } from './kernel.js';
import type { AddressLedger } from './ledger.js';
import { addressText, checkOperation, ownsAddress, type PolicyConfig } from './policy.js';
import { recordApplied } from './state-after.js';

export interface ApplierOptions {
  kernel: KernelAccess;
  ledger: AddressLedger;
  policy: PolicyConfig;
  version: string;
}

function canonicalAddress(text: string): string | undefined {
  const p = parsePrefix(text);
  return p && `${formatIp(p)}/${p.prefixLength}`;
}

export class Applier {
  constructor(private readonly options: ApplierOptions) {}

  info(): HelperInfoResult {
    const { tables, priorities } = this.options.policy;
    return {
      version: this.options.version,
      protocolNumber: RTPROT_CLOUD_NETWORK,
      tables: { first: tables.first, last: tables.last },
      priorities: { first: priorities.first, last: priorities.last },
    };
  }

  async apply(operations: Operation[]): Promise<ApplyResult> {
    const { kernel, ledger, policy } = this.options;
    let state = await this.readKernel();
    await this.forgetVanished(state);
    let stale = false;
    const results: OperationResult[] = [];
    for (const [index, op] of operations.entries()) {
      // after a kernel error our picture of the kernel may be wrong: read it again
      if (stale) {
        state = await this.readKernel();
        stale = false;
      }
      const verdict = checkOperation(op, state, ledger, policy);
      if (verdict.decision !== 'allow') {
        results.push({ index, kind: op.kind, outcome: verdict.decision === 'refuse' ? 'refused' : 'already', reason: verdict.reason });
        continue;
      }
      // Record an address in the ledger before adding it, so a crash in between cannot leave
      // an address the helper made but does not know it owns.
      let recorded: { link: string; address: string } | undefined;
      if (op.kind === 'address.add') {
        const address = canonicalAddress(op.address)!;
        if (!ledger.has(op.link, address)) {
          try {
            await ledger.add(op.link, address);
            recorded = { link: op.link, address };
          } catch (error) {
            results.push({ index, kind: op.kind, outcome: 'failed', reason: `cannot record ${address} in the ledger ${ledger.path}: ${(error as Error).message}; not added` });
            continue;
          }
        }
      }
      let written: WriteResult;
      try {
        written = await kernel.execute(op);
      } catch (error) {
        written = { outcome: 'failed', reason: (error as Error).message };
      }
      if (written.outcome === 'applied') recordApplied(state, op);
      if (written.outcome === 'failed' || (recorded && written.outcome === 'already')) stale = true;
      if (recorded && written.outcome !== 'applied') {
        // not ours after all: it failed, or someone else added it since we looked
        await ledger.remove(recorded.link, recorded.address).catch(() => undefined);
      }
      if (op.kind === 'address.remove' && written.outcome !== 'failed') {
        await ledger.remove(op.link, canonicalAddress(op.address)!).catch(() => undefined);
      }
      results.push({ index, kind: op.kind, outcome: written.outcome, ...(written.reason ? { reason: written.reason } : {}) });
    }
    return { results };
  }

  async ownedAddresses(): Promise<OwnedAddressesResult> {
    const state = await this.readKernel();
    await this.forgetVanished(state);
    const names = new Map(state.links.map((l) => [l.index, l.name]));
    const owned = new Map<string, { link: string; address: string }>();
    for (const a of state.addresses) {
      const link = names.get(a.ifindex);
      if (link === undefined || !ownsAddress(a, link, this.options.ledger)) continue;
      owned.set(`${link} ${addressText(a)}`, { link, address: addressText(a) });
    }
    return { addresses: [...owned.values()] };
  }

  private async readKernel(): Promise<KernelState> {
    try {
      return await this.options.kernel.read();
    } catch (error) {
      throw new Error(`cannot read the kernel's network state: ${(error as Error).message}; nothing was changed`);
    }
  }

  /** Drops ledger entries whose address is gone from its link, or is now held with a lifetime by someone else. */
  private async forgetVanished(state: KernelState): Promise<void> {
    const byName = new Map(state.links.map((l) => [l.name, l.index]));
    await this.options.ledger.retain((entry) => {
      const ifindex = byName.get(entry.link);
      return state.addresses.some((a) => a.ifindex === ifindex && addressText(a) === entry.address && !a.dynamic);
    });
  }
}
