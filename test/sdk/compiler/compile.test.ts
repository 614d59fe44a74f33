import { describe, expect, it } from 'vitest';
import {
  BatchExecutor,
  BraketExecutor,
  LambdaExecutor,
  LatticeRegistry,
  LocalExecutor,
  ValidationCode,
  ValidationError,
  compileGraphRunner,
  compileLattice,
  electron,
  graphHash,
  lattice,
  readGraphHash,
  sublattice,
  toDot,
} from '../../../sdk/index.ts';
import type { AslDefinition, TransportGraphJSON } from '../../../sdk/index.ts';
import { LAMBDA_RETRY_ERRORS, graphRunnerHistoryEvents } from '../../../sdk/compiler/index.ts';
import { SHAPES, graphFromParents } from './graphs.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';
const registry = new LatticeRegistry();
/** A state as these tests read it: the fields they look into, typed; every other field unknown. */
interface State {
  readonly Parameters?: { readonly Payload?: { readonly action?: string; readonly nodeId?: number; readonly [key: string]: unknown }; readonly [key: string]: unknown };
  readonly Branches?: readonly { readonly States: Record<string, State> }[];
  readonly ItemProcessor?: { readonly States: Record<string, State> };
  readonly [key: string]: unknown;
}

/** Every state of a definition, at every nesting level, by name. */
function allStates(definition: { States: Record<string, State> }, into = new Map<string, State>()): Map<string, State> {
  for (const [name, state] of Object.entries(definition.States)) {
    expect(into.has(name), `duplicate state name ${name}`).toBe(false);
    into.set(name, state);
    for (const branch of state['Branches'] ?? []) allStates(branch, into);
    if (state['ItemProcessor']) allStates(state['ItemProcessor'], into);
  }
  return into;
}

const batch = new BatchExecutor({ jobQueue: 'q', vcpus: 2, memoryMiB: 4096 });

describe('compileLattice', () => {
  it('gives each node one readable, unique Task state of at most 80 characters', () => {
    const long = electron({ name: 'x'.repeat(64) }, () => 0);
    const train = electron(function train_model(_data: number) {
      return 0;
    });
    const graph = lattice({ name: 'naming', registry }, () => {
      const a = long();
      const b = long();
      return [train(a), train(b), train(1)];
    }).template();
    const states = allStates(compileLattice(graph, { stepHandlerArn }).definition);
    const taskNames = [...states.keys()].filter((name) => /^\d+-/.test(name));
    expect(taskNames.sort()).toEqual(['0-' + 'x'.repeat(64), '1-' + 'x'.repeat(64), '2-train_model', '3-train_model', '4-train_model']);
    for (const name of states.keys()) expect(name.length).toBeLessThanOrEqual(80);
    const nodeIds = [...states.values()].filter((state) => state['Parameters']?.Payload?.action === 'run').map((state) => state['Parameters']!.Payload!.nodeId);
    expect(nodeIds.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('sends only ids: plain invoke for Lambda nodes, callbacks with heartbeat for the rest', () => {
    const inner = lattice({ name: 'compile-inner', registry }, () => 1);
    const quick = electron(function quick() {
      return 1;
    });
    const graph = lattice({ name: 'payloads', registry }, () => [
      quick(),
      electron({ name: 'onBatch', executor: batch }, () => 1)(),
      electron({ name: 'onBraket', executor: new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 1 }) }, () => 1)(),
      electron({ name: 'onLocal', executor: new LocalExecutor() }, () => 1)(),
      sublattice(inner)(),
      electron({ name: 'explicitLambda', executor: new LambdaExecutor() }, () => 1)(),
    ]).template();
    const states = allStates(compileLattice(graph, { stepHandlerArn, heartbeatSeconds: 120 }).definition);
    const byNode = (id: number) => [...states.values()].find((state) => state['Parameters']?.Payload?.nodeId === id && state['Parameters'].Payload.action === 'run') as State;
    for (const id of [0, 5]) {
      expect(byNode(id)['Resource']).toBe('arn:aws:states:::lambda:invoke');
      expect(byNode(id)['Parameters']).toEqual({ FunctionName: stepHandlerArn, Payload: { action: 'run', 'dispatchId.$': '$$.Execution.Name', nodeId: id } });
      expect(byNode(id)).not.toHaveProperty('HeartbeatSeconds');
    }
    for (const id of [1, 2, 3, 4]) {
      expect(byNode(id)['Resource']).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
      expect(byNode(id)['Parameters']).toEqual({
        FunctionName: stepHandlerArn,
        Payload: { action: 'run', 'dispatchId.$': '$$.Execution.Name', nodeId: id, 'taskToken.$': '$$.Task.Token' },
      });
      expect(byNode(id)['HeartbeatSeconds']).toBe(120);
    }
    for (const state of states.values()) {
      if (state['Type'] === 'Task' || state['Type'] === 'Parallel') {
        if (state['Parameters']?.Payload?.action !== 'finalize') expect(state['ResultPath']).toBeNull();
      }
    }
  });

  it('retries Lambda service errors and throttling with backoff, and nothing else', () => {
    const { definition } = compileLattice(graphFromParents(SHAPES['nShape'] as number[][]), { stepHandlerArn });
    const tasks = [...allStates(definition).values()].filter((state) => state['Type'] === 'Task');
    expect(tasks.length).toBe(6); // 4 nodes, 1 await, finalize
    for (const task of tasks) {
      expect(task['Retry']).toEqual([
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
          MaxAttempts: 6,
          MaxDelaySeconds: 30,
          JitterStrategy: 'FULL',
        },
      ]);
    }
    expect([...LAMBDA_RETRY_ERRORS]).not.toContain('States.ALL');
  });

  it('derives Task timeouts from the electron options', () => {
    const timed = electron({ name: 'timed', timeoutSeconds: 100, retries: 2, graceSeconds: 5 }, () => 1);
    const timedBatch = electron({ name: 'timedBatch', executor: batch, timeoutSeconds: 30 }, () => 1);
    const untimed = electron({ name: 'untimed' }, () => 1);
    const graph = lattice({ name: 'timeouts', registry }, () => [timed(), timedBatch(), untimed()]).template();
    const states = allStates(compileLattice(graph, { stepHandlerArn, timeoutMarginSeconds: 20 }).definition);
    expect(states.get('0-timed')?.['TimeoutSeconds']).toBe(3 * (100 + 5) + 20);
    expect(states.get('1-timedBatch')?.['TimeoutSeconds']).toBe(30 + 10 + 20);
    expect(states.get('2-untimed')).not.toHaveProperty('TimeoutSeconds');
  });

  it('emits await tasks with waitFor for the edges nested Parallel states cannot express', () => {
    const { definition, stats } = compileLattice(graphFromParents(SHAPES['nShape'] as number[][]), { stepHandlerArn });
    const awaits = [...allStates(definition).entries()].filter(([, state]) => state['Parameters']?.Payload?.action === 'await');
    expect(awaits).toHaveLength(1);
    const [name, state] = awaits[0] as [string, State];
    // A Lambda node's wait and run are one state (issue 18), named as its run would be.
    expect(name).toBe('3-step');
    expect(state['Resource']).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(state['Parameters']!.Payload).toEqual({
      action: 'await',
      run: true,
      'dispatchId.$': '$$.Execution.Name',
      nodeId: 3,
      waitFor: [expect.any(Number)],
      'taskToken.$': '$$.Task.Token',
      // The parent whose state ran just before hands its view on, as to a run state.
      'parent.$': '$.parent',
    });
    // A wait no callback-free releaser can run hands the node back: the Catch runs it in a plain
    // run state beside it, which goes on where the merged state would have.
    expect(state['Catch']).toEqual([{ ErrorEquals: ['Valence.RunNode'], ResultPath: null, Next: 'run-3' }]);
    const fallback = allStates(definition).get('run-3') as State;
    expect(fallback['Resource']).toBe('arn:aws:states:::lambda:invoke');
    expect(fallback['Parameters']!.Payload).toEqual({ action: 'run', 'dispatchId.$': '$$.Execution.Name', nodeId: 3, 'parent.$': '$.parent' });
    expect(fallback['Next'] ?? fallback['End']).toEqual(state['Next'] ?? state['End']);
    expect(fallback['OutputPath']).toEqual(state['OutputPath']);
    // A node with a time budget keeps its own await and run states: a wait cannot carry the run's TimeoutSeconds.
    const json = graphFromParents(SHAPES['nShape'] as number[][]).toJSON();
    const timed = { ...json, nodes: json.nodes.map((node) => (node.id === 3 ? { ...node, timeoutSeconds: 30 } : node)) } as TransportGraphJSON;
    const timedStates = allStates(compileLattice(timed, { stepHandlerArn }).definition);
    expect(timedStates.get('await-3')?.['ResultPath']).toBe('$.released');
    expect(timedStates.get('3-step')?.['Parameters']?.Payload?.['released.$']).toBe('$.released');
    expect(timedStates.get('3-step')?.['TimeoutSeconds']).toBeGreaterThan(30);
    // So does a node that runs on a callback executor (its run carries HeartbeatSeconds).
    const onBatch = allStates(compileLattice(graphFromParents(SHAPES['nShape'] as number[][], (id) => (id === 3 ? batch : undefined)), { stepHandlerArn }).definition);
    expect(onBatch.get('await-3')?.['Parameters']?.Payload?.['run']).toBeUndefined();
    expect([...onBatch.keys()].find((n) => n.startsWith('3-'))).toBeDefined();
    expect(stats.awaitCount).toBe(1);
    expect(compileLattice(graphFromParents(SHAPES['nested'] as number[][]), { stepHandlerArn }).stats.awaitCount).toBe(0);
  });

  it('ends with finalize, a Choice, and a Fail state for FAILED dispatches', () => {
    const { definition } = compileLattice(graphFromParents(SHAPES['chain'] as number[][]), { stepHandlerArn });
    expect(definition.States['finalize']).toMatchObject({
      Type: 'Task',
      Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'finalize', 'dispatchId.$': '$$.Execution.Name' } },
      Next: 'dispatch-status',
    });
    expect(definition.States['dispatch-status']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.finalized.status', StringEquals: 'FAILED', Next: 'dispatch-failed' }],
      Default: 'dispatch-succeeded',
    });
    expect(definition.States['dispatch-failed']?.['Type']).toBe('Fail');
    expect(definition.States['dispatch-succeeded']?.['Type']).toBe('Succeed');
    expect(definition.StartAt).toBe('0-step');
    // An empty lattice only finalizes.
    expect(compileLattice(graphFromParents([]), { stepHandlerArn }).definition.StartAt).toBe('finalize');
  });

  it('records the graph hash in the Comment', () => {
    const graph = graphFromParents(SHAPES['diamond'] as number[][]);
    const { definition, graphHash: hash } = compileLattice(graph, { stepHandlerArn });
    expect(hash).toBe(graphHash(graph));
    expect(definition.Comment).toContain(`valence graph sha256:${hash}`);
    expect(readGraphHash(definition)).toBe(hash);
    expect(readGraphHash(JSON.stringify(definition))).toBe(hash);
    expect(readGraphHash({ Comment: 'something else' })).toBeUndefined();
  });

  it('compiles a lattice from its template, a graph, or the graph JSON identically', () => {
    const research = lattice({ name: 'three-ways', registry }, (x: number) => electron(function id(v: number) {
      return v;
    })(x));
    const fromLattice = compileLattice(research, { stepHandlerArn });
    const fromGraph = compileLattice(research.template(), { stepHandlerArn });
    const fromJson = compileLattice(JSON.parse(JSON.stringify(research.template())) as TransportGraphJSON, { stepHandlerArn });
    expect(fromGraph.definition).toEqual(fromLattice.definition);
    expect(fromJson.definition).toEqual(fromLattice.definition);
  });

  it('reports stats', () => {
    const { definition, stats } = compileLattice(graphFromParents(SHAPES['diamond'] as number[][]), { stepHandlerArn });
    expect(stats.definitionBytes).toBe(Buffer.byteLength(JSON.stringify(definition)));
    // 4 tasks + 1 parallel + finalize, choice, fail, succeed
    expect(stats.stateCount).toBe(9);
    expect(stats.criticalPathLength).toBe(3);
    expect(stats.nodeCount).toBe(4);
    expect(stats.parallelCount).toBe(1);
    // execution 2 + 4 tasks × 5 + parallel 4 + finalize 5 + choice 2 + succeed 2
    expect(stats.estimatedHistoryEvents).toBe(2 + 20 + 4 + 5 + 2 + 2);
  });

  it('refuses a definition over a lowered byte limit, naming it, and splits it unless told not to', () => {
    // The 1 MB limit itself, on a 2,500-node chain, is checked in partition.test.ts (large graphs).
    const graph = graphFromParents(SHAPES['diamond'] as number[][]);
    const { stats } = compileLattice(graph, { stepHandlerArn });
    const bytes = stats.definitionBytes;
    expect(compileLattice(graph, { stepHandlerArn, partition: false, limits: { maxDefinitionBytes: bytes } }).stats.partitions).toBeUndefined();
    let error: unknown;
    try {
      compileLattice(graph, { stepHandlerArn, partition: false, limits: { maxDefinitionBytes: bytes - 1 } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe(ValidationCode.LIMIT_EXCEEDED);
    expect((error as ValidationError).message).toContain(`${bytes.toLocaleString('en-US')} bytes, over the ${(bytes - 1).toLocaleString('en-US')}-byte limit (4 nodes)`);
    expect((error as ValidationError).message).toContain(graph.lattice.name);
    // With partitioning on (the default), a lattice whose nested form is over a limit is split instead.
    const split = compileLattice(graph, { stepHandlerArn, limits: { maxDefinitionBytes: bytes - 1 } });
    expect(split.stats.partitions).toMatchObject({ count: 1, size: 1000 });
    expect(split.definition.StartAt).toBe('plan');
  });

  it('refuses an execution over the history limit, naming it', () => {
    const fan = [[], ...Array.from({ length: 200 }, () => [0])];
    const graph = graphFromParents(fan);
    const { stats } = compileLattice(graph, { stepHandlerArn });
    expect(() => compileLattice(graph, { stepHandlerArn, partition: false, limits: { maxHistoryEvents: stats.estimatedHistoryEvents } })).not.toThrow();
    expect(() => compileLattice(graph, { stepHandlerArn, partition: false, limits: { maxHistoryEvents: stats.estimatedHistoryEvents - 1 } })).toThrow(
      expect.objectContaining({ code: ValidationCode.LIMIT_EXCEEDED, message: expect.stringContaining(`${stats.estimatedHistoryEvents.toLocaleString('en-US')} history events`) as unknown }) as unknown,
    );
    // The AWS limits themselves cannot be raised by the option: see partition.test.ts (a 2,500-node graph).
  });

  it('validates its options', () => {
    const graph = graphFromParents(SHAPES['chain'] as number[][]);
    expect(() => compileLattice(graph, { stepHandlerArn: '' })).toThrow(expect.objectContaining({ code: ValidationCode.INVALID_OPTION }));
    expect(() => compileLattice(graph, { stepHandlerArn, heartbeatSeconds: -1 })).toThrow(expect.objectContaining({ code: ValidationCode.INVALID_OPTION }));
    expect(compileLattice(graph, { stepHandlerArn, executionTimeoutSeconds: 3600 }).definition.TimeoutSeconds).toBe(3600);
  });
});

describe('compileGraphRunner', () => {
  it('plans, maps await + run callback tasks over the nodes, then finalizes', () => {
    const { definition, stats } = compileGraphRunner({ stepHandlerArn });
    const states = definition.States as Record<string, State>;
    expect(definition.StartAt).toBe('plan');
    // plan chooses the form per dispatch: past 1,500 nodes, partitions of 1,000 (a Distributed Map), else the inline Map.
    expect(states['plan']?.['Parameters']).toEqual({ FunctionName: stepHandlerArn, Payload: { action: 'plan', 'dispatchId.$': '$.dispatchId', splitAbove: 1500, partitionSize: 1000 } });
    expect(states['plan']?.['Next']).toBe('form');
    expect(states['form']).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.plan.split', BooleanEquals: true, Next: 'partitions' }], Default: 'nodes' });
    expect((states['partitions']?.['ItemProcessor'] as unknown as { ProcessorConfig: { Mode: string } }).ProcessorConfig.Mode).toBe('DISTRIBUTED');
    expect(states['partitions']?.['Next']).toBe('finalize');
    const processor = states['nodes']?.['ItemProcessor'] as AslDefinition;
    expect(processor.StartAt).toBe('await-node');
    expect(processor.States['await-node']?.['Parameters']).toEqual({
      FunctionName: stepHandlerArn,
      Payload: { action: 'await', 'dispatchId.$': '$.dispatchId', 'nodeId.$': '$.nodeId', skippable: true, run: true, 'taskToken.$': '$$.Task.Token' },
    });
    // A node found ended skips its run: the wait's NodeEnded failure ends the iteration. A
    // node handed back (RunNode) runs in the run state; a released wait ends the iteration.
    expect(processor.States['await-node']?.['Catch']).toEqual([
      { ErrorEquals: ['Valence.NodeEnded'], ResultPath: null, Next: 'node-ended' },
      { ErrorEquals: ['Valence.RunNode'], ResultPath: null, Next: 'run-node' },
    ]);
    expect(processor.States['await-node']?.['End']).toBe(true);
    expect(processor.States['await-node']?.['HeartbeatSeconds']).toBeUndefined();
    expect(processor.States['node-ended']).toEqual({ Type: 'Succeed' });
    expect(processor.States['run-node']?.['Resource']).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(processor.States['run-node']?.['Parameters']).toEqual({
      FunctionName: stepHandlerArn,
      Payload: { action: 'run', 'dispatchId.$': '$.dispatchId', 'nodeId.$': '$.nodeId', 'taskToken.$': '$$.Task.Token' },
    });
    expect(processor.States['run-node']?.['HeartbeatSeconds']).toBe(600);
    expect(states['finalize']?.['Parameters']).toEqual({ FunctionName: stepHandlerArn, Payload: { action: 'finalize', 'dispatchId.$': '$.dispatchId' } });
    expect(stats.historyEventsPerNode).toBe(8);
    expect(graphRunnerHistoryEvents(10)).toBe(stats.baseHistoryEvents + 80);
    // Without partitions it is the plain inline runner.
    const inline = compileGraphRunner({ stepHandlerArn, partition: false }).definition.States as Record<string, State>;
    expect(inline['plan']?.['Next']).toBe('nodes');
    expect(inline['form']).toBeUndefined();
    expect(compileGraphRunner({ stepHandlerArn, partition: { above: 10, chunkSize: 5 } }).definition.States['plan']?.['Parameters']).toMatchObject({ Payload: { splitAbove: 10, partitionSize: 5 } });
  });
});

describe('toDot', () => {
  it('draws nodes with names and executors, and labelled edges', () => {
    const inner = lattice({ name: 'dot-inner', registry }, (_input: string) => 1);
    const load = electron(function load() {
      return 'a "quoted" value';
    });
    const fit = electron({ name: 'fit', executor: batch }, (_a: unknown, _b: unknown) => 1);
    const graph = lattice({ name: 'dot-graph', registry }, () => {
      const data = load();
      return fit(data, [sublattice(inner)(data)]);
    }).template();
    const dot = toDot(graph);
    expect(dot.startsWith('digraph "dot-graph" {')).toBe(true);
    expect(dot).toContain('n0 [label="0: load\\n(lambda)"];');
    expect(dot).toContain('n1 [label="1: dot-inner\\n(sublattice dot-inner)", shape=box3d, style=solid];');
    expect(dot).toContain('n2 [label="2: fit\\n(batch)"];');
    expect(dot).toContain('n0 -> n1 [label="0"];');
    expect(dot).toContain('n0 -> n2 [label="0"];');
    expect(dot).toContain('n1 -> n2 [label="1[0]"];');
    expect(dot.trimEnd().endsWith('}')).toBe(true);
    expect(toDot(graph.toJSON())).toBe(dot);
  });
});
