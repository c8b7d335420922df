import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NicIndexes } from '../../agent/metadata/providers/nic-indexes.js';
import type { MetadataModel, Nic } from '../../agent/metadata/model.js';

const nic = (mac: string, index: number, primary = false): Nic => ({
  mac,
  index,
  primary,
  ipv4: [],
  publicIpv4: [],
  ipv6: [],
  subnet: { address: '10.0.0.0', prefixLength: 24 },
  gateway: '10.0.0.1',
  routedRanges: [],
  hostAddresses: false,
  details: {},
});
const model = (nics: Nic[]): MetadataModel => ({
  instance: { provider: 'azure', id: 'x', name: 'x', region: 'x', zone: '', size: 'x', image: 'x', details: {} },
  nics,
});

test('a NIC attached later does not move the others to different tables', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-idx-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const indexes = new NicIndexes(dir);
  const first = await indexes.stabilise(model([nic('aa', 0, true), nic('cc', 1)]));
  t.deepEqual(first.nics.map((n) => [n.mac, n.index]), [['aa', 0], ['cc', 1]]);
  // Azure now sorts the new NIC 'bb' before 'cc'
  const second = await indexes.stabilise(model([nic('aa', 0, true), nic('bb', 1), nic('cc', 2)]));
  t.deepEqual(second.nics.map((n) => [n.mac, n.index]), [['aa', 0], ['bb', 2], ['cc', 1]]);
});

test('assignments survive an agent restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cn-idx-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await new NicIndexes(dir).stabilise(model([nic('aa', 0, true), nic('cc', 1)]));
  const restarted = await new NicIndexes(dir).stabilise(model([nic('aa', 0, true), nic('bb', 1), nic('cc', 2)]));
  t.is(restarted.nics.find((n) => n.mac === 'cc')!.index, 1);
  t.regex(await readFile(join(dir, 'nic-indexes.json'), 'utf8'), /"bb": 2/);
});
