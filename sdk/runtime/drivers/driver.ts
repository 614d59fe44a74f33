/**
 * The one interface every executor kind implements: what the step handler, the cancel
 * handler, the completion handler and the sweeper ask of a kind. A driver module imports
 * neither `cancel.ts` nor `completion.ts`; what it needs of them (cancelling a child dispatch)
 * arrives as a parameter, so no runtime module imports in a circle.
 *
 * @module
 */
import type { AwsClients } from '../../aws.ts';
import type { NodeStatus } from '../../status.ts';
import type { RuntimeContext } from '../context.ts';
import type { SerializedError } from '../serialization.ts';
import type { CancelMethod } from '../../status.ts';
import type { DispatchItem, NodeItem } from '../store.ts';
import type { GraphCatalog, RuntimeGraph, RuntimeNode } from '../workflows.ts';
import type { DriverKind } from './kinds.ts';

/** What the Lambda runtime tells the handler about itself. */
export interface InvocationInfo {
  /** Milliseconds until Lambda stops this invocation. */
  getRemainingTimeInMillis(): number;
  readonly awsRequestId?: string;
}

/** How an executor run ended, as the step logic records it. */
export type NodeOutcome =
  | { readonly status: typeof NodeStatus.COMPLETED; readonly output: unknown }
  | { readonly status: typeof NodeStatus.FAILED; readonly error: SerializedError }
  | { readonly status: typeof NodeStatus.CANCELLED; readonly cancelledBy: CancelMethod }
  /** Submitted to a long-running service; ends later. */
  | { readonly status: typeof NodeStatus.RUNNING }
  /** Another invocation took the node over; write nothing. */
  | { readonly status: 'LOST' };

/** Cancels (part of) a child dispatch; the step and cancel handlers pass `cancelDispatch`. */
export type CancelChild = (childDispatchId: string, request: { readonly taskIds?: readonly (number | string)[]; readonly reason: string; readonly requestedBy: string; readonly force?: boolean }) => Promise<unknown>;

/** Everything a driver needs about the node it starts. */
export interface NodeRun {
  readonly ctx: RuntimeContext;
  readonly catalog: GraphCatalog;
  readonly dispatch: DispatchItem;
  readonly graph: RuntimeGraph;
  readonly node: RuntimeNode;
  /** The node item as claimed (status RUNNING, held by {@link runId}). */
  readonly item: NodeItem;
  readonly runId: string;
  /** The waiting state's token, for long-running kinds. */
  readonly taskToken: string | undefined;
  readonly info: InvocationInfo;
  /** Reads the node's inputs (parents' outputs, parameters, constants). */
  loadInputs(signal?: AbortSignal): Promise<unknown[]>;
  /** Reads another node's inputs (a packed job's submitter uploads its siblings' too). */
  loadInputsOf(nodeId: number, signal?: AbortSignal): Promise<unknown[]>;
  /** Throws TaskCancelledError when the node's cancel flag is set (or the claim was lost). */
  checkCancelled(): Promise<void>;
  /** Cancels a child dispatch (a sublattice cancelled while it was being started). */
  readonly cancelChild: CancelChild;
}

/** An EventBridge event as delivered to the completion handler. */
export interface ServiceEvent {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
}

/** A terminal state of a job, whatever service ran it. */
export type JobEnd =
  | { readonly kind: 'succeeded'; readonly braketResult?: { bucket: string; directory: string } }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'cancelled'; readonly reason: string };

/** The work behind a job handle, as far as stopping it needs to know. */
export interface JobRef {
  readonly dispatchId: string;
  readonly nodeId: number;
  readonly jobHandle: string;
  readonly childDispatchId?: string;
  /** For custom executors: the class to rebuild and call `cancel` on. */
  readonly executorJson?: NodeItem['executorJson'];
}

/**
 * How hard to stop: `graceful` lets the work end on its own terms where the service allows
 * (Batch `CancelJob` while queued, SIGTERM to a process group); `forced` ends it now
 * (`TerminateJob`, SIGKILL).
 */
export type StopMode = 'graceful' | 'forced';

/** What {@link ExecutorDriver.stopJob} may use: AWS clients and the caller's signal. */
export interface StopJobContext {
  readonly aws: AwsClients;
  readonly signal: AbortSignal;
  /** Needed to stop a child dispatch. */
  readonly cancelChild?: CancelChild;
  /** Makes sure custom executor classes are registered (imports the workflows module). */
  readonly loadExecutors?: () => Promise<void>;
}

/** What the cancel handler (or the sweeper) asks a driver to do for flagged RUNNING nodes. */
export interface StopRequest {
  readonly reason: string;
  readonly requestedBy: string;
  /** Kill the work at once, skipping its grace period (`force: true` on the cancel). */
  readonly force?: boolean;
  readonly cancelChild: CancelChild;
  readonly loadExecutors?: () => Promise<void>;
}

/** What one node's stop did: the method used (`pending` when the node's owner stops it), or the error. */
export type StopResult =
  | { readonly nodeId: number; readonly method: CancelMethod | 'pending' }
  | { readonly nodeId: number; readonly method: 'pending'; readonly error: string };

/** Everything the runtime asks of one executor kind. */
export interface ExecutorDriver {
  readonly kind: DriverKind;
  /** Whether the node's Task state waits for a callback (from `DRIVER_TRAITS`). */
  readonly usesCallback: boolean;
  /** The method a node of this kind reports when its job ended cancelled and no cancel action was recorded. */
  readonly cancelMethod: CancelMethod;
  /**
   * Starts (or runs) a claimed node. Checks the cancel flag before each of its steps; a
   * long-running kind records its job handle before it returns `RUNNING`.
   */
  start(run: NodeRun): Promise<NodeOutcome>;
  /**
   * Stops the work of RUNNING nodes of this kind whose cancel flag is set, for the cancel
   * handler and the sweeper. Records the method (`setCancelAction`) before the service call,
   * so a completion event that overtakes the answer ends the node with it.
   */
  stop(ctx: RuntimeContext, nodes: readonly NodeItem[], request: StopRequest): Promise<StopResult[]>;
  /**
   * Stops the work behind one job handle, without reading or writing the table: what
   * `Executor.cancel(taskMetadata, jobHandle)` and the just-submitted race do. Resolves true
   * when the work was stopped or is stopping, false when there was nothing to stop.
   */
  stopJob(ctx: StopJobContext, job: JobRef, mode: StopMode): Promise<boolean>;
  /** Asks the service how a node's job stands; undefined while it runs (or when the kind has nothing to poll). */
  poll(ctx: RuntimeContext, node: NodeItem): Promise<JobEnd | undefined>;
  /** The job end a state-change event reports, with the job handle it names; undefined for events of other kinds. */
  endFromEvent(event: ServiceEvent): { readonly handle: string; readonly end: JobEnd } | undefined;
  /** Writes the node's output for a job that succeeded (a job that writes its own output does nothing). */
  storeOutput(ctx: RuntimeContext, node: NodeItem, end: Extract<JobEnd, { kind: 'succeeded' }>): Promise<void>;
}

/** A `stop` that handles each node on its own, reporting a failed call as that node's error. */
export async function stopEach(
  nodes: readonly NodeItem[],
  stopOne: (node: NodeItem) => Promise<CancelMethod | 'pending'>,
): Promise<StopResult[]> {
  const results: StopResult[] = [];
  for (const node of nodes) {
    try {
      results.push({ nodeId: node.nodeId, method: await stopOne(node) });
    } catch (error) {
      results.push({ nodeId: node.nodeId, method: 'pending', error: `${(error as Error).name}: ${(error as Error).message}` });
    }
  }
  return results;
}

/** The parts of a driver that kinds without a service job share: nothing to poll, no events, no output to fetch. */
export const NO_SERVICE_JOB = {
  poll: (): Promise<undefined> => Promise.resolve(undefined),
  endFromEvent: (): undefined => undefined,
  storeOutput: (): Promise<void> => Promise.resolve(),
} as const;

/** The job reference of a node item that has a handle. */
export function jobRefOf(node: NodeItem & { readonly jobHandle: string }): JobRef {
  return {
    dispatchId: node.dispatchId,
    nodeId: node.nodeId,
    jobHandle: node.jobHandle,
    executorJson: node.executorJson,
    ...(node.childDispatchId === undefined ? {} : { childDispatchId: node.childDispatchId }),
  };
}

/** A string field of an event's detail, or `fallback` when it is absent or not a string. */
export function textOf(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/** The name of an AWS SDK error (`ConflictException`, …), or undefined. */
export function errorName(error: unknown): string | undefined {
  return (error as { name?: string } | null)?.name;
}
