/**
 * Child dispatch (a sublattice node): build the child graph from the real inputs, record the
 * child dispatch, start it on the graph-runner state machine, and return; the child's
 * `finalize` ends this node. A cancel of the node cancels the child dispatch, recursively.
 *
 * A cancel of a path into the child (`"5/2"`) that arrives before the child exists is
 * recorded on the parent dispatch (its cancel request); the start applies it before the child
 * execution starts, so node 2 and its descendants begin `CANCELLED` (`pending-child`) and
 * never run. The start records the child id first and reads the requests after, and the cancel
 * handler records its request first and reads the node after, so at least one of them sees
 * the other: either the handler cancels the child, or the start applies the pending path.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { TransportGraph } from '../../model/graph.ts';
import { NodeStatus } from '../../status.ts';
import { createDispatchRecords, descendantsOf } from '../dispatch-records.ts';
import { serialize } from '../serialization.ts';
import { CancelMethod } from '../../status.ts';
import { NO_SERVICE_JOB, stopEach, type ExecutorDriver, type NodeOutcome, type NodeRun } from './driver.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';

async function start(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch, catalog } = run;
  if (!run.taskToken) throw new Error(`Sublattice node ${node.id} must run in a waitForTaskToken state`);
  await run.checkCancelled();
  const inputs = await run.loadInputs(ctx.signal);
  const lattice = await catalog.lattice(node.sublattice!);
  const graph = lattice.build(...inputs);
  const childId = randomUUID();
  await run.checkCancelled();
  await createDispatchRecords(
    ctx,
    {
      dispatchId: childId,
      graph,
      serializedArgs: serialize(inputs),
      stateMachineArn: ctx.config.graphRunnerArn,
      // The graph runner waits on every node's parents in an `await` state.
      awaitingNodes: new Set(graph.nodes.map((n) => n.id)),
      parent: { dispatchId: dispatch.dispatchId, nodeId: node.id },
    },
    ctx.signal,
  );
  // Recorded before the start: a cancel arriving from now on finds the child dispatch.
  const recorded = await ctx.store.recordJobHandle(
    dispatch.dispatchId,
    node.id,
    {
      jobHandle: `${ctx.config.graphRunnerArn.replace(':stateMachine:', ':execution:')}:${childId}`,
      jobKind: DriverKind.ChildDispatch,
      taskToken: run.taskToken,
      childDispatchId: childId,
    },
    ctx.signal,
  );
  if (!recorded || recorded.cancelRequested) {
    await run.cancelChild(childId, { reason: recorded?.cancelReason ?? 'parent node cancelled', requestedBy: 'valence' });
    return { status: NodeStatus.RUNNING };
  }
  await applyPendingPaths(run, childId, graph);
  const started = await ctx.aws.sfn.send(
    new StartExecutionCommand({ stateMachineArn: ctx.config.graphRunnerArn, name: childId, input: JSON.stringify({ dispatchId: childId }) }),
    { abortSignal: ctx.signal },
  );
  await ctx.store.setExecutionArn(childId, started.executionArn!, ctx.signal);
  return { status: NodeStatus.RUNNING };
}

/**
 * Applies the parent's cancel requests for paths into this node (`"<node>/<id>"`) to the
 * child before its execution starts: the named child node and its descendants end
 * `CANCELLED` with `pending-child`; a deeper path (`"<node>/<id>/<id>"`) is recorded on the
 * child dispatch, for its own sublattice node to apply in turn.
 */
async function applyPendingPaths(run: NodeRun, childId: string, graph: TransportGraph): Promise<void> {
  const { ctx, node, dispatch } = run;
  const prefix = `${node.id}/`;
  for (const request of await ctx.store.listCancelRequests(dispatch.dispatchId, ctx.signal)) {
    const paths = request.targets.filter((t): t is string => typeof t === 'string' && t.startsWith(prefix)).map((t) => t.slice(prefix.length));
    if (paths.length === 0) continue;
    const reason = request.reason ?? `cancelled by ${request.requestedBy}`;
    const deeper = paths.filter((p) => p.includes('/'));
    if (deeper.length > 0) await ctx.store.recordCancelRequest(childId, { ...request, targets: deeper }, ctx.signal);
    const ids = paths.filter((p) => !p.includes('/')).map(Number).filter((id) => id < graph.nodes.length);
    const targets = new Set(ids.flatMap((id) => descendantsOf(id, (n) => graph.children(n))));
    for (const id of [...targets].sort((a, b) => a - b)) {
      const at = ctx.now().toISOString();
      await ctx.store.requestNodeCancel(childId, id, reason, at, ctx.signal);
      await ctx.store.finishNode(childId, id, { status: NodeStatus.CANCELLED, endedAt: at, cancelledBy: CancelMethod.PendingChild, cancelReason: reason }, ctx.signal);
    }
  }
}

/** The child-dispatch driver. */
export const childDispatchDriver: ExecutorDriver = {
  kind: DriverKind.ChildDispatch,
  ...DRIVER_TRAITS[DriverKind.ChildDispatch],
  cancelMethod: CancelMethod.ChildDispatch,
  start,
  stop: (_ctx, nodes, request) =>
    stopEach(nodes, async (node) => {
      if (!node.childDispatchId) return 'pending';
      await request.cancelChild(node.childDispatchId, { reason: request.reason, requestedBy: request.requestedBy, ...(request.force ? { force: true } : {}) });
      return CancelMethod.ChildDispatch;
    }),
  async stopJob(ctx, job) {
    if (!job.childDispatchId || !ctx.cancelChild) return false;
    await ctx.cancelChild(job.childDispatchId, { reason: 'cancelled by valence', requestedBy: 'valence' });
    return true;
  },
  // The child's finalize ends this node; there is nothing to poll.
  ...NO_SERVICE_JOB,
};
