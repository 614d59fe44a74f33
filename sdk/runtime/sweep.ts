/**
 * The sweeper's logic, run on a schedule: completes nodes whose job ended without an event
 * reaching valence (a lost event), stops again those whose cancel did not take (a failed API
 * call), and heartbeats the rest so their waiting states do not time out; a node whose `await`
 * also runs it and whose wake was lost is handed back to Step Functions. It also ends
 * dispatches whose Step Functions execution ended on its own (FAILED, TIMED_OUT, or ABORTED by
 * someone other than valence) while the dispatch still said RUNNING: nothing else would.
 */
import { DescribeExecutionCommand, SendTaskHeartbeatCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus, NodeStatus, isTerminalNodeStatus } from '../status.ts';
import { releaseToken } from './context.ts';
import { handBack } from './settle.ts';
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
   * Nodes whose `await` also runs them, whose parents ended (or whose run's lease lapsed) at
   * least {@link WAKE_GRACE_MS} ago, yet which had not ended: their wake was lost (an
   * asynchronous invocation that failed every attempt). Handed back to Step Functions
   * (`RUN_NODE_ERROR`), whose Catch runs them in their plain `run` state.
   */
  readonly handedBack: number;
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
  /** How long a released node may stay unended before its wake is taken for lost. @default {@link WAKE_GRACE_MS} */
  readonly wakeGraceMs?: number;
}

/** One sweep over nodes that wait on live jobs. */
export async function sweep(ctx: RuntimeContext, deps: SweepDeps = {}): Promise<SweepReport> {
  // Open cancel requests first: finishing one flags its targets, which the node pass below then stops again if needed.
  const { errors: cancelErrors, ...cancels } = await finishOpenCancels(ctx, deps.loadExecutors ? { loadExecutors: deps.loadExecutors } : {}, deps.staleCancelMs ?? 30_000);
  const report = { checked: 0, completed: 0, recancelled: 0, heartbeats: 0, handedBack: 0, failedExecutions: 0, cancels, errors: [...cancelErrors] };
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
  report: { completed: number; recancelled: number; heartbeats: number; handedBack: number; errors: string[] },
): Promise<void> {
  if (node.awaitRuns && node.awaitToken && !node.jobHandle) {
    if (await lostWake(ctx, node, deps.wakeGraceMs ?? WAKE_GRACE_MS)) {
      await releaseToken(ctx, node.awaitToken, handBack(node.nodeId), ctx.signal);
      report.handedBack++;
    }
    return;
  }
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

/**
 * How long a node whose `await` also runs it may stay unended after its last parent ended (or
 * after its run's lease lapsed) before the sweeper takes its wake for lost. Lambda retries a
 * failed asynchronous invocation after about a minute and again after two, so a wake in its
 * retries may still run it: the run that loses the claim then leaves the node to the other.
 */
export const WAKE_GRACE_MS = 60_000;

/**
 * Whether a node waiting in an `await` that also runs it was woken and never ran (or died
 * running): not ended, every parent ended more than {@link WAKE_GRACE_MS} ago, and no live
 * run holding it. One BatchGetItem of its parents; a node whose parents still run costs only
 * that read.
 */
async function lostWake(ctx: RuntimeContext, node: NodeItem, graceMs: number): Promise<boolean> {
  const now = ctx.now().getTime();
  if (node.status === NodeStatus.RUNNING) return (node.leaseUntil ?? 0) + graceMs < now;
  if (node.status !== NodeStatus.NEW_OBJECT) return false;
  const parents = node.parents.length > 0 ? await ctx.store.getNodes(node.dispatchId, node.parents, ctx.signal) : [];
  if (!parents.every((p) => isTerminalNodeStatus(p.status))) return false;
  const lastEnded = Math.max(0, ...parents.map((p) => (p.endedAt ? Date.parse(p.endedAt) : 0)));
  return lastEnded + graceMs <= now;
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
