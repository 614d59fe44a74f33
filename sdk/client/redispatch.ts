/**
 * Redispatch: run a lattice again after a cancel or a failure — with changed arguments or a
 * swapped electron if asked — without paying twice for what already finished.
 *
 * The new dispatch is linked to the old one (`redispatchOf`) and maps nodes by position: node
 * `i` of the new graph may reuse node `i` of the old dispatch. Reuse is content-addressed
 * (sdk/runtime/content.ts) and needs all three of: the deployed electron's identity (source
 * text, name, executor options, retries, timeout), the hash of the node's resolved inputs,
 * and a completed earlier result. Cancelled, failed and never-started nodes rerun, and so do
 * the descendants of every node that reruns.
 *
 * Two halves decide. The client plans from what the table records: position, status, and the
 * input hash (arguments and parents' output hashes are data, so the client computes it
 * exactly). Only the deployed runtime knows the electron's identity — a client's loader prints
 * the same function differently — so the step handler confirms every planned reuse before it
 * skips the electron (runtime/reuse.ts). A dry run is that same confirmation with nothing
 * run: a dispatch marked `dryRun` goes through the graph runner, each node decided and none
 * executed, so the plan it reports is the decision a real redispatch makes.
 *
 * Reused results are copied by reference: the new node item points at the earlier S3 object
 * (or carries the small inline text), nothing is re-uploaded. Payloads under `dispatches/`
 * expire after 30 days, which bounds how old a reusable result can be.
 *
 * **Step Functions `RedriveExecution`** resumes a FAILED, ABORTED or TIMED_OUT execution
 * without rerunning its succeeded states. It does not fit valence's redispatch: valence's
 * source of truth is the node items, and a redriven state would find its node already ended
 * (CANCELLED or FAILED — terminal statuses are never overwritten) and rerun nothing. Making it
 * fit would mean resetting terminal node items in place, which breaks the recorded-once
 * guarantee and the audit trail of the cancelled run. So every redispatch is a new dispatch,
 * and the plan says so (`redrive`).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ErrorCode, ValenceError } from '../errors.ts';
import { isElectron, type Electron } from '../model/electron.ts';
import { TransportGraph, type GraphNode } from '../model/graph.ts';
import { defaultLatticeRegistry, type Lattice } from '../model/lattice.ts';
import { planGraph } from '../model/shape.ts';
import { inputHashOf, type NodeAddress } from '../runtime/content.ts';
import type { RuntimeContext } from '../runtime/context.ts';
import { createDispatchRecords, executionArnOf } from '../runtime/dispatch-records.ts';
import { payloadKeys } from '../runtime/payloads.ts';
import { ReuseRefusal } from '../runtime/reuse.ts';
import { deserialize, serialize, SerializationError } from '../runtime/serialization.ts';
import type { NodeItem } from '../runtime/store.ts';
import { DispatchStatus, NodeStatus, isTerminalDispatchStatus } from '../status.ts';

/** Options of `client.redispatch`. */
export interface RedispatchOptions {
  /** New lattice arguments. @default the old dispatch's arguments */
  readonly args?: readonly unknown[];
  /**
   * Swap electrons for this dispatch, by the name of the electron a node runs. Each
   * replacement must be a deployed electron exported by the same workflows module (Lambda code
   * cannot be shipped from the client); a node that runs it never reuses the old result.
   */
  readonly replaceElectrons?: Readonly<Record<string, Electron>>;
  /** Reuse completed results whose content matches. `false` reruns everything. @default true */
  readonly reuse?: boolean;
  /** Decide every node (reuse or run, and why) without running anything. @default false */
  readonly dryRun?: boolean;
  /**
   * The lattice to build the new graph from. Needed when `args` change (the graph may depend
   * on them); without it the old dispatch's graph is run again.
   * @default the lattice of that name this process registered (by importing its module), if any
   */
  readonly lattice?: Lattice;
  /** How long a dry run may take. @default 120000 */
  readonly timeoutMs?: number;
}

/** What a redispatch does with one node. */
export const PlanAction = {
  /** The earlier result is used; the electron does not run. */
  Reuse: 'reuse',
  /** The node runs. */
  Run: 'run',
} as const;
/** {@link PlanAction} values. */
export type PlanAction = (typeof PlanAction)[keyof typeof PlanAction];

/** One node of a redispatch plan. */
export interface PlannedNode {
  readonly nodeId: number;
  readonly name: string;
  readonly electron: string;
  readonly action: PlanAction;
  /** Why it runs, or what it reuses. */
  readonly reason: string;
  /** For a reuse: the node that produced the result (never a reuse of a reuse). */
  readonly from?: NodeAddress;
  /** The old dispatch had no node at this position. */
  readonly isNew: boolean;
}

/** A redispatch plan: what reruns, what is reused, and where from. */
export interface RedispatchPlan {
  /** The dispatch run again. */
  readonly redispatchOf: string;
  readonly lattice: string;
  /** The new dispatch; for a dry run, the dry-run dispatch that decided the plan (it ran nothing). */
  readonly dispatchId: string;
  readonly dryRun: boolean;
  /**
   * The plan per node. For a dry run it is what the deployed runtime decided; for a real
   * redispatch it is the client's plan, which the runtime confirms node by node (a refusal is
   * recorded on the node as `reuseRefused` and the node runs).
   */
  readonly nodes: readonly PlannedNode[];
  /** Nodes the old dispatch did not have (the graph changed). */
  readonly newNodes: readonly number[];
  /** Whether Step Functions' `RedriveExecution` could have served this instead, and why not. */
  readonly redrive: { readonly used: false; readonly reason: string };
}

/** Thrown when a redispatch cannot start as asked; nothing was written. */
export class RedispatchError extends ValenceError {
  override readonly name = 'RedispatchError';
  constructor(message: string) {
    super(ErrorCode.REDISPATCH_REFUSED, message);
  }
}

const REDRIVE_REASON =
  'a redispatch is a new dispatch: RedriveExecution would resume the old execution, whose nodes already ended (terminal statuses are never overwritten), so it would rerun nothing';

/** Starts (or, with `dryRun`, only decides) a redispatch of `dispatchId`. */
export async function redispatch(ctx: RuntimeContext, dispatchId: string, options: RedispatchOptions = {}): Promise<RedispatchPlan> {
  const old = await ctx.store.requireDispatch(dispatchId, ctx.signal);
  if (old.parent) throw new RedispatchError(`Dispatch ${dispatchId} is a sublattice's child dispatch; redispatch its top-level dispatch ${old.parent.dispatchId}`);
  if (old.dryRun) throw new RedispatchError(`Dispatch ${dispatchId} is a dry run; redispatch the dispatch it planned for (${old.redispatchOf ?? 'unknown'})`);
  const [oldArgsText, oldGraphText, oldNodes] = await Promise.all([
    ctx.payloads.getText(payloadKeys.args(dispatchId), ctx.signal),
    ctx.payloads.getText(payloadKeys.graph(dispatchId), ctx.signal),
    ctx.store.listNodes(dispatchId, ctx.signal),
  ]);
  const args = options.args ?? deserialize<unknown[]>(oldArgsText);
  const serializedArgs = options.args === undefined ? oldArgsText : serializeArgs(old.lattice, options.args);
  const lattice = options.lattice ?? defaultLatticeRegistry.get(old.lattice);
  if (lattice !== undefined && lattice.name !== old.lattice) throw new RedispatchError(`Dispatch ${dispatchId} ran lattice "${old.lattice}", not "${lattice.name}"`);
  let graph: TransportGraph;
  if (lattice !== undefined) {
    if (args.length !== lattice.paramCount) throw new RedispatchError(`lattice "${lattice.name}" takes ${lattice.paramCount} argument(s), got ${args.length}`);
    graph = planGraph(lattice, args).graph;
  } else if (options.args !== undefined) {
    throw new RedispatchError(
      `New arguments need the lattice to build the graph from: pass { lattice } or import the module that defines "${old.lattice}" before redispatching`,
    );
  } else {
    graph = TransportGraph.fromJSON(oldGraphText);
  }
  graph = withReplacements(graph, options.replaceElectrons ?? {});
  const planned = planNodes(graph, oldNodes, args, options);
  const reuse = new Map(planned.filter((p) => p.action === PlanAction.Reuse).map((p) => [p.nodeId, { dispatchId, nodeId: p.nodeId }] as const));
  const newId = randomUUID();
  const dryRun = options.dryRun === true;
  await startRedispatch(ctx, { dispatchId: newId, graph, serializedArgs, redispatchOf: dispatchId, dryRun, reuse });
  const nodes = dryRun ? await decidedPlan(ctx, newId, graph, planned, options.timeoutMs ?? 120_000) : planned;
  return {
    redispatchOf: dispatchId,
    lattice: old.lattice,
    dispatchId: newId,
    dryRun,
    nodes,
    newNodes: nodes.filter((n) => n.isNew).map((n) => n.nodeId),
    redrive: { used: false, reason: REDRIVE_REASON },
  };
}

function serializeArgs(latticeName: string, args: readonly unknown[]): string {
  try {
    return serialize(args);
  } catch (error) {
    if (!(error instanceof SerializationError)) throw error;
    throw new RedispatchError(`lattice "${latticeName}": an argument cannot be serialized: ${error.message}`);
  }
}

/** The graph with the named electrons swapped; every name must be run by some node. */
function withReplacements(graph: TransportGraph, replacements: Readonly<Record<string, Electron>>): TransportGraph {
  const names = Object.keys(replacements);
  if (names.length === 0) return graph;
  for (const name of names) {
    if (!isElectron(replacements[name])) throw new RedispatchError(`replaceElectrons["${name}"] is not an electron (define it with electron() in the deployed workflows module)`);
    if (!graph.nodes.some((node) => node.kind === 'electron' && node.electron === name)) {
      throw new RedispatchError(`replaceElectrons["${name}"]: no node of lattice "${graph.lattice.name}" runs an electron named "${name}"`);
    }
  }
  const nodes = graph.nodes.map((node): GraphNode => {
    const replacement = node.kind === 'electron' ? replacements[node.electron] : undefined;
    if (!replacement) return node;
    const { timeoutSeconds: _old, ...rest } = node;
    const { options } = replacement;
    return {
      ...rest,
      name: node.name === node.electron ? replacement.name : node.name,
      electron: replacement.name,
      ...(options.executor ? { executor: options.executor.toJSON() } : {}),
      retries: options.retries,
      graceSeconds: options.graceSeconds,
      ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
    };
  });
  return new TransportGraph({ lattice: graph.lattice, nodes, edges: graph.edges, output: graph.output });
}

interface ClientPlan extends PlannedNode {
  /** The output hash a reused node passes to its children's input hashes. */
  readonly outputHash?: string;
}

/**
 * The client's plan: by position, status and input hash. Identity is not known here; the
 * runtime checks it before it skips an electron.
 */
function planNodes(graph: TransportGraph, oldNodes: readonly NodeItem[], args: readonly unknown[], options: RedispatchOptions): ClientPlan[] {
  const byId = new Map(oldNodes.map((n) => [n.nodeId, n] as const));
  const plan: ClientPlan[] = [];
  for (const node of graph.nodes) {
    const old = byId.get(node.id);
    const base = { nodeId: node.id, name: node.name, electron: node.electron, isNew: old === undefined };
    const run = (reason: string): ClientPlan => ({ ...base, action: PlanAction.Run, reason });
    const rerunParent = graph.parents(node.id).find((p) => plan[p]?.action !== PlanAction.Reuse);
    if (options.reuse === false) plan.push(run('reuse is off'));
    else if (!old) plan.push(run('a new node: the earlier dispatch had none at this position'));
    else if (old.status !== NodeStatus.COMPLETED) plan.push(run(old.status === NodeStatus.NEW_OBJECT ? 'it never started' : `it ended ${old.status}`));
    else if (node.kind !== 'electron') plan.push(run('a sublattice reruns (its electrons are only known once its graph is built)'));
    else if (old.electron !== node.electron) plan.push(run(`another electron ran at this position (${old.electron})`));
    else if (rerunParent !== undefined) plan.push(run(`parent ${rerunParent} runs again`));
    else {
      const inputHash = inputHashOf(node.args, args, (id) => plan[id]?.outputHash);
      if (inputHash === undefined || old.inputHash === undefined) plan.push(run(ReuseRefusal.noContent));
      else if (inputHash !== old.inputHash) plan.push(run(ReuseRefusal.inputsChanged));
      else {
        const from = old.reusedFrom ?? { dispatchId: old.dispatchId, nodeId: old.nodeId };
        plan.push({ ...base, action: PlanAction.Reuse, reason: `completed in ${from.dispatchId} node ${from.nodeId}`, from, ...(old.outputHash ? { outputHash: old.outputHash } : {}) });
      }
    }
  }
  return plan;
}

/** Writes the new dispatch's records and starts it on the graph runner (every node waits on its parents there). */
async function startRedispatch(
  ctx: RuntimeContext,
  records: { dispatchId: string; graph: TransportGraph; serializedArgs: string; redispatchOf: string; dryRun: boolean; reuse: ReadonlyMap<number, NodeAddress> },
): Promise<void> {
  const stateMachineArn = ctx.config.graphRunnerArn;
  const executionArn = executionArnOf(stateMachineArn, records.dispatchId);
  const awaitingNodes = new Set(records.graph.nodes.map((n) => n.id));
  await createDispatchRecords(ctx, { ...records, stateMachineArn, executionArn, awaitingNodes }, ctx.signal);
  const started = await ctx.aws.sfn.send(new StartExecutionCommand({ stateMachineArn, name: records.dispatchId, input: JSON.stringify({ dispatchId: records.dispatchId }) }), {
    abortSignal: ctx.signal,
  });
  if (started.executionArn && started.executionArn !== executionArn) await ctx.store.setExecutionArn(records.dispatchId, started.executionArn, ctx.signal);
}

/** Waits for a dry run to end and reads what the runtime decided for every node. */
async function decidedPlan(ctx: RuntimeContext, dryRunId: string, graph: TransportGraph, planned: readonly ClientPlan[], timeoutMs: number): Promise<PlannedNode[]> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const dispatch = await ctx.store.requireDispatch(dryRunId, ctx.signal);
    if (isTerminalDispatchStatus(dispatch.status)) break;
    if (Date.now() >= deadline) throw new ValenceError(ErrorCode.RESULT_TIMEOUT, `The dry run ${dryRunId} was still ${DispatchStatus.RUNNING} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(500, delay * 2);
  }
  const items = new Map((await ctx.store.listNodes(dryRunId, ctx.signal)).map((n) => [n.nodeId, n] as const));
  const decided: PlannedNode[] = [];
  for (const plan of planned) {
    const item = items.get(plan.nodeId);
    const { outputHash: _hash, ...node } = plan;
    if (item?.reusedFrom) decided.push({ ...node, action: PlanAction.Reuse, reason: `completed in ${item.reusedFrom.dispatchId} node ${item.reusedFrom.nodeId}`, from: item.reusedFrom });
    else if (plan.action === PlanAction.Run) decided.push(node);
    else {
      // Planned for reuse, refused by the runtime (its reason), or below a node that was.
      const rerunParent = graph.parents(plan.nodeId).find((p) => decided[p]?.action !== PlanAction.Reuse);
      const reason = item?.reuseRefused ?? (rerunParent !== undefined ? `parent ${rerunParent} runs again` : `the runtime did not reuse it (${item?.status ?? 'no node item'})`);
      const { from: _from, ...rest } = node;
      decided.push({ ...rest, action: PlanAction.Run, reason });
    }
  }
  return decided;
}
