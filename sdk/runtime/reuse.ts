/**
 * The runtime's half of redispatch: confirming a planned reuse against what the deployed
 * code would run. The client plans by position and status; only the step handler knows the
 * deployed electron's identity and the node's resolved inputs, so a stale or wrong plan can
 * never reuse a result that this code would not produce (see content.ts).
 *
 * @module
 */
import { NodeStatus } from '../status.ts';
import type { NodeAddress, NodeContent } from './content.ts';
import type { RuntimeContext } from './context.ts';
import type { NodeItem, ParentView } from './store.ts';

/** What {@link decideReuse} decided: the stored result to end the node with, or why it runs. */
export type ReuseDecision =
  | {
      readonly reuse: true;
      readonly result: { readonly output?: string; readonly outputRef?: NodeAddress; readonly outputHash?: string; readonly reusedFrom: NodeAddress };
    }
  | { readonly reuse: false; readonly reason: string };

/** Why a node is not reused, in the words the dry-run plan shows. */
export const ReuseRefusal = {
  notPlanned: 'no earlier result was planned for it',
  noContent: 'its content address is unknown (a sublattice, or a parent whose output has no hash)',
  sourceGone: 'the earlier node is not completed',
  sourceUnaddressed: 'the earlier run recorded no content address',
  electronChanged: 'the electron changed (its source, name, executor options, retries or timeout)',
  inputsChanged: 'its inputs changed',
} as const;

/**
 * Decides whether `item` (claimed, in a redispatch) reuses its planned result: every parent
 * must itself have been reused (a descendant of a rerun node reruns), and the earlier node's
 * identity and input hash must equal the ones the deployed code computes now.
 */
export async function decideReuse(ctx: RuntimeContext, item: NodeItem, content: NodeContent | undefined, parents: readonly ParentView[]): Promise<ReuseDecision> {
  if (item.reuse === undefined) return { reuse: false, reason: ReuseRefusal.notPlanned };
  const rerun = parents.find((parent) => parent.reusedFrom === undefined);
  if (rerun) return { reuse: false, reason: `parent ${rerun.nodeId} runs again` };
  if (content === undefined) return { reuse: false, reason: ReuseRefusal.noContent };
  const source = await ctx.store.getNode(item.reuse.dispatchId, item.reuse.nodeId, { signal: ctx.signal });
  if (!source || source.status !== NodeStatus.COMPLETED || !source.hasOutput) return { reuse: false, reason: ReuseRefusal.sourceGone };
  if (source.identity === undefined || source.inputHash === undefined) return { reuse: false, reason: ReuseRefusal.sourceUnaddressed };
  if (source.identity !== content.identity) return { reuse: false, reason: ReuseRefusal.electronChanged };
  if (source.inputHash !== content.inputHash) return { reuse: false, reason: ReuseRefusal.inputsChanged };
  const producer = source.reusedFrom ?? { dispatchId: source.dispatchId, nodeId: source.nodeId };
  return {
    reuse: true,
    result: {
      // Inline outputs are part of the item; S3 outputs are referenced, never copied.
      ...(source.output !== undefined ? { output: source.output } : { outputRef: source.outputRef ?? { dispatchId: source.dispatchId, nodeId: source.nodeId } }),
      ...(source.outputHash !== undefined ? { outputHash: source.outputHash } : {}),
      reusedFrom: producer,
    },
  };
}
