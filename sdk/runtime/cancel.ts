/**
 * Cancellation: the cancel handler's logic, and the sweeper's second try.
 *
 * For each target not yet terminal the cancel flag is set first (a conditional write); the
 * step handler's claim refuses a flagged node, so a node that has not started never will.
 * Then, by what the node is doing:
 * - not started → ended `CANCELLED` here (nothing serialized, uploaded or submitted);
 * - running inside the step handler (Lambda, local process) → its watchdog sees the flag,
 *   aborts the electron's signal, and terminates it after `graceSeconds`;
 * - a Batch job → `CancelJob` while queued, `TerminateJob` once started;
 * - a Braket quantum task → `CancelQuantumTask`; a hybrid job → Braket's `CancelJob`;
 * - a sublattice → its child dispatch is cancelled, recursively;
 * - a custom executor's job → `executor.cancel(taskMetadata, jobHandle)`.
 * A whole-dispatch cancel also stops the execution, so no further state starts.
 *
 * The report says what really happened per node, after waiting (bounded) for the work to
 * stop; a node whose stop did not take is left to the sweeper, which tries again.
 */
import { randomUUID } from 'node:crypto';
import { CancelJobCommand, DescribeJobsCommand, TerminateJobCommand } from '@aws-sdk/client-batch';
import { CancelJobCommand as CancelHybridJobCommand, CancelQuantumTaskCommand } from '@aws-sdk/client-braket';
import { StopExecutionCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus, NodeStatus, isTerminalDispatchStatus, isTerminalNodeStatus } from '../status.ts';
import { Executor } from '../model/executors.ts';
import type { RuntimeContext } from './context.ts';
import { releaseDependents } from './settle.ts';
import { endNodeForJob, pollJob } from './completion.ts';
import { CancelMethod } from '../status.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import type { DispatchItem, NodeItem } from './store.ts';

/** What a caller asks for. */
export interface CancelRequest {
  /** Node ids, or paths into sublattices (`"5/2"`); absent or empty means the whole dispatch. */
  readonly taskIds?: readonly (number | string)[];
  /** Free text recorded with the request and passed to the services (`TerminateJob` reason). */
  readonly reason?: string;
  /** Who asked: the caller's identity from the request context. */
  readonly requestedBy: string;
  /** How long to wait for running work to stop before answering. @default derived from grace periods, at most 20 s */
  readonly waitMs?: number;
}

/** One node the request cancelled (or is stopping). */
export interface CancelledNode {
  /** Node id, or a path (`"5/2"`) for nodes inside a sublattice. */
  readonly id: number | string;
  readonly name: string;
  /** Status when the request arrived. */
  readonly previousStatus: typeof NodeStatus.NEW_OBJECT | typeof NodeStatus.RUNNING;
  /** Status when the answer was written: `CANCELLED`, or `RUNNING` while its stop is still under way. */
  readonly status: NodeStatus;
  /** What valence did to stop it. */
  readonly method: CancelMethod | 'pending';
  /** Set when a stop call failed; the sweeper retries it. */
  readonly error?: string;
}

/** The truthful answer to a cancel request. */
export interface CancelReport {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly requestedAt: string;
  readonly cancelled: CancelledNode[];
  readonly alreadyTerminal: { readonly id: number | string; readonly status: NodeStatus }[];
  readonly notFound: (number | string)[];
  /** True when this request stopped the dispatch's Step Functions execution. */
  readonly executionStopped: boolean;
}

/** Thrown for task ids that are not numbers or `a/b` paths. */
export class InvalidCancelRequestError extends ValenceError {
  override readonly name: string = 'InvalidCancelRequestError';
  constructor(message: string) {
    super(ErrorCode.CANCEL_INVALID_REQUEST, message);
  }
}

/** Dependencies of the cancel logic. */
export interface CancelDeps {
  readonly ctx: RuntimeContext;
  /** Makes sure custom executor classes are registered (imports the workflows module). */
  readonly loadExecutors?: () => Promise<void>;
}

const TASK_PATH = /^\d+(\/\d+)*$/;

/** Parses task ids as given (numbers or `"5/2"` paths); throws InvalidCancelRequestError naming the bad one. */
export function parseTaskIds(taskIds: unknown): (number | string)[] | undefined {
  if (taskIds === undefined || taskIds === null) return undefined;
  if (!Array.isArray(taskIds)) throw new InvalidCancelRequestError('"taskIds" must be an array of node ids or "parent/child" paths');
  return taskIds.map((id, index) => {
    if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
    if (typeof id === 'string' && TASK_PATH.test(id)) return id.includes('/') ? id : Number(id);
    throw new InvalidCancelRequestError(`taskIds[${index}] is ${JSON.stringify(id)}; expected a node id (integer ≥ 0) or a path like "5/2"`);
  });
}

/** Cancels a dispatch or some of its nodes. Throws DispatchNotFoundError for an unknown id. */
export async function cancelDispatch(ctx: RuntimeContext, dispatchId: string, request: CancelRequest, deps: Omit<CancelDeps, 'ctx'> = {}): Promise<CancelReport> {
  const taskIds = request.taskIds && request.taskIds.length > 0 ? request.taskIds : undefined;
  const requestedAt = ctx.now().toISOString();
  const requestId = randomUUID();
  const reason = request.reason ?? `cancelled by ${request.requestedBy}`;
  const dispatch = await ctx.store.requireDispatch(dispatchId);
  const nodes = await ctx.store.listNodes(dispatchId);
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  const report: Mutable<CancelReport> = {
    dispatchId,
    requestId,
    requestedAt,
    cancelled: [],
    alreadyTerminal: [],
    notFound: [],
    executionStopped: false,
  };
  await ctx.store.recordCancelRequest(dispatchId, { requestId, requestedAt, requestedBy: request.requestedBy, reason, targets: taskIds ?? [] });

  // Resolve targets: the named nodes and every descendant; paths go to child dispatches.
  const targets = new Set<number>();
  const childRequests = new Map<number, (number | string)[]>();
  if (!taskIds) {
    for (const node of nodes) targets.add(node.nodeId);
  } else {
    for (const id of taskIds) {
      if (typeof id === 'string') {
        const [head, ...rest] = id.split('/');
        const parent = byId.get(Number(head));
        if (!parent || parent.kind !== 'sublattice') {
          report.notFound.push(id);
          continue;
        }
        const list = childRequests.get(parent.nodeId) ?? [];
        list.push(rest.length === 1 ? Number(rest[0]) : rest.join('/'));
        childRequests.set(parent.nodeId, list);
        continue;
      }
      if (!byId.has(id)) {
        report.notFound.push(id);
        continue;
      }
      for (const descendant of descendantsOf(id, byId)) targets.add(descendant);
    }
  }

  if (!taskIds) {
    await ctx.store.requestDispatchCancel(dispatchId);
    if (dispatch.status === DispatchStatus.RUNNING && dispatch.executionArn) {
      report.executionStopped = await stopExecution(ctx, dispatch.executionArn, reason);
    }
  }

  const stopping: { node: NodeItem; entry: Mutable<CancelledNode> }[] = [];
  const running: NodeItem[] = [];
  for (const id of [...targets].sort((a, b) => a - b)) {
    const flagged = await ctx.store.requestNodeCancel(dispatchId, id, reason, requestedAt);
    if (!flagged) {
      const before = byId.get(id);
      const now = (await ctx.store.getNode(dispatchId, id)) ?? before;
      if (!now) continue;
      if (before && !isTerminalNodeStatus(before.status) && now.status === NodeStatus.CANCELLED) {
        // It ended while this request ran, as a consequence of it (an ancestor it cancelled).
        report.cancelled.push({ id, name: now.name, previousStatus: NodeStatus.NEW_OBJECT, status: now.status, method: now.cancelledBy ?? CancelMethod.UpstreamCancelled });
      } else {
        report.alreadyTerminal.push({ id, status: now.status });
      }
      continue;
    }
    if (flagged.status === NodeStatus.NEW_OBJECT) {
      const ended = await ctx.store.finishNode(dispatchId, id, {
        status: NodeStatus.CANCELLED,
        endedAt: ctx.now().toISOString(),
        cancelledBy: CancelMethod.NotStarted,
        cancelReason: reason,
      });
      const final = ended ?? (await ctx.store.getNode(dispatchId, id));
      report.cancelled.push({ id, name: flagged.name, previousStatus: NodeStatus.NEW_OBJECT, status: final?.status ?? NodeStatus.CANCELLED, method: final?.cancelledBy ?? CancelMethod.NotStarted });
      if (ended) await releaseDependents(ctx, ended);
      continue;
    }
    running.push(flagged);
  }

  // Packed tasks: when every child of a Batch array job is cancelled, terminate the parent job
  // once; otherwise each node's own child index is terminated and its siblings run on.
  const wholeArrays = await wholeArrayJobs(ctx, running);
  for (const flagged of running) {
    const id = flagged.nodeId;
    const entry: Mutable<CancelledNode> = { id, name: flagged.name, previousStatus: NodeStatus.RUNNING, status: NodeStatus.RUNNING, method: 'pending' };
    try {
      const parentJob = flagged.jobHandle ? arrayParentOf(flagged.jobHandle) : undefined;
      if (parentJob && wholeArrays.has(parentJob)) {
        await ctx.store.setCancelAction(dispatchId, id, CancelMethod.TerminateJob);
        if (wholeArrays.get(parentJob) === 'pending') {
          wholeArrays.set(parentJob, 'terminated');
          await ctx.aws.batch.send(new TerminateJobCommand({ jobId: parentJob, reason }));
        }
        entry.method = CancelMethod.TerminateJob;
      } else {
        entry.method = await stopRunningWork(ctx, flagged, reason, deps, request.requestedBy);
      }
      if (entry.method !== 'pending') await endIfJobEnded(ctx, dispatchId, id);
    } catch (error) {
      entry.error = `${(error as Error).name}: ${(error as Error).message}`;
    }
    report.cancelled.push(entry);
    stopping.push({ node: flagged, entry });
  }

  for (const [parentId, ids] of childRequests) {
    const parent = (await ctx.store.getNode(dispatchId, parentId)) ?? byId.get(parentId)!;
    if (!parent.childDispatchId) {
      for (const id of ids) report.notFound.push(`${parentId}/${id}`);
      continue;
    }
    const child = await cancelDispatch(ctx, parent.childDispatchId, { ...request, taskIds: ids }, deps);
    const prefix = (id: number | string): string => `${parentId}/${id}`;
    report.cancelled.push(...child.cancelled.map((c) => ({ ...c, id: prefix(c.id) })));
    report.alreadyTerminal.push(...child.alreadyTerminal.map((c) => ({ ...c, id: prefix(c.id) })));
    report.notFound.push(...child.notFound.map(prefix));
  }

  // Wait (bounded) for running work to stop, so the answer is what happened, not what was asked.
  if (stopping.length > 0) {
    const graceMax = Math.max(...stopping.map((s) => s.node.graceSeconds ?? 10));
    const waitMs = request.waitMs ?? Math.min(20_000, graceMax * 1000 + 3_000);
    const deadline = Date.now() + waitMs;
    let pending = stopping;
    while (pending.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = await ctx.store.getNodes(dispatchId, pending.map((p) => p.node.nodeId));
      const still: typeof pending = [];
      for (const p of pending) {
        const item = now.find((n) => n.nodeId === p.node.nodeId);
        if (item && isTerminalNodeStatus(item.status)) {
          p.entry.status = item.status;
          if (item.cancelledBy) p.entry.method = item.cancelledBy;
        } else {
          still.push(p);
        }
      }
      pending = still;
    }
  }

  // Node order, with paths into sublattices after the node that holds them.
  const order = (id: number | string): number[] => String(id).split('/').map(Number);
  report.cancelled.sort((a, b) => {
    const [x, y] = [order(a.id), order(b.id)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
    return 0;
  });
  if (!taskIds && !isTerminalDispatchStatus(dispatch.status)) {
    const ended = await ctx.store.finishDispatch(dispatchId, { status: DispatchStatus.CANCELLED, endedAt: ctx.now().toISOString() });
    if (ended?.parent) await endParentOfCancelledChild(ctx, ended);
  }
  return report;
}

/**
 * Ends a node here when its job is already known to be over (a queued Batch job cancels at
 * once, a quantum task too), instead of waiting for the state-change event to arrive.
 */
async function endIfJobEnded(ctx: RuntimeContext, dispatchId: string, nodeId: number): Promise<void> {
  const node = await ctx.store.getNode(dispatchId, nodeId);
  if (!node?.jobHandle || isTerminalNodeStatus(node.status)) return;
  const end = await pollJob(ctx, node);
  if (end) await endNodeForJob(ctx, node, end);
}

/** The parent job id of an array child's handle (`…:job/<id>:<index>`), or undefined. */
function arrayParentOf(jobHandle: string): string | undefined {
  const jobId = jobHandle.slice(jobHandle.lastIndexOf('/') + 1);
  const match = /^(.+):(\d+)$/.exec(jobId);
  return match?.[1];
}

/** Array jobs every child of which is among `nodes` (so the parent itself can be terminated). */
async function wholeArrayJobs(ctx: RuntimeContext, nodes: readonly NodeItem[]): Promise<Map<string, 'pending' | 'terminated'>> {
  const byParent = new Map<string, number>();
  for (const node of nodes) {
    const parent = node.jobKind === 'batch' && node.jobHandle ? arrayParentOf(node.jobHandle) : undefined;
    if (parent) byParent.set(parent, (byParent.get(parent) ?? 0) + 1);
  }
  const whole = new Map<string, 'pending' | 'terminated'>();
  for (const [parent, count] of byParent) {
    const job = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [parent] }))).jobs?.[0];
    if (job?.arrayProperties?.size === count) whole.set(parent, 'pending');
  }
  return whole;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function descendantsOf(id: number, byId: ReadonlyMap<number, NodeItem>): number[] {
  const seen = new Set<number>([id]);
  const queue = [id];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const child of byId.get(current)?.children ?? []) {
      if (!seen.has(child)) {
        seen.add(child);
        queue.push(child);
      }
    }
  }
  return [...seen];
}

async function stopExecution(ctx: RuntimeContext, executionArn: string, reason: string): Promise<boolean> {
  try {
    await ctx.aws.sfn.send(new StopExecutionCommand({ executionArn, error: 'valence.Cancelled', cause: reason.slice(0, 32_000) }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ExecutionDoesNotExist') return false;
    throw error;
  }
}

/**
 * Stops the work of a RUNNING node whose flag is set; returns the method used, or `pending`
 * when the node's own watchdog or between-steps check will stop it.
 */
export async function stopRunningWork(
  ctx: RuntimeContext,
  node: NodeItem,
  reason: string,
  deps: Omit<CancelDeps, 'ctx'>,
  requestedBy: string,
): Promise<CancelMethod | 'pending'> {
  if (!node.jobHandle) return 'pending';
  switch (node.jobKind) {
    case 'batch': {
      const jobId = node.jobHandle.slice(node.jobHandle.lastIndexOf('/') + 1);
      const described = await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobId] }));
      const status = described.jobs?.[0]?.status;
      if (status === 'SUCCEEDED' || status === 'FAILED') return 'pending';
      if (status === 'SUBMITTED' || status === 'PENDING' || status === 'RUNNABLE') {
        await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelJob);
        await ctx.aws.batch.send(new CancelJobCommand({ jobId, reason }));
        // CancelJob is a no-op once the job reached STARTING; TerminateJob covers that race.
        await ctx.aws.batch.send(new TerminateJobCommand({ jobId, reason }));
        return CancelMethod.CancelJob;
      }
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.TerminateJob);
      await ctx.aws.batch.send(new TerminateJobCommand({ jobId, reason }));
      return CancelMethod.TerminateJob;
    }
    case 'braket-task': {
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelQuantumTask);
      try {
        await ctx.aws.braket.send(new CancelQuantumTaskCommand({ quantumTaskArn: node.jobHandle, clientToken: randomUUID() }));
      } catch (error) {
        // Already terminal: the completion handler records what it ended as.
        if ((error as { name?: string }).name !== 'ConflictException') throw error;
      }
      return CancelMethod.CancelQuantumTask;
    }
    case 'braket-job': {
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelHybridJob);
      try {
        await ctx.aws.braket.send(new CancelHybridJobCommand({ jobArn: node.jobHandle }));
      } catch (error) {
        if ((error as { name?: string }).name !== 'ConflictException') throw error;
      }
      return CancelMethod.CancelHybridJob;
    }
    case 'child-dispatch': {
      if (!node.childDispatchId) return 'pending';
      await cancelDispatch(ctx, node.childDispatchId, { reason, requestedBy }, deps);
      return CancelMethod.ChildDispatch;
    }
    case 'custom': {
      await deps.loadExecutors?.();
      const executor = Executor.fromJSON(node.executorJson);
      await executor.cancel({ dispatchId: node.dispatchId, nodeId: node.nodeId }, node.jobHandle);
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.ExecutorCancel);
      return CancelMethod.ExecutorCancel;
    }
    default:
      // `pid`: the handler that owns the process group stops it when its watchdog fires.
      return 'pending';
  }
}

async function endParentOfCancelledChild(ctx: RuntimeContext, child: DispatchItem): Promise<void> {
  const { dispatchId, nodeId } = child.parent!;
  const ended = await ctx.store.finishNode(dispatchId, nodeId, {
    status: NodeStatus.CANCELLED,
    endedAt: ctx.now().toISOString(),
    cancelledBy: CancelMethod.ChildDispatch,
  });
  if (ended) await releaseDependents(ctx, ended);
}

export { DispatchNotFoundError };
