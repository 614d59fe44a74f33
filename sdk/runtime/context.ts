/**
 * What every runtime path (step, cancel, completion, sweeper, dispatch) shares: clients,
 * stores and configuration, built once per warm handler.
 */
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { createAwsClients, type AwsClients, type AwsConfig } from '../aws.ts';
import { runtimeConfigFromEnv, type RuntimeConfig } from './config.ts';
import { PayloadStore } from './payloads.ts';
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

/** The same context for one invocation, whose calls all stop at `signal`. */
export function withInvocationSignal(ctx: RuntimeContext, signal: AbortSignal): RuntimeContext {
  return { ...ctx, signal };
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
    signal: new AbortController().signal,
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
  try {
    if (outcome.ok) {
      await ctx.aws.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome.output) }), { abortSignal: signal });
    } else {
      await ctx.aws.sfn.send(
        new SendTaskFailureCommand({ taskToken, error: outcome.error.slice(0, 256), cause: outcome.cause.slice(0, 32_768) }),
        { abortSignal: signal },
      );
    }
    return true;
  } catch (error) {
    if (GONE_TOKEN_ERRORS.has((error as { name?: string }).name ?? '')) return false;
    throw error;
  }
}
