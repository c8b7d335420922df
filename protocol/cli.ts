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

/** cloud-network --dry-run: the kernel differs from the plan, and the output says how */
export const EXIT_PENDING = 3;
/** cnctl: what was asked for does not exist (an unknown link), as systemctl's 4 for an unknown unit */
export const EXIT_NOT_FOUND = 4;

/** A mistake on the command line: the program names it, points at --help, and exits 2. */
export class UsageError extends Error {}

/** parseArgs, whose complaints (an unknown option, a missing value) become UsageErrors in the program's own words. */
export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(usageMessage(error as Error & { code?: string }, config.options ?? {}));
  }
}

function usageMessage(error: Error & { code?: string }, options: NonNullable<ParseArgsConfig['options']>): string {
  const quoted = /'([^']*)'/.exec(error.message)?.[1] ?? '';
  const known = Object.entries(options).flatMap(([name, option]) => [`--${name}`, ...(option.short ? [`-${option.short}`] : [])]);
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const option = quoted.split('=')[0]!;
      const guess = suggest(option, known);
      return `unknown option ${option}${guess ? `; did you mean ${guess}?` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // parseArgs names an option with a short form as '-h, --help', one that takes a value as '--url <value>'
      const names = quoted.split(/[ ,]+/).filter((word) => word.startsWith('-'));
      const option = names.find((name) => name.startsWith('--')) ?? names[0] ?? quoted;
      if (/argument missing/.test(error.message)) return `${option} needs a value`;
      if (/does not take an argument/.test(error.message)) return `${option} takes no value`;
      return `${option}: ${error.message}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)} (this program takes options only)`;
    default:
      return error.message;
  }
}

/**
 * The candidate a mistyped word most likely meant: one that starts with it, else the nearest
 * within two edits (a letter left out, added, changed or two swapped); undefined when none is.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length >= 2) {
    const extended = candidates.filter((c) => c.startsWith(word));
    if (extended.length === 1) return extended[0];
  }
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance && distance < candidate.length) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
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
