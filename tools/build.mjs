#!/usr/bin/env node
// `make build`: each program (agent, helper, cnctl) as one ES module bundle, dist/<program>/main.js.
// One file loads in ~0.19 s where tsc's ~60 files and their dependencies took ~0.33 s; the cold
// converge starts two Node processes (the agent, then the socket-activated helper), so that
// counts twice (bench/README.md). Type checking is tsc's job (make typecheck), not this one's.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const PROGRAMS = ['agent', 'helper', 'cnctl'];

// Left to Node at run time: native addons (koffi, netlink), and the modules bunyan requires
// only if present (inside try/catch), so that they behave exactly as without a bundle
// (dtrace-provider falls back to a stub where its addon is not built, as after install.sh's
// --ignore-scripts). moment is only bunyan's CLI's. Requires esbuild cannot resolve inside a
// try/catch (source-map-support for bunyan, supports-color for debug) stay plain require()s.
const EXTERNAL = ['koffi', 'netlink', 'dtrace-provider', 'mv', 'safe-json-stringify'];

rmSync(`${root}/dist`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(PROGRAMS.map((program) => [`${program}/main`, `${program}/main.ts`])),
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL,
  // the CommonJS dependencies (koa, bunyan, …) call require(): give the ES module one
  banner: { js: "import { createRequire as __cloudNetworkRequire } from 'node:module'; const require = __cloudNetworkRequire(import.meta.url);" },
  // Class and function names stay readable in logs and stack traces. The source map (main.js.map,
  // with the sources in it) maps a production trace back to the .ts; the units do not run
  // node --enable-source-maps, which costs the agent ~11 MiB RSS at start-up.
  keepNames: true,
  sourcemap: 'linked',
  // No minifying: --minify-syntax and --minify-whitespace (0.70 MB instead of 1.08 MB for the
  // agent) changed neither start-up time nor RSS beyond run-to-run noise (21 runs each), and
  // readable bundles give readable line numbers.
  // no code splitting: each program is one file, whatever the others need
  splitting: false,
  logLevel: 'warning',
});
