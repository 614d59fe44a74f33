/**
 * Creating a dispatch's records: the payloads in S3 first, then the DynamoDB items, so that
 * nothing in the table ever points at a payload that does not exist yet.
 */
import { NodeStatus, DispatchStatus } from '../status.ts';
import type { TransportGraph } from '../model/graph.ts';
import type { RuntimeContext } from './context.ts';
import { payloadKeys } from './payloads.ts';
import type { NodeItem } from './store.ts';
import { executorLabel } from './drivers/kinds.ts';
import type { NodeAddress } from './content.ts';

/** What one dispatch needs written before its execution starts. */
export interface DispatchRecords {
  readonly dispatchId: string;
  readonly graph: TransportGraph;
  /** Serialized lattice arguments (already validated by the caller). */
  readonly serializedArgs: string;
  readonly stateMachineArn: string;
  /** Nodes whose compiled state waits in an `await` state before it runs. */
  readonly awaitingNodes: ReadonlySet<number>;
  /** For a child dispatch: the sublattice node that runs it. */
  readonly parent?: { readonly dispatchId: string; readonly nodeId: number };
  /**
   * The ARN the execution will have (see {@link executionArnOf}), written with the dispatch
   * item so that starting the execution needs no second write.
   */
  readonly executionArn?: string;
  /** For a redispatch: the dispatch it re-runs. */
  readonly redispatchOf?: string;
  /** For a redispatch's dry run: nodes are decided, never run. */
  readonly dryRun?: boolean;
  /** For a redispatch: per node, the earlier node whose result it may reuse (the step handler confirms). */
  readonly reuse?: ReadonlyMap<number, NodeAddress>;
}

/**
 * The ARN Step Functions gives the execution named `name` of `stateMachineArn`
 * (`arn:…:stateMachine:{machine}` → `arn:…:execution:{machine}:{name}`), known before it starts.
 */
export function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/** Writes the graph and arguments to S3, then the dispatch and node items. */
export async function createDispatchRecords(ctx: RuntimeContext, records: DispatchRecords, signal?: AbortSignal): Promise<void> {
  const { dispatchId, graph } = records;
  await ctx.payloads.putText(payloadKeys.graph(dispatchId), JSON.stringify(graph.toJSON()), signal);
  await ctx.payloads.putText(payloadKeys.args(dispatchId), records.serializedArgs, signal);
  const nodes: NodeItem[] = graph.nodes.map((node) => ({
    dispatchId,
    nodeId: node.id,
    name: node.name,
    kind: node.kind,
    electron: node.electron,
    executor: executorLabel(node.executor),
    executorJson: node.executor,
    retries: node.retries,
    graceSeconds: node.graceSeconds,
    status: NodeStatus.NEW_OBJECT,
    parents: [...graph.parents(node.id)],
    children: [...graph.children(node.id)],
    awaitingChildren: graph.children(node.id).filter((child) => records.awaitingNodes.has(child)),
    attempts: 0,
    cancelRequested: false,
    ...(records.reuse?.has(node.id) ? { reuse: records.reuse.get(node.id)! } : {}),
  }));
  // Nodes before the dispatch item: a dispatch that is listed always has all of its nodes.
  await ctx.store.createNodes(nodes, signal);
  await ctx.store.createDispatch(
    {
      dispatchId,
      lattice: graph.lattice.name,
      status: DispatchStatus.RUNNING,
      startedAt: ctx.now().toISOString(),
      nodeCount: graph.nodes.length,
      stateMachineArn: records.stateMachineArn,
      cancelRequested: false,
      ...(records.parent ? { parent: records.parent } : {}),
      ...(records.executionArn ? { executionArn: records.executionArn } : {}),
      ...(records.redispatchOf ? { redispatchOf: records.redispatchOf } : {}),
      ...(records.dryRun ? { dryRun: true } : {}),
    },
    signal,
  );
}

/** A node and every node downstream of it, given each node's children. */
export function descendantsOf(id: number, childrenOf: (nodeId: number) => readonly number[]): number[] {
  const seen = new Set<number>([id]);
  const queue = [id];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const child of childrenOf(current)) {
      if (!seen.has(child)) {
        seen.add(child);
        queue.push(child);
      }
    }
  }
  return [...seen];
}
