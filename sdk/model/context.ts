/**
 * The task context: what a running electron can learn about itself.
 *
 * Backed by `AsyncLocalStorage`, so it follows the electron through every `await`. The
 * runtime populates it with {@link runWithTaskContext}; electrons read it with
 * {@link taskContext}.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { ValenceError } from '../errors.ts';

/** What a running electron knows about the node it runs as. */
export interface TaskContext {
  /** The dispatch (for nodes inside a sublattice: the child dispatch). */
  readonly dispatchId: string;
  /** This node's id in its transport graph. */
  readonly nodeId: number;
  /** 1 for the first attempt, 2 for the first retry, … */
  readonly attempt: number;
  /**
   * The same for every attempt of this node in this dispatch — the electron's own retries, a
   * re-run after a crashed invocation, a Batch retry — and different for every other node and
   * dispatch. valence executes an electron at least once and records its result exactly once:
   * pass this key to the services the electron changes (an idempotency key, a client token,
   * a conditional write) so a re-run does not act twice. 32 hex characters, so it fits every
   * AWS `clientToken` (64) and common HTTP `Idempotency-Key` limits.
   */
  readonly idempotencyKey: string;
  /** Aborted (with a `TaskCancelledError` reason) when the node is cancelled or times out. Pass it to every async call. */
  readonly signal: AbortSignal;
}

/** Code of the error thrown by {@link taskContext} outside a running electron. */
export const NO_TASK_CONTEXT = 'NO_TASK_CONTEXT';

const storage = new AsyncLocalStorage<TaskContext>();

/**
 * The context of the electron that is running now.
 *
 * @example
 * ```ts
 * const fetchPage = electron(async (url: string) => {
 *   const { signal } = taskContext();
 *   return (await fetch(url, { signal })).text();
 * });
 * ```
 * @throws ValenceError with code `NO_TASK_CONTEXT` outside a running electron.
 */
export function taskContext(): TaskContext {
  const context = storage.getStore();
  if (context === undefined) {
    throw new ValenceError(NO_TASK_CONTEXT, 'taskContext() is only available inside an electron run by the valence runtime');
  }
  return context;
}

/**
 * The idempotency key of a node in a dispatch: a hash of both, so it is stable across
 * attempts, processes and executors (the inline worker and the Batch job runner derive it
 * the same way) and reveals nothing beyond them.
 */
export function idempotencyKeyOf(dispatchId: string, nodeId: number): string {
  return createHash('sha256').update(`valence-node\0${dispatchId}\0${nodeId}`).digest('hex').slice(0, 32);
}

/**
 * Runtime-internal: run `fn` (an electron's function) with `context` as its task context,
 * its {@link TaskContext.idempotencyKey} derived from the dispatch and node. Not part of the
 * public SDK surface.
 */
export function runWithTaskContext<T>(context: Omit<TaskContext, 'idempotencyKey'>, fn: () => T): T {
  return storage.run({ ...context, idempotencyKey: idempotencyKeyOf(context.dispatchId, context.nodeId) }, fn);
}
