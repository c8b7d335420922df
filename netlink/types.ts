// The kernel's network configuration as cloud-network observes it over rtnetlink: plain data,
// addresses as text, so that the planner and the policy can be tested without a kernel. Each
// kind's type lives with the rest of what that kind is, in objects/.
export type { Family } from '../protocol/ip.js';
export type { ObservedAddress } from './objects/address.js';
export type { ObservedLink } from './objects/link.js';
export type { NextHop, ObservedRoute, RouteType } from './objects/route.js';
export type { ObservedRule } from './objects/rule.js';

import type { ObservedAddress } from './objects/address.js';
import type { ObservedLink } from './objects/link.js';
import type { ObservedRoute } from './objects/route.js';
import type { ObservedRule } from './objects/rule.js';

export interface KernelState {
  links: ObservedLink[];
  addresses: ObservedAddress[];
  routes: ObservedRoute[];
  rules: ObservedRule[];
}
