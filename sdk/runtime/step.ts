/**
 * The step handler's logic: what one Task state of a compiled lattice does.
 *
 * Events (emitted by the compiler, see sdk/compiler/README.md):
 * - `run` — run a node: claim it (`NEW_OBJECT → RUNNING`, refused once a cancel is requested),
 *   run it on its executor, store the output, end it. Long-running executors (Batch, Braket,
 *   sublattices) arrive with a task token: the handler submits, records the job handle and
 *   returns; the completion handler ends the node and releases the token.
 * - `await` — a callback wait for dependencies that nested Parallel states cannot express;
 *   released when every parent of the node is terminal. With `run: true` it also runs the node
 *   (here, or in the run its last parent's releaser wakes) and its token is released when the
 *   node ends (issue 18).
 * - `finalize` — ends the dispatch with its status and result.
 * - `plan` — the graph-runner's first state: lists the node ids of a child dispatch.
 *
 * Every write is conditional (see store.ts), so a retried or duplicated invocation never runs
 * an electron twice and never overwrites a terminal status.
 */
import { randomUUID } from 'node:crypto';
import { DispatchStatus, NodeStatus, isTerminalNodeStatus } from '../status.ts';
import { ErrorCode, TaskCancelledError, ValenceError, isCancellation } from '../errors.ts';
import { releaseToken, type RuntimeContext } from './context.ts';
import { awaitReleased, endBelowParents, nodeEnded, releaseDependents, upstreamEnd } from './settle.ts';
import { payloadKeys } from './payloads.ts';
import { serializeError, type SerializedError } from './serialization.ts';
import { CancelMethod } from '../status.ts';
import { parentViewOf, type DispatchItem, type NodeItem, type ParentView } from './store.ts';
import type { GraphCatalog, RuntimeGraph, RuntimeNode } from './workflows.ts';
import { resolveTemplate, WorkflowLookupError } from './workflows.ts';
import { cancelDispatch } from './cancel.ts';
import { driverForNode } from './drivers/index.ts';
import { isTransientAwsError } from '../aws.ts';
import type { InvocationInfo, NodeOutcome, NodeRun } from './drivers/driver.ts';
import { electronIdentity, inputHashOf, type NodeContent } from './content.ts';
import { decideReuse } from './reuse.ts';

export type { InvocationInfo, NodeOutcome } from './drivers/driver.ts';

/** The event a compiled Task state sends to the step handler. */
export type StepEvent =
  | {
      readonly action?: 'run';
      readonly dispatchId: string;
      readonly nodeId: number;
      readonly taskToken?: string;
      /** The parent whose state ran just before this one: its Task result, a {@link ParentView} (sdk/compiler/asl.ts). */
      readonly parent?: unknown;
      /** The result of the node's own `await` state: its release, with the parents' views ({@link awaitReleased}). */
      readonly released?: unknown;
      /**
       * Sent by a releaser that woke a node waiting in an `await` that also runs it (an
       * asynchronous invocation, {@link StepDeps.wake}): a node another run holds is left to it.
       */
      readonly woken?: boolean;
    }
  | {
      readonly action: 'await';
      readonly dispatchId: string;
      readonly nodeId: number;
      readonly taskToken: string;
      readonly waitFor?: readonly number[];
      /** The state catches `NODE_ENDED_ERROR`: a node that can no longer run skips its `run` state. */
      readonly skippable?: boolean;
      /**
       * The state also runs the node (issue 18): one state and, mostly, one invocation per
       * waiting node instead of two. Its Catch of `RUN_NODE_ERROR` leads to a plain `run` state,
       * where a releaser that cannot run the node hands it back to Step Functions.
       */
      readonly run?: boolean;
      /** As a `run` event's: the parent whose state ran just before this one. */
      readonly parent?: unknown;
    }
  | { readonly action: 'finalize'; readonly dispatchId: string }
  | { readonly action: 'plan'; readonly dispatchId: string; readonly partitionSize?: number; readonly splitAbove?: number; readonly from?: number; readonly to?: number };

/** Dependencies of the step logic beyond the shared runtime context. */
export interface StepDeps {
  readonly ctx: RuntimeContext;
  /** Finds lattices, graphs and electrons of the deployed workflows module. */
  readonly catalog: GraphCatalog;
  /**
   * Told the attempt this invocation makes once the node's own item says it: the claim's (or
   * takeover's) count, or the stored count plus one when a `run` claims nothing (a lost claim, an
   * upstream end). Never told for an `await`, which is no attempt of the node. The handler logs
   * it; learning it from the claim, which writes the item anyway, costs no read.
   */
  readonly onAttempt?: (attempt: number) => void;
  /**
   * Starts the run of a node released from an `await` that also runs it, outside this
   * invocation: the deployed handler invokes itself asynchronously (`InvocationType: Event`)
   * with a `run` event. Without it (or when it throws) the releaser fails the wait with
   * `RUN_NODE_ERROR`, and the state's Catch runs the node in a plain `run` state.
   */
  readonly wake?: Waker;
}

/** See {@link StepDeps.wake}. */
export type Waker = (event: Extract<StepEvent, { action?: 'run' }>) => Promise<void>;

/** Thrown when an event names something that does not exist: a broken deployment, not user error. */
export class StepEventError extends ValenceError {
  override readonly name: string = 'StepEventError';
  constructor(message: string) {
    super(ErrorCode.STEP_EVENT_INVALID, message);
  }
}

/** Handles one step event. The return value becomes the Task state's output. */
export async function handleStep(deps: StepDeps, event: StepEvent, info: InvocationInfo): Promise<unknown> {
  if (!event || typeof event.dispatchId !== 'string') throw new StepEventError(`Step event without a dispatchId: ${JSON.stringify(event)}`);
  switch (event.action ?? 'run') {
    case 'run':
      return runNode(deps, event as RunEvent, info);
    case 'await':
      return awaitParents(deps, event as Extract<StepEvent, { action: 'await' }>, info);
    case 'finalize':
      return finalizeDispatch(deps, event.dispatchId);
    case 'plan':
      return planDispatch(deps, event);
    default:
      throw new StepEventError(`Unknown step action "${String((event as { action?: unknown }).action)}"`);
  }
}

/**
 * The Task output of a node state. Once the node ended it is its {@link ParentView} (at most
 * `LIMITS.inlineOutputBytes` of output inline): the state that runs next may hand it to
 * the child it runs, which then reads no item for this parent.
 */
type NodeStepOutput = ParentView | { readonly nodeId: number; readonly status: NodeStatus };

/** The event of a `run` state. */
type RunEvent = { readonly dispatchId: string; readonly nodeId: number; readonly taskToken?: string; readonly parent?: unknown; readonly released?: unknown; readonly woken?: boolean };

/** What every step of running one node reads. */
interface NodeStep {
  readonly deps: StepDeps;
  readonly dispatch: DispatchItem;
  readonly graph: RuntimeGraph;
  readonly node: RuntimeNode;
  readonly taskToken: string | undefined;
  /** Parents' views from the state payload (a hand-off, the node's own `await` release), each one of this node's parents and ended. */
  readonly carried: readonly ParentView[];
  /** Woken by a releaser (or started by the `await` that found another run there): a node another run holds is left to it. */
  readonly leaveHeld: boolean;
}

/** Runs one node: parents first, then the claim, then its driver, then its outcome. */
async function runNode(deps: StepDeps, event: RunEvent, info: InvocationInfo): Promise<NodeStepOutput> {
  const step = await loadNodeStep(deps, event);
  const upstream = await endIfUpstreamEnded(step);
  if (upstream) return upstream;
  const runId = `${info.awsRequestId ?? 'local'}:${randomUUID()}`;
  const inputs = inputReader(step);
  const content = await contentOf(step, inputs);
  const claimed = await claim(step, runId, info, content);
  if (!('item' in claimed)) return claimed.settled;
  const reused = await reuseOrSkip(step, claimed.item, runId, content);
  if (reused) return reused;
  const outcome = await startOnDriver(step, claimed.item, runId, info, inputs);
  return recordOutcome(step, runId, outcome);
}

/**
 * The node's content address (see content.ts): the deployed electron's identity and the hash
 * of its resolved inputs. Undefined for sublattice nodes (what runs inside them is only known
 * once their child graph is built) and when a parent's output hash is unknown.
 */
async function contentOf(step: NodeStep, inputs: InputReader): Promise<NodeContent | undefined> {
  const { deps, graph, node, dispatch } = step;
  if (node.kind !== 'electron') return undefined;
  const parentItems = (graph.parents[node.id] ?? []).length > 0 ? await parentItemsOf(step) : [];
  const hashes = new Map(parentItems.map((p) => [p.nodeId, p.outputHash] as const));
  const params = graph.usesParams[node.id] ? await (inputs.args ??= deps.ctx.payloads.getValue<unknown[]>(payloadKeys.args(dispatch.dispatchId), deps.ctx.signal)) : undefined;
  const inputHash = inputHashOf(node.args, params, (id) => hashes.get(id));
  if (inputHash === undefined) return undefined;
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = await deps.catalog.electron(graph.lattice, node.electron, graph.buildArgs);
  } catch (error) {
    // Not deployed: there is nothing to address; running it reports the lookup failure.
    if (error instanceof WorkflowLookupError) return undefined;
    throw error;
  }
  return { identity: identityOf(node, fn), inputHash };
}

/**
 * {@link electronIdentity} of a node of a cached graph, hashed once per container: it depends
 * only on the node (a warm container's graphs are cached, so the same object) and the loaded
 * function, and hashing the function's source text was a share of every run's CPU.
 */
function identityOf(node: RuntimeNode, fn: (...args: unknown[]) => unknown): string {
  const known = identities.get(node);
  if (known?.fn === fn) return known.identity;
  const identity = electronIdentity(node, fn.toString());
  identities.set(node, { fn, identity });
  return identity;
}
const identities = new WeakMap<RuntimeNode, { readonly fn: (...args: unknown[]) => unknown; readonly identity: string }>();

/**
 * A redispatch's planned reuse, confirmed against what the deployed code would run: when it
 * holds, the node ends COMPLETED with the earlier result (by reference) and its electron never
 * runs. In a dry run a node that would run ends CANCELLED instead, saying why.
 */
async function reuseOrSkip(step: NodeStep, item: NodeItem, runId: string, content: NodeContent | undefined): Promise<NodeStepOutput | undefined> {
  const { ctx } = step.deps;
  if (item.reuse === undefined && !step.dispatch.dryRun) return undefined;
  const parents = (step.graph.parents[step.node.id] ?? []).length > 0 ? await parentItemsOf(step) : [];
  const decision = await decideReuse(ctx, item, content, parents);
  const { dispatchId } = step.dispatch;
  const endedAt = ctx.now().toISOString();
  if (decision.reuse) {
    const ended = await ctx.store.finishNode(dispatchId, step.node.id, { status: NodeStatus.COMPLETED, endedAt, runId, hasOutput: true, ...decision.result }, ctx.signal);
    return settleStep(step, ended);
  }
  if (!step.dispatch.dryRun) {
    await ctx.store.noteReuseRefused(dispatchId, step.node.id, decision.reason, ctx.signal);
    return undefined;
  }
  const ended = await ctx.store.finishNode(
    dispatchId,
    step.node.id,
    { status: NodeStatus.CANCELLED, endedAt, runId, cancelledBy: CancelMethod.NotStarted, cancelReason: `dry run: would run (${decision.reason})`, reuseRefused: decision.reason },
    ctx.signal,
  );
  return settleStep(step, ended);
}

/**
 * The dispatch item as a warm container first read it, for its fields that never change
 * (`dispatchId`, `lattice`, `parent`, `startedAt`): one GetItem per dispatch per container
 * instead of one per invocation. Its `status` and `cancelRequested` may be stale and are not
 * read from it: a cancel stops a node through the node item's own flag, which the claim's
 * condition reads; `finalize` reads the dispatch fresh.
 */
async function dispatchOf(deps: StepDeps, dispatchId: string): Promise<DispatchItem> {
  let cache = dispatchCaches.get(deps.catalog);
  if (!cache) dispatchCaches.set(deps.catalog, (cache = new Map<string, DispatchItem>()));
  const cached = cache.get(dispatchId);
  if (cached) return cached;
  const dispatch = await deps.ctx.store.requireDispatch(dispatchId, deps.ctx.signal);
  cache.set(dispatchId, dispatch);
  if (cache.size > DISPATCH_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return dispatch;
}
/** Dispatch items kept per container (per catalog): oldest first out. */
const DISPATCH_CACHE_SIZE = 256;
const dispatchCaches = new WeakMap<GraphCatalog, Map<string, DispatchItem>>();

async function loadNodeStep(deps: StepDeps, event: RunEvent): Promise<NodeStep> {
  const { dispatchId, nodeId } = event;
  const dispatch = await dispatchOf(deps, dispatchId);
  const graph = await deps.catalog.graphFor(dispatch, deps.ctx.signal);
  const node = graph.nodes[nodeId];
  if (!node) throw new StepEventError(`Dispatch ${dispatchId} has no node ${nodeId}`);
  return { deps, dispatch, graph, node, taskToken: event.taskToken, carried: carriedParents(event, dispatchId, graph.parents[nodeId] ?? []), leaveHeld: event.woken === true };
}

/**
 * The usable parent views a `run` event carries: the hand-off (`parent`) and the views in the
 * release of the node's own `await` (`released.parents`), each checked by {@link carriedParent},
 * one per parent.
 */
function carriedParents(event: RunEvent, dispatchId: string, parents: readonly number[]): ParentView[] {
  const released = typeof event.released === 'object' && event.released !== null ? (event.released as { parents?: unknown }).parents : undefined;
  const candidates: unknown[] = [event.parent, ...(Array.isArray(released) ? (released as unknown[]) : [])];
  const views = new Map<number, ParentView>();
  for (const candidate of candidates) {
    const view = carriedParent(candidate, dispatchId, parents);
    if (view && !views.has(view.nodeId)) views.set(view.nodeId, view);
  }
  return [...views.values()];
}

/**
 * The parent view a `run` event carries, if it is usable: of this dispatch, one of the node's
 * parents, and terminal (a terminal item never changes). Anything else is ignored and the
 * parent is read from the table as before, so a malformed payload costs a read, never a wrong
 * input.
 */
function carriedParent(value: unknown, dispatchId: string, parents: readonly number[]): ParentView | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const view = value as Partial<ParentView>;
  if (view.dispatchId !== dispatchId || typeof view.nodeId !== 'number' || !parents.includes(view.nodeId)) return undefined;
  if (typeof view.status !== 'string' || !isTerminalNodeStatus(view.status)) return undefined;
  if (view.output !== undefined && typeof view.output !== 'string') return undefined;
  return view as ParentView;
}

/**
 * A node whose parent did not complete never starts: it ends CANCELLED, upstream-failed or
 * upstream-cancelled ({@link upstreamEnd}).
 */
async function endIfUpstreamEnded(step: NodeStep): Promise<NodeStepOutput | undefined> {
  const { ctx } = step.deps;
  const { dispatchId } = step.dispatch;
  const nodeId = step.node.id;
  const parents = step.graph.parents[nodeId] ?? [];
  if (parents.length === 0) return undefined;
  const parentItems = await parentItemsOf(step);
  const unfinished = parentItems.filter((p) => !isTerminalNodeStatus(p.status));
  if (unfinished.length > 0) {
    throw new StepEventError(`Node ${nodeId} of ${dispatchId} was started before its parents ${unfinished.map((p) => p.nodeId).join(', ')} ended`);
  }
  const outcome = upstreamEnd(parentItems, ctx.now());
  if (!outcome) return undefined;
  const ended = await ctx.store.finishNode(dispatchId, nodeId, outcome, ctx.signal);
  if (ended) step.deps.onAttempt?.(ended.attempts + 1);
  return settleStep(step, ended);
}

/**
 * The node's parents, read once per invocation (one BatchGetItem): the upstream check and the
 * inputs (inline outputs) share them. A parent read here is terminal, so its item no longer
 * changes. Parents the state payload carries are not read: a chain node, and a node whose
 * `await` was released with its parents' views, read nothing.
 */
function parentItemsOf(step: NodeStep): Promise<ParentView[]> {
  let items = parentReads.get(step);
  if (!items) {
    const { ctx } = step.deps;
    const { carried } = step;
    const parents = step.graph.parents[step.node.id] ?? [];
    const have = new Set(carried.map((view) => view.nodeId));
    const toRead = parents.filter((id) => !have.has(id));
    const read = toRead.length > 0 ? ctx.store.getNodes(step.dispatch.dispatchId, toRead, ctx.signal) : Promise.resolve([]);
    items = carried.length > 0 ? read.then((list): ParentView[] => [...carried, ...list]) : read;
    parentReads.set(step, items);
  }
  return items;
}
const parentReads = new WeakMap<NodeStep, Promise<ParentView[]>>();

/**
 * Claims the node (`NEW_OBJECT → RUNNING`, refused once a cancel is requested). When the claim
 * is refused: a terminal node is settled, a flagged one that never started ends CANCELLED, a
 * retried wait on a submitted job takes the new token, and a duplicate waits for the holder or
 * takes the node over once its lease lapsed.
 */
async function claim(
  step: NodeStep,
  runId: string,
  info: InvocationInfo,
  content: NodeContent | undefined,
): Promise<{ readonly item: NodeItem } | { readonly settled: NodeStepOutput }> {
  const { ctx } = step.deps;
  const { dispatchId } = step.dispatch;
  const nodeId = step.node.id;
  const claimed = await ctx.store.claimNode(dispatchId, nodeId, runId, ctx.now().getTime() + ctx.config.leaseMs, ctx.now().toISOString(), ctx.signal, content);
  if ('item' in claimed) {
    step.deps.onAttempt?.(claimed.item.attempts);
    return { item: claimed.item };
  }
  // The refused claim returned the node as the winner left it; it is read only when it did not.
  const current = claimed.old ?? (await ctx.store.getNode(dispatchId, nodeId, { signal: ctx.signal }));
  if (!current) throw new StepEventError(`Dispatch ${dispatchId} has no node item ${nodeId}`);
  step.deps.onAttempt?.(current.attempts + 1);
  if (isTerminalNodeStatus(current.status)) return { settled: await settleStep(step, current) };
  if (current.status === NodeStatus.NEW_OBJECT && current.cancelRequested) {
    // Cancelled before it started: nothing is serialized, uploaded or submitted, and no
    // executor is constructed.
    const ended = await ctx.store.finishNode(dispatchId, nodeId, { status: NodeStatus.CANCELLED, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.NotStarted }, ctx.signal);
    return { settled: await settleStep(step, ended) };
  }
  // RUNNING: a duplicate or a retry of this state.
  if (step.taskToken && current.jobHandle) {
    // A retried wait on a submitted job: the job runs on; only the token is new. The write
    // returns the node as it is now, so no read is needed to see whether it ended meanwhile.
    const now = await ctx.store.recordTaskToken(dispatchId, nodeId, step.taskToken, ctx.signal);
    if (now && isTerminalNodeStatus(now.status)) return { settled: await settleStep(step, now) };
    return { settled: { nodeId, status: NodeStatus.RUNNING } };
  }
  if (step.leaveHeld && current.status === NodeStatus.RUNNING && (current.leaseUntil ?? 0) >= ctx.now().getTime()) {
    // Woken twice (two parents ended at once, or a wake raced the `await`'s own second look):
    // the run that holds the node releases the wait when it ends, and if it dies, its lease
    // lapses and the sweeper hands the node back to Step Functions. Waiting here would only
    // hold a second invocation for the electron's whole run.
    return { settled: { nodeId, status: NodeStatus.RUNNING } };
  }
  const taken = await waitOrTakeOver(step.deps, current, runId, info);
  return taken ? { item: taken } : { settled: await settleStep(step, undefined) };
}

/** Runs the claimed node on its kind's driver; a thrown error is the node's failure (or its cancellation). */
async function startOnDriver(step: NodeStep, item: NodeItem, runId: string, info: InvocationInfo, inputs: InputReader): Promise<NodeOutcome> {
  const { deps, dispatch, graph, node } = step;
  const { ctx } = deps;
  const { dispatchId } = dispatch;
  const run: NodeRun = {
    ctx,
    catalog: deps.catalog,
    dispatch,
    graph,
    node,
    item,
    runId,
    taskToken: step.taskToken,
    info,
    loadInputs: (signal) => loadInputs(inputs, node, signal),
    loadInputsOf: (id, signal) => loadInputs(inputs, graph.nodes[id]!, signal),
    checkCancelled: async () => {
      const now = await ctx.store.getNode(dispatchId, node.id, { signal: ctx.signal });
      if (!now || now.cancelRequested || now.runId !== runId) {
        throw new TaskCancelledError(`Node ${node.id} of dispatch ${dispatchId} was cancelled`, {
          dispatchId,
          nodeId: node.id,
          reason: now?.cancelReason ?? 'cancel requested',
        });
      }
    },
    cancelChild: (childId, request) => cancelDispatch(ctx, childId, request),
  };
  try {
    return await driverForNode(node).start(run);
  } catch (error) {
    // The electron's own errors come back as an outcome; a thrown transient AWS error is the
    // runtime's (inputs, store, submission) and must not fail the node: the invocation is retried.
    if (isTransientAwsError(error)) throw error;
    return isCancellation(error)
      ? { status: NodeStatus.CANCELLED, cancelledBy: CancelMethod.BetweenSteps }
      : { status: NodeStatus.FAILED, error: serializeError(error) };
  }
}

/** Stores the output and ends the node with its outcome; a submitted job ends later, a lost claim writes nothing. */
async function recordOutcome(step: NodeStep, runId: string, outcome: NodeOutcome): Promise<NodeStepOutput> {
  const { ctx } = step.deps;
  const { dispatchId } = step.dispatch;
  const nodeId = step.node.id;
  // Submitted; the completion handler ends the node and releases the token.
  if (outcome.status === NodeStatus.RUNNING) return { nodeId, status: NodeStatus.RUNNING };
  if (outcome.status === 'LOST') return settleStep(step, undefined);
  const stored = outcome.status === NodeStatus.COMPLETED ? await ctx.payloads.putNodeOutput(dispatchId, nodeId, outcome.output, ctx.signal) : {};
  const ended = await ctx.store.finishNode(
    dispatchId,
    nodeId,
    {
      status: outcome.status,
      endedAt: ctx.now().toISOString(),
      runId,
      ...(outcome.status === NodeStatus.COMPLETED ? { hasOutput: true, ...stored } : {}),
      ...(outcome.status === NodeStatus.FAILED ? { error: outcome.error } : {}),
      ...(outcome.status === NodeStatus.CANCELLED ? { cancelledBy: outcome.cancelledBy } : {}),
    },
    ctx.signal,
  );
  return settleStep(step, ended);
}

function settleStep(step: NodeStep, ended: NodeItem | undefined): Promise<NodeStepOutput> {
  return settle(step.deps, step.dispatch, step.graph, step.node.id, ended, step.taskToken);
}

async function waitOrTakeOver(deps: StepDeps, current: NodeItem, runId: string, info: InvocationInfo): Promise<NodeItem | undefined> {
  const { ctx } = deps;
  // Wait while another invocation holds a live lease (a duplicate must not run the electron
  // again); take over once the lease lapses (the holder crashed). `current` was just returned
  // by the refused claim, so the first round reads nothing.
  let node: NodeItem | undefined = current;
  for (;;) {
    if (!node || isTerminalNodeStatus(node.status)) return undefined;
    if ((node.leaseUntil ?? 0) < ctx.now().getTime()) {
      const taken = await ctx.store.takeOverNode(node.dispatchId, node.nodeId, runId, ctx.now().getTime() + ctx.config.leaseMs, ctx.now().getTime(), ctx.signal);
      if ('item' in taken) {
        deps.onAttempt?.(taken.item.attempts);
        return taken.item;
      }
      const after = taken.old ?? (await ctx.store.getNode(node.dispatchId, node.nodeId, { signal: ctx.signal }));
      if (after?.cancelRequested && after.status === NodeStatus.RUNNING && (after.leaseUntil ?? 0) < ctx.now().getTime()) {
        // The holder died while a cancel was pending: nobody runs it any more.
        await ctx.store.finishNode(
          node.dispatchId,
          node.nodeId,
          { status: NodeStatus.CANCELLED, endedAt: ctx.now().toISOString(), cancelledBy: CancelMethod.Terminated },
          ctx.signal,
        );
        return undefined;
      }
    }
    if (info.getRemainingTimeInMillis() < 5_000) {
      throw new StepEventError(`Node ${current.nodeId} of ${current.dispatchId} is still held by another invocation`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, ctx.config.leaseMs / 4)));
    node = await ctx.store.getNode(current.dispatchId, current.nodeId, { signal: ctx.signal });
  }
}

/**
 * Reads the inputs of this node (and, for a packed job, of its members) with each payload read
 * once per invocation: the parents' items (whose outputs are mostly inline) in one batch per
 * node set, the dispatch's arguments once.
 */
interface InputReader {
  readonly step: NodeStep;
  readonly items: Map<number, Promise<ParentView | undefined>>;
  args: Promise<unknown[]> | undefined;
}

function inputReader(step: NodeStep): InputReader {
  const items = new Map<number, Promise<ParentView | undefined>>();
  const own = parentReads.get(step);
  if (own) {
    const parents = step.graph.parents[step.node.id] ?? [];
    for (const id of parents) items.set(id, own.then((list) => list.find((p) => p.nodeId === id)));
  }
  return { step, items, args: undefined };
}

async function loadInputs(reader: InputReader, node: RuntimeNode, signal?: AbortSignal): Promise<unknown[]> {
  const { deps, dispatch, graph } = reader.step;
  const { ctx } = deps;
  const parents = graph.parents[node.id] ?? [];
  const missing = parents.filter((id) => !reader.items.has(id));
  if (missing.length > 0) {
    const read = ctx.store.getNodes(dispatch.dispatchId, missing, signal);
    for (const id of missing) reader.items.set(id, read.then((list) => list.find((p) => p.nodeId === id)));
  }
  const outputs = new Map<number, unknown>();
  for (const id of parents) {
    const item = await reader.items.get(id);
    outputs.set(id, await ctx.payloads.getNodeOutput(item ?? { dispatchId: dispatch.dispatchId, nodeId: id }, signal));
  }
  let args: readonly unknown[] | undefined;
  if (graph.usesParams[node.id]) args = await (reader.args ??= ctx.payloads.getValue<unknown[]>(payloadKeys.args(dispatch.dispatchId), signal));
  return resolveTemplate(node.args, {
    node: (id) => {
      if (!outputs.has(id)) throw new StepEventError(`Node ${node.id} refers to node ${id}, which is not its parent`);
      return outputs.get(id);
    },
    param: (index) => args?.[index],
  }) as unknown[];
}

/**
 * After a node ended (or was found ended): release its own wait, and the `await` states of
 * children whose parents are now all terminal.
 */
async function settle(
  deps: StepDeps,
  dispatch: DispatchItem,
  graph: RuntimeGraph,
  nodeId: number,
  ended: NodeItem | undefined,
  taskToken: string | undefined,
): Promise<NodeStepOutput> {
  const { ctx } = deps;
  const node = ended ?? (await ctx.store.getNode(dispatch.dispatchId, nodeId));
  if (!node) throw new StepEventError(`Dispatch ${dispatch.dispatchId} has no node item ${nodeId}`);
  await releaseDependents(ctx, node, deps.wake ? { wake: deps.wake } : {});
  const output = isTerminalNodeStatus(node.status) ? parentViewOf(node) : { nodeId, status: node.status };
  // This invocation's own wait (a retried state may carry a newer token than the stored one).
  if (taskToken && taskToken !== node.taskToken) await releaseToken(ctx, taskToken, { ok: true, output });
  return output;
}

/**
 * An `await` state: released once every parent of the node is terminal. Parents that all
 * ended already release it at once, with no write; otherwise the token is stored, then the
 * parents are read again (write before read, see settle.ts), so that a parent ending between
 * the two reads either sees the token or is seen ended.
 *
 * An `await` that also runs its node (`run: true`, issue 18) does not release the token when
 * the parents have ended: it runs the node here, in this invocation, and the run releases the
 * token when the node ends (with the node's view, as a callback `run` state would be). When
 * they have not, the token is stored with `awaitRuns` and whoever ends the last parent wakes
 * the node (settle.ts). Step Functions' Retry of the state covers a crash here exactly as it
 * covers a `run` state's.
 */
async function awaitParents(
  deps: StepDeps,
  event: { dispatchId: string; nodeId: number; taskToken: string; skippable?: boolean; run?: boolean; parent?: unknown },
  info: InvocationInfo,
): Promise<unknown> {
  const { ctx } = deps;
  const dispatch = await dispatchOf(deps, event.dispatchId);
  const graph = await deps.catalog.graphFor(dispatch, deps.ctx.signal);
  const parentIds = graph.parents[event.nodeId] ?? [];
  const skippable = event.skippable === true;
  const runs = event.run === true;
  // A skippable wait, and one that runs its node, reads the node with its parents (one
  // BatchGetItem): a node that can no longer run is ended here and skips its `run` state, and
  // its children are released from here; a node that ended while it waited is not run.
  const withSelf = skippable || runs;
  // The parent whose state ran just before hands its view on (as to a `run` state): not read.
  const handed = runs ? carriedParent(event.parent, event.dispatchId, parentIds) : undefined;
  const toRead = handed ? parentIds.filter((id) => id !== handed.nodeId) : parentIds;
  const released = async (second: boolean): Promise<boolean> => {
    const items: ParentView[] = await ctx.store.getNodes(event.dispatchId, withSelf ? [...toRead, event.nodeId] : toRead, ctx.signal);
    const self = items.find((n) => n.nodeId === event.nodeId) as NodeItem | undefined;
    const parents = [...items.filter((n) => n.nodeId !== event.nodeId), ...(handed ? [handed] : [])];
    const selfEnded = runs && self && isTerminalNodeStatus(self.status) ? self : undefined;
    if (selfEnded && !skippable) {
      // Ended while it waited (a task cancel): its state ends with its view, as its run's would.
      await releaseToken(ctx, event.taskToken, { ok: true, output: parentViewOf(selfEnded) });
      return true;
    }
    if (!selfEnded && !parents.every((p) => isTerminalNodeStatus(p.status))) return false;
    const ended = selfEnded ?? (skippable && self ? await endBelowParents(ctx, self, parents) : undefined);
    if (!ended) {
      if (runs) {
        const views = awaitReleased(event.nodeId, parents);
        // The second look may race a parent's releaser that saw the stored token and woke the
        // node: whichever claims it runs it, and the other leaves it to that run.
        await runNode(deps, { dispatchId: event.dispatchId, nodeId: event.nodeId, taskToken: event.taskToken, released: views, parent: event.parent, woken: second }, info);
        return true;
      }
      await releaseToken(ctx, event.taskToken, { ok: true, output: awaitReleased(event.nodeId, parents) });
      return true;
    }
    // Its waiting children first: once this wait is failed its iteration is over and nothing
    // retries it, so a crash between the two must fall before the failure (the retried
    // invocation then walks again), never after it.
    await releaseDependents(ctx, ended, deps.wake ? { wake: deps.wake } : {});
    await releaseToken(ctx, event.taskToken, nodeEnded(ended));
    return true;
  };
  if (await released(false)) return { nodeId: event.nodeId, waiting: true };
  const item = await ctx.store.recordAwaitToken(event.dispatchId, event.nodeId, event.taskToken, ctx.signal, skippable, runs);
  // A node that ends between the two looks refuses to be listed as waiting: the second look sees it ended.
  if (!item && !runs) throw new StepEventError(`Dispatch ${event.dispatchId} has no node ${event.nodeId}`);
  if (!(await released(true)) && !item) throw new StepEventError(`Dispatch ${event.dispatchId} has no node ${event.nodeId}`);
  return { nodeId: event.nodeId, waiting: true };
}

/**
 * The node list a graph runner iterates: every node, the nodes of one partition
 * (`from`..`to`, exclusive), or — for a split lattice — the partitions themselves. With
 * `splitAbove` (the graph runner, whose graphs are known only now) it chooses: past that many
 * nodes the partitions (`split: true`), else every node; both lists are present, one empty,
 * because a state's ResultSelector fails on a missing path.
 */
async function planDispatch(
  deps: StepDeps,
  event: { dispatchId: string; partitionSize?: number; splitAbove?: number; from?: number; to?: number },
): Promise<{ dispatchId: string; split?: boolean; nodes?: { nodeId: number; dispatchId: string }[]; partitions?: { dispatchId: string; from: number; to: number }[] }> {
  const { dispatchId } = event;
  const dispatch = await dispatchOf(deps, dispatchId);
  const graph = await deps.catalog.graphFor(dispatch, deps.ctx.signal);
  const count = graph.nodes.length;
  const partitionsOf = (partitionSize: number) => {
    const size = Math.max(1, Math.floor(partitionSize));
    return Array.from({ length: Math.max(1, Math.ceil(count / size)) }, (_, i) => ({ dispatchId, from: i * size, to: Math.min(count, (i + 1) * size) }));
  };
  const everyNode = () => graph.nodes.map((n) => ({ nodeId: n.id, dispatchId }));
  if (event.splitAbove !== undefined) {
    const split = count > event.splitAbove;
    return { dispatchId, split, nodes: split ? [] : everyNode(), partitions: split ? partitionsOf(event.partitionSize ?? count) : [] };
  }
  if (event.partitionSize !== undefined) return { dispatchId, partitions: partitionsOf(event.partitionSize) };
  const from = Math.max(0, event.from ?? 0);
  const to = Math.min(count, event.to ?? count);
  return { dispatchId, nodes: graph.nodes.slice(from, to).map((n) => ({ nodeId: n.id, dispatchId })) };
}

/**
 * Ends a dispatch once its nodes ended: FAILED if any node failed, CANCELLED if any was
 * cancelled, else COMPLETED with the lattice's result. A child dispatch then ends the
 * sublattice node that runs it.
 */
export async function finalizeDispatch(deps: StepDeps, dispatchId: string): Promise<{ dispatchId: string; status: DispatchStatus }> {
  const { ctx } = deps;
  const dispatch = await ctx.store.requireDispatch(dispatchId);
  if (dispatch.status !== DispatchStatus.RUNNING) {
    await endParentNode(deps, dispatch);
    return { dispatchId, status: dispatch.status };
  }
  const graph = await deps.catalog.graphFor(dispatch, deps.ctx.signal);
  const nodes = await ctx.store.listNodes(dispatchId);
  const failed = nodes.find((n) => n.status === NodeStatus.FAILED);
  const cancelled = dispatch.cancelRequested || nodes.some((n) => n.status === NodeStatus.CANCELLED);
  const unfinished = nodes.filter((n) => !isTerminalNodeStatus(n.status));
  let status: DispatchStatus;
  let error: SerializedError | undefined;
  let hasResult = false;
  if (failed) {
    status = DispatchStatus.FAILED;
    error = {
      name: failed.error?.name ?? 'Error',
      message: `Node ${failed.nodeId} (${failed.name}) failed: ${failed.error?.message ?? 'unknown error'}`,
      ...(failed.error ? { cause: failed.error } : {}),
    };
  } else if (cancelled || unfinished.length > 0) {
    status = DispatchStatus.CANCELLED;
  } else {
    status = DispatchStatus.COMPLETED;
    const outputs = new Map<number, unknown>();
    const byId = new Map(nodes.map((n) => [n.nodeId, n] as const));
    for (const id of graph.outputNodes) outputs.set(id, await ctx.payloads.getNodeOutput(byId.get(id) ?? { dispatchId, nodeId: id }));
    let args: readonly unknown[] | undefined;
    if (graph.outputUsesParams) args = await ctx.payloads.getValue<unknown[]>(payloadKeys.args(dispatchId));
    const result = resolveTemplate(graph.output, { node: (id) => outputs.get(id), param: (i) => args?.[i] });
    await ctx.payloads.putValue(payloadKeys.result(dispatchId), result);
    hasResult = true;
  }
  const ended = await ctx.store.finishDispatch(dispatchId, {
    status,
    endedAt: ctx.now().toISOString(),
    ...(error ? { error } : {}),
    ...(hasResult ? { hasResult } : {}),
  });
  const final = ended ?? (await ctx.store.requireDispatch(dispatchId));
  await endParentNode(deps, final);
  return { dispatchId, status: final.status };
}

/** Ends the sublattice node that ran a child dispatch, and releases the node's wait. */
export async function endParentNode(deps: StepDeps, child: DispatchItem): Promise<void> {
  if (!child.parent || child.status === DispatchStatus.RUNNING) return;
  const { ctx } = deps;
  const { dispatchId, nodeId } = child.parent;
  let stored: { output?: string } = {};
  if (child.status === DispatchStatus.COMPLETED) {
    const output = await ctx.payloads.getValue(payloadKeys.result(child.dispatchId));
    stored = await ctx.payloads.putNodeOutput(dispatchId, nodeId, output);
  }
  const endedAt = ctx.now().toISOString();
  const ended = await ctx.store.finishNode(
    dispatchId,
    nodeId,
    child.status === DispatchStatus.COMPLETED
      ? { status: NodeStatus.COMPLETED, endedAt, hasOutput: true, ...stored }
      : child.status === DispatchStatus.FAILED
        ? { status: NodeStatus.FAILED, endedAt, error: child.error ?? { name: 'Error', message: `Child dispatch ${child.dispatchId} failed` } }
        : { status: NodeStatus.CANCELLED, endedAt, cancelledBy: CancelMethod.ChildDispatch },
  );
  const node = ended ?? (await ctx.store.getNode(dispatchId, nodeId));
  if (node) await releaseDependents(ctx, node, deps.wake ? { wake: deps.wake } : {});
}
