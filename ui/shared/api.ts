/**
 * The wire shapes between the dashboard's server (`ui/server/`) and its web app (`ui/web/`).
 *
 * Plain data only: this file imports nothing, so both the Node server and the browser bundle
 * can use it. Node ids are *paths*: `"3"` is node 3 of the dispatch shown, `"5/2"` is node 2 of
 * the child dispatch that sublattice node 5 runs — the same syntax `cancel({ taskIds })` takes.
 *
 * @module
 */

/** Node statuses as the table stores them (mirrors `NodeStatus` in sdk/status.ts). */
export const NODE_STATUSES = ['NEW_OBJECT', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
/** One node status. */
export type NodeStatusName = (typeof NODE_STATUSES)[number];
/** Dispatch statuses (mirrors `DispatchStatus`). */
export const DISPATCH_STATUSES = ['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
/** One dispatch status. */
export type DispatchStatusName = (typeof DISPATCH_STATUSES)[number];

/** Node counts by status. */
export type StatusCounts = Partial<Record<NodeStatusName, number>>;

/** One row of the dispatches page. */
export interface DispatchRow {
  readonly dispatchId: string;
  readonly lattice: string;
  readonly status: DispatchStatusName;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly nodeCount: number;
  /** Undefined until the server read the dispatch's nodes once. */
  readonly counts?: StatusCounts;
}

/** One node of the graph, in a dispatch or (by path) in a sublattice's child dispatch. */
export interface NodeView {
  /** `"3"`, or `"5/2"` inside sublattice node 5. */
  readonly path: string;
  /** The dispatch this node belongs to (the child dispatch for a path with a `/`). */
  readonly dispatchId: string;
  readonly id: number;
  readonly name: string;
  readonly kind: 'electron' | 'sublattice';
  readonly status: NodeStatusName;
  readonly executor: string;
  /** Paths of the nodes it takes inputs from. */
  readonly parents: readonly string[];
  readonly attempts: number;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly error?: { readonly name: string; readonly message: string; readonly code?: string };
  readonly jobHandle?: string;
  readonly cancelRequested: boolean;
  readonly cancelledBy?: string;
  readonly cancelReason?: string;
  readonly childDispatchId?: string;
}

/** One recorded cancel request (the dispatch's audit trail). */
export interface CancelAuditEntry {
  readonly requestId: string;
  readonly requestedAt: string;
  readonly requestedBy: string;
  readonly reason?: string;
  /** Targets as paths; empty means the whole dispatch. */
  readonly targets: readonly string[];
  /** The dispatch the request was recorded on (a child dispatch for a sublattice's nodes). */
  readonly dispatchId: string;
  /** `OPEN` while it is being worked on, `DONE` once its report is final; absent on requests older than issue 13 (done). */
  readonly state?: 'OPEN' | 'DONE';
  /** How far an open request got: targets done out of all, and the step it is in. */
  readonly progress?: CancelProgressStep;
  /** Attempts at it so far (the continuation and the sweeper retry). */
  readonly attempts?: number;
  /** The last failed attempt (it is retried). */
  readonly lastError?: string;
  readonly finishedAt?: string;
}

/** The step an open cancel request is in, as the cancel issue defines its progress. */
export interface CancelProgressStep {
  readonly phase: string;
  readonly done: number;
  readonly total: number;
}

/** The dispatch header sent with every update. */
export interface DispatchHeader {
  readonly dispatchId: string;
  readonly lattice: string;
  readonly status: DispatchStatusName;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly error?: { readonly name: string; readonly message: string };
  readonly cancelRequests: readonly CancelAuditEntry[];
  /** Where node panels link job handles to (set on AWS only, never for a local endpoint). */
  readonly consoleRegion?: string;
}

/** SSE `snapshot`: the whole tree. SSE `delta`: the header and the nodes that changed. */
export interface DispatchUpdate {
  readonly header: DispatchHeader;
  readonly nodes: readonly NodeView[];
  /** True for a snapshot (replace everything), false for a delta (merge by path). */
  readonly full: boolean;
}

/** What the server can do; the web app shows a control only when its capability is there. */
export interface Capabilities {
  /**
   * Seam for issue 13: the SDK's `getCancelReport(id, requestId)` and `cancel(..., { wait:
   * false })`. False until that SDK exists; the page then shows only the final report.
   */
  readonly cancelProgress: boolean;
  /** Seam for issue 16: the SDK's `redispatch(id, { dryRun })`. */
  readonly redispatch: boolean;
  /** Whether the SDK's `CancelOptions` has `force` (skip the grace period); the dialog offers it then. */
  readonly force: boolean;
}

/** Body of `POST /api/dispatches/{id}/cancel`. */
export interface CancelBody {
  /** Paths; absent means the whole dispatch. */
  readonly taskIds?: readonly string[];
  readonly reason: string;
  readonly force?: boolean;
}

/** Body of `POST /api/cancel-many`: cancel each listed (and confirmed) dispatch. */
export interface CancelManyBody {
  readonly dispatchIds: readonly string[];
  readonly reason: string;
  readonly force?: boolean;
}

/** Body of `POST /api/dispatches/{id}/redispatch`. */
export interface RedispatchBody {
  /** Only decide the plan (every node reuse or run, and why); nothing runs. @default false */
  readonly dryRun?: boolean;
  /** Reuse completed results whose content matches; `false` reruns everything. @default true */
  readonly reuse?: boolean;
}

/** One node of a redispatch plan (mirrors the SDK's `PlannedNode`). */
export interface PlannedNodeView {
  readonly nodeId: number;
  readonly name: string;
  readonly electron: string;
  readonly action: 'reuse' | 'run';
  /** Why it runs, or what it reuses. */
  readonly reason: string;
  /** For a reuse: the dispatch and node that produced the result. */
  readonly from?: { readonly dispatchId: string; readonly nodeId: number };
  /** The old dispatch had no node at this position. */
  readonly isNew: boolean;
  /**
   * For a sublattice: the nodes of its old child dispatch, broken out (added by the dashboard
   * server). A sublattice reruns as a whole, so each of them runs again.
   */
  readonly children?: readonly PlannedChildView[];
}

/** One node inside a sublattice of a redispatch plan (a path like `"7/2"`). */
export interface PlannedChildView {
  readonly path: string;
  readonly name: string;
  /** Its status in the old dispatch. */
  readonly was: NodeStatusName;
  readonly action: 'run';
  readonly reason: string;
}

/** Answer of `POST /api/dispatches/{id}/redispatch`: the SDK's `RedispatchPlan`. */
export interface RedispatchPlanView {
  readonly redispatchOf: string;
  readonly lattice: string;
  /** The new dispatch; for a dry run, the dry-run dispatch that decided the plan and ran nothing. */
  readonly dispatchId: string;
  readonly dryRun: boolean;
  readonly nodes: readonly PlannedNodeView[];
  readonly newNodes: readonly number[];
  readonly redrive: { readonly used: false; readonly reason: string };
}

/** One node in a cancel report. */
export interface CancelReportNode {
  readonly id: number | string;
  readonly name: string;
  readonly previousStatus: string;
  readonly status: string;
  readonly method: string;
  readonly error?: string;
  readonly jobHandle?: string;
  readonly endedAt?: string;
  /** What its work held and how long it ran (what the cancel saved). */
  readonly stopped?: { readonly executor: string; readonly ranMs: number; readonly vcpus?: number; readonly memoryMiB?: number; readonly gpus?: number; readonly shots?: number };
}

/** The cancel handler's report, as the SDK returns it. */
export interface CancelReportView {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly requestedAt: string;
  readonly cancelled: readonly CancelReportNode[];
  readonly alreadyTerminal: readonly { readonly id: number | string; readonly status: string }[];
  /** Targets a concurrent request flagged first (that request reports them). */
  readonly merged?: readonly { readonly id: number | string; readonly requestId: string; readonly status: string }[];
  readonly notFound: readonly (number | string)[];
  readonly executionStopped: boolean;
}

/** Answer (202) of a cancel the endpoint accepted without finishing it: its progress follows. */
export interface CancelAcceptedView {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly accepted: true;
}

/** Answer of `GET /api/dispatches/{id}/cancels/{requestId}`: the SDK's `CancelProgress`. */
export interface CancelProgressView {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly state: 'OPEN' | 'DONE';
  readonly requestedAt: string;
  readonly attempts?: number;
  readonly progressAt?: string;
  readonly lastError?: string;
  readonly finishedAt?: string;
  readonly progress?: CancelProgressStep;
  /** The final report, once `state` is `DONE`. */
  readonly report?: CancelReportView;
}

/** Answer of `POST /api/cancel-many`: one entry per dispatch. */
export interface CancelManyResult {
  readonly results: readonly ({ readonly dispatchId: string } & ({ readonly report: CancelReportView } | { readonly accepted: CancelAcceptedView } | { readonly skipped: string } | { readonly error: string }))[];
}

/** Answer of `GET /api/dispatches/{id}/nodes/{path}/output`. */
export interface OutputPreview {
  /** Text of the value (util.inspect), cut to {@link PREVIEW_CHARS}. */
  readonly preview?: string;
  readonly truncated?: boolean;
  /** Why there is no preview (not completed yet, a sublattice, …). */
  readonly unavailable?: string;
}

/** The most characters of a node's output the panel shows. */
export const PREVIEW_CHARS = 4_000;

/** An error answer of the API. */
export interface ApiError {
  readonly code: string;
  readonly message: string;
}
