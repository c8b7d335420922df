// The polkit rule, judged by the real polkitd: a private system bus, polkitd on it with the rule
// installed for the duration of the test, and pkcheck asking about processes of test users.
// Everything started is stopped and every file and user the test made is removed, also on failure.
import test from 'ava';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../lib/staged-install.js';

const POLKITD = '/usr/lib/polkit-1/polkitd';
const RULES_DIR = '/etc/polkit-1/rules.d';
const RULE = join(RULES_DIR, '50-cloud-network.rules');
const SYSTEMD_ACTIONS = '/usr/share/polkit-1/actions/org.freedesktop.systemd1.policy';
const STAND_IN_ACTIONS = '/usr/share/polkit-1/actions/org.cloud-network.test-manage-units.policy';
const MEMBER = 'cn-pk-member';
const OTHER = 'cn-pk-other';
const GROUP = 'netadmin';

/** pkcheck's exit codes (pkcheck(1)) */
const AUTHORIZED = 0;
const CHALLENGE = 2;

const cleanups: (() => void)[] = [];
let busAddress = '';
let member: ChildProcess;
let other: ChildProcess;

function exists(database: 'passwd' | 'group', name: string): boolean {
  return spawnSync('getent', [database, name]).status === 0;
}

function waitFor(child: ChildProcess, output: () => string, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (pattern.test(output())) resolve();
      else if (child.exitCode !== null) reject(new Error(`${what} exited (${child.exitCode}): ${output()}`));
      else if (Date.now() - started > 20_000) reject(new Error(`${what} did not become ready: ${output()}`));
      else setTimeout(check, 25);
    };
    check();
  });
}

function sleeper(user: string): ChildProcess {
  const gid = execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim();
  const child = spawn('setpriv', ['--reuid', user, '--regid', gid, '--init-groups', 'sleep', '600'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

test.before(async () => {
  if (!existsSync(POLKITD)) throw new Error(`${POLKITD} is missing: install the polkitd package (.ci/run does)`);
  if (existsSync(RULE)) throw new Error(`${RULE} already exists: this test will not replace a real installation's rule`);

  if (!exists('group', GROUP)) {
    execFileSync('groupadd', ['--system', GROUP]);
    cleanups.push(() => spawnSync('groupdel', [GROUP]));
  }
  for (const [user, groups] of [[MEMBER, [GROUP]], [OTHER, []]] as const) {
    if (!exists('passwd', user)) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', ...(groups.length ? ['--groups', groups.join(',')] : []), user]);
      cleanups.push(() => spawnSync('userdel', [user]));
    }
  }
  if (!existsSync(SYSTEMD_ACTIONS)) {
    // systemd's policy file defines the action; without it polkit knows no such action
    writeFileSync(
      STAND_IN_ACTIONS,
      `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE policyconfig PUBLIC "-//freedesktop//DTD PolicyKit Policy Configuration 1.0//EN" "http://www.freedesktop.org/standards/PolicyKit/1/policyconfig.dtd">
<policyconfig>
  <action id="org.freedesktop.systemd1.manage-units">
    <description>Manage system services or other units (stand-in for systemd's, tests only)</description>
    <defaults><allow_any>auth_admin</allow_any><allow_inactive>auth_admin</allow_inactive><allow_active>auth_admin_keep</allow_active></defaults>
  </action>
</policyconfig>
`,
    );
    cleanups.push(() => rmSync(STAND_IN_ACTIONS, { force: true }));
  }

  copyFileSync(join(REPO, 'polkit/50-cloud-network.rules'), RULE);
  chmodSync(RULE, 0o644);
  cleanups.push(() => rmSync(RULE, { force: true }));

  // A private system bus: polkitd and pkcheck find it through DBUS_SYSTEM_BUS_ADDRESS.
  const dir = mkdtempSync(join(tmpdir(), 'cn-polkit-'));
  chmodSync(dir, 0o755); // polkitd drops to its own user and must still reach the bus socket
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'bus.conf');
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  const bus = spawn('dbus-daemon', ['--config-file', config, '--nofork', '--nopidfile', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => bus.kill('SIGTERM'));
  let busOutput = '';
  bus.stdout!.setEncoding('utf8').on('data', (chunk: string) => (busOutput += chunk));
  bus.stderr!.setEncoding('utf8').on('data', (chunk: string) => (busOutput += chunk));
  await waitFor(bus, () => busOutput, /^unix:.*\n/m, 'dbus-daemon');
  busAddress = busOutput.trim().split('\n')[0]!;

  const polkitd = spawn(POLKITD, [], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: busAddress } });
  cleanups.unshift(() => polkitd.kill('SIGTERM')); // before the bus goes
  let polkitOutput = '';
  polkitd.stdout!.setEncoding('utf8').on('data', (chunk: string) => (polkitOutput += chunk));
  polkitd.stderr!.setEncoding('utf8').on('data', (chunk: string) => (polkitOutput += chunk));
  await waitFor(polkitd, () => polkitOutput, /Acquired the name org\.freedesktop\.PolicyKit1/, 'polkitd');
  if (/error|exception/i.test(polkitOutput)) throw new Error(`polkitd reported a problem loading the rules:\n${polkitOutput}`);

  member = sleeper(MEMBER);
  other = sleeper(OTHER);
});

test.after.always(() => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      cleanup();
    } catch {
      /* keep cleaning up the rest */
    }
  }
});

function pkcheck(process: ChildProcess, unit: string, verb: string): { status: number | null; output: string } {
  const result = spawnSync(
    'pkcheck',
    ['--action-id', 'org.freedesktop.systemd1.manage-units', '--process', String(process.pid), '--detail', 'unit', unit, '--detail', 'verb', verb],
    { encoding: 'utf8', env: { ...globalThis.process.env, DBUS_SYSTEM_BUS_ADDRESS: busAddress } },
  );
  return { status: result.status, output: result.stdout + result.stderr };
}

for (const unit of ['cloud-network.service', 'cloud-network-helper.service', 'cloud-network.socket']) {
  for (const verb of ['reload', 'restart', 'try-restart']) {
    test(`a netadmin member may ${verb} ${unit} without a password`, (t) => {
      const result = pkcheck(member, unit, verb);
      t.is(result.status, AUTHORIZED, result.output);
    });
  }
}

test('a user outside netadmin must authenticate as an administrator to reload cloud-network.service', (t) => {
  const result = pkcheck(other, 'cloud-network.service', 'reload');
  t.is(result.status, CHALLENGE, result.output);
  t.regex(result.output, /requires authentication/);
});

test('a netadmin member gets nothing extra for another unit', (t) => {
  const result = pkcheck(member, 'ssh.service', 'reload');
  t.is(result.status, CHALLENGE, result.output);
});

for (const verb of ['start', 'stop']) {
  test(`a netadmin member may not ${verb} cloud-network.service without authenticating`, (t) => {
    const result = pkcheck(member, 'cloud-network.service', verb);
    t.is(result.status, CHALLENGE, result.output);
  });
}
