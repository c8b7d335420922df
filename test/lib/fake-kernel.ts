// A model of what the helper does to the kernel, for tests of the planner and the reconciler
// that run without a kernel. The real-kernel tests check the real thing.
import type { KernelState } from '../../netlink/types.js';
import type { Operation } from '../../protocol/operations.js';
import { RTPROT_CLOUD_NETWORK } from '../../protocol/constants.js';

/** The kernel after applying a plan's operations, as the helper would leave it. */
export function applied(state: KernelState, ops: Operation[]): KernelState {
  const next: KernelState = {
    links: state.links.map((l) => ({ ...l })),
    addresses: [...state.addresses],
    routes: [...state.routes],
    rules: [...state.rules],
  };
  const ifindex = (name: string) => next.links.find((l) => l.name === name)!.index;
  for (const op of ops) {
    switch (op.kind) {
      case 'address.add': {
        const [address, length] = op.address.split('/');
        next.addresses.push({
          ifindex: ifindex(op.link),
          family: address!.includes(':') ? 'inet6' : 'inet',
          address: address!,
          prefixLength: Number(length),
          protocol: RTPROT_CLOUD_NETWORK,
          dynamic: false,
          noPrefixRoute: op.noPrefixRoute,
          scope: 0,
        });
        break;
      }
      case 'address.remove':
        next.addresses = next.addresses.filter(
          (a) => !(a.ifindex === ifindex(op.link) && `${a.address}/${a.prefixLength}` === op.address),
        );
        break;
      case 'route.replace':
        next.routes = next.routes.filter((r) => !(r.table === op.table && r.destination === op.destination));
        next.routes.push({
          table: op.table,
          family: op.destination.includes(':') ? 'inet6' : 'inet',
          destination: op.destination,
          ...(op.gateway !== undefined && { gateway: op.gateway }),
          ifindex: ifindex(op.link),
          protocol: RTPROT_CLOUD_NETWORK,
          type: op.type,
          scope: op.scope,
        });
        break;
      case 'route.remove':
        next.routes = next.routes.filter((r) => !(r.table === op.table && r.destination === op.destination));
        break;
      case 'rule.add': {
        const { kind: _kind, ...rule } = op;
        // where the kernel puts it: after the last rule whose priority is not higher (dumps list rules in that order)
        let at = next.rules.length;
        while (at > 0 && next.rules[at - 1]!.priority > rule.priority) at--;
        next.rules.splice(at, 0, { ...rule, protocol: RTPROT_CLOUD_NETWORK, action: 'lookup' });
        break;
      }
      case 'rule.remove':
        next.rules = next.rules.filter(
          (r) => !(r.priority === op.priority && r.from === op.from && r.to === op.to && r.table === op.table),
        );
        break;
      case 'link.set':
        for (const l of next.links) if (l.name === op.link && op.up) l.up = true;
        break;
    }
  }
  return next;
}

