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
import { ValenceError } from '../errors.ts';

/** What a running electron knows about the node it runs as. */
export interface TaskContext {
  /** The dispatch (for nodes inside a sublattice: the child dispatch). */
  readonly dispatchId: string;
  /** This node's id in its transport graph. */
  readonly nodeId: number;
  /** 1 for the first attempt, 2 for the first retry, … */
  readonly attempt: number;
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
 * Runtime-internal: run `fn` (an electron's function) with `context` as its task context.
 * Not part of the public SDK surface.
 */
export function runWithTaskContext<T>(context: TaskContext, fn: () => T): T {
  return storage.run(context, fn);
}
