/**
 * What happens after a node ends, whoever ended it (step, completion or cancel handler, or
 * the sweeper): the states waiting on it are released.
 *
 * Both sides of an `await` write before they read — the waiter stores its token, then reads
 * its parents; an ending parent stores its status, then reads its waiting children — so at
 * least one of them sees the other and no wait is lost.
 */
import { NODE_ENDED_ERROR, RUN_NODE_ERROR } from '../contract.ts';
import { CancelMethod, NodeStatus, isTerminalNodeStatus } from '../status.ts';
import { releaseToken, type RuntimeContext } from './context.ts';
import { parentViewOf, type NodeItem, type ParentView } from './store.ts';

/**
 * Releases the `await` states of children whose parents have all ended, and the node's own
 * waiting state (long-running executors and sublattices wait on a task token).
 *
 * The children are independent of each other and of the node's own wait, so they are handled
 * side by side ({@link RELEASE_CONCURRENCY} at a time): a node that ends before two waiting
 * children no longer makes the second wait for the first one's read and release. Every release
 * is awaited before this returns (a Lambda freezes what is still running when the handler
 * returns), and the first failure is rethrown once all have settled.
 *
 * A child that can never run (it ended already, cancelled in bulk, or a parent did not
 * complete) and whose `await` catches `NODE_ENDED_ERROR` is not released to its `run` state:
 * it is ended here (upstream-cancelled or upstream-failed, as its `run` state would have) and
 * its `await` is failed with that error, which ends its iteration. Its own children are then
 * released the same way, wave by wave, by this call: nothing else would, since its `run`
 * state never runs. A 10,000-node subtree below a cancelled node drains in one walk, with no
 * step invocation per node (issue 13). `descendIntoEnded: false` (the cancel handler, which
 * releases every node it ended itself) descends only into the children this call ended.
 */
export async function releaseDependents(ctx: RuntimeContext, node: NodeItem, options: ReleaseOptions = {}): Promise<void> {
  const waiting = node.awaitingChildren ?? [];
  const own = releaseOwnWait(ctx, node);
  const children = waiting.length > 0 ? releaseAwaiting(ctx, node.dispatchId, waiting, options) : undefined;
  const outcomes = await Promise.allSettled([own, children]);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Releases the node's own waiting state (the task token of a long-running executor's or a
 * sublattice's Task), once the node is terminal; undefined when there is nothing to release.
 */
export function releaseOwnWait(ctx: RuntimeContext, node: NodeItem): Promise<boolean> | undefined {
  return node.taskToken && isTerminalNodeStatus(node.status)
    ? releaseToken(ctx, node.taskToken, { ok: true, output: parentViewOf(node) }, ctx.signal)
    : undefined;
}

/** How {@link releaseAwaiting} goes about its waves. */
export interface ReleaseOptions {
  /** Also walk below children that were already terminal. @default true */
  readonly descendIntoEnded?: boolean;
  /**
   * Starts the run of a woken child whose `await` also runs it (the step handler's
   * asynchronous invocation of itself). Without it, or when it throws, the wait is failed with
   * `RUN_NODE_ERROR` and Step Functions runs the node in the state the Catch leads to.
   */
  readonly wake?: (event: { dispatchId: string; nodeId: number; taskToken: string; released: unknown; woken: true }) => Promise<void>;
}

/**
 * Wakes a child whose `await` also runs it, now that its parents have ended: a run event with
 * the wait's token and the parents' views, sent by `wake`; handed back to Step Functions
 * (`RUN_NODE_ERROR`) when there is no `wake` or it failed. A lost wake (the asynchronous
 * invocation failed all its attempts) is found by the sweeper, which hands the node back too.
 */
export async function wakeRun(ctx: RuntimeContext, child: NodeItem, parents: readonly ParentView[], wake: ReleaseOptions['wake']): Promise<void> {
  const taskToken = child.awaitToken!;
  if (wake) {
    try {
      await wake({ dispatchId: child.dispatchId, nodeId: child.nodeId, taskToken, released: awaitReleased(child.nodeId, parents), woken: true });
      return;
    } catch {
      // The invocation was refused (throttled past its retries, no permission): Step Functions runs it.
    }
  }
  await releaseToken(ctx, taskToken, handBack(child.nodeId), ctx.signal);
}

/** The failure that hands a node back to Step Functions: its `await`'s Catch runs it in a plain `run` state. */
export function handBack(nodeId: number): { ok: false; error: string; cause: string } {
  return { ok: false, error: RUN_NODE_ERROR, cause: `node ${nodeId}: its parents ended; run by its run state` };
}

/** Child releases in flight at once for one ended node. */
export const RELEASE_CONCURRENCY = 16;

/**
 * The waves of {@link releaseDependents}, for any set of children (the cancel handler passes
 * the children of 100 ended targets at once: one read for all of them, most of which wait in
 * no `await` yet): the waiting children first, then the children of those it ended or skipped,
 * each node at most once. `descendIntoEnded` (default true) also walks below children that
 * were already terminal (a retried walk that a crash cut must reach what the first one did
 * not); without it only the children this walk ended are descended into.
 */
export async function releaseAwaiting(ctx: RuntimeContext, dispatchId: string, first: readonly number[], options: ReleaseOptions = {}): Promise<void> {
  const descendIntoEnded = options.descendIntoEnded ?? true;
  const seen = new Set(first);
  let failure: { readonly reason: unknown } | undefined;
  for (let wave: number[] = [...first]; wave.length > 0 && !failure; ) {
    const children = (await ctx.store.getNodes(dispatchId, wave, ctx.signal)).filter((child) => child.awaitToken);
    const next: number[] = [];
    let at = 0;
    const worker = async (): Promise<void> => {
      for (let child = children[at++]; child !== undefined; child = children[at++]) {
        try {
          const parents = await ctx.store.getNodes(dispatchId, child.parents, ctx.signal);
          if (!parents.every((p) => isTerminalNodeStatus(p.status))) continue;
          const wasEnded = isTerminalNodeStatus(child.status);
          const ended = child.awaitSkippable ? await endBelowParents(ctx, child, parents) : undefined;
          if (!ended && child.awaitRuns) {
            // The wait also runs the node: an ended one's wait ends with its view (its ender
            // released its children), a running one is its run's to release, and a new one is woken.
            if (wasEnded) await releaseToken(ctx, child.awaitToken!, { ok: true, output: parentViewOf(child) }, ctx.signal);
            else if (child.status === NodeStatus.NEW_OBJECT) await wakeRun(ctx, child, parents, options.wake);
            continue;
          }
          if (!ended) {
            await releaseToken(ctx, child.awaitToken!, { ok: true, output: awaitReleased(child.nodeId, parents) }, ctx.signal);
            continue;
          }
          await releaseToken(ctx, child.awaitToken!, nodeEnded(ended), ctx.signal);
          if (!wasEnded || descendIntoEnded) {
            for (const id of ended.awaitingChildren ?? []) {
              if (seen.has(id)) continue;
              seen.add(id);
              next.push(id);
            }
          }
        } catch (error) {
          failure ??= { reason: error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RELEASE_CONCURRENCY, children.length) }, worker));
    wave = next;
  }
  if (failure) throw failure.reason;
}

/**
 * Most bytes of parent views one `await` release carries. The release is the `await` state's
 * result, which stays in the state data of the states after it (a Parallel copies it to each
 * branch): small views travel, large ones (inline outputs up to 4 KiB each) are read instead.
 */
export const RELEASE_VIEWS_MAX_BYTES = 8 * 1024;

/**
 * The output that releases a node's `await`: its parents' views, as read by whoever released it,
 * so that its `run` state reads no parent item (issue 18: one BatchGetItem fewer per waiting
 * node, on AWS too). Views go in parent order while they fit in {@link RELEASE_VIEWS_MAX_BYTES};
 * the step handler reads the rest, and ignores any view that is not of a parent of the node, of
 * this dispatch, and ended (step.ts, `carriedParents`). Always has `parents`, possibly empty.
 */
export function awaitReleased(nodeId: number, parents: readonly ParentView[]): { nodeId: number; released: true; parents: ParentView[] } {
  const views: ParentView[] = [];
  let bytes = 0;
  for (const parent of parents) {
    if (!isTerminalNodeStatus(parent.status)) continue;
    const view = parentViewOf(parent);
    const size = Buffer.byteLength(JSON.stringify(view));
    if (bytes + size > RELEASE_VIEWS_MAX_BYTES) continue;
    views.push(view);
    bytes += size;
  }
  return { nodeId, released: true, parents: views };
}

/** The failure that releases a skippable `await` of a node that ended: its iteration ends there. */
export function nodeEnded(node: NodeItem): { ok: false; error: string; cause: string } {
  return { ok: false, error: NODE_ENDED_ERROR, cause: `node ${node.nodeId} ended ${node.status}${node.cancelledBy ? ` (${node.cancelledBy})` : ''} before its turn` };
}

/**
 * A node whose parents have all ended, as it is once it can no longer run: as found when it is
 * terminal already, or ended now, CANCELLED, when a parent did not complete (see
 * {@link upstreamEnd}). Undefined when it is to run (every parent completed), or when it could
 * not be ended because it is no longer waiting (its own `run` state then settles it).
 */
export async function endBelowParents(ctx: RuntimeContext, node: NodeItem, parents: readonly ParentView[]): Promise<NodeItem | undefined> {
  if (isTerminalNodeStatus(node.status)) return node;
  if (node.status !== NodeStatus.NEW_OBJECT) return undefined;
  const outcome = upstreamEnd(parents, ctx.now());
  if (!outcome) return undefined;
  const ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, outcome, ctx.signal);
  if (ended) return ended;
  const now = await ctx.store.getNode(node.dispatchId, node.nodeId, { signal: ctx.signal });
  return now && isTerminalNodeStatus(now.status) ? now : undefined;
}

/**
 * How a node ends whose parents ended but not all completed: CANCELLED, upstream-failed when a
 * failure is the root cause (a FAILED parent, or one that was itself upstream-failed), else
 * upstream-cancelled. The root cause travels down: a failure anywhere above wins over a cancel.
 * Undefined when every parent completed.
 */
export function upstreamEnd(
  parents: readonly ParentView[],
  now: Date,
): { status: typeof NodeStatus.CANCELLED; endedAt: string; cancelledBy: CancelMethod; cancelReason: string } | undefined {
  const failedUpstream = (p: ParentView): boolean =>
    p.status === NodeStatus.FAILED || (p.status === NodeStatus.CANCELLED && p.cancelledBy === CancelMethod.UpstreamFailed);
  const upstream = parents.find(failedUpstream) ?? parents.find((p) => p.status === NodeStatus.CANCELLED);
  if (!upstream) return undefined;
  const by = failedUpstream(upstream) ? CancelMethod.UpstreamFailed : CancelMethod.UpstreamCancelled;
  return { status: NodeStatus.CANCELLED, endedAt: now.toISOString(), cancelledBy: by, cancelReason: `${by}: node ${upstream.nodeId} ${upstream.status}` };
}
