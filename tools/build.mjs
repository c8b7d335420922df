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
// only if present (inside try/catch), so that they behave exactly as without a bundle.
const EXTERNAL = ['koffi', 'netlink', 'dtrace-provider', 'mv', 'safe-json-stringify', 'moment'];

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
  // class and function names stay readable in logs and stack traces; the source map leads back to the .ts
  keepNames: true,
  sourcemap: 'linked',
  // no code splitting: each program is one file, whatever the others need
  splitting: false,
  logLevel: 'warning',
});
