/**
 * The read side: a dispatch as `getResult` and `GET /dispatches/{id}` report it.
 */
import type { DispatchStatus, NodeStatus } from '../status.ts';
import type { RuntimeContext } from './context.ts';
import { payloadKeys } from './payloads.ts';
import { deserializeError, type SerializedError } from './serialization.ts';
import type { CancelMethod } from '../status.ts';
import type { CancelRequestItem } from './store.ts';

/** One node of a dispatch result. */
export interface NodeResult {
  readonly id: number;
  readonly name: string;
  /** `electron`, or `sublattice` for a node that runs a child dispatch. */
  readonly kind: 'electron' | 'sublattice';
  readonly status: NodeStatus;
  readonly executor: string;
  /** Ids of the nodes this one takes inputs from (the transport graph's edges). */
  readonly parents?: readonly number[];
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly attempts: number;
  readonly error?: SerializedError;
  readonly jobHandle?: string;
  readonly cancelRequested: boolean;
  /** How the node was stopped, when it was cancelled. */
  readonly cancelledBy?: CancelMethod;
  readonly cancelReason?: string;
  readonly childDispatchId?: string;
}

/** A dispatch as stored: statuses, timings, cancel audit trail, and (once completed) the result. */
export interface DispatchResult<R = unknown> {
  readonly dispatchId: string;
  readonly lattice: string;
  readonly status: DispatchStatus;
  /** The lattice's return value; undefined unless the dispatch COMPLETED. */
  readonly result: R | undefined;
  /** Why the dispatch failed (the failed node's error); undefined otherwise. */
  readonly error: (Error & { code?: string }) | undefined;
  readonly startedAt: string;
  readonly endedAt: string | undefined;
  readonly cancelRequests: CancelRequestItem[];
  readonly nodes: NodeResult[];
  /** For a child dispatch: the sublattice node that ran it. */
  readonly parent?: { readonly dispatchId: string; readonly nodeId: number };
}

/** Reads a dispatch (throws DispatchNotFoundError for an unknown id). */
export async function describeDispatch<R = unknown>(ctx: RuntimeContext, dispatchId: string, options: { includeResult?: boolean } = {}): Promise<DispatchResult<R>> {
  const dispatch = await ctx.store.requireDispatch(dispatchId);
  const [nodes, cancelRequests] = await Promise.all([ctx.store.listNodes(dispatchId), ctx.store.listCancelRequests(dispatchId)]);
  let result: R | undefined;
  if (options.includeResult !== false && dispatch.hasResult) result = await ctx.payloads.getValue<R>(payloadKeys.result(dispatchId));
  return {
    dispatchId,
    lattice: dispatch.lattice,
    status: dispatch.status,
    result,
    error: dispatch.error ? deserializeError(dispatch.error) : undefined,
    startedAt: dispatch.startedAt,
    endedAt: dispatch.endedAt,
    cancelRequests,
    ...(dispatch.parent ? { parent: dispatch.parent } : {}),
    nodes: nodes.map((n) => ({
      id: n.nodeId,
      name: n.name,
      kind: n.kind,
      status: n.status,
      executor: n.executor,
      parents: n.parents,
      attempts: n.attempts,
      cancelRequested: n.cancelRequested,
      ...(n.startedAt ? { startedAt: n.startedAt } : {}),
      ...(n.endedAt ? { endedAt: n.endedAt } : {}),
      ...(n.error ? { error: n.error } : {}),
      ...(n.jobHandle ? { jobHandle: n.jobHandle } : {}),
      ...(n.cancelledBy ? { cancelledBy: n.cancelledBy } : {}),
      ...(n.cancelReason ? { cancelReason: n.cancelReason } : {}),
      ...(n.childDispatchId ? { childDispatchId: n.childDispatchId } : {}),
    })),
  };
}
