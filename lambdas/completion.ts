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
import { JOB_TAG } from '../sdk/runtime/drivers/ownership.ts';
import { loggedInvocation, NO_NODE, type InvocationLogKeys } from './log.ts';

/** Creates the handler. */
export function createCompletionHandler(deps: { ctx?: RuntimeContext } = {}): (event: ServiceEvent, context?: InvocationTimer) => Promise<{ handled: number }> {
  let ctx: RuntimeContext | undefined;
  return async (event, context) =>
    runInvocation((ctx ??= deps.ctx ?? runtimeContextFromEnv()), context, (invocation) =>
      loggedInvocation('completion', logKeysOf(event), { source: event?.source, detailType: event?.['detail-type'] }, () => handleServiceEvent(invocation, event)),
    );
}

/**
 * The dispatch and node of the job the event is about, from the tags valence put on it (Batch
 * and Braket events carry them), without a read. The attempt is not in the event: `none`.
 */
function logKeysOf(event: ServiceEvent | undefined): InvocationLogKeys {
  const tags = event?.detail?.['tags'];
  const tag = (key: string): string | undefined => {
    const value = tags !== null && typeof tags === 'object' ? (tags as Record<string, unknown>)[key] : undefined;
    return typeof value === 'string' ? value : undefined;
  };
  const nodeId = Number(tag(JOB_TAG.node));
  return { dispatchId: tag(JOB_TAG.dispatch) ?? NO_NODE, nodeId: Number.isInteger(nodeId) && tag(JOB_TAG.node) !== undefined ? nodeId : NO_NODE, attempt: NO_NODE };
}

/** The deployed handler. */
export const handler = createCompletionHandler();
