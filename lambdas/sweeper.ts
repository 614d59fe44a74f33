/**
 * The sweeper, run on a schedule: completes nodes whose state-change event was lost, stops
 * again jobs whose cancel did not take, and heartbeats the waits of jobs still running. Each
 * run is bounded by its invocation signal (Lambda's remaining time minus the safety margin);
 * what it did not reach, the next scheduled run does.
 */
import { ENV } from '../sdk/contract.ts';
import { runInvocation, runtimeContextFromEnv, type InvocationTimer, type RuntimeContext } from '../sdk/runtime/context.ts';
import { emfLine } from '../sdk/runtime/metrics.ts';
import { loggedInvocation, NO_NODE } from './log.ts';
import { sweep, type SweepReport } from '../sdk/runtime/sweep.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';

/** Creates the handler. */
export function createSweeperHandler(deps: { ctx?: RuntimeContext; print?: (line: string) => void } = {}): (event?: unknown, context?: InvocationTimer) => Promise<SweepReport> {
  let ctx: RuntimeContext | undefined;
  return async (event, context) =>
    runInvocation((ctx ??= deps.ctx ?? runtimeContextFromEnv()), context, async (invocation) => {
      // A sweep is nobody's node: the keys are there, as `none`, so every line has the same shape.
      const report = await loggedInvocation('sweep', { dispatchId: NO_NODE, nodeId: NO_NODE, attempt: NO_NODE }, {}, () => sweep(invocation, {
        ...staleCancel(event),
        ...wakeGrace(event),
        loadExecutors: async () => {
          const workflows = process.env[ENV.workflows];
          if (workflows) await importWorkflows(workflows);
        },
      }));
      await printMetrics(invocation, report, deps.print ?? ((line) => console.log(line)));
      return report;
    });
}

/**
 * Prints the sweep's two metrics as one EMF line: `SweeperRecancels` (each one a lost
 * state-change event or a stop call that did not take) and `OldestUnfinishedCancelSeconds`
 * (the age of the oldest cancel request still open after this sweep, 0 when none is), which
 * the Orchestrator's `SweeperRecancels` and `UnfinishedCancels` alarms read.
 */
async function printMetrics(ctx: RuntimeContext, report: SweepReport, print: (line: string) => void): Promise<void> {
  const now = ctx.now().getTime();
  let oldestMs = 0;
  try {
    for (const request of await ctx.store.listOpenCancelRequests(ctx.signal)) {
      const at = Date.parse(request.requestedAt);
      if (Number.isFinite(at)) oldestMs = Math.max(oldestMs, now - at);
    }
  } catch {
    // Out of time or a failed read: the recancel count is still worth printing; the age is
    // left out rather than reported as 0 (which would clear the alarm).
    print(emfLine(process.env[ENV.stackName] ?? 'valence', [{ name: 'SweeperRecancels', unit: 'Count', value: report.recancelled }], now));
    return;
  }
  print(
    emfLine(
      process.env[ENV.stackName] ?? 'valence',
      [
        { name: 'SweeperRecancels', unit: 'Count', value: report.recancelled },
        { name: 'OldestUnfinishedCancelSeconds', unit: 'Seconds', value: Math.round(oldestMs / 1000) },
      ],
      now,
    ),
  );
}

/** `{ staleCancelSeconds }` in the event overrides how old an open cancel request must be before the sweep finishes it. */
function staleCancel(event: unknown): { staleCancelMs?: number } {
  const seconds = (event as { staleCancelSeconds?: unknown } | null | undefined)?.staleCancelSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? { staleCancelMs: seconds * 1000 } : {};
}

/** `{ wakeGraceSeconds }` in the event overrides how long a released node may stay unended before its wake is taken for lost. */
function wakeGrace(event: unknown): { wakeGraceMs?: number } {
  const seconds = (event as { wakeGraceSeconds?: unknown } | null | undefined)?.wakeGraceSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? { wakeGraceMs: seconds * 1000 } : {};
}

/** The deployed handler. */
export const handler = createSweeperHandler();
