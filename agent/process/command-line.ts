// The agent's command line: bin/cloud-network [--config PATH] [--once] [--dry-run] [--cleanup]
import { parseOptions, UsageError } from '../../protocol/cli.js';
import { DEFAULT_CONFIG_PATH } from '../../protocol/config-file.js';

export type Mode = 'daemon' | 'once' | 'dry-run' | 'cleanup' | 'help' | 'version';

export interface CommandLine {
  mode: Mode;
  configPath: string;
  /** --config was given: the file must exist */
  configNamed: boolean;
  /** --cleanup --force: remove even while an agent runs */
  force: boolean;
}

export const USAGE = `Usage: cloud-network [--config PATH] [--once | --dry-run | --cleanup [--force]]

Configures every NIC and private IP of this cloud VM from the instance metadata service and
keeps the configuration true. Runs unprivileged; kernel changes go through cloud-network-helper.

Options:
  --config PATH  configuration file, which must exist (default ${DEFAULT_CONFIG_PATH}, where
                 a missing file means the defaults)
  --once         reconcile once; exit 0 when the kernel matches the plan, 1 otherwise
  --dry-run      fetch the metadata, plan, print what would be added and removed as the
                 iproute2 commands that do it; apply nothing and write nothing; exit 0 when
                 nothing would change, 3 when something would
  --cleanup      remove everything cloud-network created (for uninstall), nothing else;
                 refused while the agent runs, which would put it all back
  --force        with --cleanup: remove even while the agent runs
  --help         show this help
  --version      show the version
`;

export function parseCommandLine(argv: string[]): CommandLine {
  const { values } = parseOptions({
    args: argv,
    options: {
      config: { type: 'string' },
      once: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      cleanup: { type: 'boolean' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const modes: Mode[] = [];
  if (values.help) modes.push('help');
  if (values.version) modes.push('version');
  if (values.once) modes.push('once');
  if (values['dry-run']) modes.push('dry-run');
  if (values.cleanup) modes.push('cleanup');
  if (modes.length > 1 && !modes.includes('help')) {
    throw new UsageError(`choose one of --once, --dry-run, --cleanup (got ${modes.map((m) => `--${m}`).join(', ')})`);
  }
  const mode = modes.includes('help') ? 'help' : (modes[0] ?? 'daemon');
  if (values.force && mode !== 'cleanup' && mode !== 'help' && mode !== 'version') throw new UsageError('--force goes with --cleanup only');
  return {
    mode,
    force: values.force === true,
    configPath: values.config ?? DEFAULT_CONFIG_PATH,
    configNamed: values.config !== undefined,
  };
}
