/**
 * What every runtime path (step, cancel, completion, sweeper, dispatch) shares: clients,
 * stores and configuration, built once per warm handler.
 */
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { createAwsClients, isTransientAwsError, type AwsClients, type AwsConfig } from '../aws.ts';
import { InvocationDeadlineError, TransientAwsError } from '../errors.ts';
import { runtimeConfigFromEnv, type RuntimeConfig } from './config.ts';
import { PayloadStore } from './payloads.ts';
import { UNBOUNDED_SIGNAL, callSignal, sendOptions, shareSignal } from './signals.ts';
import { Store } from './store.ts';

/** The shared dependencies of the runtime. */
export interface RuntimeContext {
  readonly aws: AwsClients;
  readonly config: RuntimeConfig;
  readonly store: Store;
  readonly payloads: PayloadStore;
  /** Current time; injectable so tests can pin it. */
  now(): Date;
  /**
   * This invocation's signal: aborted when the handler's remaining time falls below its safety
   * margin. Pass it to every store call and every AWS SDK `send(cmd, { abortSignal })`, so no
   * call outlives the invocation. A warm handler's base context carries a signal that never
   * aborts; each invocation derives its own with {@link withInvocationSignal}.
   */
  readonly signal: AbortSignal;
}

/**
 * The same context for one invocation, whose calls all stop at `signal`: its store and
 * payload store are bound to the signal too, so a store call that passes no signal of its own
 * still stops at the deadline.
 */
export function withInvocationSignal(ctx: RuntimeContext, signal: AbortSignal): RuntimeContext {
  return { ...ctx, signal, store: ctx.store.withSignal(signal), payloads: ctx.payloads.withSignal(signal) };
}

/**
 * How long before Lambda's own timeout a handler's invocation signal aborts, in ms.
 *
 * Once it aborts, every store and AWS call still in flight rejects and the handler throws
 * {@link InvocationDeadlineError}, instead of being killed by Lambda in the middle of its
 * work (a killed invocation reports `Sandbox.Timedout` and leaves no error of valence's own).
 * Each write is one single-item request, so an aborted write either reached DynamoDB whole or
 * not at all; a node the invocation held stays RUNNING under a lease that lapses, and the
 * retried state (or a duplicate) takes it over. One second is ample to reject the aborted
 * calls and return the error. It is smaller than the executors' own reserve for an in-thread
 * electron (`REMAINING_TIME_BUFFER_MS`, 3 s, plus the grace period), so an electron that runs
 * out of invocation time is stopped, and its outcome written, before the deadline.
 */
export const INVOCATION_SAFETY_MARGIN_MS = 1_000;

/** What a handler knows about its own invocation: Lambda's context object, in part. */
export interface InvocationTimer {
  /** Milliseconds until Lambda stops this invocation. */
  getRemainingTimeInMillis(): number;
}

/**
 * Runs one handler invocation under its own signal: derived from
 * `invocation.getRemainingTimeInMillis()` minus `marginMs`, and passed to `work` through
 * {@link withInvocationSignal}. When the deadline is reached, whatever `work` throws surfaces
 * as an {@link InvocationDeadlineError} (the original error is its `cause`), which the
 * compiled state machines retry. Without an invocation (a test, a direct call) no deadline
 * applies beyond the context's own signal.
 * @example export const handler = (event, context) => runInvocation(ctx, context, (ctx) => work(ctx, event));
 */
export async function runInvocation<T>(
  ctx: RuntimeContext,
  invocation: InvocationTimer | undefined,
  work: (ctx: RuntimeContext) => Promise<T>,
  options: { readonly marginMs?: number } = {},
): Promise<T> {
  if (typeof invocation?.getRemainingTimeInMillis !== 'function') return work(ctx).catch(rethrowTransient);
  const marginMs = options.marginMs ?? INVOCATION_SAFETY_MARGIN_MS;
  const budgetMs = invocation.getRemainingTimeInMillis() - marginMs;
  const deadline = new AbortController();
  const message = `The invocation reached its deadline (${marginMs} ms before Lambda's timeout) before its work was recorded; a retry finishes it`;
  const timer = setTimeout(() => deadline.abort(new InvocationDeadlineError(message)), Math.max(0, budgetMs));
  if (budgetMs <= 0) deadline.abort(new InvocationDeadlineError(message));
  try {
    return await work(withInvocationSignal(ctx, shareSignal(callSignal(ctx.signal, deadline.signal))));
  } catch (error) {
    if (!deadline.signal.aborted || error instanceof InvocationDeadlineError) rethrowTransient(error);
    throw new InvocationDeadlineError(message, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A transient AWS error that escaped the SDK's retries (throttle, 5xx, timeout) leaves the
 * handler as a {@link TransientAwsError}, a name the compiled state machines retry: the raw
 * AWS name (`InternalError`, `ThrottlingException`) is in no Retry and would fail the dispatch.
 */
function rethrowTransient(error: unknown): never {
  if (isTransientAwsError(error)) {
    const e = error as { name?: unknown; message?: unknown };
    throw new TransientAwsError(`An AWS call of the runtime kept failing transiently (${String(e.name)}: ${String(e.message)}); the invocation is retried`, { cause: error });
  }
  throw error;
}

/** Builds the context from the environment a deployed handler sees. */
export function runtimeContextFromEnv(options: { aws?: AwsConfig; env?: NodeJS.ProcessEnv } = {}): RuntimeContext {
  return runtimeContextFrom(runtimeConfigFromEnv(options.env), createAwsClients(options.aws));
}

/**
 * The context of a stack whose configuration is known: the one constructor that handlers
 * (from their environment) and the client (from the stack's outputs) both use.
 */
export function runtimeContextFrom(config: RuntimeConfig, aws: AwsClients): RuntimeContext {
  return {
    aws,
    config,
    store: new Store(aws.dynamodb, config.table),
    payloads: new PayloadStore(aws.s3, config.bucket),
    now: () => new Date(),
    signal: UNBOUNDED_SIGNAL,
  };
}

/** Errors from SendTask* that mean the waiting state is gone (stopped, timed out, done). */
const GONE_TOKEN_ERRORS = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

/**
 * Releases a waiting state. Returns false when the state no longer waits (its execution was
 * stopped or the token already used): that is not an error for valence, whose table is the
 * source of truth.
 */
export async function releaseToken(
  ctx: RuntimeContext,
  taskToken: string,
  outcome: { ok: true; output: unknown } | { ok: false; error: string; cause: string },
  signal?: AbortSignal,
): Promise<boolean> {
  const options = sendOptions(callSignal(ctx.signal, signal));
  try {
    if (outcome.ok) {
      await ctx.aws.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome.output) }), options);
    } else {
      await ctx.aws.sfn.send(
        new SendTaskFailureCommand({ taskToken, error: outcome.error.slice(0, 256), cause: outcome.cause.slice(0, 32_768) }),
        options,
      );
    }
    return true;
  } catch (error) {
    if (GONE_TOKEN_ERRORS.has((error as { name?: string }).name ?? '')) return false;
    throw error;
  }
}
