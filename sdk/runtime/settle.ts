/**
 * What happens after a node ends, whoever ended it (step, completion or cancel handler, or
 * the sweeper): the states waiting on it are released.
 *
 * Both sides of an `await` write before they read — the waiter stores its token, then reads
 * its parents; an ending parent stores its status, then reads its waiting children — so at
 * least one of them sees the other and no wait is lost.
 */
import { isTerminalNodeStatus } from '../status.ts';
import { releaseToken, type RuntimeContext } from './context.ts';
import type { NodeItem } from './store.ts';

/**
 * Releases the `await` states of children whose parents have all ended, then the node's own
 * waiting state (long-running executors and sublattices wait on a task token).
 */
export async function releaseDependents(ctx: RuntimeContext, node: NodeItem): Promise<void> {
  const waiting = node.awaitingChildren ?? [];
  if (waiting.length > 0) {
    const children = await ctx.store.getNodes(node.dispatchId, waiting, ctx.signal);
    for (const child of children) {
      if (!child.awaitToken) continue;
      const parents = await ctx.store.getNodes(node.dispatchId, child.parents, ctx.signal);
      if (parents.every((p) => isTerminalNodeStatus(p.status))) {
        await releaseToken(ctx, child.awaitToken, { ok: true, output: { nodeId: child.nodeId, released: true } }, ctx.signal);
      }
    }
  }
  if (node.taskToken && isTerminalNodeStatus(node.status)) {
    await releaseToken(ctx, node.taskToken, { ok: true, output: { nodeId: node.nodeId, status: node.status } }, ctx.signal);
  }
}
