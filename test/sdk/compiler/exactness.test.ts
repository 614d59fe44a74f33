// Exactness: run compiled definitions in the aws-local-stepfunctions interpreter with stub step
// handlers that sleep for different lengths, and check that every node starts right after its
// last parent ends — never before, and never later than a small tolerance.
import { describe, expect, it } from 'vitest';
import { BatchExecutor, compileGraphRunner, compileLattice } from '../../../sdk/index.ts';
import type { AslDefinition, TransportGraph } from '../../../sdk/index.ts';
import { SHAPES, graphFromParents, randomParents, seeded } from './graphs.ts';
import { inexactNodes, runWithStubs, validateAsl } from './harness.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';
// Starting late is measured against a tolerance that absorbs timer and CPU noise when the whole
// suite runs on two cores (a node typically starts within 1-5 ms of its last parent's end);
// durations differ by more than the tolerance, so a barrier that waits for a non-parent shows.
const DURATIONS = [20, 150, 300];
const TOLERANCE_MS = 100;
const batch = new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 });

// asl-validator costs ≈300 ms a call: the named shapes and a few random DAGs are validated once
// (first test below), the random DAGs this file runs as well.
async function expectExact(graph: TransportGraph, durationOf: (id: number) => number, options: { validate?: boolean } = {}) {
  const compiled = compileLattice(graph, { stepHandlerArn }).definition;
  if (options.validate === true) expect(validateAsl(compiled).errors).toEqual([]);
  const run = await runWithStubs(compiled, { nodeCount: graph.nodes.length, parents: (id) => graph.parents(id), durationMs: durationOf });
  expect([...run.runs.keys()].sort((a, b) => a - b)).toEqual(graph.nodes.map((node) => node.id));
  expect([...run.runs.values()].every((count) => count === 1)).toBe(true);
  expect(inexactNodes(run.timings, (id) => graph.parents(id), TOLERANCE_MS)).toEqual([]);
  return run;
}

/** A level-by-level schedule (each level waits for the whole previous level): deliberately inexact. */
function levelBarrierDefinition(graph: TransportGraph): AslDefinition {
  const level: number[] = [];
  for (const node of graph.nodes) level[node.id] = Math.max(0, ...graph.parents(node.id).map((parent) => (level[parent] as number) + 1));
  const levels = Math.max(...level) + 1;
  const states: AslDefinition['States'] = {};
  for (let depth = 0; depth < levels; depth++) {
    const members = graph.nodes.filter((node) => level[node.id] === depth);
    states[`level-${depth}`] = {
      Type: 'Parallel',
      Branches: members.map((node) => ({
        StartAt: `${node.id}-n`,
        States: {
          [`${node.id}-n`]: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke',
            Parameters: { FunctionName: stepHandlerArn, Payload: { action: 'run', 'dispatchId.$': '$$.Execution.Name', nodeId: node.id } },
            End: true,
          },
        },
      })),
      ResultPath: null,
      ...(depth + 1 < levels ? { Next: `level-${depth + 1}` } : { End: true }),
    };
  }
  return { StartAt: 'level-0', States: states };
}

// Moved here from compile.test.ts, beside the other asl-validator checks: at ≈10 s it made every
// compiler mutant of the mutation run (bench/mutation.ts) cost that much.
describe('valid ASL', () => {
  it('produces definitions that asl-validator accepts, for every shape and random DAGs', () => {
    const random = seeded(11);
    const graphs = [
      ...Object.values(SHAPES).map((parents) => graphFromParents(parents)),
      ...Array.from({ length: 3 }, () => graphFromParents(randomParents(30, 0.2, random), (id) => (id % 3 === 0 ? batch : undefined))),
      graphFromParents([]),
    ];
    for (const graph of graphs) {
      const { definition } = compileLattice(graph, { stepHandlerArn });
      const verdict = validateAsl(definition);
      expect(verdict.errors, JSON.stringify(definition)).toEqual([]);
      expect(verdict.isValid).toBe(true);
    }
  });

  it('produces a graph runner that asl-validator accepts, split-capable or inline', () => {
    expect(validateAsl(compileGraphRunner({ stepHandlerArn }).definition).errors).toEqual([]);
    expect(validateAsl(compileGraphRunner({ stepHandlerArn, partition: false }).definition).errors).toEqual([]);
  });
});

describe('exact DAG semantics in an ASL interpreter', () => {
  it.each(['chain', 'diamond', 'fanOutIn', 'bipartite', 'nested', 'transitive'])('%s: series-parallel, no awaits', async (shape) => {
    const graph = graphFromParents(SHAPES[shape] as number[][]);
    const run = await expectExact(graph, (id) => DURATIONS[id % 3] as number);
    expect(run.awaits).toEqual([]);
  });

  it('N shape: node d starts when its slow parent b ends, node c does not wait for b', async () => {
    // a→c, a→d, b→d; b is the slow one.
    const graph = graphFromParents(SHAPES['nShape'] as number[][]);
    const durations = [20, 300, 20, 20];
    const run = await expectExact(graph, (id) => durations[id] as number);
    expect(run.awaits.length).toBe(1);
    const c = run.timings.get(2);
    const b = run.timings.get(1);
    expect(c && b && c.start < b.end - 200).toBe(true);
  });

  it('N shape the other way round: the slow parent is a', async () => {
    const graph = graphFromParents(SHAPES['nShape'] as number[][]);
    const durations = [300, 20, 20, 20];
    await expectExact(graph, (id) => durations[id] as number);
  });

  it('double N with callback (Batch) nodes', async () => {
    const graph = graphFromParents(SHAPES['doubleN'] as number[][], (id) => (id % 2 === 0 ? batch : undefined));
    await expectExact(graph, (id) => DURATIONS[(id * 7) % 3] as number);
  });

  it('random DAGs', async () => {
    const random = seeded(2024);
    for (let trial = 0; trial < 4; trial++) {
      const graph = graphFromParents(randomParents(8 + Math.floor(random() * 5), 0.25, random), (id) => (id % 4 === 3 ? batch : undefined));
      const durations = graph.nodes.map(() => DURATIONS[Math.floor(random() * 3)] as number);
      await expectExact(graph, (id) => durations[id] as number, { validate: true });
    }
  });

  it('the check catches a level-by-level schedule (control)', async () => {
    // Level 1 holds a fast node (1) and a slow node (2); node 3 depends only on the fast one.
    const graph = graphFromParents([[], [0], [0], [1]]);
    const durations = [20, 20, 400, 20];
    const run = await runWithStubs(levelBarrierDefinition(graph), { nodeCount: 4, parents: (id) => graph.parents(id), durationMs: (id) => durations[id] as number });
    const problems = inexactNodes(run.timings, (id) => graph.parents(id), TOLERANCE_MS);
    expect(problems.map((problem) => problem.nodeId)).toEqual([3]);
    // The compiled definition of the same graph is exact.
    await expectExact(graph, (id) => durations[id] as number);
  });

  it('the graph runner (sublattices) is exact too', async () => {
    const graph = graphFromParents(SHAPES['doubleN'] as number[][]);
    const { definition } = compileGraphRunner({ stepHandlerArn });
    const durations = [300, 20, 150, 20, 20, 150, 20];
    const run = await runWithStubs(
      definition,
      { nodeCount: graph.nodes.length, parents: (id) => graph.parents(id), durationMs: (id) => durations[id] as number },
      { dispatchId: 'dispatch-under-test' },
    );
    expect(run.awaits.map((entry) => entry.nodeId).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(run.awaits.every((entry) => entry.waitFor === undefined)).toBe(true);
    expect(inexactNodes(run.timings, (id) => graph.parents(id), TOLERANCE_MS)).toEqual([]);
    expect(run.output).toMatchObject({ finalized: { status: 'COMPLETED' } });
  });
});
