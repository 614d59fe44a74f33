/**
 * Ending nodes that wait on long-running work: the completion handler (Batch and Braket
 * state-change events from EventBridge), and the helpers the sweeper (`sweep.ts`) and the
 * cancel handler use to end a node whose job they found ended. What an event or a poll means
 * for a kind is its driver's (`drivers/`).
 *
 * A job that ends after its node's cancel was requested ends the node `CANCELLED` with the
 * method the cancel handler used — never `FAILED`.
 */
import { NodeStatus, isTerminalNodeStatus } from '../status.ts';
import type { RuntimeContext } from './context.ts';
import { driverForJob, jobEndFromEvent } from './drivers/index.ts';
import type { ExecutorDriver, JobEnd, ServiceEvent } from './drivers/driver.ts';
import { payloadKeys, PayloadNotFoundError } from './payloads.ts';
import type { SerializedError } from './serialization.ts';
import { releaseDependents } from './settle.ts';
import { CancelMethod } from '../status.ts';
import type { NodeItem } from './store.ts';

export type { JobEnd, ServiceEvent } from './drivers/driver.ts';
export { readBraketCounts } from './drivers/braket-task.ts';

/** Handles one state-change event; ignores events of jobs valence did not start. */
export async function handleServiceEvent(ctx: RuntimeContext, event: ServiceEvent): Promise<{ handled: number }> {
  const found = jobEndFromEvent(event);
  if (!found) return { handled: 0 };
  // The index is eventually consistent: it finds the nodes, the table says how they stand.
  const nodes = await ctx.store.nodesByJobHandle(found.handle, ctx.signal);
  let handled = 0;
  for (const indexed of nodes) {
    const node = await ctx.store.getNode(indexed.dispatchId, indexed.nodeId, { signal: ctx.signal });
    if (node && node.jobHandle === found.handle && (await endNodeForJob(ctx, node, found.end))) handled++;
  }
  return { handled };
}

/** Asks the node's driver how its job stands; undefined while it still runs (or when it has no job). */
export async function pollJob(ctx: RuntimeContext, node: NodeItem): Promise<JobEnd | undefined> {
  return driverForJob(node)?.poll(ctx, node);
}

/**
 * Ends a node whose job ended. Returns false when the node had already ended (a duplicate
 * event, or the sweeper got there first).
 */
export async function endNodeForJob(ctx: RuntimeContext, node: NodeItem, end: JobEnd): Promise<boolean> {
  if (isTerminalNodeStatus(node.status)) return false;
  const driver = driverForJob(node);
  const endedAt = ctx.now().toISOString();
  let ended: NodeItem | undefined;
  if (node.cancelRequested && end.kind !== 'succeeded') {
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, { status: NodeStatus.CANCELLED, endedAt, cancelledBy: node.cancelAction ?? cancelMethodOf(driver) }, ctx.signal);
  } else if (end.kind === 'succeeded') {
    await driver?.storeOutput(ctx, node, end);
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, { status: NodeStatus.COMPLETED, endedAt, hasOutput: true }, ctx.signal);
  } else if (end.kind === 'cancelled') {
    // Cancelled outside valence (console, CLI): still a cancellation, never a failure.
    ended = await ctx.store.finishNode(
      node.dispatchId,
      node.nodeId,
      { status: NodeStatus.CANCELLED, endedAt, cancelledBy: cancelMethodOf(driver), cancelReason: end.reason },
      ctx.signal,
    );
  } else {
    const error = await jobError(ctx, node, end.reason);
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, { status: NodeStatus.FAILED, endedAt, error }, ctx.signal);
  }
  if (!ended) return false;
  await releaseDependents(ctx, ended);
  return true;
}

function cancelMethodOf(driver: ExecutorDriver | undefined): CancelMethod {
  return driver?.cancelMethod ?? CancelMethod.ExecutorCancel;
}

async function jobError(ctx: RuntimeContext, node: NodeItem, reason: string): Promise<SerializedError> {
  try {
    return await ctx.payloads.getValue<SerializedError>(payloadKeys.nodeError(node.dispatchId, node.nodeId), ctx.signal);
  } catch (error) {
    if (!(error instanceof PayloadNotFoundError)) throw error;
    return { name: 'JobFailed', message: reason };
  }
}
