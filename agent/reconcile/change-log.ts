// One log line per change the agent made, in the wording operators of the older Go tool
// grep for: Successfully added address='10.4.0.5/24' on link='eth1' ifindex='3'.
import type { Operation } from '../../protocol/operations.js';

export function describeApplied(op: Operation, ifindex: number | undefined): string {
  const on = 'link' in op ? ` on link='${op.link}' ifindex='${ifindex ?? '?'}'` : '';
  switch (op.kind) {
    case 'address.add':
      return `Successfully added address='${op.address}'${on}`;
    case 'address.remove':
      return `Successfully removed address='${op.address}'${on}`;
    case 'route.replace':
      if (op.destination === '0.0.0.0/0' || op.destination === '::/0') {
        return `Successfully added default gateway='${op.gateway}' for link='${op.link}' ifindex='${ifindex ?? '?'}' table='${op.table}'`;
      }
      return `Successfully added ${op.type === 'local' ? 'local ' : ''}route destination='${op.destination}'${on} table='${op.table}'`;
    case 'route.remove':
      return `Successfully removed route destination='${op.destination}'${on} table='${op.table}'`;
    case 'rule.add':
    case 'rule.remove': {
      const verb = op.kind === 'rule.add' ? 'added' : 'removed';
      if (op.suppressPrefixLength !== undefined) {
        return `Successfully ${verb} routing policy rule 'lookup main suppress_prefixlength ${op.suppressPrefixLength}' priority='${op.priority}'`;
      }
      const direction = op.from ? `'from' address='${op.from}'` : `'to' address='${op.to}'`;
      return `Successfully ${verb} routing policy rule ${direction} in route table='${op.table}' priority='${op.priority}'`;
    }
    case 'link.set':
      return `Successfully set link='${op.link}' ifindex='${ifindex ?? '?'}'${op.up ? ' up' : ''}${op.mtu !== undefined ? ` mtu='${op.mtu}'` : ''}`;
  }
}
