/**
 * The sweeper's logic, run on a schedule: completes nodes whose job ended without an event
 * reaching valence (a lost event), stops again those whose cancel did not take (a failed API
 * call), and heartbeats the rest so their waiting states do not time out.
 */
import { SendTaskHeartbeatCommand } from '@aws-sdk/client-sfn';
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
  const report = { checked: 0, completed: 0, recancelled: 0, heartbeats: 0, cancels, errors: [...cancelErrors] };
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
