// Framing of the helper protocol: one JSON-RPC message per line ("\n"), UTF-8, each line at
// most MAX_MESSAGE_BYTES. Both the helper and the agent use this splitter.
import { MAX_MESSAGE_BYTES } from './constants.js';

export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`message longer than ${limit} bytes`);
  }
}

/** Splits a byte stream into lines; throws LineTooLongError once a line exceeds `limit`. */
export class LineSplitter {
  private chunks: Buffer[] = [];
  private pending = 0;

  constructor(private readonly limit = MAX_MESSAGE_BYTES) {}

  push(data: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = data.subarray(start, nl);
      if (this.pending + piece.length > this.limit) throw new LineTooLongError(this.limit);
      this.chunks.push(piece);
      lines.push(Buffer.concat(this.chunks).toString('utf8'));
      this.chunks = [];
      this.pending = 0;
      start = nl + 1;
    }
    const rest = data.subarray(start);
    if (rest.length > 0) {
      if (this.pending + rest.length > this.limit) throw new LineTooLongError(this.limit);
      // copy: the caller's buffer may be reused
      this.chunks.push(Buffer.from(rest));
      this.pending += rest.length;
    }
    return lines;
  }
}
