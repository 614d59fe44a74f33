/**
 * The completion handler: EventBridge delivers "Batch Job State Change", "Braket Task State
 * Change" and "Braket Job State Change" events; terminal ones end the waiting node and release
 * its task token. Thin: the logic is in the SDK runtime.
 */
import { runtimeContextFromEnv, type RuntimeContext } from '../sdk/runtime/context.ts';
import { handleServiceEvent, type ServiceEvent } from '../sdk/runtime/completion.ts';

/** Creates the handler. */
export function createCompletionHandler(deps: { ctx?: RuntimeContext } = {}): (event: ServiceEvent) => Promise<{ handled: number }> {
  let ctx: RuntimeContext | undefined;
  return async (event) => handleServiceEvent((ctx ??= deps.ctx ?? runtimeContextFromEnv()), event);
}

/** The deployed handler. */
export const handler = createCompletionHandler();
