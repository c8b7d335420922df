// The installed systemd units: systemd's own verifier accepts them, systemd rates their
// sandboxes at most 1.5, and the installed helper answers through socket activation.
import test from 'ava';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespace } from '../lib/netns.js';
import { environmentOf, nodeOptionsOf, spawnTracked, unitEnvironment } from '../lib/units.js';
import { TeardownStack } from '../lib/teardown-stack.js';
import { PREFIX, runInstalled, spawnInstalled, stageInstall, UNIT_DIR, type StagedInstall } from '../lib/staged-install.js';

// One install for the tests that only read it; the ones that change the tree make their own.
const afterAll: (() => void | Promise<void>)[] = [];
let shared: StagedInstall;
test.before(() => {
  shared = stageInstall({ teardown: (fn) => afterAll.push(fn) });
});
test.after.always(async () => {
  for (const fn of afterAll) await fn();
});

const UNITS = ['cloud-network.service', 'cloud-network-helper.service', 'cloud-network.socket'];

function security(unitFile: string): { exposure: number; report: string } {
  // exits non-zero only when the score is above --threshold (default 100): read the text
  const result = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unitFile], { encoding: 'utf8' });
  const report = result.stdout + result.stderr;
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(report);
  if (!match) throw new Error(`systemd-analyze security printed no exposure level for ${unitFile}:\n${report}`);
  return { exposure: Number(match[1]), report };
}

test('systemd-analyze verify accepts the installed units, their programs and man pages', (t) => {
  const install = shared;
  const files = UNITS.map((u) => `${UNIT_DIR}/${u}`);
  const result = runInstalled(install.destdir, 'env', [`SYSTEMD_UNIT_PATH=${UNIT_DIR}:`, 'systemd-analyze', 'verify', ...files]);
  t.is(result.status, 0, result.stderr);
  t.is(result.stderr.trim(), '', 'no warning at all');
});

for (const unit of ['cloud-network.service', 'cloud-network-helper.service']) {
  test(`systemd-analyze security rates the installed ${unit} at most 1.5`, (t) => {
    const install = shared;
    const { exposure, report } = security(install.staged(`${UNIT_DIR}/${unit}`));
    t.true(exposure <= 1.5, `exposure ${exposure}:\n${report}`);
  });
}

test('the agent unit has no capability; the helper unit has CAP_NET_ADMIN and no IP access', (t) => {
  const install = shared;
  const agent = security(install.staged(`${UNIT_DIR}/cloud-network.service`)).report;
  const helper = security(install.staged(`${UNIT_DIR}/cloud-network-helper.service`)).report;
  t.regex(agent, /✓ CapabilityBoundingSet=~CAP_NET_ADMIN/);
  t.regex(agent, /✓ AmbientCapabilities=/);
  t.regex(agent, /✓ User=\/DynamicUser=\s+Service runs under a static non-root user identity/);
  t.regex(helper, /✗ CapabilityBoundingSet=~CAP_NET_ADMIN/);
  t.regex(helper, /✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
  t.regex(helper, /✓ User=\/DynamicUser=\s+Service runs under a static non-root user identity/);
  t.regex(helper, /✓ IPAddressDeny=\s+Service blocks all IP address ranges/);
  t.regex(helper, /✓ RestrictAddressFamilies=~AF_\(INET\|INET6\)/);
  t.regex(helper, /✓ MemoryDenyWriteExecute=/);
});

test('the agent unit may reach loopback and the metadata addresses of every cloud, and nothing else', (t) => {
  const unit = readFileSync(shared.staged(`${UNIT_DIR}/cloud-network.service`), 'utf8');
  const allow = unit.split('\n').filter((line) => line.startsWith('IPAddressAllow=')).flatMap((line) => line.slice('IPAddressAllow='.length).trim().split(/\s+/));
  // 169.254.169.254: Azure, EC2, GCP, OCI; fd00:ec2::254: EC2 over IPv6; 100.100.100.200: Alibaba Cloud
  t.deepEqual(allow.sort(), ['100.100.100.200', '169.254.169.254', 'fd00:ec2::254', 'localhost']);
  t.regex(unit, /^IPAddressDeny=any$/m);
});

/** systemd-socket-activate says "Listening on ..." once the socket exists. */
function listening(activator: ChildProcess, stderr: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (/Listening on/.test(stderr())) resolve();
      else if (activator.exitCode !== null) reject(new Error(`systemd-socket-activate exited: ${stderr()}`));
      else setTimeout(check, 20);
    };
    check();
  });
}

/** Sends one JSON-RPC request line and resolves with the first answer line. */
function ask(socketPath: string, request: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline >= 0) {
        socket.end();
        try {
          resolve(JSON.parse(buffer.slice(0, newline)));
        } catch (error) {
          reject(error);
        }
      }
    });
    socket.on('error', reject);
    socket.on('end', () => reject(new Error(`the helper closed the connection without an answer (got ${JSON.stringify(buffer)})`)));
  });
}

test('the installed helper, socket-activated, answers info on the socket it was handed', async (t) => {
  const install = shared;
  const ns = createNamespace(t, 'sockact');
  const dir = mkdtempSync(join(tmpdir(), 'cn-sockact-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'helper.sock');
  const activator = spawnInstalled(
    install.destdir,
    'systemd-socket-activate',
    ['-l', socketPath, `${PREFIX}/libexec/cloud-network-helper`, '--idle-exit', '30', '--ledger', join(dir, 'ledger.json')],
    ns,
  );
  let stderr = '';
  activator.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  t.teardown(() => {
    activator.kill('SIGKILL');
  });
  await listening(activator, () => stderr);
  const answer = (await ask(socketPath, { jsonrpc: '2.0', id: 1, method: 'info', params: {} })) as {
    jsonrpc: string;
    id: number;
    result?: Record<string, unknown>;
    error?: unknown;
  };
  t.is(answer.jsonrpc, '2.0');
  t.is(answer.id, 1);
  t.is(answer.error, undefined, JSON.stringify(answer.error));
  t.is(typeof answer.result, 'object');
  t.regex(stderr, /Execing/, 'the helper was started by the activation, not before');
  // the helper runs the installed copy: its process is node on /usr/local/lib/cloud-network
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split('\n');
  const commandLines = pids.map((pid) => {
    try {
      return execFileSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).replaceAll('\0', ' ');
    } catch {
      return '';
    }
  });
  t.true(commandLines.some((c) => c.includes(`${PREFIX}/lib/cloud-network/bin/cloud-network-helper`)), commandLines.join('\n'));
});

// PR_SET_MDWE (Linux ≥ 6.3) is the kernel's own form of what MemoryDenyWriteExecute= enforces
// with seccomp: no memory may become both writable and executable. perl (always on Debian)
// sets it and execs the command, which inherits it.
const MDWE = 'my $nr = {x86_64=>157, aarch64=>167}->{(POSIX::uname())[4]} // die "unknown arch"; syscall($nr, 65, 1, 0, 0, 0) == 0 or die "prctl(PR_SET_MDWE): $!"; exec @ARGV or die';

test('NODE_OPTIONS of a unit: one word bare, several only quoted (systemd splits Environment= at spaces)', (t) => {
  t.deepEqual(nodeOptionsOf('[Service]\nEnvironment=NODE_OPTIONS=--jitless\n'), ['--jitless']);
  t.deepEqual(nodeOptionsOf('[Service]\nEnvironment="NODE_OPTIONS=--jitless --max-semi-space-size=1"\n'), ['--jitless', '--max-semi-space-size=1']);
  // unquoted, the second word is an assignment of its own, which systemd skips as invalid
  t.deepEqual(nodeOptionsOf('[Service]\nEnvironment=NODE_OPTIONS=--jitless --max-semi-space-size=1\n'), ['--jitless']);
  t.deepEqual(nodeOptionsOf('[Service]\nType=simple\n'), []);
});

test('the environment of a unit: every Environment= line, several assignments per line, quoted or bare', (t) => {
  t.deepEqual(environmentOf('[Service]\nEnvironment=A=1 "B=2 3"\nEnvironment="NODE_OPTIONS=--x --y" C=\nType=simple\n'), {
    A: '1',
    B: '2 3',
    NODE_OPTIONS: '--x --y',
    C: '',
  });
});

test('the bench starts each program with its unit’s environment and none of its own, as systemd does', async (t) => {
  const saved = process.env.NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = '/etc/ssl/certs/ca-certificates.crt';
  const cleanup = new TeardownStack();
  try {
    for (const name of ['cloud-network.service.in', 'cloud-network-helper.service.in']) {
      const fromUnit = environmentOf(readFileSync(new URL(`../../systemd/${name}`, import.meta.url), 'utf8'));
      t.truthy(fromUnit.NODE_OPTIONS, `${name} sets NODE_OPTIONS, or this test compares nothing`);
      // a real process started the way the bench starts the agent and the helper, telling what it got
      const program = spawnTracked(cleanup, 'env', ['-0'], unitEnvironment(name));
      await program.exited;
      // `env -0` writes no newline: its one line comes when its output ends, which may follow its exit
      for (let waited = 0; program.lines.length === 0 && waited < 5_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
      const got = Object.fromEntries(program.output().split('\0').filter(Boolean).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
      t.deepEqual(got, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin', ...fromUnit }, name);
    }
  } finally {
    await cleanup.run();
    if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = saved;
  }
});

test('each unit drops NODE_EXTRA_CA_CERTS, which would cost every start a CA bundle neither program uses', (t) => {
  for (const name of ['cloud-network.service', 'cloud-network-helper.service']) {
    const unit = readFileSync(shared.staged(`${UNIT_DIR}/${name}`), 'utf8');
    const unset = [...unit.matchAll(/^UnsetEnvironment=(.*)$/gm)].flatMap(([, names]) => names!.trim().split(/\s+/));
    t.true(unset.includes('NODE_EXTRA_CA_CERTS'), `${name}: UnsetEnvironment=${unset.join(' ')}`);
  }
});

test('under each unit’s NODE_OPTIONS node exposes gc, which the agent and the helper use to give memory back after an apply', (t) => {
  for (const name of ['cloud-network.service', 'cloud-network-helper.service']) {
    const options = nodeOptionsOf(readFileSync(shared.staged(`${UNIT_DIR}/${name}`), 'utf8'));
    const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(typeof gc)'], { env: { ...process.env, NODE_OPTIONS: options.join(' ') }, encoding: 'utf8' });
    t.is(run.stdout, 'function', `${name}: NODE_OPTIONS=${options.join(' ')} ${run.stderr}`);
  }
});

test('the installed helper applies operations under MemoryDenyWriteExecute with its unit’s NODE_OPTIONS', async (t) => {
  const install = shared;
  const unit = readFileSync(install.staged(`${UNIT_DIR}/cloud-network-helper.service`), 'utf8');
  t.regex(unit, /^MemoryDenyWriteExecute=yes$/m);
  const nodeOptions = nodeOptionsOf(unit).join(' ');
  t.true(nodeOptionsOf(unit).includes('--jitless'), `NODE_OPTIONS=${nodeOptions}`);
  // the premise: with the JIT, node cannot run at all under this restriction
  const jit = spawnSync('perl', ['-MPOSIX', '-e', MDWE, process.execPath, '-e', 'for (let i = 0; i < 1e6; i++);'], { encoding: 'utf8' });
  t.not(jit.status, 0, 'node with its JIT must fail under MDWE, or this test proves nothing');

  const ns = createNamespace(t, 'mdwe');
  execFileSync('ip', ['-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'peer1']);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']);
  const dir = mkdtempSync(join(tmpdir(), 'cn-mdwe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'helper.sock');
  const activator = spawnInstalled(
    install.destdir,
    'systemd-socket-activate',
    // the activator passes on only the environment it is told to, as systemd does with Environment=
    ['-l', socketPath, `--setenv=NODE_OPTIONS=${nodeOptions}`, 'perl', '-MPOSIX', '-e', MDWE,
      `${PREFIX}/libexec/cloud-network-helper`, '--idle-exit', '30', '--ledger', join(dir, 'ledger.json')],
    ns,
  );
  let stderr = '';
  activator.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  t.teardown(() => {
    activator.kill('SIGKILL');
  });
  await listening(activator, () => stderr);
  const answer = (await ask(socketPath, {
    jsonrpc: '2.0',
    id: 7,
    method: 'apply',
    params: { operations: [{ kind: 'address.add', link: 'eth1', address: '10.77.0.5/24', noPrefixRoute: true }] },
  })) as { result?: { results: { outcome: string }[] }; error?: unknown };
  t.deepEqual(answer.result?.results.map((r) => r.outcome), ['applied'], `${JSON.stringify(answer)}\n${stderr}`);
  t.regex(execFileSync('ip', ['-n', ns, '-4', 'addr', 'show', 'dev', 'eth1'], { encoding: 'utf8' }), /inet 10\.77\.0\.5\/24 /);
  // an invalid request: the installed helper loads what words the refusal (dist/helper/explain.js,
  // which compiles typebox's checkers) only now, under the same restriction
  const refused = (await ask(socketPath, {
    jsonrpc: '2.0',
    id: 8,
    method: 'apply',
    params: { operations: [{ kind: 'address.add', link: 'eth1', address: '10.77.0.6', noPrefixRoute: true }] },
  })) as { error?: { code: number; message: string } };
  t.is(refused.error?.code, -32602, `${JSON.stringify(refused)}\n${stderr}`);
  t.regex(refused.error?.message ?? '', /^invalid params: \/operations\/0\/address: /);
});
