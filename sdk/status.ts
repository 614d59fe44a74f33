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

/** How a node came to be cancelled: what valence did to stop it. */
export const CancelMethod = {
  /** Cancelled before it started: nothing ran, nothing was uploaded or submitted. */
  NotStarted: 'not-started',
  /** A parent failed; the node never ran. */
  UpstreamFailed: 'upstream-failed',
  /** A parent was cancelled; the node never ran. */
  UpstreamCancelled: 'upstream-cancelled',
  /** The electron's AbortSignal fired and it stopped within its grace period. */
  Signal: 'signal',
  /** The electron ignored its signal; its worker or process was terminated after the grace period. */
  Terminated: 'terminated',
  /** Batch `TerminateJob` on a started job. */
  TerminateJob: 'TerminateJob',
  /** Batch `CancelJob` on a queued job. */
  CancelJob: 'CancelJob',
  /** Braket `CancelQuantumTask`. */
  CancelQuantumTask: 'CancelQuantumTask',
  /** Braket hybrid-job `CancelJob`. */
  CancelHybridJob: 'CancelHybridJob',
  /** A custom executor's `cancel()`. */
  ExecutorCancel: 'executor.cancel',
  /** The executor saw the flag between two of its steps and stopped there. */
  BetweenSteps: 'between-steps',
  /** A sublattice node whose child dispatch was cancelled. */
  ChildDispatch: 'child-dispatch',
  /**
   * A node of a child dispatch that did not exist yet when its path (`"5/2"`) was cancelled:
   * recorded on the parent dispatch and applied when the child was created, before it started.
   */
  PendingChild: 'pending-child',
} as const;
/** One of {@link CancelMethod}. */
export type CancelMethod = (typeof CancelMethod)[keyof typeof CancelMethod];
