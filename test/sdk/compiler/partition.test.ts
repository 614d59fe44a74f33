// Lattices past one state machine's limits are split into partitions that run as child
// executions of a Distributed Map: the compiled statistics show every execution stays within
// Step Functions' limits, however large the lattice.
import { describe, expect, it } from 'vitest';
import { MAX_DEFINITION_BYTES, MAX_HISTORY_EVENTS, compileLattice } from '../../../sdk/compiler/index.ts';
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
});
