// Who may use the helper and how it is started: only CAP_NET_ADMIN needed, only root and the
// allowed user served, a socket file of mode 0660, systemd socket activation with idle exit.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { HelperClient } from '../../agent/reconcile/helper-client.js';
import { createNamespace, ip, waitFor } from '../lib/netns.js';
import { addNics, connects, ROOT, startHelper, uniqueDir } from '../lib/helper-harness.js';

const USER = 'cloud-network';

function ensureUser(): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  }
  return {
    uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim()),
  };
}

/** Runs one `info` request as another uid (via setpriv) and returns what came back. */
function infoAs(uid: number, gid: number, socketPath: string): string {
  const script = `
    const s = require('node:net').createConnection(${JSON.stringify(socketPath)});
    s.on('connect', () => s.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'info' }) + '\\n'));
    s.on('data', (d) => { process.stdout.write(d); s.end(); });
    s.on('error', (e) => process.stdout.write('error ' + e.code));`;
  return execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
}

test('the helper works with CAP_NET_ADMIN as its only capability, as an unprivileged uid', async (t) => {
  const ns = createNamespace(t, 'caps');
  addNics(ns);
  const helper = await startHelper(t, ns, {
    uid: 65534,
    wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin', '--bounding-set=-all,+net_admin'],
  });
  const client = new HelperClient({ socketPath: helper.socketPath });
  t.teardown(() => client.close());
  const { results } = await client.apply([
    { kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true },
    { kind: 'rule.add', priority: 20_200, table: 20_001, family: 'inet', from: '10.4.1.5/32' },
  ]);
  t.deepEqual(results.map((r) => r.outcome), ['applied', 'applied'], JSON.stringify(results));
  t.regex(ip(ns, 'addr', 'show', 'eth1'), /10\.4\.1\.5\/24/);
  const status = execFileSync('cat', [`/proc/${helper.child.pid}/status`], { encoding: 'utf8' });
  t.regex(status, /CapEff:\s+0000000000001000/); // bit 12: CAP_NET_ADMIN, nothing else
  t.regex(status, /Uid:\s+65534/);
  t.notRegex(helper.output(), /without CAP_NET_ADMIN/);
});

test('without CAP_NET_ADMIN the helper says so when it starts, at error level', async (t) => {
  const ns = createNamespace(t, 'nocaps');
  const helper = await startHelper(t, ns, {
    uid: 65534,
    wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
  });
  const records = helper.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
  const warning = records.find((r) => /without CAP_NET_ADMIN/.test(r.msg));
  t.truthy(warning, helper.output());
  t.is(warning!.level, 50);
  t.regex(warning!.msg, /the kernel will refuse every change/);
});

/** Runs the helper to its exit (killed after `timeoutMs`); resolves with its status and output. */
function runHelper(ns: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', 'helper/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': the output may still be in the pipes when the process has exited
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('an --allow-user that does not exist stops the helper before it listens, as an unknown --group does', async (t) => {
  const ns = createNamespace(t, 'nouser');
  const dir = uniqueDir(t);
  for (const [option, name] of [['--allow-user', 'cn-no-such-user'], ['--group', 'cn-no-such-group']] as const) {
    const run = await runHelper(ns, ['--socket', `${dir}/helper.sock`, '--ledger', `${dir}/ledger.json`, option, name]);
    t.is(run.code, 1, `${option}: ${run.output}`);
    t.regex(run.output, new RegExp(`${name} \\(${option}\\) does not exist`));
    t.false(existsSync(`${dir}/helper.sock`), `${option}: no socket`);
  }
});

test('a ledger directory that another user may write is named in a warning when the helper starts', async (t) => {
  const ns = createNamespace(t, 'ledgerdir');
  const shared = uniqueDir(t);
  await chmod(shared, 0o777);
  const helper = await startHelper(t, ns, { args: ['--ledger', `${shared}/ledger.json`] });
  t.regex(helper.output(), new RegExp(`the ledger's directory ${shared} can be written by every user`));
  const own = await startHelper(t, ns);
  t.notRegex(own.output(), /the ledger's directory/);
});

test('a peer that is neither root nor the allowed user is refused and logged; the allowed user is served', async (t) => {
  const { uid, gid } = ensureUser();
  const ns = createNamespace(t, 'peer');
  const helper = await startHelper(t, ns, { args: ['--allow-user', USER, '--group', USER] });
  // the socket is 0660 root:cloud-network; open it wider so the peer check itself is what refuses
  const mode = statSync(helper.socketPath);
  t.is(mode.mode & 0o777, 0o660);
  t.is(mode.gid, gid);
  await chmod(helper.socketPath, 0o666);

  const refused = infoAs(65534, 65534, helper.socketPath);
  t.regex(refused, /"code":-32004/);
  t.regex(refused, /uid 65534 is neither root nor cloud-network/);
  t.notRegex(refused, /"result"/);
  await waitFor(() => /refused-connection.*"uid":65534/.test(helper.output()), 'the refusal in the audit log');

  const allowed = infoAs(uid, gid, helper.socketPath);
  t.regex(allowed, /"result":\{"version"/);
});

test('a refused peer opening connection after connection does not lock out the allowed ones', async (t) => {
  const ns = createNamespace(t, 'peerflood');
  const helper = await startHelper(t, ns);
  await chmod(helper.socketPath, 0o666);
  // 200 connections one after the other as nobody, each sending a request and ending
  const script = `
    const net = require('node:net');
    (async () => {
      let refused = 0;
      for (let i = 0; i < 200; i++) {
        const text = await new Promise((resolve) => {
          let b = '';
          const s = net.createConnection(${JSON.stringify(helper.socketPath)});
          s.on('data', (d) => (b += d));
          s.on('error', () => resolve(b));
          s.on('close', () => resolve(b));
          s.write(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'info' }) + '\\n', () => s.end());
        });
        if (/-32004/.test(text)) refused++;
      }
      process.stdout.write(String(refused));
    })();`;
  const refused = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
  t.is(refused, '200');
  // root straight after: served, not dropped by a backlog of refused connections
  const client = new HelperClient({ socketPath: helper.socketPath, timeoutMs: 5_000 });
  t.teardown(() => client.close());
  t.regex((await client.info()).version, /\d/);
});

test('socket activation: the helper serves the socket systemd passes and exits after --idle-exit without connections', async (t) => {
  const ns = createNamespace(t, 'sockact');
  addNics(ns);
  const dir = uniqueDir(t);
  const socketPath = `${dir}/activated.sock`;
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'systemd-socket-activate', '-l', socketPath, process.execPath, '--import=tsx', 'helper/main.ts', '--idle-exit', '2', '--ledger', `${dir}/ledger.json`, '--socket', `${dir}/unused.sock`],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => connects(socketPath), 'systemd-socket-activate listening');
  const client = new HelperClient({ socketPath, timeoutMs: 30_000 });
  const { results } = await client.apply([{ kind: 'address.add', link: 'eth1', address: '10.4.1.5/24', noPrefixRoute: true }]);
  t.is(results[0]?.outcome, 'applied', output);
  t.regex(ip(ns, 'addr', 'show', 'eth1'), /10\.4\.1\.5\/24/);
  t.regex(output, /\(systemd socket activation\)/);
  client.close();
  t.is(await exited, 0);
  t.regex(output, /no connection for 2 s/);
  t.throws(() => statSync(`${dir}/unused.sock`)); // activated: it did not create its own --socket
});

test('SIGTERM lets the request in progress finish, then the helper exits', async (t) => {
  const ns = createNamespace(t, 'sigterm');
  addNics(ns);
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath, timeoutMs: 60_000 });
  t.teardown(() => client.close());
  const operations = Array.from({ length: 4_000 }, (_, i) => ({
    kind: 'address.add' as const,
    link: 'eth1',
    address: `2001:db8:1::${(i + 1).toString(16)}/64`,
    noPrefixRoute: true,
  }));
  const pending = client.apply(operations);
  // once the helper has started on it, stop it
  await waitFor(() => /2001:db8:1::/.test(ip(ns, 'addr', 'show', 'eth1')), 'the first addresses', 30_000, 5);
  helper.child.kill('SIGTERM');
  const { results } = await pending;
  t.is(results.length, 4_000);
  t.true(results.every((r) => r.outcome === 'applied'));
  t.is(await helper.exited, 0);
  t.is(ip(ns, '-6', 'addr', 'show', 'eth1').match(/2001:db8:1::/g)?.length, 4_000);
});
