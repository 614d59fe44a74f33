// Unit tests aimed at the compiler's branches and numbers that the other compiler tests leave
// unchecked once their large graphs are set aside (a mutation run, bench/mutation.ts, runs the
// cheap compiler tests only): every option at its bound and its default, every form's exact
// states and statistics, the scheduler's choice of which parent a node follows, and bit sets
// past one 32-bit word. Milliseconds each: small graphs only.
import { describe, expect, it } from 'vitest';
import {
  GRAPH_RUNNER_COMMENT,
  HISTORY_EVENTS,
  compileGraphRunner,
  compileLattice,
  graphRunnerHistoryEvents,
  readGraphHash,
  readPartitionOption,
  schedule,
} from '../../../sdk/compiler/index.ts';
import type { AslDefinition, AslState, CompileLatticeOptions } from '../../../sdk/compiler/index.ts';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import { BatchExecutor, LatticeRegistry, electron, lattice } from '../../../sdk/model/index.ts';
import { SHAPES, graphFromParents } from './graphs.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';
const batch = new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 });
const dagOf = (parents: readonly (readonly number[])[]) => ({ size: parents.length, parents: (id: number) => parents[id] ?? [] });

/** Every state at every nesting level. */
function everyState(definition: AslDefinition, into: AslState[] = []): AslState[] {
  for (const state of Object.values(definition.States)) {
    into.push(state);
    for (const branch of (state['Branches'] as unknown as AslDefinition[] | undefined) ?? []) everyState(branch, into);
    const processor = state['ItemProcessor'] as unknown as AslDefinition | undefined;
    if (processor !== undefined) everyState(processor, into);
  }
  return into;
}

const runState = (definition: AslDefinition, nodeId: number): AslState | undefined =>
  everyState(definition).find((state) => {
    const payload = (state['Parameters'] as { Payload?: { action?: string; nodeId?: number } } | undefined)?.Payload;
    return payload?.action === 'run' && payload.nodeId === nodeId;
  });

const invalidOption = (run: () => unknown, option: string) =>
  expect(run).toThrow(expect.objectContaining({ code: ValidationCode.INVALID_OPTION, message: expect.stringContaining(`"${option}"`) as unknown }) as unknown);

const RETRY = (attempts: number) => [
  {
    ErrorEquals: [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
      'Lambda.Unknown',
      'Runtime.ExitError',
      'Runtime.InitTimeout',
      'InvocationDeadlineError',
      'TransientAwsError',
    ],
    IntervalSeconds: 1,
    BackoffRate: 2,
    MaxAttempts: attempts,
    MaxDelaySeconds: 30,
    JitterStrategy: 'FULL',
  },
];

describe('compile options', () => {
  const graph = graphFromParents(SHAPES['nShape'] as number[][], (id) => (id === 3 ? batch : undefined));

  it('refuses a stepHandlerArn that is not a non-empty string, in both compilers', () => {
    for (const arn of ['', undefined, 42]) {
      invalidOption(() => compileLattice(graph, { stepHandlerArn: arn as string }), 'stepHandlerArn');
      invalidOption(() => compileGraphRunner({ stepHandlerArn: arn as string }), 'stepHandlerArn');
    }
  });

  it('accepts 0 and refuses negative or fractional numbers, naming the option', () => {
    for (const option of ['heartbeatSeconds', 'lambdaRetryAttempts', 'timeoutMarginSeconds', 'executionTimeoutSeconds'] as const) {
      invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: false, [option]: -1 }), option);
      invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: false, [option]: 1.5 }), option);
      expect(() => compileLattice(graph, { stepHandlerArn, partition: false, [option]: 0 })).not.toThrow();
    }
    invalidOption(() => compileGraphRunner({ stepHandlerArn, heartbeatSeconds: -1 }), 'heartbeatSeconds');
    invalidOption(() => compileGraphRunner({ stepHandlerArn, lambdaRetryAttempts: 0.5 }), 'lambdaRetryAttempts');
    invalidOption(() => compileGraphRunner({ stepHandlerArn, executionTimeoutSeconds: -5 }), 'executionTimeoutSeconds');
    invalidOption(() => compileGraphRunner({ stepHandlerArn, partition: { above: -1 } }), 'partition.above');
    invalidOption(() => compileGraphRunner({ stepHandlerArn, partition: { chunkSize: 2.5 } }), 'partition.chunkSize');
    invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: { above: -1 } }), 'partition.above');
    invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: { above: 0, chunkSize: -1 } }), 'partition.chunkSize');
    invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: { above: 0 }, lambdaRetryAttempts: -1 }), 'lambdaRetryAttempts');
    invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: { above: 0 }, heartbeatSeconds: -1 }), 'heartbeatSeconds');
    invalidOption(() => compileLattice(graph, { stepHandlerArn, partition: { above: 0 }, executionTimeoutSeconds: -1 }), 'executionTimeoutSeconds');
  });

  it('rethrows an invalid option with partitioning on, rather than splitting past it', () => {
    // timeoutMarginSeconds is read by the nested form only: the split form must not swallow its error.
    invalidOption(() => compileLattice(graph, { stepHandlerArn, timeoutMarginSeconds: -1 }), 'timeoutMarginSeconds');
  });

  it('puts the given retry count on every Task state, and no Retry at all for 0', () => {
    const forms: AslDefinition[] = [
      compileLattice(graph, { stepHandlerArn, lambdaRetryAttempts: 3 }).definition,
      compileLattice(graph, { stepHandlerArn, lambdaRetryAttempts: 3, partition: { above: 0 } }).definition,
      compileGraphRunner({ stepHandlerArn, lambdaRetryAttempts: 3 }).definition,
    ];
    for (const definition of forms) {
      const tasks = everyState(definition).filter((state) => state['Type'] === 'Task');
      expect(tasks.length).toBeGreaterThan(2);
      for (const task of tasks) expect(task['Retry']).toEqual(RETRY(3));
    }
    const none: AslDefinition[] = [
      compileLattice(graph, { stepHandlerArn, lambdaRetryAttempts: 0 }).definition,
      compileLattice(graph, { stepHandlerArn, lambdaRetryAttempts: 0, partition: { above: 0 } }).definition,
      compileGraphRunner({ stepHandlerArn, lambdaRetryAttempts: 0 }).definition,
      compileGraphRunner({ stepHandlerArn, lambdaRetryAttempts: 0, partition: false }).definition,
    ];
    for (const definition of none) {
      expect(everyState(definition).filter((state) => state['Type'] === 'Task').length).toBeGreaterThan(2);
      for (const state of everyState(definition)) expect(state).not.toHaveProperty('Retry');
    }
    // The default is 6 attempts.
    for (const task of everyState(compileGraphRunner({ stepHandlerArn }).definition).filter((state) => state['Type'] === 'Task')) expect(task['Retry']).toEqual(RETRY(6));
  });

  it('gives callback tasks a heartbeat only when it is positive and shorter than the task timeout', () => {
    const timed = graphFromParents([[]], () => new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 }));
    // No timeout: the default 600 s heartbeat.
    expect(runState(compileLattice(timed, { stepHandlerArn }).definition, 0)?.['HeartbeatSeconds']).toBe(600);
    expect(runState(compileLattice(timed, { stepHandlerArn, heartbeatSeconds: 0 }).definition, 0)).not.toHaveProperty('HeartbeatSeconds');
    // A Lambda node has none.
    expect(runState(compileLattice(graphFromParents([[]]), { stepHandlerArn, heartbeatSeconds: 30 }).definition, 0)).not.toHaveProperty('HeartbeatSeconds');
    // With a timeout budget of 30 + 10 (the node's grace) + 20 (margin) = 60 s: 59 fits, 60 does not.
    const withTimeout = (heartbeatSeconds: number) => compileLattice(timedBatchGraph(), { stepHandlerArn, timeoutMarginSeconds: 20, heartbeatSeconds }).definition;
    expect(runState(withTimeout(59), 0)?.['TimeoutSeconds']).toBe(60);
    expect(runState(withTimeout(59), 0)?.['HeartbeatSeconds']).toBe(59);
    expect(runState(withTimeout(60), 0)).not.toHaveProperty('HeartbeatSeconds');
    expect(runState(withTimeout(60), 0)?.['TimeoutSeconds']).toBe(60);
    // The graph runner's run task: the option, or none for 0.
    const runNode = (definition: AslDefinition) => everyState(definition).find((state) => (state['Parameters'] as { Payload?: { action?: string } } | undefined)?.Payload?.action === 'run');
    expect(runNode(compileGraphRunner({ stepHandlerArn, heartbeatSeconds: 45 }).definition)?.['HeartbeatSeconds']).toBe(45);
    expect(runNode(compileGraphRunner({ stepHandlerArn, heartbeatSeconds: 0 }).definition)).not.toHaveProperty('HeartbeatSeconds');
  });

  it('sets the execution timeout in every form, and none by default', () => {
    expect(compileLattice(graph, { stepHandlerArn, executionTimeoutSeconds: 90 }).definition.TimeoutSeconds).toBe(90);
    expect(compileLattice(graph, { stepHandlerArn, executionTimeoutSeconds: 90, partition: { above: 0 } }).definition.TimeoutSeconds).toBe(90);
    expect(compileGraphRunner({ stepHandlerArn, executionTimeoutSeconds: 90 }).definition.TimeoutSeconds).toBe(90);
    expect(compileGraphRunner({ stepHandlerArn, executionTimeoutSeconds: 90, partition: false }).definition.TimeoutSeconds).toBe(90);
    for (const definition of [
      compileLattice(graph, { stepHandlerArn }).definition,
      compileLattice(graph, { stepHandlerArn, partition: { above: 0 } }).definition,
      compileGraphRunner({ stepHandlerArn }).definition,
      compileGraphRunner({ stepHandlerArn, partition: false }).definition,
    ]) {
      expect(definition).not.toHaveProperty('TimeoutSeconds');
    }
  });
});

const registry = new LatticeRegistry();
let timedGraphs = 0;
const timedBatch = electron({ name: 'timedBatch', executor: batch, timeoutSeconds: 30 }, () => 1);
/** One Batch node with timeoutSeconds 30 (its grace defaults to 10 s). */
function timedBatchGraph() {
  return lattice({ name: `timed-batch-${timedGraphs++}`, registry }, () => timedBatch()).template();
}

describe('compileLattice sources and forms', () => {
  const graph = graphFromParents(SHAPES['diamond'] as number[][]);

  it('compiles what another copy of the SDK builds: a template() returning an object with toJSON(), or the JSON itself', () => {
    const expected = compileLattice(graph, { stepHandlerArn }).definition;
    const json = JSON.parse(JSON.stringify(graph.toJSON())) as unknown;
    expect(compileLattice({ name: 'foreign', template: () => ({ toJSON: () => json }) }, { stepHandlerArn }).definition).toEqual(expected);
    expect(compileLattice({ name: 'foreign', template: () => json }, { stepHandlerArn }).definition).toEqual(expected);
  });

  it('splits from `above` nodes on, not at it', () => {
    expect(compileLattice(graph, { stepHandlerArn, partition: { above: 4 } }).stats.partitions).toBeUndefined();
    expect(compileLattice(graph, { stepHandlerArn, partition: { above: 3 } }).stats.partitions).toMatchObject({ count: 1, size: 1000 });
    expect(compileLattice(graph, { stepHandlerArn, partition: false }).stats.partitions).toBeUndefined();
  });

  it('ends the nested form with the exact finalize tail', () => {
    const { definition } = compileLattice(graph, { stepHandlerArn });
    expect(definition.States['finalize']).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'finalize', 'dispatchId.$': '$$.Execution.Name' } },
      ResultSelector: { 'status.$': '$.Payload.status' },
      ResultPath: '$.finalized',
      Retry: RETRY(6),
      Next: 'dispatch-status',
    });
    expect(definition.States['dispatch-failed']).toEqual({ Type: 'Fail', Error: 'DispatchFailed', Cause: 'a node of the dispatch failed; read the dispatch result for details' });
    expect(definition.States['dispatch-succeeded']).toEqual({ Type: 'Succeed' });
  });

  it('lays the diamond out as a chain around one Parallel state, with End only at branch ends', () => {
    const { definition } = compileLattice(graph, { stepHandlerArn });
    expect(definition.StartAt).toBe('0-step');
    expect(definition.States['0-step']?.['Next']).toBe('parallel-0');
    const parallel = definition.States['parallel-0'] as { Type: string; Next: string; ResultPath: null; Branches: AslDefinition[] };
    expect(parallel.Type).toBe('Parallel');
    expect(parallel.Next).toBe('3-step');
    expect(parallel.ResultPath).toBeNull();
    expect(parallel.Branches.map((branch) => branch.StartAt)).toEqual(['1-step', '2-step']);
    for (const branch of parallel.Branches) {
      expect(Object.values(branch.States)).toHaveLength(1);
      expect(Object.values(branch.States)[0]?.['End']).toBe(true);
      expect(Object.values(branch.States)[0]).not.toHaveProperty('Next');
    }
    expect(definition.States['3-step']?.['Next']).toBe('finalize');
    expect(definition.States['3-step']).not.toHaveProperty('End');
  });

  it('replaces characters a state name cannot hold', () => {
    const json = graph.toJSON();
    const renamed = { ...json, nodes: json.nodes.map((node) => (node.id === 0 ? { ...node, name: 'a$b c/d' } : node)) };
    expect(compileLattice(renamed, { stepHandlerArn }).definition.StartAt).toBe('0-a_b_c_d');
  });

  it('counts history events per state kind: tasks, callback tasks, awaits, parallels', () => {
    // nShape with node 3 on Batch: 0, 1, 2 are Lambda tasks (5), 3 a callback task (6) behind an await (6).
    const { stats } = compileLattice(graphFromParents(SHAPES['nShape'] as number[][], (id) => (id === 3 ? batch : undefined)), { stepHandlerArn });
    const tail = HISTORY_EVENTS.task + HISTORY_EVENTS.choice + HISTORY_EVENTS.succeed;
    expect(stats.estimatedHistoryEvents).toBe(HISTORY_EVENTS.execution + 3 * 5 + 6 + 6 + stats.parallelCount * 4 + tail);
    expect(stats.parallelCount).toBe(1);
    expect(stats.awaitCount).toBe(1);
    // 4 tasks + 1 await + 1 parallel + the 4 tail states.
    expect(stats.stateCount).toBe(10);
    expect(stats.criticalPathLength).toBe(2);
  });

  it('names the lowered history limit it refuses', () => {
    const small = graphFromParents(SHAPES['chain'] as number[][]);
    const { stats } = compileLattice(small, { stepHandlerArn });
    expect(() => compileLattice(small, { stepHandlerArn, partition: false, limits: { maxHistoryEvents: stats.estimatedHistoryEvents - 1 } })).toThrow(
      expect.objectContaining({ message: expect.stringContaining(`over the ${(stats.estimatedHistoryEvents - 1).toLocaleString('en-US')}-event limit (4 nodes)`) as unknown }) as unknown,
    );
  });
});

describe('the split form', () => {
  const chain = Array.from({ length: 30 }, (_, i) => (i === 0 ? [] : [i - 1]));

  it('cuts the nodes into partitions of chunkSize, with exact statistics', () => {
    const compiled = compileLattice(graphFromParents(chain), { stepHandlerArn, partition: { above: 10, chunkSize: 8 } });
    const perPartition = HISTORY_EVENTS.execution + HISTORY_EVENTS.task + HISTORY_EVENTS.map + 8 * (HISTORY_EVENTS.mapIteration + HISTORY_EVENTS.callbackTask);
    const parent = HISTORY_EVENTS.execution + HISTORY_EVENTS.task + HISTORY_EVENTS.map + 2 + HISTORY_EVENTS.task + HISTORY_EVENTS.choice + HISTORY_EVENTS.succeed;
    expect(perPartition).toBe(75);
    expect(parent).toBe(22);
    expect(compiled.stats).toEqual({
      definitionBytes: Buffer.byteLength(JSON.stringify(compiled.definition)),
      // plan, partitions (+ plan-partition, partition-nodes (+ await, node-ended, run)), finalize tail
      stateCount: 2 + 2 + 3 + 4,
      estimatedHistoryEvents: 75,
      criticalPathLength: 30,
      nodeCount: 30,
      awaitCount: 30,
      parallelCount: 0,
      partitions: { count: 4, size: 8, historyEventsPerPartition: 75, parentHistoryEvents: 22 },
    });
    expect(compiled.definition.Comment).toContain('(split: 4 partition(s) of up to 8 nodes)');
    expect(readPartitionOption(compiled.definition)).toEqual({ above: 0, chunkSize: 8 });
    expect(readGraphHash(compiled.definition)).toBe(compiled.graphHash);
    const plan = compiled.definition.States['plan'];
    expect(plan).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'plan', 'dispatchId.$': '$$.Execution.Name', partitionSize: 8 } },
      ResultSelector: { 'partitions.$': '$.Payload.partitions' },
      ResultPath: '$.plan',
      Retry: RETRY(6),
      Next: 'partitions',
    });
    expect(compiled.definition.States['partitions']?.['MaxConcurrency']).toBe(4);
    expect(compiled.definition.States['partitions']?.['Next']).toBe('finalize');
    expect(compiled.definition.StartAt).toBe('plan');
  });

  it('sizes a partition by the nodes it can hold, and refuses one over the history limit', () => {
    const big = compileLattice(graphFromParents(chain), { stepHandlerArn, partition: { above: 0, chunkSize: 100 } });
    expect(big.stats.partitions).toMatchObject({ count: 1, size: 100, historyEventsPerPartition: 2 + 5 + 4 + 30 * 8 });
    // chunkSize 0 means partitions of 1.
    expect(compileLattice(graphFromParents(chain), { stepHandlerArn, partition: { above: 0, chunkSize: 0 } }).stats.partitions).toMatchObject({ count: 30, size: 1 });
    // An empty lattice split (its nested form over a lowered limit) still has one partition.
    expect(compileLattice(graphFromParents([]), { stepHandlerArn, limits: { maxDefinitionBytes: 10 } }).stats.partitions).toMatchObject({ count: 1, size: 1000 });
    const options = (maxHistoryEvents: number): CompileLatticeOptions => ({ stepHandlerArn, partition: { above: 0, chunkSize: 8 }, limits: { maxHistoryEvents } });
    expect(() => compileLattice(graphFromParents(chain), options(75))).not.toThrow();
    expect(() => compileLattice(graphFromParents(chain), options(74))).toThrow(
      expect.objectContaining({ code: ValidationCode.LIMIT_EXCEEDED, message: expect.stringContaining('a partition of 8 nodes would write about 75 history events, over the 74-event limit') as unknown }) as unknown,
    );
    expect(() => compileLattice(graphFromParents(chain), options(74))).toThrow(ValidationError);
  });

  it('reports the longest path of the split graph, not its node count', () => {
    // 0 → 1 → 3, 2 → 3, 4 alone: 3 nodes on the longest path.
    const compiled = compileLattice(graphFromParents([[], [0], [], [1, 2], []]), { stepHandlerArn, partition: { above: 0 } });
    expect(compiled.stats.criticalPathLength).toBe(3);
  });

  it('runs each partition as a Distributed Map child that plans its node ids and maps them inline', () => {
    const { definition } = compileLattice(graphFromParents(chain), { stepHandlerArn, partition: { above: 0, chunkSize: 8 }, heartbeatSeconds: 50 });
    const partitions = definition.States['partitions'] as unknown as { ItemProcessor: AslDefinition } & AslState;
    expect({ ...partitions, ItemProcessor: undefined }).toEqual({
      Type: 'Map',
      Label: 'partitions',
      ItemsPath: '$.plan.partitions',
      ItemSelector: { 'dispatchId.$': '$$.Map.Item.Value.dispatchId', 'from.$': '$$.Map.Item.Value.from', 'to.$': '$$.Map.Item.Value.to' },
      MaxConcurrency: 4,
      ItemProcessor: undefined,
      ResultPath: null,
      Next: 'finalize',
    });
    const processor = partitions.ItemProcessor;
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(processor.StartAt).toBe('plan-partition');
    expect(processor.States['plan-partition']).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId', 'from.$': '$.from', 'to.$': '$.to' } },
      ResultSelector: { 'nodes.$': '$.Payload.nodes' },
      ResultPath: '$.plan',
      Retry: RETRY(6),
      Next: 'partition-nodes',
    });
    expect(processor.States['partition-nodes']).toEqual({ ...inlineNodeMap('partition-', 50), End: true });
  });
});

/** The inline node Map both the graph runner and a partition run. */
function inlineNodeMap(prefix: string, heartbeatSeconds: number): AslState {
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
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'await', ...inItem, skippable: true, run: true, 'taskToken.$': '$$.Task.Token' } },
          ResultPath: null,
          Retry: RETRY(6),
          Catch: [
            { ErrorEquals: ['Valence.NodeEnded'], ResultPath: null, Next: `${prefix}node-ended` },
            { ErrorEquals: ['Valence.RunNode'], ResultPath: null, Next: `${prefix}run-node` },
          ],
          End: true,
        },
        [`${prefix}node-ended`]: { Type: 'Succeed' },
        [`${prefix}run-node`]: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'run', ...inItem, 'taskToken.$': '$$.Task.Token' } },
          ResultPath: null,
          HeartbeatSeconds: heartbeatSeconds,
          Retry: RETRY(6),
          End: true,
        },
      },
    },
    ResultPath: null,
  };
}

describe('compileGraphRunner forms', () => {
  it('has the exact inline node Map, plan and statistics', () => {
    const { definition, stats } = compileGraphRunner({ stepHandlerArn, partition: false });
    expect(definition.Comment).toBe(GRAPH_RUNNER_COMMENT);
    expect(definition.States['nodes']).toEqual({ ...inlineNodeMap('', 600), Next: 'finalize' });
    expect(definition.States['plan']).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId' } },
      ResultSelector: { 'nodes.$': '$.Payload.nodes' },
      ResultPath: '$.plan',
      Retry: RETRY(6),
      Next: 'nodes',
    });
    expect(definition.States['finalize']?.['Parameters']).toEqual({ FunctionName: stepHandlerArn, Payload: { action: 'finalize', 'dispatchId.$': '$.dispatchId' } });
    // plan, nodes (+ await, node-ended, run), the 4 tail states
    expect(stats.stateCount).toBe(1 + 1 + 3 + 4);
    expect(stats.definitionBytes).toBe(Buffer.byteLength(JSON.stringify(definition)));
    expect(stats.baseHistoryEvents).toBe(2 + 5 + 2 + 4 + 5 + 2 + 2);
    expect(graphRunnerHistoryEvents(0)).toBe(22);
    expect(graphRunnerHistoryEvents(3)).toBe(22 + 3 * 8);
  });

  it('plans with the split threshold and chooses the Distributed Map past it', () => {
    const { definition, stats } = compileGraphRunner({ stepHandlerArn, partition: { above: 10, chunkSize: 0 } });
    expect(definition.States['plan']).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId', splitAbove: 10, partitionSize: 1 } },
      ResultSelector: { 'split.$': '$.Payload.split', 'nodes.$': '$.Payload.nodes', 'partitions.$': '$.Payload.partitions' },
      ResultPath: '$.plan',
      Retry: RETRY(6),
      Next: 'form',
    });
    expect(definition.States['nodes']).toEqual({ ...inlineNodeMap('', 600), Next: 'finalize' });
    expect(definition.States['partitions']?.['MaxConcurrency']).toBe(10_000);
    // plan, form, nodes (+3), partitions (+ plan-partition, partition-nodes (+3)), the 4 tail states
    expect(stats.stateCount).toBe(1 + 1 + 4 + 6 + 4);
  });
});

describe('readGraphHash and readPartitionOption', () => {
  it('read nothing from a definition without a string Comment, and nested form from an unsplit one', () => {
    expect(readGraphHash({ Comment: 42 })).toBeUndefined();
    expect(readGraphHash({})).toBeUndefined();
    expect(readGraphHash('{"StartAt":"x"}')).toBeUndefined();
    expect(readPartitionOption({ Comment: 42 })).toBe(false);
    const nested = compileLattice(graphFromParents([[]]), { stepHandlerArn });
    expect(readPartitionOption(nested.definition)).toBe(false);
    expect(readPartitionOption(JSON.stringify(nested.definition))).toBe(false);
  });
});

describe('schedule choices', () => {
  it('makes a node follow the parent that ends last: the deeper one, else the later one', () => {
    // The N shape: 3 has parents 0 and 1 of the same depth, so it follows 1 and awaits 0.
    const n = schedule(dagOf(SHAPES['nShape'] as number[][]));
    expect([...n.awaits]).toEqual([[3, [0]]]);
    expect(n.root).toEqual({
      type: 'parallel',
      branches: [
        { type: 'series', items: [{ type: 'task', node: 0 }, { type: 'task', node: 2 }] },
        { type: 'series', items: [{ type: 'task', node: 1 }, { type: 'task', node: 3 }] },
      ],
    });
    // 0 → 1 → 3, 2 → 3, 2 → 4: 3's parent 1 (depth 2) is deeper than 2 (depth 1), so 3 follows 1 and awaits 2.
    const deep = schedule(dagOf([[], [0], [], [1, 2], [2]]));
    expect([...deep.awaits]).toEqual([[3, [2]]]);
    expect(deep.criticalPathLength).toBe(3);
  });

  it('orders series groups by their order in the DAG, whatever their ids', () => {
    // 1 → 0's position: ids are topological, so build 0 → {1, 2} → 3 → {4, 5} and check the series order.
    const plan = schedule(dagOf([[], [0], [0], [1, 2], [3], [3]]));
    expect(plan.root).toEqual({
      type: 'series',
      items: [
        { type: 'task', node: 0 },
        { type: 'parallel', branches: [{ type: 'task', node: 1 }, { type: 'task', node: 2 }] },
        { type: 'task', node: 3 },
        { type: 'parallel', branches: [{ type: 'task', node: 4 }, { type: 'task', node: 5 }] },
      ],
    });
    expect(plan.awaits.size).toBe(0);
  });

  it('deduplicates repeated parents, and refuses a parent that is not earlier, or negative', () => {
    expect(schedule(dagOf([[], [0, 0]])).root).toEqual({ type: 'series', items: [{ type: 'task', node: 0 }, { type: 'task', node: 1 }] });
    expect(() => schedule(dagOf([[0]]))).toThrow(RangeError);
    expect(() => schedule(dagOf([[], [-1]]))).toThrow(RangeError);
  });

  it('keeps ancestry exact past one 32-bit word: an N shape at ids 40 to 43 after a 40-node chain', () => {
    const parents: number[][] = Array.from({ length: 40 }, (_, i) => (i === 0 ? [] : [i - 1]));
    // 40 and 41 both follow 39; 42 ← 40; 43 ← 40, 41: the N shape, one await.
    parents.push([39], [39], [40], [40, 41]);
    const plan = schedule(dagOf(parents));
    expect([...plan.awaits]).toEqual([[43, [40]]]);
    expect(plan.criticalPathLength).toBe(42);
    // Two chains side by side past 32 nodes stay independent: no awaits, two branches.
    const two: number[][] = [[], []];
    for (let i = 2; i < 70; i++) two.push([i - 2]);
    const sideBySide = schedule(dagOf(two));
    expect(sideBySide.awaits.size).toBe(0);
    expect(sideBySide.root?.type).toBe('parallel');
    expect(sideBySide.criticalPathLength).toBe(35);
  });
});

describe('what the first full mutation run left', () => {
  it('breaks a depth tie toward the deeper parent whatever the order parents are listed in, and a tie toward the later id', () => {
    // 3's parents listed [2, 1]: 1 (depth 2) is deeper than 2 (depth 1), so 3 follows 1 and awaits 2.
    expect([...schedule(dagOf([[], [0], [], [2, 1], [2]])).awaits]).toEqual([[3, [2]]]);
    // The N shape with 3's parents listed [1, 0]: equal depths, so the later id (1) is followed and 0 awaited.
    expect([...schedule(dagOf([[], [], [0], [1, 0]])).awaits]).toEqual([[3, [0]]]);
  });

  it('flattens a series inside a series, and a parallel inside a parallel', () => {
    // The N shape with a tail 2 → 4, beside an independent node 5.
    const plan = schedule(dagOf([[], [], [0], [0, 1], [2], []]));
    expect(plan.root).toEqual({
      type: 'parallel',
      branches: [
        {
          type: 'series',
          items: [
            { type: 'task', node: 0 },
            { type: 'task', node: 2 },
            { type: 'task', node: 4 },
          ],
        },
        { type: 'series', items: [{ type: 'task', node: 1 }, { type: 'task', node: 3 }] },
        { type: 'task', node: 5 },
      ],
    });
  });

  it('names the lattice on every limit error, and cuts a long state name from a graph JSON to 80 characters', () => {
    const graph = graphFromParents(SHAPES['chain'] as number[][]);
    const { stats } = compileLattice(graph, { stepHandlerArn });
    const limitError = (options: CompileLatticeOptions) => {
      try {
        compileLattice(graph, options);
      } catch (error) {
        return error as ValidationError;
      }
      throw new Error('no limit error');
    };
    for (const limits of [{ maxDefinitionBytes: stats.definitionBytes - 1 }, { maxHistoryEvents: stats.estimatedHistoryEvents - 1 }]) {
      expect(limitError({ stepHandlerArn, partition: false, limits }).lattice).toBe(graph.lattice.name);
    }
    expect(limitError({ stepHandlerArn, partition: { above: 0, chunkSize: 2 }, limits: { maxHistoryEvents: 10 } }).lattice).toBe(graph.lattice.name);
    const json = graph.toJSON();
    const long = { ...json, nodes: json.nodes.map((node) => (node.id === 0 ? { ...node, name: 'n'.repeat(100) } : node)) };
    expect(compileLattice(long, { stepHandlerArn }).definition.StartAt).toBe(`0-${'n'.repeat(78)}`);
  });

  it('gives the split form a finalize that names the execution, and refuses a template() that yields nothing', () => {
    const { definition } = compileLattice(graphFromParents(SHAPES['chain'] as number[][]), { stepHandlerArn, partition: { above: 0 } });
    expect(definition.States['finalize']?.['Parameters']).toEqual({ FunctionName: stepHandlerArn, Payload: { action: 'finalize', 'dispatchId.$': '$$.Execution.Name' } });
    expect(() => compileLattice({ name: 'empty', template: () => null }, { stepHandlerArn })).toThrow(expect.objectContaining({ code: ValidationCode.INVALID_GRAPH }) as unknown);
  });
});
