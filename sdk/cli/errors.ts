/**
 * How the CLI turns a failure into one line and an exit code.
 *
 * Input problems — a wrong flag, an unknown lattice, bad JSON, an unknown dispatch id, nothing
 * listening at the endpoint — exit 2 with one line naming the problem and the fix. Anything
 * else exits 1 with one line too; `VALENCE_DEBUG=1` adds the stack trace.
 */
import { ValenceError, ValidationError } from '../errors.ts';
import { DispatchNotFoundError } from '../runtime/store.ts';

/** Exit codes of the `valence` command. */
export const ExitCode = {
  /** The command did what was asked (and, for `--watch` and `result`, the workflow completed). */
  Ok: 0,
  /** The workflow failed or was cancelled, or an unexpected error happened. */
  Failed: 1,
  /** Usage or input error: the command line, or what it names, is wrong. */
  Usage: 2,
} as const;
/** One of {@link ExitCode}. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake; its message says what to do instead. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Client errors whose cause is the caller's input or setup, by error name. */
const INPUT_ERROR_NAMES = new Set(['StackNotFoundError', 'NotDeployedError', 'StaleDeployError', 'CancelRequestError', 'WorkflowLookupError']);

/** The one line a failure prints, and the exit code it maps to. */
export function describeFailure(error: unknown): { line: string; exitCode: ExitCode } {
  if (error instanceof CliUsageError) return { line: `valence: ${error.message}`, exitCode: ExitCode.Usage };
  if (error instanceof DispatchNotFoundError) {
    return { line: `valence: ${error.message}. Check the id with \`valence list\` (and --endpoint / --stack).`, exitCode: ExitCode.Usage };
  }
  if (error instanceof ValidationError) return { line: `valence: invalid input: ${error.message}`, exitCode: ExitCode.Usage };
  const name = (error as { name?: unknown } | null)?.name;
  if (error instanceof ValenceError && typeof name === 'string' && INPUT_ERROR_NAMES.has(name)) {
    return { line: `valence: ${error.message}`, exitCode: ExitCode.Usage };
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { line: `valence: ${error.name}${typeof code === 'string' ? ` (${code})` : ''}: ${error.message}`, exitCode: ExitCode.Failed };
  }
  return { line: `valence: ${String(error)}`, exitCode: ExitCode.Failed };
}
