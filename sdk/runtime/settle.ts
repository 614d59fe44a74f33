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
 * Releases the `await` states of children whose parents have all ended, and the node's own
 * waiting state (long-running executors and sublattices wait on a task token).
 *
 * The children are independent of each other and of the node's own wait, so they are handled
 * side by side ({@link RELEASE_CONCURRENCY} at a time): a node that ends before two waiting
 * children no longer makes the second wait for the first one's read and release. Every release
 * is awaited before this returns (a Lambda freezes what is still running when the handler
 * returns), and the first failure is rethrown once all have settled.
 */
export async function releaseDependents(ctx: RuntimeContext, node: NodeItem): Promise<void> {
  const waiting = node.awaitingChildren ?? [];
  const own =
    node.taskToken && isTerminalNodeStatus(node.status)
      ? releaseToken(ctx, node.taskToken, { ok: true, output: { nodeId: node.nodeId, status: node.status } }, ctx.signal)
      : undefined;
  const children = waiting.length > 0 ? releaseChildren(ctx, node, waiting) : undefined;
  const outcomes = await Promise.allSettled([own, children]);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Child releases in flight at once for one ended node. */
export const RELEASE_CONCURRENCY = 16;

async function releaseChildren(ctx: RuntimeContext, node: NodeItem, waiting: readonly number[]): Promise<void> {
  const children = (await ctx.store.getNodes(node.dispatchId, waiting, ctx.signal)).filter((child) => child.awaitToken);
  let next = 0;
  let failure: { readonly reason: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (let child = children[next++]; child !== undefined; child = children[next++]) {
      try {
        const parents = await ctx.store.getNodes(node.dispatchId, child.parents, ctx.signal);
        if (parents.every((p) => isTerminalNodeStatus(p.status))) {
          await releaseToken(ctx, child.awaitToken!, { ok: true, output: { nodeId: child.nodeId, released: true } }, ctx.signal);
        }
      } catch (error) {
        failure ??= { reason: error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RELEASE_CONCURRENCY, children.length) }, worker));
  if (failure) throw failure.reason;
}
