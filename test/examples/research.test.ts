import { describe, expect, it } from 'vitest';
import * as workflows from '../../examples/index.ts';
import { LEARNING_RATES, SHARDS, bellCircuit, featurize, generateDataset, research, sweep } from '../../examples/research.ts';
import type { Features, Model } from '../../examples/research.ts';
import { Lattice, compileGraphRunner, compileLattice } from '../../sdk/index.ts';
import type { GraphCallable, TransportGraph } from '../../sdk/index.ts';
import { resolveArgTemplate } from '../../sdk/model/index.ts';
import { inexactNodes, runWithStubs, validateAsl } from '../sdk/compiler/harness.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';

/** Stand-in for a Braket device: exact counts of the Bell circuit the example builds. */
function simulateBell(program: unknown): Record<string, number> {
  expect(program).toBe(bellCircuit.fn());
  return { '00': 50, '11': 50 };
}

/**
 * Runs a graph in-process in node order (a stand-in for the runtime): sublattice nodes build
 * and run their lattice; Braket nodes output measurement counts.
 */
async function evaluate(graph: TransportGraph<GraphCallable>, params: readonly unknown[]): Promise<unknown> {
  const outputs = new Map<number, unknown>();
  const lookup = { node: (id: number) => outputs.get(id), param: (index: number) => params[index] };
  for (const node of graph.nodes) {
    const args = node.args.map((template) => resolveArgTemplate(template, lookup));
    const callable = graph.callable(node.id);
    if (callable === undefined) throw new Error(`no callable for node ${node.id}`);
    if (callable instanceof Lattice) outputs.set(node.id, await evaluate(callable.build(...args), args));
    else if (node.executor.kind === 'braket') outputs.set(node.id, simulateBell(await callable.fn(...args)));
    else outputs.set(node.id, await callable.fn(...args));
  }
  return resolveArgTemplate(graph.output, lookup);
}

describe('examples/research', () => {
  it('is exported by the default workflows module', () => {
    const lattices = Object.values(workflows).filter((value) => value instanceof Lattice);
    expect(lattices.map((lattice) => lattice.name).sort()).toEqual(['research', 'research-sweep']);
  });

  it('builds a pipeline with a fan-out, a join, a sublattice and three executors', () => {
    const graph = research.template();
    const byName = (name: string) => graph.nodes.filter((node) => node.name === name);
    expect(byName('featurize')).toHaveLength(SHARDS);
    const [join] = byName('combineFeatures');
    expect(graph.parents(join?.id as number)).toEqual(byName('featurize').map((node) => node.id));
    const sub = graph.nodes.find((node) => node.kind === 'sublattice');
    expect(sub).toMatchObject({ sublattice: 'research-sweep' });
    expect(new Set(graph.nodes.map((node) => node.executor.kind))).toEqual(new Set(['lambda', 'batch', 'braket']));
    expect(graph.nodes[0]?.args).toEqual([{ $param: 0 }, { $param: 1 }]);
    expect(sweep.template().nodes.filter((node) => node.name === 'trialFit')).toHaveLength(LEARNING_RATES.length);
  });

  it('compiles both lattices and the graph runner to valid state machines', () => {
    for (const lattice of [research, sweep]) {
      const { definition, stats } = compileLattice(lattice, { stepHandlerArn });
      expect(validateAsl(definition).errors).toEqual([]);
      expect(stats.nodeCount).toBe(lattice.template().nodes.length);
    }
    expect(validateAsl(compileGraphRunner({ stepHandlerArn }).definition).errors).toEqual([]);
  });

  it('runs exactly in the interpreter', async () => {
    const graph = research.template();
    const { definition } = compileLattice(graph, { stepHandlerArn });
    const run = await runWithStubs(definition, { nodeCount: graph.nodes.length, parents: (id) => graph.parents(id), durationMs: (id) => [10, 150, 300][id % 3] as number });
    expect(run.runs.size).toBe(graph.nodes.length);
    expect(inexactNodes(run.timings, (id) => graph.parents(id), 100)).toEqual([]);
  });

  it('computes a real result when its electrons run', async () => {
    const result = (await evaluate(research.template(), [400, 7])) as { model: Model; report: string };
    expect(result.model.slope).toBeCloseTo(3, 1);
    expect(result.model.intercept).toBeCloseTo(1, 1);
    expect(LEARNING_RATES).toContain(result.model.learningRate);
    expect(result.report).toMatch(/^fit y = 3\.\d\dx \+ 1\.\d\d on 400 samples \(lr [\d.]+\); Bell pair correlated in 100% of 100 shots$/);
  });

  it('has electrons that compute on their own', () => {
    const samples = generateDataset.fn(10, 1);
    expect(samples).toHaveLength(10);
    expect(generateDataset.fn(10, 1)).toEqual(samples);
    const features: Features = featurize.fn(samples);
    expect(features.n).toBe(10);
    expect(bellCircuit.fn()).toBe('OPENQASM 3;\nqubit[2] q;\nbit[2] c;\nh q[0];\ncnot q[0], q[1];\nc = measure q;');
  });
});
