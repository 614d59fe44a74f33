/**
 * A typed handle on one dispatch, beside the id-based functions: `run.result()` resolves with
 * the lattice's own return type, `run.cancel()` and `run.status()` need no id passed around.
 *
 * The handle stands in for its id wherever the client takes one (`getResult(run)`,
 * `cancel(run)`), and turns into the id in a template string, `String(run)` and
 * `JSON.stringify`, so code written for the id-returning `dispatch` keeps reading naturally.
 */
import { ErrorCode, ValenceError } from '../errors.ts';
import type { CancelReport } from '../runtime/cancel.ts';
import type { DispatchResult } from '../runtime/describe.ts';
import { DispatchStatus } from '../status.ts';
import type { CancelOptions } from './cancel.ts';

/** A dispatch named by its id or by its {@link DispatchRun} handle. */
export type DispatchRef = string | { readonly id: string };

/** The dispatch id of `ref`. */
export function dispatchIdOf(ref: DispatchRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

/** Options of {@link DispatchRun.result}. */
export interface RunResultOptions {
  /** Give up waiting after this long (a `ValenceError` with code `RESULT_TIMEOUT`). @default 600000 */
  readonly timeoutMs?: number;
}

/** The dispatch ended without a result: it FAILED or was CANCELLED. */
export class DispatchEndedError extends ValenceError {
  override readonly name = 'DispatchEndedError';
  constructor(
    /** How the dispatch ended, with its nodes and the failed node's error. */
    readonly dispatch: DispatchResult,
  ) {
    const why = dispatch.error ? `: ${dispatch.error.name}: ${dispatch.error.message}` : '';
    super(ErrorCode.DISPATCH_ENDED, `Dispatch ${dispatch.dispatchId} (${dispatch.lattice}) ended ${dispatch.status}${why}`, dispatch.error ? { cause: dispatch.error } : {});
  }
}

/**
 * One started dispatch of a lattice returning `R`. Its functions are bound to it: passing
 * `run.result` on as a callback works.
 * @example
 * const run = await client.dispatch(pipeline)(10);
 * const total: number = await run.result();
 */
export interface DispatchRun<R = unknown> {
  /** The dispatch id. */
  readonly id: string;
  /** The name of the lattice it runs. */
  readonly lattice: string;
  /**
   * Waits until the dispatch ended and resolves with the lattice's return value; rejects with
   * {@link DispatchEndedError} if it FAILED or was CANCELLED.
   */
  readonly result: (options?: RunResultOptions) => Promise<R>;
  /** The dispatch as it is now: status, nodes, cancel requests, and the result once COMPLETED. */
  readonly status: () => Promise<DispatchResult<R>>;
  /** Cancels the dispatch, or `taskIds` of it; resolves with the final report. */
  readonly cancel: (options?: CancelOptions) => Promise<CancelReport>;
  /** The dispatch id, so that `${run}` and `String(run)` read as the id did. */
  toString(): string;
  /** The dispatch id, so that `JSON.stringify({ run })` writes the id. */
  toJSON(): string;
}

/** What a handle needs of its client. */
export interface RunOperations {
  getResult<R>(dispatchId: string, options: { wait: boolean; timeoutMs?: number }): Promise<DispatchResult<R>>;
  cancel(dispatchId: string, options: CancelOptions): Promise<CancelReport>;
}

/** Makes the handle of dispatch `id` of `lattice`. */
export function dispatchRun<R>(operations: RunOperations, id: string, lattice: string): DispatchRun<R> {
  return Object.freeze({
    id,
    lattice,
    result: async (options: RunResultOptions = {}): Promise<R> => {
      const ended = await operations.getResult<R>(id, { wait: true, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
      if (ended.status !== DispatchStatus.COMPLETED) throw new DispatchEndedError(ended);
      return ended.result as R;
    },
    status: () => operations.getResult<R>(id, { wait: false }),
    cancel: (options: CancelOptions = {}) => operations.cancel(id, options),
    toString: () => id,
    toJSON: () => id,
  });
}
