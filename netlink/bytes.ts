// Stores into a message being built, in the host's byte order as rtnetlink wants it (little-
// endian: the x86_64 and aarch64 machines cloud-network runs on). Plain index stores: Buffer's
// write methods check their arguments on every call, which the helper, under --jitless, pays
// for in the interpreter, several times per message (docs/performance.md, "The helper under --jitless").
export function putU8(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value;
}

export function putU16(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value;
  out[offset + 1] = value >>> 8;
}

export function putU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value;
  out[offset + 1] = value >>> 8;
  out[offset + 2] = value >>> 16;
  out[offset + 3] = value >>> 24;
}
