// JSON-RPC error codes of the helper. -32700..-32600 are JSON-RPC 2.0's own; -32000..-32099 are
// the range JSON-RPC leaves to servers. Both sides import these; changing one is a protocol change.

export const RpcErrorCode = {
  /** the line was not JSON; the connection stays open */
  ParseError: -32700,
  /** JSON, but not a single JSON-RPC 2.0 request object (batches are not accepted) */
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  /** the message names the field, e.g. "invalid params: /operations/3/address: ..." */
  InvalidParams: -32602,
  InternalError: -32603,
  /** the line exceeded MAX_MESSAGE_BYTES; the helper closes the connection after this error */
  MessageTooLarge: -32001,
  /** more connections than the helper serves at once; the connection is closed */
  TooManyConnections: -32002,
  /** the helper received SIGTERM; requests not yet started are not executed */
  ShuttingDown: -32003,
  /** the peer is neither root nor the allowed user; the connection is closed */
  PeerNotAllowed: -32004,
} as const;

export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];
