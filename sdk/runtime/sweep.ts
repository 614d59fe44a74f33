/**
 * The sweeper's logic, run on a schedule: completes nodes whose job ended without an event
 * reaching valence (a lost event), stops again those whose cancel did not take (a failed API
 * call), and heartbeats the rest so their waiting states do not time out. It also ends
 * dispatches whose Step Functions execution ended on its own (FAILED, TIMED_OUT, or ABORTED by
 * someone other than valence) while the dispatch still said RUNNING: nothing else would.
 */
import { DescribeExecutionCommand, SendTaskHeartbeatCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus } from '../status.ts';
import { cancelDispatch, finishOpenCancels, type OpenCancelsReport } from './cancel.ts';
import { endNodeForJob } from './completion.ts';
import type { RuntimeContext } from './context.ts';
import { driverForJob } from './drivers/index.ts';
import type { NodeItem } from './store.ts';

/** What one sweep did. */
export interface SweepReport {
  readonly checked: number;
  /** Nodes ended because their job had ended without an event reaching valence. */
  readonly completed: number;
  /** Nodes whose cancel was requested and whose job was still alive: stopped again. */
  readonly recancelled: number;
  /** Waiting states kept alive with SendTaskHeartbeat. */
  readonly heartbeats: number;
  /**
   * Dispatches whose execution had ended FAILED, TIMED_OUT or ABORTED (not by a cancel) while
   * the dispatch was RUNNING: ended FAILED with the execution's error, their leftover nodes
   * cancelled so nothing is left running.
   */
  readonly failedExecutions: number;
  /** Cancel requests left open by their handler, and how many this sweep finished (issue 13). */
  readonly cancels: Omit<OpenCancelsReport, 'errors'>;
  readonly errors: string[];
}

/** Dependencies of a sweep. */
export interface SweepDeps {
  /** Makes sure custom executor classes are registered (imports the workflows module). */
  readonly loadExecutors?: () => Promise<void>;
  /**
   * An open cancel request whose last progress is older than this is finished by the sweep
   * (younger ones may still be running in their handler). @default 30 000 ms
   */
  readonly staleCancelMs?: number;
}

/** One sweep over nodes that wait on live jobs. */
export async function sweep(ctx: RuntimeContext, deps: SweepDeps = {}): Promise<SweepReport> {
  // Open cancel requests first: finishing one flags its targets, which the node pass below then stops again if needed.
  const { errors: cancelErrors, ...cancels } = await finishOpenCancels(ctx, deps.loadExecutors ? { loadExecutors: deps.loadExecutors } : {}, deps.staleCancelMs ?? 30_000);
  const report = { checked: 0, completed: 0, recancelled: 0, heartbeats: 0, failedExecutions: 0, cancels, errors: [...cancelErrors] };
  await endDispatchesOfEndedExecutions(ctx, deps, report);
  for (const node of await ctx.store.listActiveNodes(ctx.signal)) {
    report.checked++;
    try {
      await sweepNode(ctx, node, deps, report);
    } catch (error) {
      report.errors.push(`${node.dispatchId}/${node.nodeId}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
  return report;
}

async function sweepNode(
  ctx: RuntimeContext,
  node: NodeItem,
  deps: SweepDeps,
  report: { completed: number; recancelled: number; heartbeats: number; errors: string[] },
): Promise<void> {
  const driver = driverForJob(node);
  const end = await driver?.poll(ctx, node);
  if (end) {
    if (await endNodeForJob(ctx, node, end)) report.completed++;
    return;
  }
  if (node.cancelRequested) {
    const [result] = (await driver?.stop(ctx, [node], {
      reason: node.cancelReason ?? 'cancel requested',
      requestedBy: 'valence-sweeper',
      ...(node.cancelForce ? { force: true } : {}),
      cancelChild: (childId, request) => cancelDispatch(ctx, childId, request, deps),
      ...(deps.loadExecutors ? { loadExecutors: deps.loadExecutors } : {}),
    })) ?? [];
    if (result && 'error' in result) report.errors.push(`${node.dispatchId}/${node.nodeId}: ${result.error}`);
    else report.recancelled++;
    return;
  }
  if (node.taskToken) {
    try {
      await ctx.aws.sfn.send(new SendTaskHeartbeatCommand({ taskToken: node.taskToken }), { abortSignal: ctx.signal });
      report.heartbeats++;
    } catch {
      // The waiting state is gone (execution stopped); the node ends when its job does.
    }
  }
}

/** Top-level dispatches a sweep checks against their execution, newest first (older ones are long settled). */
const EXECUTION_CHECK_LIMIT = 200;

/** How an execution ended without valence ending its dispatch. */
const ENDED_ON_ITS_OWN = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);

/**
 * A dispatch ends when its last state runs (the step handler's finish). An execution that
 * fails outside every node (a state's retries exhausted, a runtime error, its timeout) or that
 * someone stops from the console never gets there, and its dispatch would say RUNNING forever
 * while `getResult({ wait: true })` waits. So each sweep asks Step Functions how the executions
 * of the newest RUNNING dispatches stand; for one that ended FAILED, TIMED_OUT or ABORTED, the
 * dispatch ends FAILED with the execution's error and cause, then its nodes not yet terminal are
 * cancelled through the ordinary cancel path (recorded as a request by `valence-sweeper`, so
 * it resumes if cut), which stops running work and marks the rest. A dispatch a cancel
 * stopped (`cancelRequested`) is the cancel request's to end.
 */
async function endDispatchesOfEndedExecutions(ctx: RuntimeContext, deps: SweepDeps, report: { failedExecutions: number; errors: string[] }): Promise<void> {
  let dispatches;
  try {
    dispatches = await ctx.store.listDispatches({ limit: EXECUTION_CHECK_LIMIT, signal: ctx.signal });
  } catch (error) {
    report.errors.push(`listing dispatches: ${(error as Error).name}: ${(error as Error).message}`);
    return;
  }
  for (const dispatch of dispatches) {
    if (dispatch.status !== DispatchStatus.RUNNING || dispatch.cancelRequested || !dispatch.executionArn) continue;
    try {
      const execution = await ctx.aws.sfn.send(new DescribeExecutionCommand({ executionArn: dispatch.executionArn }), { abortSignal: ctx.signal });
      const status = execution.status ?? 'RUNNING';
      if (!ENDED_ON_ITS_OWN.has(status)) continue;
      const why = [execution.error, execution.cause].filter((part): part is string => typeof part === 'string' && part.length > 0).join(': ');
      const ended = await ctx.store.finishDispatch(
        dispatch.dispatchId,
        {
          status: DispatchStatus.FAILED,
          endedAt: ctx.now().toISOString(),
          error: { name: `Execution${status === 'TIMED_OUT' ? 'TimedOut' : status === 'ABORTED' ? 'Aborted' : 'Failed'}`, message: `The dispatch's Step Functions execution ended ${status}${why ? `: ${why}` : ''}`.slice(0, 4_000) },
        },
        ctx.signal,
      );
      if (!ended) continue;
      report.failedExecutions++;
      // Nothing will start the rest; running work would run on unobserved: cancel what is left.
      await cancelDispatch(ctx, dispatch.dispatchId, { reason: `execution ${status}`, requestedBy: 'valence-sweeper' }, deps);
    } catch (error) {
      report.errors.push(`${dispatch.dispatchId}: execution check: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
}
