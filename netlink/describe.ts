// How an operation reads, in the three places it is read; each kind's wording lives with the
// rest of that kind in objects/.
import type { Operation } from '../protocol/operations.js';
import { addressWording } from './objects/address.js';
import { linkWording } from './objects/link.js';
import { routeWording } from './objects/route.js';
import { ruleWording } from './objects/rule.js';

/** One line per operation, the iproute2 command that does the same, ready to paste: logs, the audit trail, --dry-run, the API's pending list. */
export function describeOperation(op: Operation): string {
  switch (op.kind) {
    case 'address.add':
    case 'address.remove':
      return addressWording.command(op);
    case 'route.replace':
    case 'route.remove':
      return routeWording.command(op);
    case 'rule.add':
    case 'rule.remove':
      return ruleWording.command(op);
    case 'link.set':
      return linkWording.command(op);
  }
}

/** The agent's log line for a change made, in the wording operators of the older Go tool grep for. */
export function describeApplied(op: Operation, ifindex: number | undefined): string {
  const index = String(ifindex ?? '?');
  const on = 'link' in op ? ` on link='${op.link}' ifindex='${index}'` : '';
  switch (op.kind) {
    case 'address.add':
    case 'address.remove':
      return addressWording.applied(op, on);
    case 'route.replace':
    case 'route.remove':
      return routeWording.applied(op, on, index);
    case 'rule.add':
    case 'rule.remove':
      return ruleWording.applied(op);
    case 'link.set':
      return linkWording.applied(op, index);
  }
}

/** What was being done, for the reason of a failure: "adding address 10.4.0.5/24 to eth1". */
export function describeAttempt(op: Operation): string {
  switch (op.kind) {
    case 'address.add':
    case 'address.remove':
      return addressWording.attempt(op);
    case 'route.replace':
    case 'route.remove':
      return routeWording.attempt(op);
    case 'rule.add':
    case 'rule.remove':
      return ruleWording.attempt(op);
    case 'link.set':
      return linkWording.attempt(op);
  }
}
