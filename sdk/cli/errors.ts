/**
 * How the CLI turns a failure into one line and an exit code.
 *
 * Input problems — a wrong flag, an unknown lattice, bad JSON, an unknown dispatch id, nothing
 * listening at the endpoint — exit 2 with one line naming the problem and the fix. Anything
 * else exits 1 with one line too; `VALENCE_DEBUG=1` adds the stack trace. The exit code comes
 * from the error's `code` through one table ({@link EXIT_CODE_BY_ERROR_CODE}), never from its
 * class or name, so an error that crossed a process or the API keeps its exit code.
 */
import { ErrorCode, ValenceError, ValidationCode } from '../errors.ts';

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
export class CliUsageError extends ValenceError {
  override readonly name: string = 'CliUsageError';
  declare readonly code: typeof ErrorCode.CLI_USAGE;
  constructor(message: string) {
    super(ErrorCode.CLI_USAGE, message);
  }
}

/**
 * The one table from error code to exit code. Codes whose cause is the caller's input or
 * setup exit {@link ExitCode.Usage}; every code not listed, and every error without a valence
 * code, exits {@link ExitCode.Failed}.
 */
export const EXIT_CODE_BY_ERROR_CODE: Readonly<Record<string, ExitCode>> = {
  [ErrorCode.CLI_USAGE]: ExitCode.Usage,
  [ErrorCode.DISPATCH_NOT_FOUND]: ExitCode.Usage,
  [ErrorCode.STACK_NOT_FOUND]: ExitCode.Usage,
  [ErrorCode.ENDPOINT_UNREACHABLE]: ExitCode.Usage,
  [ErrorCode.NOT_DEPLOYED]: ExitCode.Usage,
  [ErrorCode.STALE_DEPLOY]: ExitCode.Usage,
  [ErrorCode.CANCEL_REFUSED]: ExitCode.Usage,
  [ErrorCode.CANCEL_INVALID_REQUEST]: ExitCode.Usage,
  [ErrorCode.WORKFLOW_LOOKUP_FAILED]: ExitCode.Usage,
  ...Object.fromEntries(Object.values(ValidationCode).map((code) => [code, ExitCode.Usage])),
};

/** What the line adds after the message, per code: the next thing to try. */
const HINT_BY_ERROR_CODE: Readonly<Record<string, string>> = {
  [ErrorCode.DISPATCH_NOT_FOUND]: '. Check the id with `valence list` (and --endpoint / --stack).',
};

const VALIDATION_CODES: ReadonlySet<string> = new Set(Object.values(ValidationCode));

/** The exit code of a failure: by its `code`, through {@link EXIT_CODE_BY_ERROR_CODE}. */
export function exitCodeOf(error: unknown): ExitCode {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? (EXIT_CODE_BY_ERROR_CODE[code] ?? ExitCode.Failed) : ExitCode.Failed;
}

/** The one line a failure prints, and the exit code it maps to. */
export function describeFailure(error: unknown): { line: string; exitCode: ExitCode } {
  const exitCode = exitCodeOf(error);
  if (!(error instanceof Error)) return { line: `valence: ${String(error)}`, exitCode };
  const code = (error as { code?: unknown }).code;
  if (exitCode === ExitCode.Usage && typeof code === 'string') {
    if (VALIDATION_CODES.has(code)) return { line: `valence: invalid input: ${error.message}`, exitCode };
    return { line: `valence: ${error.message}${HINT_BY_ERROR_CODE[code] ?? ''}`, exitCode };
  }
  return { line: `valence: ${error.name}${typeof code === 'string' ? ` (${code})` : ''}: ${error.message}`, exitCode };
}
