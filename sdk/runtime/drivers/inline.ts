/**
 * Inline: a Lambda electron run in a worker thread of the step handler, with retries, the
 * node's timeout and the cancel watchdog. Nothing outlives the invocation, so there is no job
 * handle, nothing to poll and no event; a cancel is honoured by the watchdog, which aborts the
 * electron's signal and terminates the thread after `graceSeconds`. The Braket drivers run
 * their electrons the same way to get the program they submit.
 *
 * @module
 */
import { NodeStatus } from '../../status.ts';
import { startElectronThread, type ThreadOutcome } from '../electron-thread.ts';
import { serialize } from '../serialization.ts';
import { CancelMethod } from '../../status.ts';
import { startWatchdog } from '../watchdog.ts';
import { NO_SERVICE_JOB, stopEach, type ExecutorDriver, type NodeOutcome, type NodeRun } from './driver.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';

/** Leaves this much of the Lambda's time for writing the outcome. */
const REMAINING_TIME_BUFFER_MS = 3_000;

/** Runs the electron in a worker thread, with retries, timeout and the cancel watchdog. */
export async function runInThread(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch, catalog } = run;
  const inputs = await run.loadInputs(ctx.signal);
  let attempt = run.item.attempts > 0 ? run.item.attempts : 1;
  for (;;) {
    const outcome = await runAttempt(run, inputs, attempt);
    if (outcome.outcome === 'completed') return { status: NodeStatus.COMPLETED, output: catalog.deserializeOutput(outcome.output) };
    if (outcome.outcome === 'cancelled') {
      return { status: NodeStatus.CANCELLED, cancelledBy: outcome.method === 'signal' ? CancelMethod.Signal : CancelMethod.Terminated };
    }
    if (outcome.outcome === 'lost') return { status: 'LOST' };
    const error =
      outcome.outcome === 'timed-out'
        ? { name: 'TimeoutError', message: `Node ${node.id} (${node.name}) exceeded its timeout of ${node.timeoutSeconds}s`, code: 'NODE_TIMEOUT' }
        : outcome.error;
    if (error.name === 'TaskCancelledError') return { status: NodeStatus.CANCELLED, cancelledBy: CancelMethod.BetweenSteps };
    if (attempt > node.retries) return { status: NodeStatus.FAILED, error };
    attempt += 1;
    const kept = await ctx.store.recordAttempt(dispatch.dispatchId, node.id, run.runId, attempt, error, ctx.signal);
    if (!kept) return { status: 'LOST' };
    if (kept.cancelRequested) return { status: NodeStatus.CANCELLED, cancelledBy: CancelMethod.BetweenSteps };
  }
}

type AttemptOutcome = ThreadOutcome | { readonly outcome: 'lost' };

async function runAttempt(run: NodeRun, inputs: unknown[], attempt: number): Promise<AttemptOutcome> {
  const { ctx, node, dispatch, catalog } = run;
  const thread = startElectronThread({
    ...catalog.worker,
    workflows: catalog.workflowsUrl,
    lattice: run.graph.lattice,
    electron: node.electron,
    inputs: serialize({ args: inputs }),
    ...(run.graph.buildArgs === undefined ? {} : { buildArgs: run.graph.buildArgs }),
    context: { dispatchId: dispatch.dispatchId, nodeId: node.id, attempt },
  });
  let lost = false;
  const graceMs = node.graceSeconds * 1000;
  const watchdog = startWatchdog(ctx, { dispatchId: dispatch.dispatchId, nodeId: node.id, runId: run.runId }, (alarm) => {
    if (alarm.kind === 'lost-claim') {
      lost = true;
      thread.stop('cancelled', 'claim lost', 0);
    } else {
      thread.stop('cancelled', alarm.reason, alarm.force ? 0 : graceMs);
    }
  });
  // Stop at the node's timeout, or before Lambda would kill this invocation mid-write.
  const remaining = run.info.getRemainingTimeInMillis() - REMAINING_TIME_BUFFER_MS - graceMs;
  const timeoutMs = Math.min(node.timeoutSeconds ? node.timeoutSeconds * 1000 : Infinity, Math.max(1_000, remaining));
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(() => thread.stop('timed-out', `timed out after ${timeoutMs} ms`, Math.min(graceMs, 1_000)), timeoutMs)
    : undefined;
  try {
    const outcome = await thread.done;
    return lost ? { outcome: 'lost' } : outcome;
  } finally {
    watchdog.stop();
    if (timer) clearTimeout(timer);
  }
}

/** The inline driver. */
export const inlineDriver: ExecutorDriver = {
  kind: DriverKind.Inline,
  ...DRIVER_TRAITS[DriverKind.Inline],
  cancelMethod: CancelMethod.Signal,
  start: runInThread,
  // The watchdog of the invocation that runs the electron stops it.
  stop: (_ctx, nodes) => stopEach(nodes, () => Promise.resolve('pending' as const)),
  // No handle names an inline electron's work: only its cancel flag stops it.
  stopJob: () => Promise.resolve(false),
  ...NO_SERVICE_JOB,
};
