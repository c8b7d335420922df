// make install / make uninstall, always into a temporary DESTDIR: where every piece lands, that
// the installed copy runs on its own, that a configuration is never overwritten, and that
// uninstall removes exactly what install put there.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DEFAULT_CONFIG, parseConfig } from '../../agent/process/config.js';
import { make, PREFIX, REPO, runInstalled, stageInstall, UNIT_DIR, type StagedInstall } from '../lib/staged-install.js';

// One install for the tests that only read it; the ones that change the tree make their own.
const afterAll: (() => void | Promise<void>)[] = [];
let shared: StagedInstall;
test.before(() => {
  shared = stageInstall({ teardown: (fn) => afterAll.push(fn) });
});
test.after.always(async () => {
  for (const fn of afterAll) await fn();
});

const CONFIG = '/etc/cloud-network/cloud-network.toml';
const INSTALLED = [
  `${PREFIX}/bin/cloud-network`,
  `${PREFIX}/bin/cnctl`,
  `${PREFIX}/libexec/cloud-network-helper`,
  `${UNIT_DIR}/cloud-network.service`,
  `${UNIT_DIR}/cloud-network-helper.service`,
  `${UNIT_DIR}/cloud-network.socket`,
  `${PREFIX}/lib/sysusers.d/cloud-network.conf`,
  `${PREFIX}/lib/tmpfiles.d/cloud-network.conf`,
  '/usr/share/polkit-1/rules.d/50-cloud-network.rules',
  `${PREFIX}/share/man/man8/cloud-network.8.gz`,
  `${PREFIX}/share/man/man1/cnctl.1.gz`,
  `${PREFIX}/share/man/man5/cloud-network.toml.5.gz`,
  `${PREFIX}/share/bash-completion/completions/cnctl`,
  `${PREFIX}/lib/systemd/networkd.conf.d/50-cloud-network.conf`,
];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(path + '/', ...filesUnder(path));
    else out.push(path);
  }
  return out;
}

test('make install puts every piece under PREFIX (or its fixed place) and records each in the manifest', (t) => {
  const install = shared;
  const manifest = install.manifest();
  for (const path of INSTALLED) {
    t.true(existsSync(install.staged(path)), `${path} is installed`);
    t.true(manifest.includes(`file ${path}`), `${path} is in the manifest`);
  }
  t.true(manifest.includes(`tree ${PREFIX}/lib/cloud-network`));
  t.true(manifest.some((line) => line.startsWith(`config ${CONFIG} `)));
  t.is(statSync(install.staged(`${PREFIX}/libexec/cloud-network-helper`)).mode & 0o777, 0o755);
  // of node_modules only what the bundles leave to Node: the native addons, for this machine only
  const modules = install.staged(`${PREFIX}/lib/cloud-network/node_modules`);
  t.deepEqual(readdirSync(modules).sort(), ['koffi', 'netlink', 'node-gyp-build', 'safe-json-stringify']);
  t.deepEqual(readdirSync(join(modules, 'koffi/build/koffi')), [`${process.platform}_${process.arch}`]);
  t.deepEqual(readdirSync(join(modules, 'netlink/prebuilds')), [`${process.platform}-${process.arch}`]);
});

test('the installed entry points run the installed copy, with the checkout hidden', (t) => {
  const install = shared;
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  const cnctl = runInstalled(install.destdir, `${PREFIX}/bin/cnctl`, ['--version'], { hideCheckout: true });
  t.is(cnctl.status, 0, cnctl.stderr);
  t.regex(cnctl.stdout, new RegExp(version.replaceAll('.', '\\.')));
  const agent = runInstalled(install.destdir, `${PREFIX}/bin/cloud-network`, ['--help'], { hideCheckout: true });
  t.is(agent.status, 0, agent.stderr);
  t.regex(agent.stdout, /Usage: cloud-network/);
  const helper = runInstalled(install.destdir, `${PREFIX}/libexec/cloud-network-helper`, ['--help'], { hideCheckout: true });
  t.is(helper.status, 0, helper.stderr);
  t.regex(helper.stdout, /Usage: cloud-network-helper/);
});

test('the units run the programs of the PREFIX they were installed with', (t) => {
  const install = stageInstall(t, ['PREFIX=/opt/cn']);
  const agent = readFileSync(install.staged('/opt/cn/lib/systemd/system/cloud-network.service'), 'utf8');
  const helper = readFileSync(install.staged('/opt/cn/lib/systemd/system/cloud-network-helper.service'), 'utf8');
  t.regex(agent, /^ExecStart=\/opt\/cn\/bin\/cloud-network --config \/etc\/cloud-network\/cloud-network\.toml$/m);
  t.regex(helper, /^ExecStart=\/opt\/cn\/libexec\/cloud-network-helper /m);
  t.notRegex(agent + helper, /@[A-Z]+@/, 'no placeholder is left');
  const wrapper = readFileSync(install.staged('/opt/cn/bin/cnctl'), 'utf8');
  t.regex(wrapper, /^exec \S*node \/opt\/cn\/lib\/cloud-network\/bin\/cnctl "\$@"$/m);
});

test('make install never overwrites an existing configuration, and uninstall leaves it', (t) => {
  const destdir = mkdtempSync(join(tmpdir(), 'cn-destdir-'));
  t.teardown(() => rmSync(destdir, { recursive: true, force: true }));
  mkdirSync(join(destdir, '/etc/cloud-network'), { recursive: true });
  writeFileSync(join(destdir, CONFIG), '[System]\nLogLevel = "Debug"\n');
  const output = make('install', destdir);
  t.regex(output, /keeping the existing/);
  t.is(readFileSync(join(destdir, CONFIG), 'utf8'), '[System]\nLogLevel = "Debug"\n');
  make('uninstall', destdir);
  t.is(readFileSync(join(destdir, CONFIG), 'utf8'), '[System]\nLogLevel = "Debug"\n');
});

test('make uninstall removes every file and directory make install created', (t) => {
  const install = stageInstall(t);
  make('uninstall', install.destdir);
  t.deepEqual(filesUnder(install.destdir), []);
});

test('make uninstall keeps a configuration edited after install, and removes the rest', (t) => {
  const install = stageInstall(t);
  writeFileSync(install.staged(CONFIG), '[Network]\nSupplementary = "eth0"\n', { flag: 'a' });
  const output = make('uninstall', install.destdir);
  t.regex(output, /keeping .*cloud-network\.toml: it was changed/);
  t.deepEqual(filesUnder(install.destdir).sort(), [
    join(install.destdir, '/etc/'),
    join(install.destdir, '/etc/cloud-network/'),
    join(install.destdir, CONFIG),
  ]);
});

test('make uninstall without an install says so and fails', (t) => {
  const destdir = mkdtempSync(join(tmpdir(), 'cn-destdir-'));
  t.teardown(() => rmSync(destdir, { recursive: true, force: true }));
  const error = t.throws(() => make('uninstall', destdir)) as Error & { stderr: string };
  t.regex(error.stderr, /no install manifest at .*nothing installed/);
});

test('the default configuration file shows every key with its default value', (t) => {
  const text = readFileSync(join(REPO, 'etc/cloud-network.toml'), 'utf8');
  t.deepEqual(parseConfig(text, 'etc/cloud-network.toml'), DEFAULT_CONFIG, 'as shipped (all commented) it is the defaults');
  const uncommented = text.replace(/^#(?=[A-Za-z]+ = )/gm, '');
  const keys = [...uncommented.matchAll(/^([A-Za-z]+) = /gm)].map((m) => m[1]);
  t.deepEqual(keys, ['LogLevel', 'LogFormat', 'RefreshTimer', 'Provider', 'HelperSocket', 'StateDir', 'Listen', 'Supplementary', 'RouteTableBase']);
  t.deepEqual(parseConfig(uncommented, 'etc/cloud-network.toml'), DEFAULT_CONFIG, 'every commented value is the real default');
});

test('the installed man pages render without a groff warning', (t) => {
  const install = shared;
  for (const page of ['man8/cloud-network.8.gz', 'man1/cnctl.1.gz', 'man5/cloud-network.toml.5.gz']) {
    const source = gunzipSync(readFileSync(install.staged(`${PREFIX}/share/man/${page}`)));
    const check = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: source, encoding: 'utf8' });
    t.is(check.status, 0, page);
    t.is(check.stderr, '', page);
    const text = execFileSync('groff', ['-man', '-Tutf8', '-P', '-cbou'], { input: source, encoding: 'utf8' });
    t.regex(text, /NAME/, `${page} has a NAME section`);
  }
});
