// How an operation reads in logs, the audit trail, --dry-run and the API's pending list: one
// line, like the `ip` command that would do the same. One wording for agent and helper alike.
import type { Operation } from './operations.js';

/** One line of text per operation, like the `ip` command that would do the same. */
export function describeOperation(op: Operation): string {
  switch (op.kind) {
    case 'address.add':
      return `add address ${op.address} dev ${op.link}${op.noPrefixRoute ? ' noprefixroute' : ''}`;
    case 'address.remove':
      return `remove address ${op.address} dev ${op.link}`;
    case 'route.replace':
      return `replace route ${op.type === 'local' ? 'local ' : ''}${op.destination}${op.gateway ? ` via ${op.gateway}` : ''} dev ${op.link} table ${op.table} scope ${op.scope}${op.source ? ` src ${op.source}` : ''}`;
    case 'route.remove':
      return `remove route ${op.type === 'local' ? 'local ' : ''}${op.destination} dev ${op.link} table ${op.table}`;
    case 'rule.add':
    case 'rule.remove': {
      const selector = op.from !== undefined ? `from ${op.from}` : op.to !== undefined ? `to ${op.to}` : 'from all';
      const suppress = op.suppressPrefixLength !== undefined ? ` suppress_prefixlength ${op.suppressPrefixLength}` : '';
      const table = op.table === 254 ? 'main' : String(op.table);
      return `${op.kind === 'rule.add' ? 'add' : 'remove'} ${op.family} rule priority ${op.priority} ${selector} lookup ${table}${suppress}`;
    }
    case 'link.set':
      return `set link ${op.link}${op.up !== undefined ? (op.up ? ' up' : ' down') : ''}${op.mtu !== undefined ? ` mtu ${op.mtu}` : ''}`;
  }
}
