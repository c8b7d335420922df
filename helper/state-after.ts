// The kernel state after an operation succeeded, so the rest of a request is judged against
// what the kernel now holds without dumping everything again after every operation.
import { RTPROT_CLOUD_NETWORK } from '../protocol/constants.js';
import { formatIp, parseIp, parsePrefix } from '../protocol/ip.js';
import type { Operation } from '../protocol/operations.js';
import type { KernelState } from '../netlink/types.js';
import { ruleMatches } from './policy.js';

const canonical = (text: string) => {
  const p = parsePrefix(text);
  return p ? { family: p.family, address: formatIp(p), prefixLength: p.prefixLength } : undefined;
};

/** Updates `state` in place to what the kernel holds after `op` was applied. */
export function recordApplied(state: KernelState, op: Operation): void {
  const link = 'link' in op ? state.links.find((l) => l.name === op.link) : undefined;
  switch (op.kind) {
    case 'address.add': {
      const a = canonical(op.address);
      if (!a || !link) return;
      state.addresses.push({
        ifindex: link.index,
        family: a.family,
        address: a.address,
        prefixLength: a.prefixLength,
        protocol: RTPROT_CLOUD_NETWORK,
        dynamic: false,
        noPrefixRoute: op.noPrefixRoute,
        scope: 0,
      });
      return;
    }
    case 'address.remove': {
      const a = canonical(op.address);
      if (!a || !link) return;
      state.addresses = state.addresses.filter(
        (x) => !(x.ifindex === link.index && x.address === a.address && x.prefixLength === a.prefixLength),
      );
      return;
    }
    case 'route.replace': {
      const d = canonical(op.destination);
      if (!d || !link) return;
      const destination = `${d.address}/${d.prefixLength}`;
      state.routes = state.routes.filter((r) => !(r.table === op.table && r.family === d.family && r.destination === destination));
      const gateway = op.gateway && parseIp(op.gateway);
      const source = op.source && parseIp(op.source);
      state.routes.push({
        table: op.table,
        family: d.family,
        destination,
        ifindex: link.index,
        protocol: RTPROT_CLOUD_NETWORK,
        type: op.type,
        scope: op.scope,
        ...(gateway ? { gateway: formatIp(gateway) } : {}),
        ...(source ? { source: formatIp(source) } : {}),
      });
      return;
    }
    case 'route.remove': {
      const d = canonical(op.destination);
      if (!d || !link) return;
      const destination = `${d.address}/${d.prefixLength}`;
      state.routes = state.routes.filter(
        (r) => !(r.table === op.table && r.family === d.family && r.destination === destination && r.type === op.type && r.ifindex === link.index),
      );
      return;
    }
    case 'rule.add':
      state.rules.push({
        family: op.family,
        priority: op.priority,
        table: op.table,
        ...(op.from !== undefined ? { from: canonicalRange(op.from) } : {}),
        ...(op.to !== undefined ? { to: canonicalRange(op.to) } : {}),
        ...(op.suppressPrefixLength !== undefined ? { suppressPrefixLength: op.suppressPrefixLength } : {}),
        protocol: RTPROT_CLOUD_NETWORK,
        action: 'lookup',
      });
      return;
    case 'rule.remove': {
      const i = state.rules.findIndex((r) => ruleMatches(r, op) && r.protocol === RTPROT_CLOUD_NETWORK);
      if (i !== -1) state.rules.splice(i, 1);
      return;
    }
    case 'link.set':
      if (!link) return;
      if (op.up !== undefined) link.up = op.up;
      if (op.mtu !== undefined) link.mtu = op.mtu;
      return;
  }
}

function canonicalRange(text: string): string {
  const c = canonical(text);
  return c ? `${c.address}/${c.prefixLength}` : text;
}
