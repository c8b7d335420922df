// The helper's command line: where its files are by default, and paths that must be absolute.
import test from 'ava';
import { DEFAULT_STATE_DIR } from '../../protocol/config-file.js';
import { UsageError } from '../../protocol/cli.js';
import { parseHelperOptions } from '../../helper/options.js';

test('the default ledger is in the helper’s own runtime directory, never in the agent’s StateDir', (t) => {
  const { ledgerPath } = parseHelperOptions([]);
  t.is(ledgerPath, '/run/cloud-network-helper/ledger.json');
  t.false(ledgerPath.startsWith(`${DEFAULT_STATE_DIR}/`), ledgerPath);
});

for (const option of ['--socket', '--ledger']) {
  test(`a relative ${option} is a usage error naming the option`, (t) => {
    const error = t.throws(() => parseHelperOptions([option, 'helper.sock']), { instanceOf: UsageError });
    t.regex(error!.message, new RegExp(`^${option} helper\\.sock: expected an absolute path`));
    t.is(parseHelperOptions([option, '/run/x/helper.sock'])[option === '--socket' ? 'socketPath' : 'ledgerPath'], '/run/x/helper.sock');
  });
}
