// Lattices past one state machine's limits are split into partitions that run as child
// executions of a Distributed Map: the compiled statistics show every execution stays within
// Step Functions' limits, however large the lattice.
import { describe, expect, it } from 'vitest';
import { MAX_DEFINITION_BYTES, MAX_HISTORY_EVENTS, compileLattice, schedule } from '../../../sdk/compiler/index.ts';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import { graphFromParents } from './graphs.ts';
import { validateAsl } from './harness.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:123456789012:function:valence-step';

describe('splitting large lattices', () => {
  it('keeps a 100,000-node lattice within the 1 MB definition and 25,000-event history limits', () => {
    // A wide, layered DAG: 100 layers of 1,000 nodes, each depending on two nodes of the layer before.
    const parents = Array.from({ length: 100_000 }, (_, i) => {
      const layer = Math.floor(i / 1_000);
      const k = i % 1_000;
      return layer === 0 ? [] : [(layer - 1) * 1_000 + k, (layer - 1) * 1_000 + ((k + 1) % 1_000)];
    });
    const graph = graphFromParents(parents);
    const { definition, stats } = compileLattice(graph, { stepHandlerArn });
    expect(stats.nodeCount).toBe(100_000);
    expect(stats.definitionBytes).toBeLessThan(MAX_DEFINITION_BYTES);
    expect(stats.partitions).toMatchObject({ count: 100, size: 1_000 });
    expect(stats.partitions!.historyEventsPerPartition).toBeLessThan(MAX_HISTORY_EVENTS);
    expect(stats.partitions!.parentHistoryEvents).toBeLessThan(MAX_HISTORY_EVENTS);
    expect(stats.estimatedHistoryEvents).toBeLessThan(MAX_HISTORY_EVENTS);
    expect(stats.criticalPathLength).toBe(100);
    expect(definition.Comment).toMatch(/valence graph sha256:[0-9a-f]{64}/);
    const map = definition.States['partitions'] as { ItemProcessor: { ProcessorConfig: { Mode: string } } };
    expect(map.ItemProcessor.ProcessorConfig.Mode).toBe('DISTRIBUTED');
  }, 120_000);

  it('splits a lattice whose nested form would pass 1 MB, and the split definition is valid ASL', () => {
    const chain = Array.from({ length: 2_500 }, (_, i) => (i === 0 ? [] : [i - 1]));
    const compiled = compileLattice(graphFromParents(chain), { stepHandlerArn });
    expect(compiled.stats.partitions).toMatchObject({ count: 3, size: 1_000 });
    expect(compiled.stats.definitionBytes).toBeLessThan(10_000);
    expect(validateAsl(compiled.definition)).toEqual({ isValid: true, errors: [] });
  });

  it('leaves small lattices in their nested form, and splits them when asked', () => {
    const fan = [[], ...Array.from({ length: 20 }, () => [0])];
    expect(compileLattice(graphFromParents(fan), { stepHandlerArn }).stats.partitions).toBeUndefined();
    const split = compileLattice(graphFromParents(fan), { stepHandlerArn, partition: { above: 10, chunkSize: 8 } });
    expect(split.stats.partitions).toMatchObject({ count: 3, size: 8 });
  });

  // The next three were in compile.test.ts and schedule.test.ts; their 2,000- and 2,500-node
  // graphs are this file's kind (and made every mutant of the mutation run cost seconds).
  it('refuses a definition over 1 MB, naming the limit', () => {
    const chain = Array.from({ length: 2500 }, (_, i) => (i === 0 ? [] : [i - 1]));
    const graph = graphFromParents(chain);
    let error: unknown;
    try {
      compileLattice(graph, { stepHandlerArn, partition: false });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe(ValidationCode.LIMIT_EXCEEDED);
    expect((error as ValidationError).message).toContain('1 MB (1,048,576-byte) Step Functions definition limit');
    expect((error as ValidationError).message).toContain(graph.lattice.name);
    // A smaller lattice of the same kind fits.
    const fits = compileLattice(graphFromParents(chain.slice(0, 500)), { stepHandlerArn });
    expect(fits.stats.definitionBytes).toBeLessThan(MAX_DEFINITION_BYTES);
  });

  it('does not let the limits option raise the AWS limits: a graph over them still fails', () => {
    const over = graphFromParents(Array.from({ length: 2500 }, (_, i) => (i === 0 ? [] : [i - 1])));
    expect(() => compileLattice(over, { stepHandlerArn, partition: false, limits: { maxDefinitionBytes: 10 ** 9 } })).toThrow(
      expect.objectContaining({ code: ValidationCode.LIMIT_EXCEEDED, message: expect.stringContaining('1,048,576-byte') as unknown }) as unknown,
    );
  });

  // A hang catcher, not a benchmark: the scheduler is linear, so a quadratic (or looping)
  // regression takes minutes here; a generous ceiling holds under load and under Stryker's
  // instrumented code (bench/results/compile-scale.json measures the real time).
  it('schedules a 2,000-node fan-out and a 2,000-node chain without hanging', () => {
    const dagOf = (parents: readonly (readonly number[])[]) => ({ size: parents.length, parents: (id: number) => parents[id] ?? [] });
    const started = performance.now();
    const fan = [[], ...Array.from({ length: 2000 }, () => [0]), Array.from({ length: 2000 }, (_, i) => i + 1)];
    expect(schedule(dagOf(fan)).awaits.size).toBe(0);
    const chain = Array.from({ length: 2000 }, (_, i) => (i === 0 ? [] : [i - 1]));
    expect(schedule(dagOf(chain)).awaits.size).toBe(0);
    expect(performance.now() - started).toBeLessThan(120_000);
  });
});
