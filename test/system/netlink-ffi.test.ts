// netlink/ffi.ts: koffi is loaded from its prebuilt addon, not through koffi's own loader (which
// first loads its installer's https, zlib and crypto: start-up time of every helper activation).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import koffi from '../../netlink/ffi.js';

const require = createRequire(import.meta.url);

test('koffi comes from this platform\'s prebuilt addon, of koffi\'s own version, and works', (t) => {
  const { version } = require('koffi/package.json') as { version: string };
  t.is((koffi() as unknown as { version: string }).version, version);
  t.false(Object.keys(require.cache).some((file) => file.endsWith('/koffi/index.js')), "koffi's index.js (its loader) was not loaded");
  const getpid = koffi().load('libc.so.6').func('int getpid()') as () => number;
  t.is(getpid(), process.pid);
});

test('the built helper starts without https and zlib, which only koffi\'s installer needs', (t) => {
  // the bundle as its entry point runs it, with --version (it prints and exits before listening)
  const run = spawnSync(process.execPath, [
    '--jitless',
    '-e',
    "process.argv.splice(1, 0, 'cloud-network-helper', '--version'); process.on('exit', () => process.stderr.write('\\n' + JSON.stringify(process.moduleLoadList))); require('./dist/helper/main.js');",
  ], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8', timeout: 20_000 });
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /^cloud-network-helper /);
  const loaded = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as string[];
  t.true(loaded.includes('NativeModule net'), 'the list is the loaded modules');
  t.deepEqual(loaded.filter((name) => /^NativeModule (https|zlib)$/.test(name)), []);
});

test("the built agent loads its native addons on first use: --version loads neither koffi nor the netlink package's", (t) => {
  const run = spawnSync(process.execPath, [
    '-e',
    "process.argv.splice(1, 0, 'cloud-network', '--version'); process.on('exit', () => process.stderr.write('\\n' + JSON.stringify(Object.keys(require.cache)))); require('./dist/agent/main.js');",
  ], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8', timeout: 20_000 });
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /^cloud-network /);
  const loaded = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as string[];
  t.true(loaded.some((file) => file.endsWith('/dist/agent/main.js')), 'the list is the loaded files');
  t.deepEqual(loaded.filter((file) => /\.node$|\/netlink\/dist\/|\/koffi\//.test(file)), []);
});
