/**
 * The sweeper, run on a schedule: completes nodes whose state-change event was lost, stops
 * again jobs whose cancel did not take, and heartbeats the waits of jobs still running. Each
 * run is bounded by its invocation signal (Lambda's remaining time minus the safety margin);
 * what it did not reach, the next scheduled run does.
 */
import { ENV } from '../sdk/contract.ts';
import { runInvocation, runtimeContextFromEnv, type InvocationTimer, type RuntimeContext } from '../sdk/runtime/context.ts';
import { sweep, type SweepReport } from '../sdk/runtime/sweep.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';

/** Creates the handler. */
export function createSweeperHandler(deps: { ctx?: RuntimeContext } = {}): (event?: unknown, context?: InvocationTimer) => Promise<SweepReport> {
  let ctx: RuntimeContext | undefined;
  return async (event, context) =>
    runInvocation((ctx ??= deps.ctx ?? runtimeContextFromEnv()), context, (invocation) =>
      sweep(invocation, {
        ...staleCancel(event),
        loadExecutors: async () => {
          const workflows = process.env[ENV.workflows];
      if (workflows) await importWorkflows(workflows);
        },
      }),
    );
}

/** `{ staleCancelSeconds }` in the event overrides how old an open cancel request must be before the sweep finishes it. */
function staleCancel(event: unknown): { staleCancelMs?: number } {
  const seconds = (event as { staleCancelSeconds?: unknown } | null | undefined)?.staleCancelSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? { staleCancelMs: seconds * 1000 } : {};
}

/** The deployed handler. */
export const handler = createSweeperHandler();
