/**
 * The invocation signal's two helpers, shared by the stores and the context: a signal that
 * never aborts (what a store or context not bound to an invocation carries), and the rule that
 * combines a bound signal with a caller's narrower one.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';

/**
 * The signal of a store or context that is not bound to an invocation (a warm handler's base
 * context, the client, a test): it never aborts.
 */
export const UNBOUNDED_SIGNAL: AbortSignal = new AbortController().signal;

/**
 * The signal one call runs under: the bound (invocation) signal and, when the caller passes a
 * narrower one (an electron's cancel signal, say), that one too. It combines only when both are
 * real and distinct, so the common call allocates nothing.
 */
export function callSignal(bound: AbortSignal, extra: AbortSignal | undefined): AbortSignal {
  if (!extra || extra === bound) return bound;
  if (bound === UNBOUNDED_SIGNAL) return extra;
  return AbortSignal.any([bound, extra]);
}

/**
 * The options of one AWS SDK `send`: `{ abortSignal }`, or none for the unbounded signal (the
 * SDK would otherwise add, and later remove, a listener to that one shared signal per request).
 */
export function sendOptions(signal: AbortSignal): { abortSignal?: AbortSignal } {
  return signal === UNBOUNDED_SIGNAL ? {} : { abortSignal: signal };
}

/**
 * Marks a signal that every concurrent AWS SDK request of one invocation listens on (each
 * removes its listener when it ends): Node's default cap of 10 listeners is lifted for it, so
 * a handler that flags 16 nodes at once does not warn of a leak.
 */
export function shareSignal(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}
