import { fileURLToPath } from 'node:url';
import { GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as workflows from '../../examples/index.ts';
import { LEARNING_RATES, bellCircuit, featurize, features, generateDataset, research, sweep } from '../../examples/research.ts';
import { LatticeShape, deployShape } from '../../sdk/model/shape.ts';
import type { Features, Model } from '../../examples/research.ts';
import { Lattice, compileGraphRunner, compileLattice } from '../../sdk/index.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { inexactNodes, runWithStubs, validateAsl } from '../sdk/compiler/harness.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';

const EXAMPLES = fileURLToPath(new URL('../../examples/index.ts', import.meta.url));

describe('examples/research', () => {
  it('is exported by the default workflows module', () => {
    const lattices = Object.values(workflows).filter((value) => value instanceof Lattice);
    expect(lattices.map((lattice) => lattice.name).sort()).toEqual(['research', 'research-features', 'research-sweep']);
  });

  it('has a fan-out as wide as an argument: no SHARDS constant, the featurize sublattice is argument-shaped', () => {
    expect(deployShape(research)).toBe(LatticeShape.Static);
    expect(deployShape(features)).toBe(LatticeShape.Argument);
    const samples = generateDataset.fn(8, 1);
    for (const shards of [2, 5]) {
      const graph = features.build(samples, shards);
      const byName = (name: string) => graph.nodes.filter((node) => node.name === name);
      expect(byName('featurize')).toHaveLength(shards);
      const [join] = byName('combineFeatures');
      expect(graph.parents(join?.id as number)).toEqual(byName('featurize').map((node) => node.id));
    }
  });

  it('builds a pipeline with two sublattices and three executors', () => {
    const graph = research.template();
    expect(graph.nodes.filter((node) => node.kind === 'sublattice').map((node) => node.sublattice)).toEqual(['research-features', 'research-sweep']);
    expect(new Set(graph.nodes.map((node) => node.executor.kind))).toEqual(new Set(['lambda', 'batch', 'braket']));
    expect(graph.nodes[0]?.args).toEqual([{ $param: 0 }, { $param: 1 }]);
    expect(graph.nodes[1]?.args).toEqual([{ $node: 0 }, { $param: 2 }]);
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


  it('has electrons that compute on their own', () => {
    const samples = generateDataset.fn(10, 1);
    expect(samples).toHaveLength(10);
    expect(generateDataset.fn(10, 1)).toEqual(samples);
    const features: Features = featurize.fn(samples);
    expect(features.n).toBe(10);
    expect(bellCircuit.fn()).toBe('OPENQASM 3;\nqubit[2] q;\nbit[2] c;\nh q[0];\ncnot q[0], q[1];\nc = measure q;');
  });
});

describe('examples/research on the local cloud', () => {
  let h: RuntimeHarness;
  beforeAll(async () => {
    h = await startHarness({}, EXAMPLES);
  }, 60_000);
  afterAll(async () => h?.close());

  it('computes a real result on Lambda, Batch and the local Braket simulator', async () => {
    const id = (await h.client.dispatch(research)(400, 7, 4)).id;
    const result = await h.client.getResult<{ model: Model; report: string }>(id, { wait: true, timeoutMs: 150_000 });
    expect(result.status, JSON.stringify(result.error)).toBe('COMPLETED');
    const { model, report } = result.result!;
    expect(model.slope).toBeCloseTo(3, 1);
    expect(model.intercept).toBeCloseTo(1, 1);
    expect(LEARNING_RATES).toContain(model.learningRate);
    const executors = new Set(result.nodes.map((n) => n.executor));
    for (const kind of ['lambda', 'batch', 'braket']) expect(executors).toContain(kind);
    // The fan-out ran 4 wide, as the argument said: 4 featurize nodes in the features sublattice's child dispatch.
    const featuresNode = result.nodes.find((n) => n.name === 'research-features')!;
    const child = await h.client.getResult(featuresNode.childDispatchId!);
    expect(child.nodes.filter((n) => n.name === 'featurize').map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);

    // The counts in the report are the simulator's: read the quantum task's results.json from the local S3.
    const bell = result.nodes.find((n) => n.name === 'bellCircuit')!;
    const task = await h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: bell.jobHandle! }));
    expect(task.status).toBe('COMPLETED');
    const object = await h.cloud.clients.s3.send(new GetObjectCommand({ Bucket: task.outputS3Bucket!, Key: `${task.outputS3Directory!}/results.json` }));
    const { measurements } = JSON.parse(await object.Body!.transformToString()) as { measurements: number[][] };
    expect(measurements).toHaveLength(100);
    const correlated = measurements.filter((row) => row.join('') === '00' || row.join('') === '11').length;
    // A Bell pair is only ever 00 or 11, but which one is random: both appear in 100 shots.
    expect(new Set(measurements.map((row) => row.join('')))).toEqual(new Set(['00', '11']));
    const pct = ((correlated / measurements.length) * 100).toFixed(0);
    expect(report).toMatch(new RegExp(`^fit y = 3\\.\\d\\dx \\+ 1\\.\\d\\d on 400 samples \\(lr [\\d.]+\\); Bell pair correlated in ${pct}% of ${measurements.length} shots$`));
  }, 180_000);
});
