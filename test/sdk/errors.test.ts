// The error family: every error valence throws is a ValenceError whose code is in ErrorCode
// (or ValidationCode), with an explicit name; the CLI's exit code comes from the code alone;
// and runInvocation turns a reached deadline into the retryable InvocationDeadlineError.
import { describe, expect, it } from 'vitest';
import { CliUsageError, describeFailure, EXIT_CODE_BY_ERROR_CODE, ExitCode } from '../../sdk/cli/errors.ts';
import { LAMBDA_RETRY_ERRORS } from '../../sdk/compiler/asl.ts';
import { DispatchNotFoundError, ErrorCode, InvocationDeadlineError, ValenceError, ValidationCode, ValidationError } from '../../sdk/errors.ts';
import { InvalidCancelRequestError, parseTaskIds } from '../../sdk/runtime/cancel.ts';
import { ConfigurationError, runtimeConfigFromEnv } from '../../sdk/runtime/config.ts';
import { runInvocation, runtimeContextFromEnv, withInvocationSignal, type RuntimeContext } from '../../sdk/runtime/context.ts';
import { PayloadNotFoundError } from '../../sdk/runtime/payloads.ts';
import { SerializationError, serialize } from '../../sdk/runtime/serialization.ts';
import { StepEventError, handleStep, type StepDeps } from '../../sdk/runtime/step.ts';
import { WorkflowLookupError, findElectron } from '../../sdk/runtime/workflows.ts';

const ENV = { VALENCE_TABLE: 't', VALENCE_BUCKET: 'b', VALENCE_STATE_MACHINE_PREFIX: 'p-', VALENCE_GRAPH_RUNNER_ARN: 'arn:runner' };
const codes = new Set<string>([...Object.values(ErrorCode), ...Object.values(ValidationCode)]);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

async function rejected(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('every error valence throws', () => {
  it('is a ValenceError with a code from the table and an explicit name', async () => {
    // Prepare: each error as the runtime, the CLI and the handlers really raise it.
    const cases: [unknown, string, string][] = [
      [new DispatchNotFoundError('d-1'), 'DispatchNotFoundError', ErrorCode.DISPATCH_NOT_FOUND],
      [new InvocationDeadlineError(), 'InvocationDeadlineError', ErrorCode.INVOCATION_DEADLINE],
      [new PayloadNotFoundError('dispatches/x/args'), 'PayloadNotFoundError', ErrorCode.PAYLOAD_NOT_FOUND],
      [thrown(() => serialize({ f: () => 1 })), 'SerializationError', ErrorCode.SERIALIZATION_FAILED],
      [thrown(() => runtimeConfigFromEnv({})), 'ConfigurationError', ErrorCode.CONFIGURATION_INVALID],
      [thrown(() => runtimeConfigFromEnv({ ...ENV, VALENCE_LEASE_MS: '-1' })), 'ConfigurationError', ErrorCode.CONFIGURATION_INVALID],
      [thrown(() => parseTaskIds(['x y'])), 'InvalidCancelRequestError', ErrorCode.CANCEL_INVALID_REQUEST],
      [thrown(() => findElectron({}, 'nope', 'e')), 'WorkflowLookupError', ErrorCode.WORKFLOW_LOOKUP_FAILED],
      [await rejected(handleStep({} as StepDeps, {} as never, { getRemainingTimeInMillis: () => 1 })), 'StepEventError', ErrorCode.STEP_EVENT_INVALID],
      [new CliUsageError('bad flag'), 'CliUsageError', ErrorCode.CLI_USAGE],
    ];
    for (const [error, name, code] of cases) {
      // Assess
      expect(error, name).toBeInstanceOf(ValenceError);
      expect(error, name).toMatchObject({ name, code });
      expect(codes.has((error as ValenceError).code), name).toBe(true);
    }
    expect(cases.map(([e]) => e)).toEqual(
      expect.arrayContaining([
        expect.any(SerializationError),
        expect.any(ConfigurationError),
        expect.any(InvalidCancelRequestError),
        expect.any(WorkflowLookupError),
        expect.any(StepEventError),
      ]),
    );
  });

  it('keeps its cause', () => {
    const cause = new Error('socket hang up');
    expect(new InvocationDeadlineError('late', { cause }).cause).toBe(cause);
    expect((thrown(() => serialize(Symbol('s'))) as Error).cause).toBeDefined();
  });
});

describe('the CLI exit code', () => {
  it('comes from the code through one table, whatever the class', () => {
    // A plain object that crossed a process boundary keeps its exit code: only the code counts.
    expect(describeFailure({ name: 'Whatever', code: ErrorCode.DISPATCH_NOT_FOUND, message: 'x' }).exitCode).toBe(ExitCode.Usage);
    expect(describeFailure(Object.assign(new Error('no stack'), { code: ErrorCode.STACK_NOT_FOUND })).exitCode).toBe(ExitCode.Usage);
    expect(describeFailure(new ValenceError(ErrorCode.NODE_TIMEOUT, 'slow')).exitCode).toBe(ExitCode.Failed);
    expect(describeFailure(new Error('boom')).exitCode).toBe(ExitCode.Failed);
    expect(describeFailure('a string').exitCode).toBe(ExitCode.Failed);
    // Every ValidationCode is the caller's input.
    for (const code of Object.values(ValidationCode)) expect(EXIT_CODE_BY_ERROR_CODE[code], code).toBe(ExitCode.Usage);
    // The table names only codes that exist.
    for (const code of Object.keys(EXIT_CODE_BY_ERROR_CODE)) expect(codes.has(code), code).toBe(true);
  });

  it('prints one line per kind of failure', () => {
    expect(describeFailure(new DispatchNotFoundError('d-9')).line).toBe(
      'valence: No dispatch with id "d-9" exists in this stack. Check the id with `valence list` (and --endpoint / --stack).',
    );
    expect(describeFailure(new ValidationError(ValidationCode.INVALID_NAME, 'bad name')).line).toBe('valence: invalid input: bad name');
    expect(describeFailure(new CliUsageError('--task "x" is not a task id')).line).toBe('valence: --task "x" is not a task id');
    expect(describeFailure(Object.assign(new Error('gone'), { code: 'ECONNRESET' })).line).toBe('valence: Error (ECONNRESET): gone');
  });
});

describe('runInvocation', () => {
  const base = (): RuntimeContext => runtimeContextFromEnv({ env: ENV, aws: { endpoint: 'http://127.0.0.1:9', region: 'us-east-1' } });

  it('binds the invocation signal to the context, its store and its payload store', async () => {
    const ctx = base();
    const seen = await runInvocation(ctx, { getRemainingTimeInMillis: () => 60_000 }, (inner) => Promise.resolve(inner));
    expect(seen.signal).not.toBe(ctx.signal);
    expect(seen.store.signal).toBe(seen.signal);
    expect(seen.payloads.signal).toBe(seen.signal);
    expect(seen.signal.aborted).toBe(false);
    const bound = withInvocationSignal(ctx, AbortSignal.abort());
    expect(bound.store.signal.aborted && bound.payloads.signal.aborted).toBe(true);
    ctx.aws.destroy();
  });

  it('turns what the work throws at the deadline into InvocationDeadlineError, with the cause kept', async () => {
    const ctx = base();
    const started = Date.now();
    // 1.2 s left, a 1 s margin: the signal aborts after about 200 ms.
    const error = await rejected(
      runInvocation(ctx, { getRemainingTimeInMillis: () => 1_200 }, (inner) => {
        return new Promise((_, reject) => inner.signal.addEventListener('abort', () => reject(new Error('Request aborted'))));
      }),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(error).toBeInstanceOf(InvocationDeadlineError);
    expect(error).toMatchObject({ code: ErrorCode.INVOCATION_DEADLINE, cause: { message: 'Request aborted' } });
    // A real store call under an expired invocation fails with the deadline, not a network error.
    const store = await rejected(runInvocation(ctx, { getRemainingTimeInMillis: () => 500 }, (inner) => inner.store.getDispatch('d-1')));
    expect(store).toMatchObject({ name: 'InvocationDeadlineError', code: ErrorCode.INVOCATION_DEADLINE });
    ctx.aws.destroy();
  });

  it('passes other errors through, and runs without a deadline when there is no invocation', async () => {
    const ctx = base();
    await expect(runInvocation(ctx, { getRemainingTimeInMillis: () => 60_000 }, () => Promise.reject(new DispatchNotFoundError('d')))).rejects.toBeInstanceOf(
      DispatchNotFoundError,
    );
    await expect(runInvocation(ctx, undefined, (inner) => Promise.resolve(inner))).resolves.toBe(ctx);
    ctx.aws.destroy();
  });

  it('is retried by the compiled state machines', () => {
    expect(LAMBDA_RETRY_ERRORS).toContain(new InvocationDeadlineError().name);
  });
});
