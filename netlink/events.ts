// Kernel change notifications for links, addresses, routes and rules, on a socket of their own.
// Events are hints: after an overflow some were lost, and the caller re-reads everything.
import { decodeMessage, type KernelObjectKind } from './messages.js';
import { EVENT_RECEIVE_BUFFER_BYTES, RtnlSocket } from './socket.js';
import type { ObservedAddress, ObservedLink, ObservedRoute, ObservedRule } from './types.js';

/** rtnetlink multicast groups (RTNLGRP_* in linux/rtnetlink.h) */
const RTNLGRP = {
  LINK: 1,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV4_RULE: 8,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
  IPV6_RULE: 19,
} as const;

export type { KernelObjectKind };

export interface KernelEventDetail {
  action: 'new' | 'del';
  object: ObservedLink | ObservedAddress | ObservedRoute | ObservedRule;
}

export interface WatchOptions {
  /** each event, decoded */
  onEvent?(kind: KernelObjectKind, detail: KernelEventDetail): void;
  /**
   * once per batch of events, not decoded: for a caller that only needs to know that something
   * changed (the agent re-reads the kernel anyway). An apply sends three events per IP;
   * decoding them would compete with the helper for the CPU.
   */
  onChange?(): void;
  /** events were lost (the receive buffer overflowed): re-read the whole kernel state */
  onOverflow(): void;
  /** a socket error or an exception thrown by onEvent; watching goes on */
  onError?(error: Error): void;
  /** bytes; defaults to EVENT_RECEIVE_BUFFER_BYTES (capped by net.core.rmem_max without CAP_NET_ADMIN) */
  receiveBufferBytes?: number;
}

export interface KernelWatch {
  /** the receive buffer the kernel granted, in bytes */
  readonly receiveBufferBytes: number;
  close(): void;
}

/** Subscribes to link, address (IPv4/IPv6), route and rule changes. Keeps the process alive until closed. */
export function watchKernel(options: WatchOptions): KernelWatch {
  const sock = new RtnlSocket({
    receiveBufferBytes: options.receiveBufferBytes ?? EVENT_RECEIVE_BUFFER_BYTES,
    groups: Object.values(RTNLGRP),
    onMessages: (messages) => {
      if (options.onChange) {
        try {
          options.onChange();
        } catch (error) {
          options.onError?.(error instanceof Error ? error : new Error(String(error)));
        }
      }
      if (!options.onEvent) return;
      for (const message of messages) {
        try {
          const event = decodeMessage(message);
          if (event) options.onEvent!(event.kind, { action: event.action, object: event.object });
        } catch (error) {
          options.onError?.(error instanceof Error ? error : new Error(String(error)));
        }
      }
    },
    onOverflow: () => options.onOverflow(),
    onError: (error) => options.onError?.(error),
  });
  return {
    receiveBufferBytes: sock.receiveBufferBytes,
    close: () => sock.close(),
  };
}
