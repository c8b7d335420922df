// The agent's helper client: a clear error when the helper is down, and a fresh connection on
// the next call once it is back.
import test from 'ava';
import { HelperClient, HelperRequestError, HelperUnreachableError } from '../../agent/reconcile/helper-client.js';
import { createNamespace, waitFor } from '../lib/netns.js';
import { startHelper, uniqueDir } from '../lib/helper-harness.js';

test('an unreachable helper is an error naming the socket and the cause', async (t) => {
  const socketPath = `${uniqueDir(t)}/absent.sock`;
  const client = new HelperClient({ socketPath });
  const error = await t.throwsAsync(client.info(), { instanceOf: HelperUnreachableError });
  t.is(error?.message, `helper at ${socketPath} is not reachable: ENOENT; will retry`);
});

test('after the helper restarts, the next call connects again', async (t) => {
  const ns = createNamespace(t, 'client');
  const first = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: first.socketPath });
  t.teardown(() => client.close());
  t.is((await client.info()).protocolNumber, 201);
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  await t.throwsAsync(client.info(), { instanceOf: HelperUnreachableError });
  await startHelper(t, ns, { socketPath: first.socketPath });
  t.is((await client.info()).protocolNumber, 201);
});

test('a request the helper refuses as invalid is a HelperRequestError with the code', async (t) => {
  const ns = createNamespace(t, 'client');
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.request('apply', { operations: [{ kind: 'link.set', link: 'a/b', up: true }] }), { instanceOf: HelperRequestError });
  t.is(error?.code, -32602);
  t.is((await client.info()).protocolNumber, 201);
});


test('the ledger asked for early is the answer of the next ownedAddresses(), not a second request', async (t) => {
  const ns = createNamespace(t, 'client');
  const helper = await startHelper(t, ns);
  const client = new HelperClient({ socketPath: helper.socketPath });
  t.teardown(() => client.close());
  client.askLedgerEarly();
  t.deepEqual((await client.ownedAddresses()).addresses, []);
  t.deepEqual((await client.ownedAddresses()).addresses, []);
  const ledgerAudits = () => helper.output().split('\n').filter((line) => line.includes('"audit":"request"') && line.includes('"method":"ownedAddresses"')).length;
  await waitFor(() => ledgerAudits() >= 2, 'two audit lines');
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(ledgerAudits(), 2, 'one early request and one for the second call');
});
