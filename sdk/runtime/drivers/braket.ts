/**
 * What the two Braket drivers share: running the electron that builds the program, the
 * client token, and reading a Braket status as a job end.
 *
 * @module
 */
import { NodeStatus } from '../../status.ts';
import { textOf, type JobEnd, type NodeOutcome, type NodeRun } from './driver.ts';
import { runInThread } from './inline.ts';
import { jobTags } from './ownership.ts';

/** Runs the node's electron in a thread (like a Lambda node) and returns its output, or the outcome that ended it. */
export async function buildInThread(run: NodeRun, what: string): Promise<{ readonly output: unknown } | { readonly ended: NodeOutcome }> {
  if (!run.taskToken) throw new Error(`${what} node ${run.node.id} must run in a waitForTaskToken state`);
  const built = await runInThread(run);
  return built.status === NodeStatus.COMPLETED ? { output: built.output } : { ended: built };
}

/** The idempotency token of one run's create call (Braket allows 64 characters). */
export function clientTokenOf(run: NodeRun): string {
  return `${run.dispatch.dispatchId}-${run.node.id}-${run.runId}`.slice(0, 64);
}

/** The tags every Braket resource valence creates carries: its stack, dispatch and node (see ownership.ts). */
export function tagsOf(run: NodeRun): Record<string, string> {
  return jobTags(run.ctx.config.stackName, run.dispatch.dispatchId, run.node.id);
}

/** A Braket task or job status as a job end; undefined while it runs. */
export function braketEnd(status: string, detail: { outputS3Bucket?: unknown; outputS3Directory?: unknown; failureReason?: unknown }): JobEnd | undefined {
  if (status === 'COMPLETED') {
    return { kind: 'succeeded', braketResult: { bucket: textOf(detail.outputS3Bucket), directory: textOf(detail.outputS3Directory) } };
  }
  if (status === 'FAILED') return { kind: 'failed', reason: textOf(detail.failureReason, 'Braket task failed') };
  if (status === 'CANCELLED') return { kind: 'cancelled', reason: 'Braket task cancelled' };
  return undefined;
}

/** Whether an error is Braket's answer for work that is already terminal. */
export function isConflict(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConflictException';
}
