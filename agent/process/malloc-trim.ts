// glibc's malloc_trim: hands the pages of freed malloc memory back to the kernel.
//
// glibc returns freed memory to the kernel only from the top of its heap; what an apply freed
// in the middle (the metadata text, kernel dumps, request buffers: Node allocates buffers with
// malloc) stays resident. After the idle collection has freed them, one malloc_trim(0)
// releases those pages. Undefined where libc is not glibc.
import koffi from '../../netlink/ffi.js';

export function loadMallocTrim(): (() => void) | undefined {
  try {
    const trim = koffi().load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return () => void trim(0);
  } catch {
    return undefined; // musl and others: no malloc_trim
  }
}
