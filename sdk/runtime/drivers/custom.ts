/**
 * Custom: a user's {@link CustomExecutor}. Its `run(task)` does the work inside the step
 * handler, may record a job handle and must call `task.checkCancelled()` before each of its
 * steps; its `cancel(taskMetadata, jobHandle)` stops the work, from the cancel handler and from
 * the step handler's own watchdog (so it must be safe to call twice).
 *
 * @module
 */
import { TaskCancelledError, isCancellation } from '../../errors.ts';
import { CustomExecutor, Executor, type ExecutorJSON, type TaskMetadata } from '../../model/executors.ts';
import { NodeStatus } from '../../status.ts';
import { serializeError } from '../serialization.ts';
import { CancelMethod } from '../../status.ts';
import { startWatchdog } from '../watchdog.ts';
import { NO_SERVICE_JOB, stopEach, type ExecutorDriver, type NodeOutcome, type NodeRun } from './driver.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';

/** Rebuilds the node's executor; anything but a CustomExecutor subclass is a clear error. */
function customExecutorOf(json: ExecutorJSON): CustomExecutor {
  const executor = Executor.fromJSON(json);
  if (!(executor instanceof CustomExecutor)) {
    throw new TypeError(`Executor "${json.name}" (${executor.constructor.name}) must extend CustomExecutor to run nodes; it has no run(task)`);
  }
  return executor as CustomExecutor;
}

async function start(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch, catalog } = run;
  const taskMetadata: TaskMetadata = { dispatchId: dispatch.dispatchId, nodeId: node.id };
  await run.checkCancelled();
  // Constructed only now: a node cancelled before it started never builds its executor.
  const executor = customExecutorOf(node.executor);
  const inputs = await run.loadInputs(ctx.signal);
  const controller = new AbortController();
  // The step handler stops the job itself when it sees the flag, in case the cancel
  // handler could not (executor.cancel must be safe to call twice).
  const stopJob = async (): Promise<void> => {
    const current = await ctx.store.getNode(dispatch.dispatchId, node.id, { signal: ctx.signal });
    if (current?.jobHandle) await executor.cancel(taskMetadata, current.jobHandle).catch(() => false);
  };
  const watchdog = startWatchdog(ctx, { ...taskMetadata, runId: run.runId }, (alarm) => {
    // A forced cancel after a graceful one: executor.cancel was called already.
    if (controller.signal.aborted) return;
    controller.abort(new TaskCancelledError(alarm.kind === 'cancel' ? alarm.reason : 'claim lost', taskMetadata));
    if (alarm.kind === 'cancel') void stopJob();
  });
  let output: unknown;
  let failure: unknown;
  let failed = false;
  try {
    const fn = await catalog.electron(run.graph.lattice, node.electron, run.graph.buildArgs);
    output = await executor.run({
      ...taskMetadata,
      electron: fn,
      args: inputs,
      signal: controller.signal,
      checkCancelled: () => run.checkCancelled(),
      recordJobHandle: async (jobHandle: string) => {
        const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle, jobKind: DriverKind.Custom }, ctx.signal);
        if (!recorded || recorded.cancelRequested) {
          await executor.cancel(taskMetadata, jobHandle);
          throw new TaskCancelledError(`Node ${node.id} was cancelled`, taskMetadata);
        }
      },
    });
  } catch (error) {
    failed = true;
    failure = error;
  } finally {
    watchdog.stop();
  }
  // A job that ended because it was cancelled is a cancellation, however it ended.
  const current = await ctx.store.getNode(dispatch.dispatchId, node.id, { signal: ctx.signal });
  if (controller.signal.aborted || current?.cancelRequested || (failed && isCancellation(failure))) {
    return {
      status: NodeStatus.CANCELLED,
      cancelledBy: current?.cancelAction ?? (current?.jobHandle ? CancelMethod.ExecutorCancel : CancelMethod.BetweenSteps),
    };
  }
  return failed ? { status: NodeStatus.FAILED, error: serializeError(failure) } : { status: NodeStatus.COMPLETED, output };
}

/** The custom-executor driver. */
export const customDriver: ExecutorDriver = {
  kind: DriverKind.Custom,
  ...DRIVER_TRAITS[DriverKind.Custom],
  cancelMethod: CancelMethod.ExecutorCancel,
  start,
  stop: (ctx, nodes, request) =>
    stopEach(nodes, async (node) => {
      if (!node.jobHandle) return 'pending';
      await request.loadExecutors?.();
      await Executor.fromJSON(node.executorJson).cancel({ dispatchId: node.dispatchId, nodeId: node.nodeId }, node.jobHandle);
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.ExecutorCancel, ctx.signal);
      return CancelMethod.ExecutorCancel;
    }),
  async stopJob(ctx, job) {
    await ctx.loadExecutors?.();
    if (!job.executorJson) return false;
    return Executor.fromJSON(job.executorJson).cancel({ dispatchId: job.dispatchId, nodeId: job.nodeId }, job.jobHandle);
  },
  ...NO_SERVICE_JOB,
};
