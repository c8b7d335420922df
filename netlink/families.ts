// Address families as rtnetlink numbers them.
import type { Family } from '../protocol/ip.js';

export const AF_INET = 2;
export const AF_INET6 = 10;

export function familyName(af: number): Family | undefined {
  return af === AF_INET ? 'inet' : af === AF_INET6 ? 'inet6' : undefined;
}

export function familyNumber(family: Family): number {
  return family === 'inet' ? AF_INET : AF_INET6;
}
