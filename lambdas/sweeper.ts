/**
 * The sweeper, run on a schedule: completes nodes whose state-change event was lost, stops
 * again jobs whose cancel did not take, and heartbeats the waits of jobs still running.
 */
import { runtimeContextFromEnv, type RuntimeContext } from '../sdk/runtime/context.ts';
import { sweep, type SweepReport } from '../sdk/runtime/sweep.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';

/** Creates the handler. */
export function createSweeperHandler(deps: { ctx?: RuntimeContext } = {}): () => Promise<SweepReport> {
  let ctx: RuntimeContext | undefined;
  return async () =>
    sweep((ctx ??= deps.ctx ?? runtimeContextFromEnv()), {
      loadExecutors: async () => {
        if (process.env.VALENCE_WORKFLOWS) await importWorkflows(process.env.VALENCE_WORKFLOWS);
      },
    });
}

/** The deployed handler. */
export const handler = createSweeperHandler();
