// The command-line skeleton of the three programs (cloud-network, cloud-network-helper, cnctl):
// options read with node:util's parseArgs, one way to report a mistake in them, --help and
// --version, the exit statuses, and how the process ends. Plain node:util, so the helper's
// bundle takes nothing more for it.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { writeStderr } from './journal.js';
import { packageVersion } from './version.js';

/** The exit statuses of every program (EXIT STATUS in their man pages). */
export const EXIT_OK = 0;
/** the work failed, or could not be done; the message says what and what happens next */
export const EXIT_FAILED = 1;
/** a mistake on the command line */
export const EXIT_USAGE = 2;
/** cnctl: the agent does not answer (LSB's "program is not running", as systemctl status says it) */
export const EXIT_NOT_RUNNING = 3;

/** A mistake on the command line: the program names it, points at --help, and exits 2. */
export class UsageError extends Error {}

/** parseArgs, whose complaints (an unknown option, a missing value) become UsageErrors. */
export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** How an error reads for a person: its message, or the value itself. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export interface Cli<C> {
  /** the program's name, in every message and in --version */
  name: string;
  /** what --help prints */
  usage: string;
  /** the command line; throws UsageError for a mistake in it */
  parse(argv: string[]): C;
  /** whether the command line asks for --help or --version instead of a run */
  asks(command: C): 'help' | 'version' | undefined;
  /** the program's work; resolves with its exit status */
  run(command: C): Promise<number>;
}

/** stdout, and stderr whose lines are errors in the journal when it is the journal's stream */
const PROCESS_IO: CliIo = { stdout: process.stdout, stderr: { write: writeStderr } };

/** Parses, answers --help and --version, or runs; a usage error is one line and a pointer to --help. */
export async function runCli<C>(cli: Cli<C>, argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  let command: C;
  try {
    command = cli.parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`${cli.name}: ${error.message}\nTry '${cli.name} --help'.\n`);
    return EXIT_USAGE;
  }
  switch (cli.asks(command)) {
    case 'help':
      io.stdout.write(cli.usage);
      return EXIT_OK;
    case 'version':
      io.stdout.write(`${cli.name} ${packageVersion()}\n`);
      return EXIT_OK;
    default:
      return cli.run(command);
  }
}

/**
 * Ends the process with the status once what was written to stdout has been taken. An error that
 * escaped the program is a bug: it is printed with its stack, and the status is EXIT_FAILED.
 */
export function exitWhenDone(name: string, status: Promise<number>): void {
  status.then(
    (code) => {
      process.stdout.write('', () => process.exit(code));
    },
    (error: unknown) => {
      writeStderr(`${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}
