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
 * stop; a node whose stop did not take is left to the sweeper, which tries again. A
 * whole-dispatch cancel never ends its dispatch `CANCELLED` while a node still runs: its
 * request stays open until every node ended, stopping those whose owner is gone.
 */
import { createHash, randomUUID } from 'node:crypto';
import { StopExecutionCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus, NodeStatus, isTerminalDispatchStatus, isTerminalNodeStatus } from '../status.ts';
import type { RuntimeContext } from './context.ts';
import { releaseAwaiting, releaseDependents, releaseOwnWait } from './settle.ts';
import { endNodeForJob, pollJob } from './completion.ts';
import { CancelMethod } from '../status.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import { MAX_TRANSACT_ITEMS, isConditionFailed, type CancelCheckpoint, type CancelRequestRecord, type DispatchItem, type NodeItem } from './store.ts';
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
  /**
   * Skip the grace period: running work is killed at once instead of being signalled first
   * (Temporal's terminate beside its cancel); work a graceful request is already stopping is
   * escalated. Recorded on the request and on each node it flags (`cancelForce`).
   */
  readonly force?: boolean;
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
  /** Set when a stop call failed (with {@link jobHandle}, the job it was for); the sweeper retries it. */
  readonly error?: string;
  /** The job the node's work ran as (Batch job, quantum task, process), when it had one. */
  readonly jobHandle?: string;
  /** When the node ended; for a stop that failed first, when the sweeper's retry finally took. */
  readonly endedAt?: string;
  /** For a node that had started: what its work held and how long it ran (what the cancel saved). */
  readonly stopped?: StoppedWork;
}

/**
 * What a cancelled node's work held when it was stopped, so a user can tell what the cancel
 * saved: how long it had run, on which executor, and the resources its executor reserved
 * (Batch vCPUs, memory and GPUs; Braket shots). A node that never started held nothing.
 */
export interface StoppedWork {
  readonly executor: string;
  /** From the node's start to its end (or to the report, while it is still stopping). */
  readonly ranMs: number;
  readonly vcpus?: number;
  readonly memoryMiB?: number;
  readonly gpus?: number;
  readonly shots?: number;
}

/** A target that was already terminal, or ended otherwise (completed or failed before its stop took). */
export interface TerminalNode {
  readonly id: number | string;
  readonly status: NodeStatus;
}

/**
 * A target that a concurrent cancel request had flagged first: that request stops it and
 * lists it under its own `cancelled`, so none is stopped twice or counted twice. Also a target
 * that ended `upstream-cancelled` below a node the other request cancelled: that request
 * prevented it and lists it.
 */
export interface MergedNode {
  readonly id: number | string;
  /** The request that flagged it first. */
  readonly requestId: string;
  /** Its status when this report was written. */
  readonly status: NodeStatus;
  /**
   * This request stopped it after all: the request that flagged it first had finished (or
   * shown no progress for 30 s) with the node still running, and a whole-dispatch cancel does
   * not end its dispatch while a node runs.
   */
  readonly adopted?: true;
}

/** The truthful answer to a cancel request. */
export interface CancelReport {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly requestedAt: string;
  readonly cancelled: CancelledNode[];
  readonly alreadyTerminal: TerminalNode[];
  /** Targets a concurrent request flagged first (concurrent cancels merge). */
  readonly merged: MergedNode[];
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

/** One attempt at a cancel request: what it asked, what it found. */
interface CancelRun {
  readonly ctx: RuntimeContext;
  readonly dispatchId: string;
  readonly record: OpenCancel;
  readonly deps: Omit<CancelDeps, 'ctx'>;
  /** The ids asked for; undefined for the whole dispatch. */
  readonly taskIds: readonly (number | string)[] | undefined;
  readonly reason: string;
  readonly requestId: string;
  readonly requestedAt: string;
  readonly dispatch: DispatchItem;
  /** The nodes as this attempt found them. */
  readonly byId: ReadonlyMap<number, NodeItem>;
  /** Ids named that are not in the dispatch (or paths through a node that is no sublattice). */
  readonly notFound: (number | string)[];
  /** Cooperative deadline (epoch ms): past it, the attempt checkpoints and stops. */
  readonly until: number | undefined;
}

/**
 * Thrown when a cancel request was recorded but could not finish in this invocation (a write
 * throttled past its retries, the invocation's deadline). The request stays open on its item;
 * a continuation or the sweeper finishes it, so the caller may treat it as accepted.
 */
export class CancelUnfinishedError extends ValenceError {
  override readonly name: string = 'CancelUnfinishedError';
  constructor(
    /** The dispatch the request is for. */
    readonly dispatchId: string,
    /** The recorded request, which a continuation or the sweeper finishes. */
    readonly requestId: string,
    cause: unknown,
  ) {
    super(ErrorCode.CANCEL_UNFINISHED, `Cancel request ${requestId} was recorded but not finished (${describeError(cause)}); it is finished outside this call`, { cause });
  }
}

/** An open request to finish (a continuation's or the sweeper's resume): the recorded id and time, not new ones. */
export interface ResumeRequest {
  readonly requestId: string;
  readonly requestedAt: string;
}

/**
 * A recorded (open) cancel request: what {@link openCancel} wrote and {@link workOnCancel}
 * resumes from. `dispatchNodes` (the dispatch's size, known to the attempt that opened it, not
 * stored) lets the endpoint hand a large request on before it lists any node.
 */
export type OpenCancel = CancelRequestRecord & { readonly dispatchId: string; readonly dispatchNodes?: number };

/** What one attempt at a request achieved: the final report, or a checkpoint to resume from. */
export type CancelOutcome = { readonly done: true; readonly report: CancelReport } | { readonly done: false; readonly dispatchId: string; readonly requestId: string };

/**
 * Cancels a dispatch or some of its nodes, to the end, in this call (the sweeper, a parent's
 * cancel of its child dispatch, and the runtime's own callers use it; the API handler uses
 * {@link openCancel} and {@link workOnCancel} to answer within its budget). Throws
 * DispatchNotFoundError for an unknown id. The request is recorded (open) before anything
 * else; every step after is idempotent and checkpointed, so when one fails the request stays
 * open and a later attempt resumes it under the same id.
 */
export async function cancelDispatch(
  ctx: RuntimeContext,
  dispatchId: string,
  request: CancelRequest,
  deps: Omit<CancelDeps, 'ctx'> = {},
  resume?: ResumeRequest,
): Promise<CancelReport> {
  const record = resume ? await resumeRecord(ctx, dispatchId, resume, request) : await openCancel(ctx, dispatchId, request);
  const outcome = await workOnCancel(ctx, record, deps).catch((error: unknown) => {
    throw new CancelUnfinishedError(dispatchId, record.requestId, error);
  });
  if (!outcome.done) throw new CancelUnfinishedError(dispatchId, record.requestId, new Error('no deadline was set, yet the attempt stopped early'));
  return outcome.report;
}

async function resumeRecord(ctx: RuntimeContext, dispatchId: string, resume: ResumeRequest, request: CancelRequest): Promise<OpenCancel> {
  const found = await ctx.store.getCancelRequest(dispatchId, resume.requestId, ctx.signal);
  if (found) return { ...found, dispatchId };
  // Not recorded yet (a child request under a fixed id): record it now, under that id.
  const taskIds = parseTaskIds(request.taskIds);
  const item = { ...resume, requestedBy: request.requestedBy, reason: request.reason ?? `cancelled by ${request.requestedBy}`, targets: taskIds ?? [], ...(request.waitMs !== undefined ? { waitMs: request.waitMs } : {}), ...(request.force ? { force: true } : {}) };
  try {
    await ctx.store.openCancelRequest(dispatchId, item, ctx.signal);
  } catch (error) {
    if (!isConditionFailed(error)) throw error;
  }
  return { ...item, dispatchId, state: 'OPEN', attempts: 0, progressAt: resume.requestedAt };
}

/** A request id derived from a parent request and node (UUID-shaped, so the report endpoint reads it). */
function derivedRequestId(parentRequestId: string, nodeId: number): string {
  const hex = createHash('sha256').update(`${parentRequestId}/${nodeId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The request id a parent request's whole-child cancel uses on child dispatch `childId`. */
function derivedChildRequestId(parentRequestId: string, childId: string): string {
  const hex = createHash('sha256').update(`${parentRequestId}/child/${childId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Records the request, durably, before anything is flagged or stopped (issue 13): the audit
 * trail, what a child dispatch created later reads, and what every later attempt resumes
 * from. Validates first, so a bad request writes nothing. Throws DispatchNotFoundError.
 */
export async function openCancel(ctx: RuntimeContext, dispatchId: string, request: CancelRequest): Promise<OpenCancel> {
  const taskIds = parseTaskIds(request.taskIds);
  const requestedAt = ctx.now().toISOString();
  const requestId = randomUUID();
  const reason = request.reason ?? `cancelled by ${request.requestedBy}`;
  const dispatch = await ctx.store.requireDispatch(dispatchId, ctx.signal);
  const item = { requestId, requestedAt, requestedBy: request.requestedBy, reason, targets: taskIds ?? [], ...(request.waitMs !== undefined ? { waitMs: request.waitMs } : {}), ...(request.force ? { force: true } : {}) };
  await ctx.store.openCancelRequest(dispatchId, item, ctx.signal);
  return { ...item, dispatchId, state: 'OPEN', attempts: 0, progressAt: requestedAt, dispatchNodes: dispatch.nodeCount };
}

/**
 * Reads the dispatch and its nodes for one attempt, and runs `alongside` (given the attempt
 * without its nodes) as soon as the dispatch is read, while the nodes are still being listed.
 */
async function loadRun<T>(ctx: RuntimeContext, record: OpenCancel, deps: Omit<CancelDeps, 'ctx'>, until: number | undefined, alongside: (head: CancelRun) => Promise<T>): Promise<{ readonly run: CancelRun; readonly also: T }> {
  const { dispatchId } = record;
  const taskIds = record.targets.length > 0 ? parseTaskIds(record.targets) : undefined;
  // Both read after the request was recorded (its caller wrote it), and neither depends on the
  // other: one round trip, not two, before the first flag.
  const listing = ctx.store.listNodes(dispatchId, ctx.signal);
  let dispatch: DispatchItem;
  try {
    dispatch = await ctx.store.requireDispatch(dispatchId, ctx.signal);
  } catch (error) {
    listing.catch(() => undefined);
    throw error;
  }
  const head: CancelRun = {
    ctx,
    dispatchId,
    record,
    deps,
    taskIds,
    reason: record.reason ?? `cancelled by ${record.requestedBy}`,
    requestId: record.requestId,
    requestedAt: record.requestedAt,
    dispatch,
    byId: new Map(),
    notFound: [],
    until,
  };
  const [nodes, also] = await Promise.all([listing, alongside(head)]);
  return { run: { ...head, byId: new Map(nodes.map((n) => [n.nodeId, n])) }, also };
}

/**
 * Bulk-ending transactions in flight at once: each holds 100 items' locks, and more in flight
 * only queue behind one partition (AWS: 1,000 write units a second per partition key).
 */
const BULK_IN_FLIGHT = 8;

/** How often a long attempt records its progress on the request item, in ms. */
const PROGRESS_EVERY_MS = 1_000;

/**
 * One attempt at an open request, resumable from its item: stops the execution (whole
 * dispatch), ends the not-started targets that could be claimed now, flags the running ones
 * and stops the work of those this request flagged first, marks in bulk the not-started
 * targets blocked behind them, waits (bounded) for the stops, and for a whole-dispatch cancel
 * waits until every node ended before it ends the dispatch; then writes the report. With `until` (epoch ms) it stops at the first step
 * boundary past it, records how far it got, and answers `{ done: false }`: the caller
 * continues it elsewhere (the cancel handler invokes itself; the sweeper finds it otherwise).
 */
export async function workOnCancel(ctx: RuntimeContext, record: OpenCancel, deps: Omit<CancelDeps, 'ctx'> = {}, until?: number): Promise<CancelOutcome> {
  const unfinished: CancelOutcome = { done: false, dispatchId: record.dispatchId, requestId: record.requestId };
  let checkpoint: Mutable<CancelCheckpoint> = {};
  const save = async (next: CancelCheckpoint): Promise<void> => {
    checkpoint = { ...checkpoint, ...next };
    await ctx.store.checkpointCancelRequest(record.dispatchId, record, { ...next, progressAt: ctx.now().toISOString() }, ctx.signal);
  };
  // The execution is stopped while the nodes are listed (it needs only the dispatch item): at
  // 20,000 nodes the listing took 3 s and the stop 5 s on the local cloud, one after the other.
  // A node that starts meanwhile is refused by its mark below and stopped as `late`.
  const { run, also: executionStopped } = await loadRun(ctx, record, deps, until, (head) => (record.executionStopped !== undefined ? Promise.resolve(record.executionStopped) : stopDispatchExecution(head, save)));
  const { targets, childRequests } = resolveTargets(run);
  if (pastDeadline(run)) return unfinished;

  const sorted = [...targets].sort((a, b) => a - b);
  const notStarted = sorted.filter((id) => run.byId.get(id)?.status === NodeStatus.NEW_OBJECT);
  const running = sorted.filter((id) => run.byId.get(id)?.status === NodeStatus.RUNNING);
  const total = targets.size;
  let done = total - notStarted.length - running.length;
  const progress = (phase: string): Promise<void> => save({ progress: { phase, done, total } });
  // Running work first (issue 13: only running targets need an active stop, and they are what
  // costs). At 5,000 not-started nodes, ending them before the stops kept a running electron
  // going for 53 s. So the stops go out first; then the not-started targets that could be
  // claimed now are ended, then the rest (blocked behind a target that never completes). One
  // that started meanwhile is flagged by its mark (its watchdog and the sweeper act on the
  // flag) and gets a stop of its own below (`late`).
  const { free, blocked } = splitNotStarted(run, notStarted, targets);

  let stopsSentAt: string;
  let stopsRecorded: Promise<void> = Promise.resolve();
  if (record.stopsSentAt) stopsSentAt = record.stopsSentAt;
  else ({ stopsSentAt, recorded: stopsRecorded } = await sendStops(run, running, childRequests, save, {}));
  if (pastDeadline(run)) {
    await stopsRecorded;
    return unfinished;
  }
  const late: number[] = [];
  // The stops are sent; their checkpoint and the marks of the not-started targets are
  // independent writes (each idempotent on a resumed attempt), so neither waits for the other.
  const endedNow: number[] = [];
  const endAll = async (): Promise<boolean> =>
    (await endNotStartedTargets(run, free, late, endedNow, () => done++, progress)) && (await endNotStartedTargets(run, blocked, late, endedNow, () => done++, progress));
  const [, allEnded] = await Promise.all([stopsRecorded, endAll()]);
  if (!allEnded) return unfinished;
  let stopErrors = checkpoint.stopErrors ?? record.stopErrors ?? {};
  if (late.length > 0) {
    // Started between the snapshot and its mark (its parents completed meanwhile): it needs a stop too.
    const sent = await sendStops(run, late, new Map(), save, stopErrors);
    await sent.recorded;
    stopsSentAt = sent.stopsSentAt;
    stopErrors = checkpoint.stopErrors ?? stopErrors;
    running.push(...late);
  }
  if (!(await releaseWaiting(run, targets, endedNow, checkpoint.releasedThrough ?? record.releasedThrough, save))) return unfinished;
  // A node whose stop call failed does not stop until the sweeper's retry: the report says so now.
  const waited = await awaitStops(run, running.filter((id) => stopErrors[String(id)] === undefined), stopsSentAt, targets);
  if (!waited.done) {
    await save({ progress: { phase: 'waiting', done: total - running.length, total } });
    return unfinished;
  }
  // What the last poll read is what a fresh read would say of a task cancel's targets; a
  // whole-dispatch cancel goes on waiting below, so its report reads them again.
  let snapshot = waited.targets;
  if (!run.taskIds && !endedOtherwise(run.dispatch)) {
    snapshot = undefined;
    // Never CANCELLED with a node still RUNNING: the dispatch ends only once every node has.
    const adopted = new Set([...(record.adopted ?? [])]);
    if (!(await awaitEveryNodeEnded(run, stopErrors, adopted, save))) {
      await save({ progress: { phase: 'waiting for the last nodes to end', done: total - running.length, total } });
      return unfinished;
    }
    await endCancelledDispatch(run);
    checkpoint.adopted = [...adopted];
  }
  const report = await buildReport(run, targets, { executionStopped, stopErrors, childReport: checkpoint.childReport ?? record.childReport, adopted: new Set(checkpoint.adopted ?? record.adopted ?? []), snapshot });
  return { done: true, report: await finishRequest(run, report) };
}

/** A dispatch that ended other than CANCELLED (the sweeper's FAILED for an execution that ended on its own): nothing for a cancel to end. */
function endedOtherwise(dispatch: DispatchItem): boolean {
  return isTerminalDispatchStatus(dispatch.status) && dispatch.status !== DispatchStatus.CANCELLED;
}

/**
 * Not-started targets that could be claimed at any moment (every parent ended, or is no
 * target and may complete) against those blocked behind a target that is not terminal: a
 * blocked node cannot start before its parent completes, and a cancelled parent never does
 * (a node whose parent was cancelled ends `upstream-cancelled` without running), so marking
 * it can wait until the running work has been told to stop.
 *
 * Both come in id order. A task cancel leaves its execution running, and the execution's
 * `await` states meet the same nodes in id order too; marked first, each of them finds its node
 * ended and costs one read and one release. Marking deepest first was tried (10,000-node
 * subtree): the waits then found their nodes unmarked and wrote them upstream-cancelled
 * themselves, twice the invocations and a third more transactions from conflicts, 44 s to all
 * terminal against 26–28 s.
 */
function splitNotStarted(run: CancelRun, notStarted: readonly number[], targets: ReadonlySet<number>): { free: number[]; blocked: number[] } {
  const free: number[] = [];
  const blocked: number[] = [];
  for (const id of notStarted) {
    const parents = run.byId.get(id)?.parents ?? [];
    const waits = parents.some((p) => targets.has(p) && !isTerminalNodeStatus(run.byId.get(p)?.status ?? NodeStatus.CANCELLED));
    (waits ? blocked : free).push(id);
  }
  return { free, blocked };
}

/** After the bound, how long an attempt without a deadline of its own (the sweeper, a parent's child cancel) waits for the last nodes. */
const LINGER_MS = 10_000;

/** A request that flagged a node first and shows no progress for this long is gone: another request stops the node for it. */
const STALE_OWNER_MS = 30_000;

/**
 * Waits until every node of the dispatch is terminal, so that a whole-dispatch cancel never
 * ends its dispatch `CANCELLED` while a node still runs (issue 13). A node still running
 * after the bound is most often one a concurrent request flagged first (merged): its owner
 * stops it. When its owner is gone (finished with the node still running, or quiet for
 * {@link STALE_OWNER_MS}), or the node is this request's and its stop failed or cannot take,
 * this request finishes it ({@link finishLeftovers}). Waits until the attempt's deadline (at
 * most {@link LINGER_MS} without one); false when nodes are still running then: the request
 * stays open, and its next attempt (a continuation, a poll of its report, the sweeper) goes on.
 */
async function awaitEveryNodeEnded(run: CancelRun, stopErrors: Readonly<Record<string, string>>, adopted: Set<number>, save: Save): Promise<boolean> {
  const { ctx, dispatchId } = run;
  const until = run.until ?? ctx.now().getTime() + LINGER_MS;
  let open = (await ctx.store.listNodes(dispatchId, ctx.signal)).filter((n) => !isTerminalNodeStatus(n.status));
  if (open.length === 0) return true;
  const stopped = await finishLeftovers(run, open, stopErrors);
  if (stopped.some((id) => !adopted.has(id))) {
    for (const id of stopped) adopted.add(id);
    await save({ adopted: [...adopted].sort((a, b) => a - b) });
  }
  while (ctx.now().getTime() < until) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = await ctx.store.getNodes(dispatchId, open.map((n) => n.nodeId), ctx.signal);
    open = now.filter((n) => !isTerminalNodeStatus(n.status));
    if (open.length === 0) return true;
  }
  return false;
}

/**
 * One pass over the nodes still open after the bound. A node whose owning request is alive is
 * left to it. Otherwise (its owner is gone, or it is this request's):
 * - flagged and not started → ended `CANCELLED` (`not-started`): flagged, it cannot be claimed;
 * - running in a handler that died (no job, its lease lapsed) → ended `CANCELLED`
 *   (`terminated`), as the step handler's takeover does: nobody runs it any more;
 * - a job or child dispatch → its driver's stop again, when it is another request's, its own
 *   stop failed, or it is a sublattice (which resumes the child's request: the same id).
 * Returns the ids of other requests' nodes this request stopped (reported `adopted`).
 */
async function finishLeftovers(run: CancelRun, open: readonly NodeItem[], stopErrors: Readonly<Record<string, string>>): Promise<number[]> {
  const { ctx, dispatchId } = run;
  const owners = new Map<string, Promise<boolean>>();
  const ownerGone = (requestId: string): Promise<boolean> => {
    let gone = owners.get(requestId);
    if (!gone) {
      gone = ctx.store.getCancelRequest(dispatchId, requestId, ctx.signal).then((item) => !item || item.state !== 'OPEN' || ctx.now().getTime() - Date.parse(item.progressAt ?? item.requestedAt) > STALE_OWNER_MS);
      owners.set(requestId, gone);
    }
    return gone;
  };
  const adopted: number[] = [];
  const restop: NodeItem[] = [];
  for (const node of open) {
    const owner = node.cancelRequestId;
    const mine = owner === undefined || owner === run.requestId;
    if (!node.cancelRequested || (!mine && !(await ownerGone(owner)))) continue;
    const endedAt = ctx.now().toISOString();
    if (node.status === NodeStatus.NEW_OBJECT) {
      await ctx.store.finishNode(dispatchId, node.nodeId, { status: NodeStatus.CANCELLED, endedAt, cancelledBy: CancelMethod.NotStarted }, ctx.signal);
    } else if (!node.jobHandle && !node.childDispatchId) {
      // The lease is renewed every third of its length while the holder lives.
      if ((node.leaseUntil ?? 0) >= ctx.now().getTime()) continue;
      await ctx.store.finishNode(dispatchId, node.nodeId, { status: NodeStatus.CANCELLED, endedAt, cancelledBy: CancelMethod.Terminated, ...(node.runId ? { runId: node.runId } : {}) }, ctx.signal);
    } else if (!mine || stopErrors[String(node.nodeId)] !== undefined || node.kind === 'sublattice') {
      restop.push(node);
    } else {
      continue;
    }
    if (!mine) adopted.push(node.nodeId);
  }
  const request = stopRequestOf(run);
  for (const [driver, nodes] of byDriver(restop)) {
    if (!driver) continue;
    for (const result of await driver.stop(ctx, nodes, request)) {
      const node = nodes.find((n) => n.nodeId === result.nodeId);
      if (node && !('error' in result) && result.method !== 'pending') await endIfJobEnded(ctx, node);
    }
  }
  return adopted;
}

/**
 * A task cancel leaves the execution running, so every state that waits on a target it ended
 * (an `await` of a child, the target's own task token) must be released, or the execution
 * waits forever. This runs once every not-started target is terminal: a 10,000-node subtree of
 * a split lattice had 8,000 waiting states, and releasing them chunk by chunk between the
 * marks kept most targets NEW_OBJECT for minutes. The targets this request ended (in earlier
 * attempts too) are released in chunks of 100 ids ({@link RELEASE_CHUNKS_IN_FLIGHT} chunks at
 * once), each read in one call and its waits {@link RELEASES_IN_FLIGHT} at a time. The id
 * reached is recorded with the progress (`releasedThrough`), so an attempt cut by its deadline
 * or lost resumes there instead of releasing all again (releasing again is harmless: a used
 * token is refused). Returns false when the deadline stopped it.
 * A target's skippable `await` is failed with `NODE_ENDED_ERROR`, so its `run` state never
 * runs; the walk does not descend below targets that were already ended, since each of them
 * is released here in its turn.
 * A whole-dispatch cancel stopped the execution: nothing waits, nothing is released.
 */
async function releaseWaiting(run: CancelRun, targets: ReadonlySet<number>, endedNow: readonly number[], releasedThrough: number | undefined, save: Save): Promise<boolean> {
  if (!run.taskIds) return true;
  const { ctx, dispatchId } = run;
  const mine = new Set(endedNow);
  for (const id of targets) {
    const n = run.byId.get(id);
    if (n && n.cancelRequestId === run.requestId && isTerminalNodeStatus(n.status)) mine.add(id);
  }
  const ids = [...mine].filter((id) => releasedThrough === undefined || id > releasedThrough).sort((a, b) => a - b);
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100));
  const releaseChunk = async (chunk: readonly number[]): Promise<void> => {
    const ended = (await ctx.store.getNodes(dispatchId, chunk, ctx.signal)).filter((n) => n.cancelRequestId === run.requestId && isTerminalNodeStatus(n.status));
    // Their own waits one by one; their children's `await` states all at once: one read for
    // the chunk's children, most of which wait in no `await` yet (a partition's inline Map
    // holds 40 iterations at a time), instead of a read per target.
    const owned = ended.filter((n) => n.taskToken !== undefined);
    const worker = async (): Promise<void> => {
      for (let node = owned.shift(); node !== undefined; node = owned.shift()) await releaseOwnWait(ctx, node);
    };
    const children = [...new Set(ended.flatMap((n) => n.awaitingChildren ?? []))];
    await Promise.all([...Array.from({ length: Math.min(RELEASES_IN_FLIGHT, owned.length) }, worker), releaseAwaiting(ctx, dispatchId, children, { descendIntoEnded: false })]);
  };
  // Chunks go {@link RELEASE_CHUNKS_IN_FLIGHT} at a time: one after the other, the 10,001-node
  // subtree spent 8.6 s here (3 s of it reads of chunks with nothing left to release) and its
  // first attempt ran out of time. Finished out of order, the id recorded is the end of the
  // longest run of finished chunks from the start, so a resumed attempt skips only those.
  const finished = new Array<boolean>(chunks.length).fill(false);
  let through = 0;
  let lastSaved = ctx.now().getTime();
  let next = 0;
  let cut = false;
  let failure: { readonly reason: unknown } | undefined;
  const saveThrough = async (final: boolean): Promise<void> => {
    while (through < chunks.length && finished[through]) through++;
    if (through === 0 || (!final && ctx.now().getTime() - lastSaved < PROGRESS_EVERY_MS)) return;
    lastSaved = ctx.now().getTime();
    const last = chunks[through - 1]!;
    await save({ releasedThrough: last[last.length - 1]!, progress: { phase: 'releasing waiting states', done: targets.size, total: targets.size } });
  };
  const lane = async (): Promise<void> => {
    while (next < chunks.length && !failure) {
      if (pastDeadline(run)) {
        cut = true;
        return;
      }
      const at = next++;
      try {
        await releaseChunk(chunks[at]!);
        finished[at] = true;
        await saveThrough(false);
      } catch (error) {
        failure ??= { reason: error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RELEASE_CHUNKS_IN_FLIGHT, chunks.length) }, lane));
  if (failure) throw failure.reason;
  await saveThrough(true);
  return !cut;
}

/** Chunks of 100 targets read and released at once by {@link releaseWaiting}. */
const RELEASE_CHUNKS_IN_FLIGHT = 4;

/** Waiting states released at once (each one SendTaskSuccess, and reads of the children's parents). */
const RELEASES_IN_FLIGHT = 16;

function pastDeadline(run: CancelRun): boolean {
  return run.until !== undefined && run.ctx.now().getTime() >= run.until;
}

/** What {@link workOnCancel} records as it goes. */
type Save = (checkpoint: CancelCheckpoint) => Promise<void>;

/** What paths into sublattices reported, kept on the request item between attempts. */
interface ChildReport {
  readonly cancelled: CancelledNode[];
  readonly alreadyTerminal: TerminalNode[];
  readonly merged: MergedNode[];
  readonly notFound: (number | string)[];
}

/** Writes the final report (inline, or to S3 when too large for the item); the first attempt to finish wins. */
async function finishRequest(run: CancelRun, report: CancelReport): Promise<CancelReport> {
  const { ctx, dispatchId, record } = run;
  const text = JSON.stringify(report);
  let stored: { inline: string } | { key: string } = { inline: text };
  if (Buffer.byteLength(text) > MAX_INLINE_REPORT_BYTES) {
    const key = cancelReportKey(dispatchId, record.requestId);
    await ctx.payloads.putText(key, text, ctx.signal);
    stored = { key };
  }
  if (await ctx.store.finishCancelRequest(dispatchId, record, ctx.now().toISOString(), stored, ctx.signal)) return report;
  // Another attempt finished it first: its report is the request's.
  return (await readCancelReport(ctx, dispatchId, record.requestId)) ?? report;
}

/** Reports larger than this go to S3 (DynamoDB items hold 400 KB). */
const MAX_INLINE_REPORT_BYTES = 300_000;

/** Where a large cancel report is stored in the payload bucket. */
export function cancelReportKey(dispatchId: string, requestId: string): string {
  return `dispatches/${dispatchId}/cancels/${requestId}.json`;
}

/** The final report of a finished request (from its item or S3), or undefined while it is open. */
export async function readCancelReport(ctx: RuntimeContext, dispatchId: string, requestId: string): Promise<CancelReport | undefined> {
  const item = await ctx.store.getCancelRequest(dispatchId, requestId, ctx.signal);
  if (item?.report) return JSON.parse(item.report) as CancelReport;
  if (item?.reportKey) return JSON.parse(await ctx.payloads.getText(item.reportKey, ctx.signal)) as CancelReport;
  return undefined;
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
 * Finishes cancel requests left open (their handler and its continuations crashed, timed out
 * or lost a write) whose last progress is older than `staleMs`, by resuming them from their
 * recorded checkpoint under their recorded id.
 */
export async function finishOpenCancels(ctx: RuntimeContext, deps: Omit<CancelDeps, 'ctx'>, staleMs: number): Promise<OpenCancelsReport> {
  const report = { open: 0, finished: 0, errors: [] as string[] };
  const nowMs = ctx.now().getTime();
  for (const item of await ctx.store.listOpenCancelRequests(ctx.signal)) {
    report.open++;
    if (nowMs - Date.parse(item.progressAt ?? item.requestedAt) < staleMs) continue;
    try {
      await ctx.store.touchCancelRequest(item.dispatchId, item, ctx.now().toISOString(), undefined, ctx.signal);
      const outcome = await workOnCancel(ctx, item, deps);
      if (outcome.done) report.finished++;
    } catch (error) {
      await ctx.store.touchCancelRequest(item.dispatchId, item, ctx.now().toISOString(), describeError(error)).catch(() => undefined);
      report.errors.push(`${item.dispatchId} cancel ${item.requestId}: ${describeError(error)}`);
    }
  }
  return report;
}

/** The named nodes and every descendant; paths (`"5/2"`) grouped by the sublattice node they go through. */
function resolveTargets(run: CancelRun): { targets: Set<number>; childRequests: Map<number, (number | string)[]> } {
  const { byId } = run;
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
        run.notFound.push(id);
        continue;
      }
      const list = childRequests.get(parent.nodeId) ?? [];
      list.push(rest.length === 1 ? Number(rest[0]) : rest.join('/'));
      childRequests.set(parent.nodeId, list);
    } else if (byId.has(id)) {
      for (const descendant of descendantsOf(id, (n) => byId.get(n)?.children ?? [])) targets.add(descendant);
    } else {
      run.notFound.push(id);
    }
  }
  return { targets, childRequests };
}

/**
 * A whole-dispatch cancel: flag the dispatch (new nodes of it then never start) and, when this
 * request flagged it first, stop its execution, so no further state starts. Concurrent
 * whole-dispatch cancels merge: only the first stops the execution. Returns whether this
 * request stopped it; recorded, so a resumed attempt does not stop it again.
 */
async function stopDispatchExecution(run: CancelRun, save: Save): Promise<boolean> {
  if (run.taskIds) return false;
  const { ctx, dispatch } = run;
  const flagged = await ctx.store.requestDispatchCancel(run.dispatchId, ctx.signal, run.requestId);
  let stopped = false;
  if ((flagged?.cancelRequestId ?? run.requestId) === run.requestId && dispatch.status === DispatchStatus.RUNNING && dispatch.executionArn) {
    stopped = await stopExecution(ctx, dispatch.executionArn, run.reason);
  }
  await save({ executionStopped: stopped });
  return stopped;
}

/**
 * Flags and ends every not-started target, in bulk: {@link MAX_TRANSACT_ITEMS} conditional
 * writes per TransactWriteItems, {@link BULK_IN_FLIGHT} transactions at once (issue 13: at
 * 20,000 nodes one write per node was 200 s on the local cloud). Each node keeps the single
 * write's condition, so one that started meanwhile (the step handler's claim won), ended, or
 * was flagged by another request is refused, then flagged on its own as before and, when it
 * runs, moved to `running`. The ids it ended go to `endedNow`: a task cancel releases the
 * states waiting on them afterwards ({@link releaseWaiting}), so that every target is terminal
 * before the first release. Returns false when the deadline stopped it first (progress is
 * recorded).
 */
async function endNotStartedTargets(
  run: CancelRun,
  notStarted: readonly number[],
  running: number[],
  endedNow: number[],
  onDone: () => void,
  progress: (phase: string) => Promise<void>,
): Promise<boolean> {
  const { ctx, dispatchId } = run;
  const queue: number[][] = [];
  for (let i = 0; i < notStarted.length; i += MAX_TRANSACT_ITEMS) queue.push(notStarted.slice(i, i + MAX_TRANSACT_ITEMS));
  let lastProgress = ctx.now().getTime();
  const worker = async (): Promise<void> => {
    for (let chunk = queue.shift(); chunk !== undefined && !pastDeadline(run); chunk = queue.shift()) {
      const { ended, refused } = await ctx.store.cancelNotStartedMany(
        dispatchId,
        chunk,
        { requestId: run.requestId, reason: run.reason, requestedAt: run.requestedAt, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.NotStarted },
        ctx.signal,
      );
      for (const id of ended) endedNow.push(id);
      for (const id of refused.keys()) {
        const flagged = await ctx.store.requestNodeCancel(dispatchId, id, run.reason, run.requestedAt, ctx.signal, run.requestId, run.record.force);
        if (flagged?.status === NodeStatus.RUNNING) running.push(id);
      }
      for (let i = 0; i < chunk.length; i++) onDone();
      if (ctx.now().getTime() - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = ctx.now().getTime();
        await progress('ending not-started');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BULK_IN_FLIGHT, queue.length) }, worker));
  running.sort((a, b) => a - b);
  if (queue.length > 0 || pastDeadline(run)) {
    await progress('ending not-started');
    return queue.length === 0 && !pastDeadline(run);
  }
  return true;
}

/**
 * Flags each running target and asks the driver of each node this request flagged first to
 * stop its work (all nodes of one driver at once, so Batch can terminate a whole array job
 * once); a node another request flagged first is that request's to stop (merged). Then the
 * paths into sublattices. Records the time and any failed stop, so a resumed attempt does
 * not send them again (the sweeper retries failed ones). Returns when the stops were sent,
 * with the write that records them still in flight (`recorded`, which the caller awaits).
 */
async function sendStops(
  run: CancelRun,
  running: readonly number[],
  childRequests: ReadonlyMap<number, (number | string)[]>,
  save: Save,
  earlier: Readonly<Record<string, string>>,
): Promise<{ readonly stopsSentAt: string; readonly recorded: Promise<void> }> {
  const { ctx, dispatchId } = run;
  const owned: NodeItem[] = [];
  const queue = [...running];
  const worker = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const flagged = await ctx.store.requestNodeCancel(dispatchId, id, run.reason, run.requestedAt, ctx.signal, run.requestId, run.record.force);
      // A forced request also stops, at once, work a graceful one flagged first (an escalation, reported as merged).
      if (flagged && ((flagged.cancelRequestId ?? run.requestId) === run.requestId || run.record.force === true)) owned.push(flagged);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FLAG_CONCURRENCY, queue.length) }, worker));
  owned.sort((a, b) => a.nodeId - b.nodeId);
  const stopErrors: Record<string, string> = { ...earlier };
  const stopRequest = stopRequestOf(run);
  for (const [driver, nodes] of byDriver(owned)) {
    if (!driver) continue;
    const results = await driver.stop(ctx, nodes, stopRequest);
    for (const node of nodes) {
      const result = results.find((r) => r.nodeId === node.nodeId);
      if (result && 'error' in result) stopErrors[String(node.nodeId)] = result.error;
      // 'pending' with a job: its driver found the job already over (a resumed attempt whose first
      // stop took): ended here too, rather than waiting for the state-change event.
      else if (result && (result.method !== 'pending' || node.jobHandle !== undefined)) {
        const error = await endIfJobEnded(ctx, node);
        if (error) stopErrors[String(node.nodeId)] = error;
      }
    }
  }
  const child: Mutable<ChildReport> = { cancelled: [], alreadyTerminal: [], merged: [], notFound: [] };
  for (const [parentId, ids] of childRequests) await cancelInChild(run, parentId, ids, child);
  const stopsSentAt = ctx.now().toISOString();
  // Returned unawaited (the caller awaits it beside its next writes): the checkpoint only spares
  // a resumed attempt from sending the stops again, and sending them again is harmless.
  const recorded = save({ stopsSentAt, stopErrors, ...(childRequests.size > 0 ? { childReport: JSON.stringify(child) } : {}) });
  return { stopsSentAt, recorded };
}

/** What this request asks the drivers to do for the nodes it stops. */
function stopRequestOf(run: CancelRun): StopRequest {
  const { ctx } = run;
  return {
    reason: run.reason,
    requestedBy: run.record.requestedBy,
    ...(run.record.force ? { force: true } : {}),
    // One child request per parent request and child, as for paths (cancelInChild): an attempt
    // cut part-way (its invocation's signal aborts its calls) is resumed by the next attempt
    // under the same id, so the targets it flagged are stopped by it. A fresh id each time
    // opened a second request that found those targets flagged by the first (merged, not its
    // to stop), waited out its bound and ended the child CANCELLED with one still RUNNING
    // (test/cancel/cut.test.ts reproduces that cut).
    cancelChild: (childId, request) => cancelDispatch(ctx, childId, request, run.deps, { requestId: derivedChildRequestId(run.requestId, childId), requestedAt: run.requestedAt }),
    ...(run.deps.loadExecutors ? { loadExecutors: run.deps.loadExecutors } : {}),
  };
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
 * Returns the error of a failed poll (the sweeper ends it later).
 */
async function endIfJobEnded(ctx: RuntimeContext, flagged: NodeItem): Promise<string | undefined> {
  try {
    const node = await ctx.store.getNode(flagged.dispatchId, flagged.nodeId, { signal: ctx.signal });
    if (!node?.jobHandle || isTerminalNodeStatus(node.status)) return undefined;
    const end = await pollJob(ctx, node);
    if (end) await endNodeForJob(ctx, node, end);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

/**
 * Cancels paths into one sublattice node. With a child dispatch, the request goes to it; while
 * the node has none yet (it has not started, or is building its graph), the request recorded
 * by {@link openCancel} is applied by the child-dispatch driver when it creates the child.
 */
async function cancelInChild(run: CancelRun, parentId: number, ids: readonly (number | string)[], into: Mutable<ChildReport>): Promise<void> {
  const { ctx } = run;
  const prefix = (id: number | string): string => `${parentId}/${id}`;
  // Read after the request was recorded: if the child id is not here, its creator reads the request.
  const parent = (await ctx.store.getNode(run.dispatchId, parentId, { signal: ctx.signal })) ?? run.byId.get(parentId)!;
  if (!parent.childDispatchId) {
    for (const id of ids) {
      if (isTerminalNodeStatus(parent.status)) into.notFound.push(prefix(id));
      else into.cancelled.push({ id: prefix(id), name: `${parent.electron}/${id}`, previousStatus: NodeStatus.NEW_OBJECT, status: NodeStatus.CANCELLED, method: CancelMethod.PendingChild });
    }
    return;
  }
  // One child request per parent request and node, so a resumed attempt resumes it instead of opening another.
  const child = await cancelDispatch(
    ctx,
    parent.childDispatchId,
    { taskIds: ids, reason: run.reason, requestedBy: run.record.requestedBy, ...(run.record.waitMs !== undefined ? { waitMs: run.record.waitMs } : {}), ...(run.record.force ? { force: true } : {}) },
    run.deps,
    { requestId: derivedRequestId(run.requestId, parentId), requestedAt: run.requestedAt },
  );
  into.cancelled.push(...child.cancelled.map((c) => ({ ...c, id: prefix(c.id) })));
  into.alreadyTerminal.push(...child.alreadyTerminal.map((c) => ({ ...c, id: prefix(c.id) })));
  into.merged.push(...(child.merged ?? []).map((c) => ({ ...c, id: prefix(c.id) })));
  into.notFound.push(...child.notFound.map(prefix));
}

/** The first wait before reading the stopping targets again, in ms; each wait after is longer. */
const STOP_POLL_FIRST_MS = 10;
/** The longest wait between two reads of the stopping targets, in ms. */
const STOP_POLL_MAX_MS = 50;
/** Targets up to this many are read whole on each poll, so the report can use the last read. */
const SNAPSHOT_TARGETS = 100;

/**
 * Waits (bounded) for the running targets to stop, so the answer is what happened, not what
 * was asked. The bound counts from when the stops were sent, so resumed attempts share it.
 * `done` is false when the attempt's deadline came first. Polls soon, then less often: a
 * zero-grace stop takes about one watchdog interval, so a fixed 50 ms poll added up to 50 ms
 * to every answer, while one read costs a few ms. With few targets each poll reads them all,
 * and `targets` is the last read once every running one was terminal (the report's input).
 */
async function awaitStops(run: CancelRun, running: readonly number[], stopsSentAt: string, all: ReadonlySet<number>): Promise<{ readonly done: boolean; readonly targets?: NodeItem[] }> {
  if (running.length === 0) return { done: true };
  const { ctx, dispatchId } = run;
  // A forced stop has no grace period to wait out.
  const graceMax = run.record.force ? 0 : Math.max(...running.map((id) => run.byId.get(id)?.graceSeconds ?? 10));
  const waitMs = run.record.waitMs ?? Math.min(20_000, graceMax * 1000 + 3_000);
  const deadline = Date.parse(stopsSentAt) + waitMs;
  const whole = all.size <= SNAPSHOT_TARGETS ? [...all].sort((a, b) => a - b) : undefined;
  let pending = [...running];
  let read: NodeItem[] | undefined;
  for (let delay = STOP_POLL_FIRST_MS; pending.length > 0 && ctx.now().getTime() < deadline; delay = Math.min(STOP_POLL_MAX_MS, Math.round(delay * 1.25))) {
    if (pastDeadline(run)) return { done: false };
    await new Promise((resolve) => setTimeout(resolve, delay));
    read = await ctx.store.getNodes(dispatchId, whole ?? pending, ctx.signal);
    const now = read;
    pending = pending.filter((id) => !isTerminalNodeStatus(now.find((n) => n.nodeId === id)?.status ?? NodeStatus.RUNNING));
  }
  return { done: true, ...(pending.length === 0 && whole && read ? { targets: read } : {}) };
}

/**
 * The truthful report, read from the nodes themselves after the work: each node records the
 * request that flagged it first, so the report is the same whichever attempt writes it.
 * - `cancelled`: nodes this request stopped or prevented (flagged by it, or ended
 *   upstream-cancelled after it arrived), with what their work held and how long it ran;
 * - `merged`: nodes a concurrent request flagged first, which that request stops and reports,
 *   and consequences of another request's cancel ({@link consequenceCauses});
 * - `alreadyTerminal`: nodes that ended otherwise (completed or failed meanwhile included).
 */
async function buildReport(
  run: CancelRun,
  targets: ReadonlySet<number>,
  parts: {
    readonly executionStopped: boolean;
    readonly stopErrors: Readonly<Record<string, string>>;
    readonly childReport: string | undefined;
    readonly adopted: ReadonlySet<number>;
    /** The targets as just read (the wait's last poll, every stopped one terminal); read here when absent. */
    readonly snapshot?: readonly NodeItem[] | undefined;
  },
): Promise<CancelReport> {
  const { ctx, dispatchId } = run;
  const ids = [...targets].sort((a, b) => a - b);
  const nodes = parts.snapshot ?? (ids.length > 100 ? await ctx.store.listNodes(dispatchId, ctx.signal) : await ctx.store.getNodes(dispatchId, ids, ctx.signal));
  const now = new Map(nodes.map((n) => [n.nodeId, n]));
  const child: ChildReport = parts.childReport ? (JSON.parse(parts.childReport) as ChildReport) : { cancelled: [], alreadyTerminal: [], merged: [], notFound: [] };
  const report: Mutable<CancelReport> = {
    dispatchId,
    requestId: run.requestId,
    requestedAt: run.requestedAt,
    cancelled: [...child.cancelled],
    alreadyTerminal: [...child.alreadyTerminal],
    merged: [...child.merged],
    notFound: [...run.notFound, ...child.notFound],
    executionStopped: parts.executionStopped,
  };
  const nowMs = ctx.now().getTime();
  const causes = await consequenceCauses(run, ids.flatMap((id) => now.get(id) ?? []), now);
  for (const id of ids) {
    const node = now.get(id);
    if (!node) continue;
    const owner = node.cancelRequestId ?? (node.cancelRequested ? run.requestId : undefined);
    if (node.status === NodeStatus.COMPLETED || node.status === NodeStatus.FAILED) {
      // It finished before its stop took: not cancelled by anyone, so `cancelled` never overcounts.
      report.alreadyTerminal.push({ id, status: node.status });
    } else if (isTerminalNodeStatus(node.status) && node.endedAt !== undefined && node.endedAt < run.requestedAt) {
      // Ended (by an earlier request, say) before this one arrived.
      report.alreadyTerminal.push({ id, status: node.status });
    } else if (owner !== undefined && owner !== run.requestId) {
      report.merged.push({ id, requestId: owner, status: node.status, ...(parts.adopted.has(id) ? { adopted: true as const } : {}) });
    } else if (node.status === NodeStatus.CANCELLED) {
      const consequence = owner === undefined && node.cancelledBy === CancelMethod.UpstreamCancelled && (node.endedAt ?? '') >= run.requestedAt;
      const cause = consequence ? causes.get(id) : undefined;
      if (cause !== undefined && cause !== run.requestId) report.merged.push({ id, requestId: cause, status: node.status });
      else if (owner === run.requestId || consequence) report.cancelled.push(cancelledEntry(node, parts.stopErrors, nowMs));
      else report.alreadyTerminal.push({ id, status: node.status });
    } else {
      report.cancelled.push(cancelledEntry(node, parts.stopErrors, nowMs));
    }
  }
  sortReport(report);
  return report;
}

/**
 * The request each consequence was ended for: a node that the step handler or an `await`
 * ended `upstream-cancelled` carries no request of its own, and every request that arrived
 * before it ended would otherwise list it as its own (100 fault races found one in two
 * requests' `cancelled`). Its cause is the request that flagged a CANCELLED parent, or that
 * parent's own cause when it is a consequence too; of several, the lowest parent id's, so
 * every request's report names the same one. The parents are final (a node ends below its
 * parents only once all of them are terminal), so this is read from what the table holds now.
 * Undefined when no request flagged an ancestor (then each request lists it, as before).
 * Parents outside the targets are read, a wave at a time (ids are in call order, so a parent's
 * id is below its child's and one pass in id order resolves every chain).
 */
async function consequenceCauses(run: CancelRun, nodes: readonly NodeItem[], known: Map<number, NodeItem>): Promise<Map<number, string | undefined>> {
  const { ctx, dispatchId } = run;
  const unowned = (n: NodeItem): boolean => n.status === NodeStatus.CANCELLED && n.cancelRequestId === undefined && !n.cancelRequested && n.cancelledBy === CancelMethod.UpstreamCancelled;
  const causes = new Map<number, string | undefined>();
  const walked = new Set<number>();
  let wave = nodes.filter(unowned);
  if (wave.length === 0) return causes;
  const items = new Map(known);
  while (wave.length > 0) {
    for (const n of wave) walked.add(n.nodeId);
    const parents = [...new Set(wave.flatMap((n) => n.parents))];
    const missing = parents.filter((id) => !items.has(id));
    if (missing.length > 0) for (const p of await ctx.store.getNodes(dispatchId, missing, ctx.signal)) items.set(p.nodeId, p);
    wave = parents.flatMap((id) => {
      const p = items.get(id);
      return p && unowned(p) && !walked.has(id) ? [p] : [];
    });
  }
  for (const id of [...walked].sort((a, b) => a - b)) {
    const node = items.get(id)!;
    let cause: string | undefined;
    for (const parentId of [...node.parents].sort((a, b) => a - b)) {
      const parent = items.get(parentId);
      if (parent?.status !== NodeStatus.CANCELLED) continue;
      cause = parent.cancelRequestId ?? (unowned(parent) ? causes.get(parentId) : undefined);
      if (cause !== undefined) break;
    }
    causes.set(id, cause);
  }
  return causes;
}

/** One `cancelled` entry: how the node was stopped, and what its work held and for how long. */
function cancelledEntry(node: NodeItem, stopErrors: Readonly<Record<string, string>>, nowMs: number): CancelledNode {
  const started = node.startedAt !== undefined;
  const error = stopErrors[String(node.nodeId)];
  const entry: Mutable<CancelledNode> = {
    id: node.nodeId,
    name: node.name,
    previousStatus: started ? NodeStatus.RUNNING : NodeStatus.NEW_OBJECT,
    status: node.status,
    method: node.cancelledBy ?? node.cancelAction ?? (started ? 'pending' : CancelMethod.NotStarted),
  };
  if (error && !isTerminalNodeStatus(node.status)) entry.error = error;
  if (node.jobHandle) entry.jobHandle = node.jobHandle;
  if (node.endedAt) entry.endedAt = node.endedAt;
  if (started) entry.stopped = stoppedWork(node, nowMs);
  return entry;
}

/** What a started node's work held when it was stopped (issue 13: "what was stopped"). */
function stoppedWork(node: NodeItem, nowMs: number): StoppedWork {
  const ranMs = Math.max(0, (node.endedAt ? Date.parse(node.endedAt) : nowMs) - Date.parse(node.startedAt!));
  const options = (node.executorJson?.options ?? {}) as Record<string, unknown>;
  const num = (key: string): number | undefined => (typeof options[key] === 'number' ? options[key] : undefined);
  const held: Mutable<StoppedWork> = { executor: node.executor, ranMs };
  const [vcpus, memoryMiB, gpus, shots] = [num('vcpus'), num('memoryMiB'), num('gpus'), num('shots')];
  if (vcpus !== undefined) held.vcpus = vcpus;
  if (memoryMiB !== undefined) held.memoryMiB = memoryMiB;
  if (gpus !== undefined) held.gpus = gpus;
  if (shots !== undefined) held.shots = shots;
  return held;
}

/** Node order, with paths into sublattices after the node that holds them. */
function sortReport(report: Mutable<CancelReport>): void {
  const order = (id: number | string): number[] => String(id).split('/').map(Number);
  const byNode = (a: { readonly id: number | string }, b: { readonly id: number | string }): number => {
    const [x, y] = [order(a.id), order(b.id)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (x[i] ?? -1) - (y[i] ?? -1);
    return 0;
  };
  report.cancelled.sort(byNode);
  report.alreadyTerminal.sort(byNode);
  report.merged.sort(byNode);
  report.notFound.sort((a, b) => byNode({ id: a }, { id: b }));
}

/** A whole-dispatch cancel ends the dispatch `CANCELLED` (and a child's sublattice node with it). */
async function endCancelledDispatch(run: CancelRun): Promise<void> {
  const { ctx } = run;
  if (isTerminalDispatchStatus(run.dispatch.status) && run.dispatch.status !== DispatchStatus.CANCELLED) return;
  // Also when an earlier attempt ended it: it may have been cut before it ended the parent node.
  const ended = (await ctx.store.finishDispatch(run.dispatchId, { status: DispatchStatus.CANCELLED, endedAt: ctx.now().toISOString() }, ctx.signal)) ?? run.dispatch;
  if (ended.parent) await endParentOfCancelledChild(ctx, ended);
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
  const ended =
    (await ctx.store.finishNode(dispatchId, nodeId, { status: NodeStatus.CANCELLED, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.ChildDispatch }, ctx.signal)) ??
    (await ctx.store.getNode(dispatchId, nodeId, { signal: ctx.signal }));
  // Idempotent, so an attempt that resumes after a cut releases what the cut attempt did not.
  if (ended?.status === NodeStatus.CANCELLED) await releaseDependents(ctx, ended);
}

export { DispatchNotFoundError };
