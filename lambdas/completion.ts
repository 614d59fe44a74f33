/**
 * The completion handler: EventBridge delivers "Batch Job State Change", "Braket Task State
 * Change" and "Braket Job State Change" events; terminal ones end the waiting node and release
 * its task token. Thin: the logic is in the SDK runtime. Each invocation runs under its own
 * signal (Lambda's remaining time minus the safety margin, see `runInvocation`); at the
 * deadline it throws `InvocationDeadlineError` and EventBridge's retry (or the sweeper's poll)
 * ends the node instead.
 */
import { runInvocation, runtimeContextFromEnv, type InvocationTimer, type RuntimeContext } from '../sdk/runtime/context.ts';
import { handleServiceEvent, type ServiceEvent } from '../sdk/runtime/completion.ts';

/** Creates the handler. */
export function createCompletionHandler(deps: { ctx?: RuntimeContext } = {}): (event: ServiceEvent, context?: InvocationTimer) => Promise<{ handled: number }> {
  let ctx: RuntimeContext | undefined;
  return async (event, context) => runInvocation((ctx ??= deps.ctx ?? runtimeContextFromEnv()), context, (invocation) => handleServiceEvent(invocation, event));
}

/** The deployed handler. */
export const handler = createCompletionHandler();
