/**
 * The invocation signal's two helpers, shared by the stores and the context: a signal that
 * never aborts (what a store or context not bound to an invocation carries), and the rule that
 * combines a bound signal with a caller's narrower one.
 *
 * @module
 */

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
