/**
 * Compiling transport graphs to Amazon States Language (JSONPath).
 *
 * See README.md next to this file for the design: nested Parallel states for the
 * series-parallel structure, `await` callback tasks for the rest, and only ids in the state
 * payloads.
 *
 * @module
 */
import { ValidationCode, ValidationError } from '../errors.ts';
import { TransportGraph, graphHash } from '../model/graph.ts';
import type { GraphNode, TransportGraphJSON } from '../model/graph.ts';
import { schedule } from './schedule.ts';
import type { Block } from './schedule.ts';
import { LIMITS, NODE_ENDED_ERROR, RUN_NODE_ERROR } from '../contract.ts';
import { usesCallback } from '../runtime/drivers/kinds.ts';

/** A JSON value in a definition. */
export type AslValue = string | number | boolean | null | AslValue[] | { [key: string]: AslValue };
/** One state. */
export type AslState = { [key: string]: AslValue };
/** A state machine (or a Parallel branch / Map item processor). */
export interface AslDefinition {
  Comment?: string;
  StartAt: string;
  States: Record<string, AslState>;
  TimeoutSeconds?: number;
  [key: string]: AslValue | Record<string, AslState> | undefined;
}

/** Step Functions' limit on a state machine definition, in bytes. */
export const MAX_DEFINITION_BYTES = LIMITS.definitionBytes;
/** Step Functions Standard fails an execution at this many history events. */
export const MAX_HISTORY_EVENTS = 25_000;

/** Lambda errors worth retrying: service faults, throttling, a crashed or killed runtime, and a handler that reached its invocation deadline. */
export const LAMBDA_RETRY_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.Unknown',
  'Runtime.ExitError',
  // A runtime whose init did not finish in time never ran the handler (seen under load: it
  // failed the Parallel state and the whole execution, with packed siblings never started).
  'Runtime.InitTimeout',
  'InvocationDeadlineError',
  'TransientAwsError',
] as const;

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const LAMBDA_INVOKE_CALLBACK = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const MAX_STATE_NAME = 80;

/**
 * Anything with a `template()` that yields a transport graph: a {@link Lattice}, or a lattice
 * from another copy of the SDK (deploy tools load the user's workflows module separately).
 */
export interface LatticeSource {
  readonly name: string;
  template(): unknown;
}

function toGraph(source: LatticeSource | TransportGraph | TransportGraphJSON): TransportGraph {
  if (source instanceof TransportGraph) return source;
  if (typeof (source as Partial<LatticeSource>).template === 'function') {
    const built = (source as LatticeSource).template();
    if (built instanceof TransportGraph) return built as TransportGraph;
    const json = typeof (built as { toJSON?: unknown } | null)?.toJSON === 'function' ? (built as { toJSON: () => unknown }).toJSON() : built;
    return TransportGraph.fromJSON(json);
  }
  return TransportGraph.fromJSON(source);
}

/** Options shared by both compilers. */
export interface CompileOptionsBase {
  /** ARN of the step handler Lambda (or a `${Token}` that CDK substitutes). */
  readonly stepHandlerArn: string;
  /**
   * `HeartbeatSeconds` of callback `run` tasks: the runtime must heartbeat (or release) each
   * outstanding token more often than this.
   * @default 600
   */
  readonly heartbeatSeconds?: number;
  /**
   * Retries of a Task state on Lambda service errors and throttling.
   * @default 6
   */
  readonly lambdaRetryAttempts?: number;
  /**
   * Whole-execution limit (`TimeoutSeconds` at the top level).
   * @default none (Step Functions' one year)
   */
  readonly executionTimeoutSeconds?: number;
}

/** Options of {@link compileLattice}. */
export interface CompileLatticeOptions extends CompileOptionsBase {
  /**
   * Seconds added to a node's time budget (`(retries + 1) × (timeoutSeconds + graceSeconds)`)
   * to get its Task `TimeoutSeconds`, so that the runtime's own timeout fires first.
   * @default 60
   */
  readonly timeoutMarginSeconds?: number;
  /**
   * Stricter limits than Step Functions' own (values above them are ignored).
   * @default { maxDefinitionBytes: 1,048,576, maxHistoryEvents: 25,000 }
   */
  readonly limits?: { readonly maxDefinitionBytes?: number; readonly maxHistoryEvents?: number };
  /**
   * Lattices past one state machine's limits are split automatically: the graph runs in
   * partitions of `chunkSize` consecutive node ids, each a child execution of a Distributed
   * Map with its own history (see README.md). `above` is the node count from which the split
   * form is used without first trying the nested-Parallel form; a smaller lattice whose
   * nested form would pass a limit is split too. `false` refuses instead of splitting.
   * @default { above: 1500, chunkSize: 1000 }
   */
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
}

/** Size and cost of a compiled lattice. */
export interface CompileStats {
  /** UTF-8 bytes of `JSON.stringify(definition)`. */
  readonly definitionBytes: number;
  /** States at every nesting level. */
  readonly stateCount: number;
  /** History events of one successful execution without retries (see README.md for the per-state costs). */
  readonly estimatedHistoryEvents: number;
  /** Nodes on the longest dependency path. */
  readonly criticalPathLength: number;
  /** Nodes in the graph. */
  readonly nodeCount: number;
  /** `await` callback tasks (dependencies the nested Parallel states cannot express). */
  readonly awaitCount: number;
  /** Parallel states. */
  readonly parallelCount: number;
  /** For a split lattice: how many partitions (child executions) it runs in, and their size. */
  readonly partitions?: { readonly count: number; readonly size: number; readonly historyEventsPerPartition: number; readonly parentHistoryEvents: number };
}

/** A compiled lattice. */
export interface CompiledLattice {
  readonly definition: AslDefinition;
  readonly stats: CompileStats;
  /** The graph's hash, also in `definition.Comment`. */
  readonly graphHash: string;
  /**
   * The nodes whose state waits in an `await` task for parents the structure does not order
   * before it (every node of a split lattice). A dispatch records them so that each parent
   * releases its waiting children; the runtime needs nothing else from the compiled form.
   */
  readonly awaitingNodes: ReadonlySet<number>;
}

/** History events per state, for one successful pass without retries. */
export const HISTORY_EVENTS = {
  execution: 2, // ExecutionStarted, ExecutionSucceeded
  task: 5, // TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited
  callbackTask: 6, // … plus TaskSubmitted
  parallel: 4, // ParallelStateEntered, ParallelStateStarted, ParallelStateSucceeded, ParallelStateExited
  map: 4, // MapStateEntered, MapStateStarted, MapStateSucceeded, MapStateExited
  mapIteration: 2, // MapIterationStarted, MapIterationSucceeded
  choice: 2,
  succeed: 2,
} as const;

const COMMENT_HASH = /valence graph sha256:([0-9a-f]{64})/;
const COMMENT_SPLIT = /\(split: \d+ partition\(s\) of up to (\d+) nodes\)/;

/** The graph hash recorded in a compiled definition's `Comment` (object or JSON text), if any. */
export function readGraphHash(definition: string | { readonly Comment?: unknown }): string | undefined {
  const comment = commentOf(definition);
  return comment === undefined ? undefined : COMMENT_HASH.exec(comment)?.[1];
}

/**
 * The `partition` option that compiles a graph to the same form as the deployed `definition`
 * (split or nested, as its `Comment` records), so a client can recompile the deployed form
 * (for its {@link CompiledLattice.awaitingNodes}) without knowing how it was deployed.
 */
export function readPartitionOption(definition: string | { readonly Comment?: unknown }): NonNullable<CompileLatticeOptions['partition']> {
  const size = COMMENT_SPLIT.exec(commentOf(definition) ?? '')?.[1];
  return size === undefined ? false : { above: 0, chunkSize: Number(size) };
}

function commentOf(definition: string | { readonly Comment?: unknown }): string | undefined {
  const comment = typeof definition === 'string' ? (JSON.parse(definition) as { Comment?: unknown }).Comment : definition.Comment;
  return typeof comment === 'string' ? comment : undefined;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new ValidationError(ValidationCode.INVALID_OPTION, `compile option "${name}" must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function lambdaRetry(attempts: number): AslValue[] {
  if (attempts === 0) return [];
  return [
    {
      ErrorEquals: [...LAMBDA_RETRY_ERRORS],
      IntervalSeconds: 1,
      BackoffRate: 2,
      MaxAttempts: attempts,
      MaxDelaySeconds: 30,
      JitterStrategy: 'FULL',
    },
  ];
}

/**
 * The nodes whose view the next state takes from the state data (issue 18): a Task state's
 * result can become the data its successor sees, so a child whose parent's state ran just
 * before its own (a chain's next link, or the first node of each branch after it) reads that
 * parent from the payload instead of the table. Walks the blocks as the states are emitted:
 * after a node's Task the data is that node's (whether or not it is kept: if nobody takes it,
 * nothing reads it), an `await` and a Parallel keep their input, and each branch starts with
 * the Parallel's input.
 *
 * What travels is the `ParentView` (sdk/runtime/store.ts): status and output address, with the output itself
 * when it is inline (at most `LIMITS.inlineOutputBytes`). So such an output also appears in
 * the execution's history, which the stack's own roles and the account's administrators can
 * read, as they can the table.
 */
function handOffs(root: Block | undefined, parents: (id: number) => readonly number[]): Set<number> {
  const taken = new Set<number>();
  const walk = (block: Block, carried: number | undefined): number | undefined => {
    if (block.type === 'task') {
      if (carried !== undefined && parents(block.node).includes(carried)) taken.add(carried);
      return block.node;
    }
    if (block.type === 'series') return block.items.reduce<number | undefined>((at, item) => walk(item, at), carried);
    for (const branch of block.branches) walk(branch, carried);
    return carried;
  };
  if (root !== undefined) walk(root, undefined);
  return taken;
}

function stateName(node: GraphNode): string {
  return `${node.id}-${node.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`.slice(0, MAX_STATE_NAME);
}

/** The finalize tail shared by lattices and the graph runner: finalize → Choice → Fail | Succeed. */
function finalizeStates(stepHandlerArn: string, dispatchId: Record<string, string>, retry: AslValue[]): Record<string, AslState> {
  return {
    finalize: {
      Type: 'Task',
      Resource: LAMBDA_INVOKE,
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'finalize', ...dispatchId } },
      ResultSelector: { 'status.$': '$.Payload.status' },
      ResultPath: '$.finalized',
      ...(retry.length > 0 ? { Retry: retry } : {}),
      Next: 'dispatch-status',
    },
    'dispatch-status': {
      Type: 'Choice',
      Choices: [{ Variable: '$.finalized.status', StringEquals: 'FAILED', Next: 'dispatch-failed' }],
      Default: 'dispatch-succeeded',
    },
    'dispatch-failed': { Type: 'Fail', Error: 'DispatchFailed', Cause: 'a node of the dispatch failed; read the dispatch result for details' },
    'dispatch-succeeded': { Type: 'Succeed' },
  };
}

function historyTail(): number {
  return HISTORY_EVENTS.task + HISTORY_EVENTS.choice + HISTORY_EVENTS.succeed;
}

function countStates(states: Record<string, AslState>): number {
  let count = 0;
  for (const state of Object.values(states)) {
    count++;
    const nested = [
      ...(Array.isArray(state['Branches']) ? (state['Branches'] as unknown as AslDefinition[]) : []),
      ...(state['ItemProcessor'] ? [state['ItemProcessor'] as unknown as AslDefinition] : []),
    ];
    for (const machine of nested) count += countStates(machine.States);
  }
  return count;
}

/**
 * Compile a lattice (its `template()`), a built graph, or a graph's JSON form into a state
 * machine definition. Throws `VALIDATION_LIMIT_EXCEEDED` when the result would exceed Step
 * Functions' 1 MB definition limit or the 25,000-event history limit.
 *
 * @example
 * ```ts
 * const { definition, stats } = compileLattice(research, { stepHandlerArn });
 * new sfn.StateMachine(this, 'Research', { definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(definition)) });
 * ```
 */
export function compileLattice(
  source: LatticeSource | TransportGraph | TransportGraphJSON,
  options: CompileLatticeOptions,
): CompiledLattice {
  const graph = toGraph(source);
  const hash = graphHash(graph);
  const arn = options.stepHandlerArn;
  if (typeof arn !== 'string' || arn === '') {
    throw new ValidationError(ValidationCode.INVALID_OPTION, 'compile option "stepHandlerArn" must be a non-empty string');
  }
  const partition = options.partition === false ? undefined : options.partition ?? {};
  if (partition && graph.nodes.length > positiveInteger('partition.above', partition.above, PARTITION_ABOVE)) {
    return compilePartitioned(graph, hash, options, partition);
  }
  try {
    return compileNested(graph, hash, options);
  } catch (error) {
    if (partition && (error as { code?: unknown }).code === ValidationCode.LIMIT_EXCEEDED) return compilePartitioned(graph, hash, options, partition);
    throw error;
  }
}

/** Lattices above this many nodes are split without trying the nested form. */
export const PARTITION_ABOVE = 1_500;
/** Nodes per partition of a split lattice: 8 history events each stay well under 25,000. */
export const PARTITION_SIZE = 1_000;

function compileNested(graph: TransportGraph, hash: string, options: CompileLatticeOptions): CompiledLattice {
  const arn = options.stepHandlerArn;
  const heartbeatSeconds = positiveInteger('heartbeatSeconds', options.heartbeatSeconds, 600);
  const marginSeconds = positiveInteger('timeoutMarginSeconds', options.timeoutMarginSeconds, 60);
  const retry = lambdaRetry(positiveInteger('lambdaRetryAttempts', options.lambdaRetryAttempts, 6));
  const plan = schedule({ size: graph.nodes.length, parents: (id) => graph.parents(id) });
  const dispatchId = { 'dispatchId.$': '$$.Execution.Name' };

  let parallelCount = 0;
  let history = HISTORY_EVENTS.execution + historyTail();
  const handedOn = handOffs(plan.root, (id) => graph.parents(id));

  // The plain `run` state each merged `await` (below) hands a node back to, keyed by the merged
  // state's name: emitted beside it, with the same successor.
  const fallbacks = new Map<string, [string, AslState]>();

  const taskStates = (node: GraphNode, carried: number | undefined): Array<[string, AslState]> => {
    const states: Array<[string, AslState]> = [];
    const waitFor = plan.awaits.get(node.id);
    const callback = usesCallback(node);
    const takes = carried !== undefined && graph.parents(node.id).includes(carried);
    const budget =
      node.timeoutSeconds === undefined ? undefined : (node.retries + 1) * (node.timeoutSeconds + node.graceSeconds) + marginSeconds;
    if (waitFor !== undefined && !callback && budget === undefined) {
      // One state waits and runs (issue 18): the handler runs the node as soon as its parents
      // have ended (now, or woken by the last parent's releaser) and releases the token when it
      // ends. A releaser that cannot run it fails the wait with RUN_NODE_ERROR, and the Catch
      // runs the node in a plain `run` state. Only for nodes whose run would be a plain
      // `lambda:invoke` with no time budget: a wait's length is unknown, so the merged state can
      // carry neither the run's TimeoutSeconds nor a callback run's HeartbeatSeconds.
      const name = stateName(node);
      const keep: Record<string, AslValue> = handedOn.has(node.id) ? { ResultSelector: { 'parent.$': '$' } } : { ResultPath: null };
      states.push([
        name,
        {
          Type: 'Task',
          Comment: `wait for parents ${waitFor.join(', ')} of node ${node.id}, which the Parallel structure does not order before it, then run it`,
          Resource: LAMBDA_INVOKE_CALLBACK,
          Parameters: {
            FunctionName: arn,
            Payload: {
              action: 'await',
              run: true,
              ...dispatchId,
              nodeId: node.id,
              waitFor: [...waitFor],
              'taskToken.$': '$$.Task.Token',
              ...(takes ? { 'parent.$': '$.parent' } : {}),
            },
          },
          ...keep,
          ...(retry.length > 0 ? { Retry: retry } : {}),
          Catch: [{ ErrorEquals: [RUN_NODE_ERROR], ResultPath: null, Next: `run-${node.id}` }],
        },
      ]);
      fallbacks.set(name, [
        `run-${node.id}`,
        {
          Type: 'Task',
          Comment: `run node ${node.id}, handed back by its releaser`,
          Resource: LAMBDA_INVOKE,
          Parameters: { FunctionName: arn, Payload: { action: 'run', ...dispatchId, nodeId: node.id, ...(takes ? { 'parent.$': '$.parent' } : {}) } },
          ...(handedOn.has(node.id) ? { ResultSelector: { 'parent.$': '$.Payload' } } : { ResultPath: null }),
          ...(retry.length > 0 ? { Retry: retry } : {}),
        },
      ]);
      history += HISTORY_EVENTS.callbackTask;
      return states;
    }
    if (waitFor !== undefined) {
      states.push([
        `await-${node.id}`,
        {
          Type: 'Task',
          Comment: `wait for parents ${waitFor.join(', ')} of node ${node.id}, which the Parallel structure does not order before it`,
          Resource: LAMBDA_INVOKE_CALLBACK,
          Parameters: {
            FunctionName: arn,
            Payload: { action: 'await', ...dispatchId, nodeId: node.id, waitFor: [...waitFor], 'taskToken.$': '$$.Task.Token' },
          },
          // The release carries the parents' views; the `run` state next takes them (`released`).
          ResultPath: '$.released',
          ...(retry.length > 0 ? { Retry: retry } : {}),
        },
      ]);
      history += HISTORY_EVENTS.callbackTask;
    }
    states.push([
      stateName(node),
      {
        Type: 'Task',
        Resource: callback ? LAMBDA_INVOKE_CALLBACK : LAMBDA_INVOKE,
        Parameters: {
          FunctionName: arn,
          Payload: {
            action: 'run',
            ...dispatchId,
            nodeId: node.id,
            ...(callback ? { 'taskToken.$': '$$.Task.Token' } : {}),
            ...(takes ? { 'parent.$': '$.parent' } : {}),
            ...(waitFor !== undefined ? { 'released.$': '$.released' } : {}),
          },
        },
        // A node whose child runs next hands its view on as the state data (`$.parent`); the
        // rest keep the data they were given (ResultPath null), which may hold an earlier hand-off.
        ...(handedOn.has(node.id) ? { ResultSelector: { 'parent.$': callback ? '$' : '$.Payload' } } : { ResultPath: null }),
        ...(budget === undefined ? {} : { TimeoutSeconds: budget }),
        // Step Functions rejects a heartbeat that is not shorter than the task's timeout;
        // a task that short is bounded by its timeout alone.
        ...(callback && heartbeatSeconds > 0 && (budget === undefined || heartbeatSeconds < budget) ? { HeartbeatSeconds: heartbeatSeconds } : {}),
        ...(retry.length > 0 ? { Retry: retry } : {}),
      },
    ]);
    history += callback ? HISTORY_EVENTS.callbackTask : HISTORY_EVENTS.task;
    return states;
  };

  // Emits `block` as a chain of states ending in `next` (or End), returns the first state's name.
  // A branch's last state outputs `{}` (OutputPath null): a Parallel's result is the array of
  // its branches' outputs, and a 1,000-branch fan-out must not copy a hand-off 1,000 times.
  const emit = (block: Block, states: Record<string, AslState>, next: string | undefined, carried: number | undefined): string => {
    const chain = chainOf(block, states, carried).states;
    chain.forEach(([name, state], index) => {
      const following = chain[index + 1]?.[0] ?? next;
      const end = (s: AslState): AslState => (following === undefined ? { ...s, OutputPath: null, End: true } : { ...s, Next: following });
      states[name] = end(state);
      const fallback = fallbacks.get(name);
      if (fallback) states[fallback[0]] = end(fallback[1]);
    });
    return (chain[0] as [string, AslState])[0];
  };

  // `carried`: the node whose view the state data holds when the block starts (see handOffs).
  const chainOf = (block: Block, states: Record<string, AslState>, carried: number | undefined): { states: Array<[string, AslState]>; carried: number | undefined } => {
    if (block.type === 'task') return { states: taskStates(graph.node(block.node), carried), carried: block.node };
    if (block.type === 'series') {
      const chain: Array<[string, AslState]> = [];
      for (const item of block.items) {
        const emitted = chainOf(item, states, carried);
        chain.push(...emitted.states);
        carried = emitted.carried;
      }
      return { states: chain, carried };
    }
    const name = `parallel-${parallelCount++}`;
    history += HISTORY_EVENTS.parallel;
    const branches = block.branches.map((branch) => {
      const branchStates: Record<string, AslState> = {};
      const startAt = emit(branch, branchStates, undefined, carried);
      return { StartAt: startAt, States: branchStates };
    });
    return { states: [[name, { Type: 'Parallel', Branches: branches, ResultPath: null }]], carried };
  };

  const states: Record<string, AslState> = {};
  const startAt = plan.root === undefined ? 'finalize' : emit(plan.root, states, 'finalize', undefined);
  Object.assign(states, finalizeStates(arn, dispatchId, retry));
  const definition: AslDefinition = {
    Comment: `valence graph sha256:${hash} lattice ${graph.lattice.name}`,
    StartAt: startAt,
    States: states,
    ...(options.executionTimeoutSeconds === undefined
      ? {}
      : { TimeoutSeconds: positiveInteger('executionTimeoutSeconds', options.executionTimeoutSeconds, 0) }),
  };

  const stats: CompileStats = {
    definitionBytes: Buffer.byteLength(JSON.stringify(definition)),
    stateCount: countStates(states),
    estimatedHistoryEvents: history,
    criticalPathLength: plan.criticalPathLength,
    nodeCount: graph.nodes.length,
    awaitCount: plan.awaits.size,
    parallelCount,
  };
  const maxBytes = Math.min(options.limits?.maxDefinitionBytes ?? MAX_DEFINITION_BYTES, MAX_DEFINITION_BYTES);
  const maxEvents = Math.min(options.limits?.maxHistoryEvents ?? MAX_HISTORY_EVENTS, MAX_HISTORY_EVENTS);
  const latticeName = graph.lattice.name;
  if (stats.definitionBytes > maxBytes) {
    throw new ValidationError(
      ValidationCode.LIMIT_EXCEEDED,
      `lattice "${latticeName}": the compiled state machine definition is ${stats.definitionBytes.toLocaleString('en-US')} bytes, over the ` +
        `${maxBytes === MAX_DEFINITION_BYTES ? '1 MB (1,048,576-byte) Step Functions definition limit' : `${maxBytes.toLocaleString('en-US')}-byte limit`} ` +
        `(${stats.nodeCount} nodes). Move parts of the lattice into sublattices, which run as separate executions.`,
      { lattice: latticeName },
    );
  }
  if (stats.estimatedHistoryEvents > maxEvents) {
    throw new ValidationError(
      ValidationCode.LIMIT_EXCEEDED,
      `lattice "${latticeName}": one execution would write about ${stats.estimatedHistoryEvents.toLocaleString('en-US')} history events, over the ` +
        `${maxEvents === MAX_HISTORY_EVENTS ? '25,000-event Step Functions execution history limit' : `${maxEvents.toLocaleString('en-US')}-event limit`} ` +
        `(${stats.nodeCount} nodes). Move parts of the lattice into sublattices, which run as separate executions.`,
      { lattice: latticeName },
    );
  }
  return { definition, stats, graphHash: hash, awaitingNodes: new Set(plan.awaits.keys()) };
}

/** Options of {@link compileGraphRunner}. */
export interface CompileGraphRunnerOptions extends CompileOptionsBase {
  /**
   * The graph runner runs graphs that are only known at run time (argument-shaped lattices,
   * sublattices), so it cannot choose its form at deploy time: `plan` chooses per dispatch.
   * A graph past `above` nodes runs in split form (partitions of `chunkSize` consecutive node
   * ids, each a child execution of a Distributed Map with its own history), as a split lattice
   * does; a smaller one in the inline Map. `false` always runs the inline Map, which fails a
   * graph past one execution's 25,000 history events (about 3,100 nodes).
   * @default { above: 1500, chunkSize: 1000 }
   */
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
}

/** The compiled graph runner. */
export interface CompiledGraphRunner {
  readonly definition: AslDefinition;
  readonly stats: {
    readonly definitionBytes: number;
    readonly stateCount: number;
    /** History events of one execution besides the per-node cost. */
    readonly baseHistoryEvents: number;
    /** History events each node adds (one Map iteration: one callback task that waits and runs; a node handed back to its `run` state adds that state too). */
    readonly historyEventsPerNode: number;
  };
}

/** Marker in the graph runner's `Comment`. */
export const GRAPH_RUNNER_COMMENT = 'valence graph-runner v1';

/**
 * History events of one graph-runner execution for a child graph of `nodeCount` nodes; the
 * runtime can compare it with 25,000 before starting a large sublattice.
 */
export function graphRunnerHistoryEvents(nodeCount: number): number {
  return (
    HISTORY_EVENTS.execution +
    HISTORY_EVENTS.task + // plan
    HISTORY_EVENTS.choice + // inline or split
    HISTORY_EVENTS.map +
    nodeCount * (HISTORY_EVENTS.mapIteration + HISTORY_EVENTS.callbackTask) +
    historyTail()
  );
}

/**
 * Compile the generic graph runner: the one state machine that runs sublattice graphs, which
 * are only known at run time. Input `{ "dispatchId": "<child dispatch id>" }`.
 *
 * `plan` returns `{ nodes: [{ nodeId, dispatchId }, …] }` in node-id order; an inline Map runs
 * one iteration per node: an `await` callback task (the handler reads the node's parents from
 * the stored graph and releases the token once they are all terminal), then a `run` callback
 * task. Because iterations start in node-id order (a topological order), the Map's bounded
 * concurrency (40 inline iterations on AWS) can delay nodes but never deadlock.
 */
export function compileGraphRunner(options: CompileGraphRunnerOptions): CompiledGraphRunner {
  const arn = options.stepHandlerArn;
  if (typeof arn !== 'string' || arn === '') {
    throw new ValidationError(ValidationCode.INVALID_OPTION, 'compile option "stepHandlerArn" must be a non-empty string');
  }
  const heartbeatSeconds = positiveInteger('heartbeatSeconds', options.heartbeatSeconds, 600);
  const retry = lambdaRetry(positiveInteger('lambdaRetryAttempts', options.lambdaRetryAttempts, 6));
  const retryField: Record<string, AslValue> = retry.length > 0 ? { Retry: retry } : {};
  const partition = options.partition === false ? undefined : options.partition ?? {};
  const nodes = nodeMap({ arn, retryField, heartbeatSeconds, prefix: '' });
  let states: Record<string, AslState>;
  if (partition) {
    const splitAbove = positiveInteger('partition.above', partition.above, PARTITION_ABOVE);
    const partitionSize = Math.max(1, positiveInteger('partition.chunkSize', partition.chunkSize, PARTITION_SIZE));
    states = {
      plan: {
        Type: 'Task',
        Resource: LAMBDA_INVOKE,
        Parameters: { FunctionName: arn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId', splitAbove, partitionSize } },
        ResultSelector: { 'split.$': '$.Payload.split', 'nodes.$': '$.Payload.nodes', 'partitions.$': '$.Payload.partitions' },
        ResultPath: '$.plan',
        ...retryField,
        Next: 'form',
      },
      form: {
        Type: 'Choice',
        Choices: [{ Variable: '$.plan.split', BooleanEquals: true, Next: 'partitions' }],
        Default: 'nodes',
      },
      nodes: { ...nodes, Next: 'finalize' },
      // Up to 10,000 partitions at once (Distributed Map's most): 10 million nodes.
      partitions: { ...partitionMap({ arn, retryField, heartbeatSeconds, maxConcurrency: 10_000 }), Next: 'finalize' },
      ...finalizeStates(arn, { 'dispatchId.$': '$.dispatchId' }, retry),
    };
  } else {
    states = {
      plan: {
        Type: 'Task',
        Resource: LAMBDA_INVOKE,
        Parameters: { FunctionName: arn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId' } },
        ResultSelector: { 'nodes.$': '$.Payload.nodes' },
        ResultPath: '$.plan',
        ...retryField,
        Next: 'nodes',
      },
      nodes: { ...nodes, Next: 'finalize' },
      ...finalizeStates(arn, { 'dispatchId.$': '$.dispatchId' }, retry),
    };
  }
  const definition: AslDefinition = {
    Comment: GRAPH_RUNNER_COMMENT,
    StartAt: 'plan',
    States: states,
    ...(options.executionTimeoutSeconds === undefined
      ? {}
      : { TimeoutSeconds: positiveInteger('executionTimeoutSeconds', options.executionTimeoutSeconds, 0) }),
  };
  return {
    definition,
    stats: {
      definitionBytes: Buffer.byteLength(JSON.stringify(definition)),
      stateCount: countStates(states),
      baseHistoryEvents: graphRunnerHistoryEvents(0),
      historyEventsPerNode: HISTORY_EVENTS.mapIteration + HISTORY_EVENTS.callbackTask,
    },
  };
}

/**
 * A Distributed Map over `$.plan.partitions`: each partition is a child execution (its own
 * history) that plans its node ids (`from`..`to`) and runs them in an inline {@link nodeMap}.
 * Dependencies stay exact across partitions: a node's `await` waits for its own parents,
 * wherever they run.
 */
function partitionMap(options: { arn: string; retryField: Record<string, AslValue>; heartbeatSeconds: number; maxConcurrency: number }): AslState {
  const { arn, retryField, heartbeatSeconds, maxConcurrency } = options;
  return {
    Type: 'Map',
    Label: 'partitions',
    ItemsPath: '$.plan.partitions',
    ItemSelector: {
      'dispatchId.$': '$$.Map.Item.Value.dispatchId',
      'from.$': '$$.Map.Item.Value.from',
      'to.$': '$$.Map.Item.Value.to',
    },
    MaxConcurrency: maxConcurrency,
    ItemProcessor: {
      ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
      StartAt: 'plan-partition',
      States: {
        'plan-partition': {
          Type: 'Task',
          Resource: LAMBDA_INVOKE,
          Parameters: { FunctionName: arn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId', 'from.$': '$.from', 'to.$': '$.to' } },
          ResultSelector: { 'nodes.$': '$.Payload.nodes' },
          ResultPath: '$.plan',
          ...retryField,
          Next: 'partition-nodes',
        },
        'partition-nodes': { ...nodeMap({ arn, retryField, heartbeatSeconds, prefix: 'partition-' }), End: true },
      },
    },
    ResultPath: null,
  };
}

/**
 * An inline Map over `$.plan.nodes` whose iteration runs one node: an `await` callback task
 * (released once all its parents ended), then a `run` callback task. Iterations start in
 * node-id order, a topological order, so bounded concurrency can delay but never deadlock.
 *
 * The `await` is `skippable`: a node that can no longer run (cancelled in bulk, or below a
 * parent that did not complete) has its wait failed with {@link NODE_ENDED_ERROR}, which the
 * Catch turns into the iteration's end. Its `run` state, one step invocation that would only
 * find the node ended, is skipped; a normal iteration takes no extra state (no Choice), so it
 * costs no extra transition.
 */
function nodeMap(options: { arn: string; retryField: Record<string, AslValue>; heartbeatSeconds: number; prefix: string }): AslState {
  const { arn, retryField, heartbeatSeconds, prefix } = options;
  const inItem = { 'dispatchId.$': '$.dispatchId', 'nodeId.$': '$.nodeId' };
  return {
    Type: 'Map',
    ItemsPath: '$.plan.nodes',
    ItemSelector: { 'dispatchId.$': '$$.Map.Item.Value.dispatchId', 'nodeId.$': '$$.Map.Item.Value.nodeId' },
    MaxConcurrency: 0,
    ItemProcessor: {
      ProcessorConfig: { Mode: 'INLINE' },
      StartAt: `${prefix}await-node`,
      States: {
        [`${prefix}await-node`]: {
          Type: 'Task',
          Resource: LAMBDA_INVOKE_CALLBACK,
          // It also runs the node (issue 18): once the parents have ended, the handler (or the
          // last parent's releaser, waking it) runs it and releases this token when it ends.
          Parameters: { FunctionName: arn, Payload: { action: 'await', ...inItem, skippable: true, run: true, 'taskToken.$': '$$.Task.Token' } },
          ResultPath: null,
          ...retryField,
          Catch: [
            { ErrorEquals: [NODE_ENDED_ERROR], ResultPath: null, Next: `${prefix}node-ended` },
            // Handed back by a releaser that could not run it: Step Functions runs it here.
            { ErrorEquals: [RUN_NODE_ERROR], ResultPath: null, Next: `${prefix}run-node` },
          ],
          End: true,
        },
        [`${prefix}node-ended`]: { Type: 'Succeed' },
        [`${prefix}run-node`]: {
          Type: 'Task',
          Resource: LAMBDA_INVOKE_CALLBACK,
          Parameters: { FunctionName: arn, Payload: { action: 'run', ...inItem, 'taskToken.$': '$$.Task.Token' } },
          ResultPath: null,
          ...(heartbeatSeconds > 0 ? { HeartbeatSeconds: heartbeatSeconds } : {}),
          ...retryField,
          End: true,
        },
      },
    },
    ResultPath: null,
  };
}

/**
 * The split form of a lattice past one state machine's limits. `plan` cuts the node ids into
 * partitions of consecutive ids; a Distributed Map runs each partition as a child execution
 * (its own history); inside, an inline Map runs the partition's nodes as the graph runner
 * does — an `await` on the node's parents, wherever they are, then the node. Dependencies
 * stay exact across partitions (a node waits for its own parents only), and cancellation is
 * unchanged: flags live in DynamoDB, and stopping the parent execution stops its children.
 */
function compilePartitioned(
  graph: TransportGraph,
  hash: string,
  options: CompileLatticeOptions,
  partition: { readonly chunkSize?: number },
): CompiledLattice {
  const arn = options.stepHandlerArn;
  const heartbeatSeconds = positiveInteger('heartbeatSeconds', options.heartbeatSeconds, 600);
  const retry = lambdaRetry(positiveInteger('lambdaRetryAttempts', options.lambdaRetryAttempts, 6));
  const retryField: Record<string, AslValue> = retry.length > 0 ? { Retry: retry } : {};
  const size = Math.max(1, positiveInteger('partition.chunkSize', partition.chunkSize, PARTITION_SIZE));
  const count = Math.max(1, Math.ceil(graph.nodes.length / size));
  const states: Record<string, AslState> = {
    plan: {
      Type: 'Task',
      Resource: LAMBDA_INVOKE,
      Parameters: { FunctionName: arn, Payload: { action: 'plan', 'dispatchId.$': '$$.Execution.Name', partitionSize: size } },
      ResultSelector: { 'partitions.$': '$.Payload.partitions' },
      ResultPath: '$.plan',
      ...retryField,
      Next: 'partitions',
    },
    partitions: { ...partitionMap({ arn, retryField, heartbeatSeconds, maxConcurrency: Math.min(10_000, count) }), Next: 'finalize' },
    ...finalizeStates(arn, { 'dispatchId.$': '$$.Execution.Name' }, retry),
  };
  const definition: AslDefinition = {
    Comment: `valence graph sha256:${hash} lattice ${graph.lattice.name} (split: ${count} partition(s) of up to ${size} nodes)`,
    StartAt: 'plan',
    States: states,
    ...(options.executionTimeoutSeconds === undefined
      ? {}
      : { TimeoutSeconds: positiveInteger('executionTimeoutSeconds', options.executionTimeoutSeconds, 0) }),
  };
  // A child execution: start and end, its plan, the inline Map, and per node one iteration
  // with two callback tasks. The parent: its plan, the Distributed Map (map-run events, not
  // per-iteration ones), and the finalize tail.
  const perNode = HISTORY_EVENTS.mapIteration + HISTORY_EVENTS.callbackTask;
  const historyEventsPerPartition = HISTORY_EVENTS.execution + HISTORY_EVENTS.task + HISTORY_EVENTS.map + Math.min(size, graph.nodes.length) * perNode;
  const parentHistoryEvents = HISTORY_EVENTS.execution + HISTORY_EVENTS.task + HISTORY_EVENTS.map + 2 + historyTail();
  const { length: criticalPathLength } = longestPath(graph);
  const stats: CompileStats = {
    definitionBytes: Buffer.byteLength(JSON.stringify(definition)),
    stateCount: countStates(states),
    estimatedHistoryEvents: Math.max(historyEventsPerPartition, parentHistoryEvents),
    criticalPathLength,
    nodeCount: graph.nodes.length,
    awaitCount: graph.nodes.length,
    parallelCount: 0,
    partitions: { count, size, historyEventsPerPartition, parentHistoryEvents },
  };
  const maxEvents = Math.min(options.limits?.maxHistoryEvents ?? MAX_HISTORY_EVENTS, MAX_HISTORY_EVENTS);
  if (stats.estimatedHistoryEvents > maxEvents) {
    throw new ValidationError(
      ValidationCode.LIMIT_EXCEEDED,
      `lattice "${graph.lattice.name}": a partition of ${size} nodes would write about ${historyEventsPerPartition.toLocaleString('en-US')} history events, over the ${maxEvents.toLocaleString('en-US')}-event limit; use a smaller partition.chunkSize`,
      { lattice: graph.lattice.name },
    );
  }
  return { definition, stats, graphHash: hash, awaitingNodes: new Set(graph.nodes.map((node) => node.id)) };
}

/** Nodes on the longest dependency path (ids are a topological order). */
function longestPath(graph: TransportGraph): { length: number } {
  const depth = new Array<number>(graph.nodes.length).fill(0);
  let length = 0;
  for (const node of graph.nodes) {
    let best = 0;
    for (const parent of graph.parents(node.id)) best = Math.max(best, depth[parent] ?? 0);
    depth[node.id] = best + 1;
    length = Math.max(length, best + 1);
  }
  return { length };
}
