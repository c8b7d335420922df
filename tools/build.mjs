#!/usr/bin/env node
// `make build`: each program (agent, helper, cnctl) as one CommonJS bundle, dist/<program>/main.js
// (dist/package.json says "commonjs"). One file loads in a fraction of the time many files and
// their dependencies take, and the cold converge starts two Node processes. CommonJS rather than
// an ES module: Node's ES module loader scans every CommonJS dependency for export names at each
// start-up (docs/performance.md, "Start-up"). Type checking is tsc's job (make typecheck), not
// this one's.
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { paramsChecksModule } from './params-checks.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const PROGRAMS = ['agent', 'helper', 'cnctl'];

// Left to Node at run time: native addons (koffi, netlink: netlink/ffi.ts loads koffi's addon),
// and safe-json-stringify, which bunyan requires only if present (inside try/catch), so that it
// behaves exactly as without a bundle. moment is only bunyan's CLI's. A require esbuild cannot
// resolve inside a try/catch (source-map-support for bunyan) stays a plain require().
const EXTERNAL = ['koffi', 'netlink', 'safe-json-stringify'];

// bunyan's optional modules for features no program here uses, which bunyan requires inside a
// try/catch: mv (only its rotating-file stream; it loads rimraf and glob at start-up) and
// dtrace-provider (DTrace probes; Linux has no DTrace). In the bundle they are modules that
// throw, which bunyan takes as "not installed".
const UNUSED_OPTIONAL = ['mv', 'dtrace-provider'];
const unusedOptional = {
  name: 'unused-optional',
  setup(build) {
    const filter = new RegExp(`^(${UNUSED_OPTIONAL.join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'unused-optional' }));
    build.onLoad({ filter: /.*/, namespace: 'unused-optional' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is left out of cloud-network's build (tools/build.mjs)`)});`,
      loader: 'js',
    }));
  },
};

// The agent's REST API is its own file, dist/agent/api.js, which the daemon requires once its
// first reconcile has ended (agent/main.ts); in the agent's bundle V8 would parse it at every
// start, --once included, which never serves the API (docs/performance.md, "The REST API").
// What the API shares with the agent (pure functions: describeOperation, linkStates) is in both
// files.
const API_ENTRY = 'agent/report/api/server.ts';
const apiApart = {
  name: 'api-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/report\/api\/server\.js$/ }, (args) =>
      args.importer.endsWith('agent/main.ts') ? { path: './api.js', external: true } : undefined,
    );
  },
};

// The helper checks each request's params with functions generated here (tools/params-checks.mjs)
// instead of compiling them from the schemas at every start; the schemas and typebox then stay
// out of its bundle. What explains an invalid request (protocol/explain.ts, with typebox) is its
// own file beside it, dist/helper/explain.js, which protocol/validate.ts requires on the first
// invalid request (docs/performance.md, "Memory").
const checksSource = await paramsChecksModule(root);
const paramsChecksAtBuild = {
  name: 'params-checks-at-build',
  setup(build) {
    build.onLoad({ filter: /[\\/]protocol[\\/]params-checks\.ts$/ }, () => ({ contents: checksSource, loader: 'js' }));
  },
};

rmSync(`${root}/dist`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { ...Object.fromEntries(PROGRAMS.map((program) => [`${program}/main`, `${program}/main.ts`])), 'agent/api': API_ENTRY, 'helper/explain': 'protocol/explain.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: EXTERNAL,
  plugins: [unusedOptional, apiApart, paramsChecksAtBuild],
  // import('./api.js') as require(): through Node's ES module loader, which scans a CommonJS
  // file for its export names first, it would cost more than keeping the API in the bundle
  supported: { 'dynamic-import': false },
  // the sources are ES modules: import.meta.url (protocol/version.ts, netlink/ffi.ts) becomes
  // the bundle's own file URL
  define: { 'import.meta.url': '__cloudNetworkFileUrl' },
  banner: { js: "const __cloudNetworkFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  // Class and function names stay readable in logs and stack traces. The source map (main.js.map,
  // with the sources in it) maps a production trace back to the .ts; the units do not run
  // node --enable-source-maps, which costs the agent memory at every start.
  keepNames: true,
  sourcemap: 'linked',
  // No minifying: it changes neither start-up time nor RSS measurably, and readable bundles give
  // readable line numbers.
  // no code splitting: each program is one file, whatever the others need
  splitting: false,
  logLevel: 'warning',
});
writeFileSync(`${root}/dist/package.json`, '{ "type": "commonjs" }\n');

// V8 keeps each script's source in the heap, at one byte per character only if every character
// is Latin-1: one arrow in a comment doubles the agent's ~350 KB. esbuild escapes strings, regular
// expressions and names itself (charset ascii), so what is left is in comments, and a same-width
// "?" keeps the source map's columns.
for (const file of readdirSync(`${root}/dist`, { recursive: true })) {
  if (!String(file).endsWith('.js')) continue;
  const path = `${root}/dist/${file}`;
  const text = readFileSync(path, 'utf8');
  if (/[^\x00-\xff]/.test(text)) writeFileSync(path, text.replace(/[^\x00-\xff]/gu, (char) => '?'.repeat(char.length)));
}
