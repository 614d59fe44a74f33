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
 * - a sublattice → its child dispatch is cancelled, recursively; a path into a sublattice
 *   whose child dispatch does not exist yet is recorded and applied when it is created
 *   (`pending-child`, see drivers/child-dispatch.ts);
 * - a custom executor's job → `executor.cancel(taskMetadata, jobHandle)`.
 * What each kind does is its driver's (`drivers/`); this module only orders the steps.
 * A whole-dispatch cancel also stops the execution, so no further state starts.
 *
 * The report says what really happened per node, after waiting (bounded) for the work to
 * stop; a node whose stop did not take is left to the sweeper, which tries again.
 */
import { randomUUID } from 'node:crypto';
import { StopExecutionCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus, NodeStatus, isTerminalDispatchStatus, isTerminalNodeStatus } from '../status.ts';
import type { RuntimeContext } from './context.ts';
import { releaseDependents } from './settle.ts';
import { endNodeForJob, pollJob } from './completion.ts';
import { CancelMethod } from '../status.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import type { DispatchItem, NodeItem } from './store.ts';
import { descendantsOf } from './dispatch-records.ts';
import { driverForJob } from './drivers/index.ts';
import type { ExecutorDriver, StopRequest } from './drivers/driver.ts';

/** What a caller asks for. */
export interface CancelRequest {
  /** Node ids, or paths into sublattices (`"5/2"`); absent means the whole dispatch; empty is refused. */
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
  /**
   * Status when the answer was written: `CANCELLED`, or `RUNNING` while its stop is still under
   * way. For `pending-child` (a node of a child dispatch not created yet) `CANCELLED` is what
   * the node will be created as.
   */
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

/** Flag writes in flight at once: DynamoDB's per-partition write rate, not the request's latency, bounds a large cancel. */
const FLAG_CONCURRENCY = 16;

/** Most task ids one request may name (the request item records them; DynamoDB items hold 400 KB). */
export const MAX_TASK_IDS = 10_000;

/** Whether every segment of a `"5/2"` path is a node id JavaScript represents exactly. */
function isSafePath(path: string): boolean {
  return path.split('/').every((segment) => Number.isSafeInteger(Number(segment)));
}

/**
 * Parses task ids as given (numbers or `"5/2"` paths); throws InvalidCancelRequestError naming
 * the bad one. Absent means the whole dispatch; an empty list is refused, because cancelling
 * everything when a caller's filter matched nothing is the worst way to read it. Ids past
 * 2^53 are refused too: they would not round-trip through JSON and a DynamoDB number exactly.
 */
export function parseTaskIds(taskIds: unknown): (number | string)[] | undefined {
  if (taskIds === undefined || taskIds === null) return undefined;
  if (!Array.isArray(taskIds)) throw new InvalidCancelRequestError('"taskIds" must be an array of node ids or "parent/child" paths');
  if (taskIds.length === 0) throw new InvalidCancelRequestError('"taskIds" is empty; name at least one node, or omit "taskIds" to cancel the whole dispatch');
  if (taskIds.length > MAX_TASK_IDS) throw new InvalidCancelRequestError(`"taskIds" names ${taskIds.length} nodes; at most ${MAX_TASK_IDS} per request (omit it to cancel the whole dispatch)`);
  return taskIds.map((id: unknown, index) => {
    if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id;
    if (typeof id === 'string' && TASK_PATH.test(id) && isSafePath(id)) return id.includes('/') ? id : Number(id);
    throw new InvalidCancelRequestError(
      `taskIds[${index}] is ${JSON.stringify(id)}; expected a node id (an integer from 0 to ${Number.MAX_SAFE_INTEGER}) or a path like "5/2"`,
    );
  });
}

/** One cancel request while it runs: what it asked, what it found, what it answers. */
interface CancelRun {
  readonly ctx: RuntimeContext;
  readonly dispatchId: string;
  readonly request: CancelRequest;
  readonly deps: Omit<CancelDeps, 'ctx'>;
  /** The ids asked for; undefined for the whole dispatch. */
  readonly taskIds: readonly (number | string)[] | undefined;
  readonly reason: string;
  readonly requestedAt: string;
  readonly dispatch: DispatchItem;
  /** The nodes as they stood when the request arrived. */
  readonly byId: ReadonlyMap<number, NodeItem>;
  readonly report: Mutable<CancelReport>;
}

/** Nodes whose stop is under way, with the report entries that the wait updates. */
type Stopping = { readonly node: NodeItem; readonly entry: Mutable<CancelledNode> }[];

/**
 * Thrown when a cancel request was recorded but could not finish in this invocation (a write
 * throttled past its retries, the invocation's deadline). The request stays open on its item;
 * the sweeper finishes it, so the caller may treat it as accepted.
 */
export class CancelUnfinishedError extends ValenceError {
  override readonly name: string = 'CancelUnfinishedError';
  constructor(
    /** The dispatch the request is for. */
    readonly dispatchId: string,
    /** The recorded request, which the sweeper finishes. */
    readonly requestId: string,
    cause: unknown,
  ) {
    super(ErrorCode.CANCEL_UNFINISHED, `Cancel request ${requestId} was recorded but not finished (${describeError(cause)}); the sweeper finishes it`, { cause });
  }
}

/** An open request to finish (the sweeper's resume): the recorded id and time, not new ones. */
export interface ResumeRequest {
  readonly requestId: string;
  readonly requestedAt: string;
}

/**
 * Cancels a dispatch or some of its nodes. Throws DispatchNotFoundError for an unknown id.
 * The request is recorded (open) before anything else; every step after is idempotent (the
 * flag writes are conditional, stops are safe to repeat), so when one fails the request stays
 * open and {@link finishOpenCancels} runs it again from the start, under the same id.
 */
export async function cancelDispatch(
  ctx: RuntimeContext,
  dispatchId: string,
  request: CancelRequest,
  deps: Omit<CancelDeps, 'ctx'> = {},
  resume?: ResumeRequest,
): Promise<CancelReport> {
  const run = await openRequest(ctx, dispatchId, request, deps, resume);
  try {
    const { targets, childRequests } = resolveTargets(run);
    if (!run.taskIds) await stopDispatchExecution(run);
    const running = await flagTargets(run, targets);
    const stopping = await stopRunning(run, running);
    for (const [parentId, ids] of childRequests) await cancelInChild(run, parentId, ids);
    await awaitStops(run, stopping);
    sortReport(run.report);
    if (!run.taskIds) await endCancelledDispatch(run);
    await ctx.store.finishCancelRequest(dispatchId, run.report, ctx.now().toISOString(), JSON.stringify(run.report), ctx.signal);
    return run.report;
  } catch (error) {
    // Best effort: note the failure on the open request (the write may fail for the same reason).
    await ctx.store.touchCancelRequest(dispatchId, run.report, ctx.now().toISOString(), describeError(error)).catch(() => undefined);
    throw new CancelUnfinishedError(dispatchId, run.report.requestId, error);
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Reads the dispatch and its nodes, and records the request (before anything is flagged: the audit trail, and what a child dispatch created later reads). */
async function openRequest(ctx: RuntimeContext, dispatchId: string, request: CancelRequest, deps: Omit<CancelDeps, 'ctx'>, resume?: ResumeRequest): Promise<CancelRun> {
  // The same checks as the endpoint's, for callers of the runtime itself (before anything is written).
  const taskIds = parseTaskIds(request.taskIds);
  const requestedAt = resume?.requestedAt ?? ctx.now().toISOString();
  const requestId = resume?.requestId ?? randomUUID();
  const reason = request.reason ?? `cancelled by ${request.requestedBy}`;
  const dispatch = await ctx.store.requireDispatch(dispatchId, ctx.signal);
  if (!resume) await ctx.store.openCancelRequest(dispatchId, { requestId, requestedAt, requestedBy: request.requestedBy, reason, targets: taskIds ?? [] }, ctx.signal);
  const nodes = await ctx.store.listNodes(dispatchId, ctx.signal);
  return {
    ctx,
    dispatchId,
    request,
    deps,
    taskIds,
    reason,
    requestedAt,
    dispatch,
    byId: new Map(nodes.map((n) => [n.nodeId, n])),
    report: { dispatchId, requestId, requestedAt, cancelled: [], alreadyTerminal: [], notFound: [], executionStopped: false },
  };
}

/** What one pass over the open cancel requests did. */
export interface OpenCancelsReport {
  /** Open requests found. */
  readonly open: number;
  /** Requests finished by this pass (their report written). */
  readonly finished: number;
  readonly errors: string[];
}

/**
 * Finishes cancel requests left open (their handler crashed, timed out or lost a write) whose
 * last progress is older than `staleMs`, by running them again under their recorded id.
 */
export async function finishOpenCancels(ctx: RuntimeContext, deps: Omit<CancelDeps, 'ctx'>, staleMs: number): Promise<OpenCancelsReport> {
  const report = { open: 0, finished: 0, errors: [] as string[] };
  const nowMs = ctx.now().getTime();
  for (const item of await ctx.store.listOpenCancelRequests(ctx.signal)) {
    report.open++;
    if (nowMs - Date.parse(item.progressAt ?? item.requestedAt) < staleMs) continue;
    try {
      await ctx.store.touchCancelRequest(item.dispatchId, item, ctx.now().toISOString(), undefined, ctx.signal);
      await cancelDispatch(
        ctx,
        item.dispatchId,
        { ...(item.targets.length > 0 ? { taskIds: item.targets } : {}), ...(item.reason ? { reason: item.reason } : {}), requestedBy: item.requestedBy },
        deps,
        item,
      );
      report.finished++;
    } catch (error) {
      report.errors.push(`${item.dispatchId} cancel ${item.requestId}: ${describeError(error)}`);
    }
  }
  return report;
}

/** The named nodes and every descendant; paths (`"5/2"`) grouped by the sublattice node they go through. */
function resolveTargets(run: CancelRun): { targets: Set<number>; childRequests: Map<number, (number | string)[]> } {
  const { byId, report } = run;
  const targets = new Set<number>();
  const childRequests = new Map<number, (number | string)[]>();
  if (!run.taskIds) {
    for (const id of byId.keys()) targets.add(id);
    return { targets, childRequests };
  }
  for (const id of run.taskIds) {
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
    } else if (byId.has(id)) {
      for (const descendant of descendantsOf(id, (n) => byId.get(n)?.children ?? [])) targets.add(descendant);
    } else {
      report.notFound.push(id);
    }
  }
  return { targets, childRequests };
}

/** A whole-dispatch cancel: flag the dispatch and stop its execution, so no further state starts. */
async function stopDispatchExecution(run: CancelRun): Promise<void> {
  const { ctx, dispatch } = run;
  await ctx.store.requestDispatchCancel(run.dispatchId, ctx.signal);
  if (dispatch.status === DispatchStatus.RUNNING && dispatch.executionArn) {
    run.report.executionStopped = await stopExecution(ctx, dispatch.executionArn, run.reason);
  }
}

/**
 * Sets each target's cancel flag. A node that had not started ends `CANCELLED` here; one that
 * was already terminal is reported so. Returns the RUNNING nodes, whose work must be stopped.
 */
async function flagTargets(run: CancelRun, targets: ReadonlySet<number>): Promise<NodeItem[]> {
  const { ctx, dispatchId } = run;
  const running: NodeItem[] = [];
  // Bounded parallel (issue 13): each write is conditional, so the order among targets does not matter for correctness.
  const queue = [...targets].sort((a, b) => a - b);
  const worker = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const flagged = await ctx.store.requestNodeCancel(dispatchId, id, run.reason, run.requestedAt, ctx.signal);
      if (!flagged) await reportUnflagged(run, id);
      else if (flagged.status === NodeStatus.NEW_OBJECT) await endNotStarted(run, flagged);
      else running.push(flagged);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FLAG_CONCURRENCY, queue.length) }, worker));
  running.sort((a, b) => a.nodeId - b.nodeId);
  return running;
}

/** A target whose flag could not be set: it ended, either before the request or because of it. */
async function reportUnflagged(run: CancelRun, id: number): Promise<void> {
  const before = run.byId.get(id);
  const now = (await run.ctx.store.getNode(run.dispatchId, id, { signal: run.ctx.signal })) ?? before;
  if (!now) return;
  if (before && !isTerminalNodeStatus(before.status) && now.status === NodeStatus.CANCELLED) {
    // It ended while this request ran, as a consequence of it (an ancestor it cancelled).
    run.report.cancelled.push({ id, name: now.name, previousStatus: NodeStatus.NEW_OBJECT, status: now.status, method: now.cancelledBy ?? CancelMethod.UpstreamCancelled });
  } else {
    run.report.alreadyTerminal.push({ id, status: now.status });
  }
}

/** Ends a flagged node that never started: nothing was serialized, uploaded or submitted. */
async function endNotStarted(run: CancelRun, flagged: NodeItem): Promise<void> {
  const { ctx, dispatchId } = run;
  const id = flagged.nodeId;
  const ended = await ctx.store.finishNode(
    dispatchId,
    id,
    { status: NodeStatus.CANCELLED, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.NotStarted, cancelReason: run.reason },
    ctx.signal,
  );
  const final = ended ?? (await ctx.store.getNode(dispatchId, id, { signal: ctx.signal }));
  run.report.cancelled.push({ id, name: flagged.name, previousStatus: NodeStatus.NEW_OBJECT, status: final?.status ?? NodeStatus.CANCELLED, method: final?.cancelledBy ?? CancelMethod.NotStarted });
  if (ended) await releaseDependents(ctx, ended);
}

/**
 * Asks each RUNNING node's driver to stop its work (all nodes of one driver at once, so Batch
 * can terminate a whole array job once), then ends at once the nodes whose job is already over.
 */
async function stopRunning(run: CancelRun, running: readonly NodeItem[]): Promise<Stopping> {
  const { ctx } = run;
  const stopRequest: StopRequest = {
    reason: run.reason,
    requestedBy: run.request.requestedBy,
    cancelChild: (childId, request) => cancelDispatch(ctx, childId, request, run.deps),
    ...(run.deps.loadExecutors ? { loadExecutors: run.deps.loadExecutors } : {}),
  };
  const stopping: Stopping = [];
  for (const [driver, nodes] of byDriver(running)) {
    const results = driver ? await driver.stop(ctx, nodes, stopRequest) : nodes.map((n) => ({ nodeId: n.nodeId, method: 'pending' as const }));
    for (const node of nodes) {
      const result = results.find((r) => r.nodeId === node.nodeId);
      const entry: Mutable<CancelledNode> = { id: node.nodeId, name: node.name, previousStatus: NodeStatus.RUNNING, status: NodeStatus.RUNNING, method: result?.method ?? 'pending' };
      if (result && 'error' in result) entry.error = result.error;
      else if (entry.method !== 'pending') await endIfJobEnded(ctx, node, entry);
      run.report.cancelled.push(entry);
      stopping.push({ node, entry });
    }
  }
  return stopping;
}

/** RUNNING nodes grouped by the driver of their job (undefined: no job handle yet; their owner stops them). */
function byDriver(nodes: readonly NodeItem[]): Map<ExecutorDriver | undefined, NodeItem[]> {
  const groups = new Map<ExecutorDriver | undefined, NodeItem[]>();
  for (const node of nodes) {
    const driver = driverForJob(node);
    groups.set(driver, [...(groups.get(driver) ?? []), node]);
  }
  return groups;
}

/**
 * Ends a node here when its job is already known to be over (a queued Batch job cancels at
 * once, a quantum task too), instead of waiting for the state-change event to arrive.
 */
async function endIfJobEnded(ctx: RuntimeContext, flagged: NodeItem, entry: Mutable<CancelledNode>): Promise<void> {
  try {
    const node = await ctx.store.getNode(flagged.dispatchId, flagged.nodeId, { signal: ctx.signal });
    if (!node?.jobHandle || isTerminalNodeStatus(node.status)) return;
    const end = await pollJob(ctx, node);
    if (end) await endNodeForJob(ctx, node, end);
  } catch (error) {
    entry.error = `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/**
 * Cancels paths into one sublattice node. With a child dispatch, the request goes to it; while
 * the node has none yet (it has not started, or is building its graph), the request recorded
 * by {@link openRequest} is applied by the child-dispatch driver when it creates the child.
 */
async function cancelInChild(run: CancelRun, parentId: number, ids: readonly (number | string)[]): Promise<void> {
  const { ctx, report } = run;
  const prefix = (id: number | string): string => `${parentId}/${id}`;
  // Read after the request was recorded: if the child id is not here, its creator reads the request.
  const parent = (await ctx.store.getNode(run.dispatchId, parentId, { signal: ctx.signal })) ?? run.byId.get(parentId)!;
  if (!parent.childDispatchId) {
    for (const id of ids) {
      if (isTerminalNodeStatus(parent.status)) report.notFound.push(prefix(id));
      else report.cancelled.push({ id: prefix(id), name: `${parent.electron}/${id}`, previousStatus: NodeStatus.NEW_OBJECT, status: NodeStatus.CANCELLED, method: CancelMethod.PendingChild });
    }
    return;
  }
  const child = await cancelDispatch(ctx, parent.childDispatchId, { ...run.request, taskIds: ids }, run.deps);
  report.cancelled.push(...child.cancelled.map((c) => ({ ...c, id: prefix(c.id) })));
  report.alreadyTerminal.push(...child.alreadyTerminal.map((c) => ({ ...c, id: prefix(c.id) })));
  report.notFound.push(...child.notFound.map(prefix));
}

/** Waits (bounded) for running work to stop, so the answer is what happened, not what was asked. */
async function awaitStops(run: CancelRun, stopping: Stopping): Promise<void> {
  if (stopping.length === 0) return;
  const { ctx, dispatchId } = run;
  const graceMax = Math.max(...stopping.map((s) => s.node.graceSeconds ?? 10));
  const waitMs = run.request.waitMs ?? Math.min(20_000, graceMax * 1000 + 3_000);
  const deadline = ctx.now().getTime() + waitMs;
  let pending = stopping;
  while (pending.length > 0 && ctx.now().getTime() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await ctx.store.getNodes(dispatchId, pending.map((p) => p.node.nodeId), ctx.signal);
    pending = pending.filter((p) => {
      const item = now.find((n) => n.nodeId === p.node.nodeId);
      if (!item || !isTerminalNodeStatus(item.status)) return true;
      p.entry.status = item.status;
      if (item.cancelledBy) p.entry.method = item.cancelledBy;
      return false;
    });
  }
  // A node that completed (or failed) before its stop took was not cancelled by this request:
  // it goes under `alreadyTerminal` with its status, so `cancelled` never overcounts.
  const finishedAnyway = new Set(stopping.filter((s) => isTerminalNodeStatus(s.entry.status) && s.entry.status !== NodeStatus.CANCELLED).map((s) => s.entry));
  if (finishedAnyway.size === 0) return;
  run.report.cancelled = run.report.cancelled.filter((entry) => !finishedAnyway.has(entry as Mutable<CancelledNode>));
  for (const entry of finishedAnyway) run.report.alreadyTerminal.push({ id: entry.id, status: entry.status });
}

/** Node order, with paths into sublattices after the node that holds them. */
function sortReport(report: Mutable<CancelReport>): void {
  // Targets are flagged in parallel, so entries arrive in any order; the report is in node order.
  const order = (id: number | string): number[] => String(id).split('/').map(Number);
  const byNode = (a: { readonly id: number | string }, b: { readonly id: number | string }): number => {
    const [x, y] = [order(a.id), order(b.id)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
    return 0;
  };
  report.cancelled.sort(byNode);
  report.alreadyTerminal.sort(byNode);
  report.notFound.sort((a, b) => byNode({ id: a }, { id: b }));
}

/** A whole-dispatch cancel ends the dispatch `CANCELLED` (and a child's sublattice node with it). */
async function endCancelledDispatch(run: CancelRun): Promise<void> {
  const { ctx } = run;
  if (isTerminalDispatchStatus(run.dispatch.status)) return;
  const ended = await ctx.store.finishDispatch(run.dispatchId, { status: DispatchStatus.CANCELLED, endedAt: ctx.now().toISOString() }, ctx.signal);
  if (ended?.parent) await endParentOfCancelledChild(ctx, ended);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

async function stopExecution(ctx: RuntimeContext, executionArn: string, reason: string): Promise<boolean> {
  try {
    await ctx.aws.sfn.send(new StopExecutionCommand({ executionArn, error: 'valence.Cancelled', cause: reason.slice(0, 32_000) }), { abortSignal: ctx.signal });
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ExecutionDoesNotExist') return false;
    throw error;
  }
}

async function endParentOfCancelledChild(ctx: RuntimeContext, child: DispatchItem): Promise<void> {
  const { dispatchId, nodeId } = child.parent!;
  const ended = await ctx.store.finishNode(
    dispatchId,
    nodeId,
    { status: NodeStatus.CANCELLED, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.ChildDispatch },
    ctx.signal,
  );
  if (ended) await releaseDependents(ctx, ended);
}

export { DispatchNotFoundError };
