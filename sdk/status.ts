/**
 * Status values of nodes and dispatches, defined once.
 *
 * The DynamoDB table is the source of truth for these; every transition is a conditional
 * write that never leaves a terminal status.
 *
 * @module
 */

/** Lifecycle of one node (electron or sublattice) in a dispatch. */
export const NodeStatus = {
  /** Created with the dispatch; not started. */
  NEW_OBJECT: 'NEW_OBJECT',
  /** Its handler won the `NEW_OBJECT → RUNNING` write; work is in progress. */
  RUNNING: 'RUNNING',
  /** Finished; its output is stored. */
  COMPLETED: 'COMPLETED',
  /** The electron threw (after its retries), or timed out. */
  FAILED: 'FAILED',
  /** Stopped by a cancel request, or never started because an upstream node failed. */
  CANCELLED: 'CANCELLED',
} as const;

/** One of the {@link NodeStatus} values. */
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

/** Lifecycle of a dispatch (one run of a lattice). */
export const DispatchStatus = {
  RUNNING: 'RUNNING',
  COMPLETED: 'COMPLETED',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
} as const;

/** One of the {@link DispatchStatus} values. */
export type DispatchStatus = (typeof DispatchStatus)[keyof typeof DispatchStatus];

/** Node statuses that never change again. */
export const TERMINAL_NODE_STATUSES: ReadonlySet<NodeStatus> = new Set<NodeStatus>([
  NodeStatus.COMPLETED,
  NodeStatus.FAILED,
  NodeStatus.CANCELLED,
]);

/** Dispatch statuses that never change again. */
export const TERMINAL_DISPATCH_STATUSES: ReadonlySet<DispatchStatus> = new Set<DispatchStatus>([
  DispatchStatus.COMPLETED,
  DispatchStatus.FAILED,
  DispatchStatus.CANCELLED,
]);

/** True when a node in `status` will never change status again. */
export function isTerminalNodeStatus(status: string): status is NodeStatus {
  return TERMINAL_NODE_STATUSES.has(status as NodeStatus);
}

/** True when a dispatch in `status` will never change status again. */
export function isTerminalDispatchStatus(status: string): status is DispatchStatus {
  return TERMINAL_DISPATCH_STATUSES.has(status as DispatchStatus);
}
