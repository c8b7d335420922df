// koffi, the FFI through which the netlink sockets and the helper's peer check call libc,
// loaded straight from its prebuilt addon. koffi's own index.js first loads its installer's
// helpers (https, zlib, crypto) only to name the platform's directory, a cost in every start-up,
// and the helper starts on every activation (docs/performance.md, "Start-up"). Where
// build/koffi/<platform>_<arch>/ holds an addon of koffi's own version we load it; anything
// else (musl, armhf, riscv64d, a mismatched addon) goes through koffi's loader as before.
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  try {
    const native = require(`koffi/build/koffi/${process.platform}_${process.arch}/koffi.node`) as Koffi & { version?: string };
    const { version } = require('koffi/package.json') as { version: string };
    if (native.version === version) return native;
  } catch {
    // not this platform's layout: koffi's loader knows the others
  }
  return require('koffi') as Koffi;
}

let loaded: Koffi | undefined;

/** koffi, loaded on first use: a program's first system call through it, not its start-up, pays for the addon. */
export default function koffi(): Koffi {
  return (loaded ??= loadKoffi());
}
