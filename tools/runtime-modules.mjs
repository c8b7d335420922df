#!/usr/bin/env node
// Copies into DEST (an installed copy's node_modules) only the files the built programs load from
// node_modules: the packages tools/build.mjs leaves out of the bundles (the native addons netlink
// and koffi, bunyan's optional safe-json-stringify) and what those require, with this machine's
// prebuilt binary alone. The list is what Node's require cache holds when each program starts
// (--help), when each file a program requires later is loaded, and when the agent opens its
// first kernel socket, so it follows the code rather than a list kept by hand. On another architecture the same run picks that one's binary (and
// koffi's own loader where netlink/ffi.ts falls back to it).
//
// Usage: node tools/runtime-modules.mjs DEST   (run from a checkout after make build)
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dest = process.argv[2];
if (!dest) {
  process.stderr.write('usage: node tools/runtime-modules.mjs DEST\n');
  process.exit(2);
}
const modules = realpathSync(join(root, 'node_modules'));

// What runs, as the installed copy runs it: the entry points, and the files they require only
// when needed (the agent's REST API, the helper's explanation of an invalid request).
const RUNS = [
  ['bin/cloud-network', '--help'],
  ['bin/cloud-network-helper', '--help'],
  ['bin/cnctl', '--help'],
  ['-e', `require(${JSON.stringify(join(root, 'dist/agent/api.js'))})`],
  ['-e', `require(${JSON.stringify(join(root, 'dist/helper/explain.js'))})`],
  // and what the agent loads with its first kernel socket rather than at start: the netlink
  // package's socket module and its addon, resolved from the bundle as netlink/socket.ts does
  ['-e', `require('node:module').createRequire(${JSON.stringify(join(root, 'dist/agent/main.js'))})('netlink/dist/netlink.js')`],
];

const work = mkdtempSync(join(tmpdir(), 'cn-runtime-modules-'));
const loaded = new Set();
try {
  const tracer = join(work, 'trace.cjs');
  const out = join(work, 'loaded.json');
  writeFileSync(tracer, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
  for (const args of RUNS) {
    execFileSync(process.execPath, ['--require', tracer, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH } });
    for (const file of JSON.parse(readFileSync(out, 'utf8'))) {
      if (file.startsWith(modules + sep)) loaded.add(relative(modules, file));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** a/node_modules/@b/c/x.js → a/node_modules/@b/c: the innermost package holding the file */
function packageOf(file) {
  const parts = file.split(sep);
  const start = parts.lastIndexOf('node_modules') + 1;
  return parts.slice(0, parts[start].startsWith('@') ? start + 2 : start + 1).join(sep);
}

// and each package's package.json: Node reads it to resolve the package and its version
const files = new Set(loaded);
for (const pkg of new Set([...loaded].map(packageOf))) files.add(join(pkg, 'package.json'));

rmSync(dest, { recursive: true, force: true });
for (const file of [...files].sort()) {
  mkdirSync(dirname(join(dest, file)), { recursive: true });
  copyFileSync(join(modules, file), join(dest, file));
}
process.stdout.write(`${files.size} files from node_modules: ${[...new Set([...files].map(packageOf))].sort().join(', ')}\n`);
