// compileLattice reports which nodes wait in an `await` state: what a dispatch records so that
// parents release them. The client recompiles the deployed form from the definition's Comment.
import { describe, expect, it } from 'vitest';
import { compileLattice, readPartitionOption } from '../../../sdk/compiler/index.ts';
import { graphFromParents } from './graphs.ts';

const stepHandlerArn = 'arn:aws:lambda:us-east-1:000000000000:function:step';

/** The node ids of every `await` state in a definition, found by walking it. */
function awaitStatesOf(definition: unknown): number[] {
  const found: number[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    const payload = (record['Parameters'] as { Payload?: { action?: unknown; nodeId?: unknown } } | undefined)?.Payload;
    if (payload?.action === 'await' && typeof payload.nodeId === 'number') found.push(payload.nodeId);
    Object.values(record).forEach(visit);
  };
  visit(definition);
  return found.sort((a, b) => a - b);
}

describe('awaitingNodes', () => {
  it('names exactly the nodes whose nested form has an await state', () => {
    // GIVEN the N shape twice over (0 → 2, 0 → 3, 1 → 3), which no Parallel nesting orders exactly
    const graph = graphFromParents([[], [], [0], [0, 1], [2], [2, 3]]);
    // WHEN
    const compiled = compileLattice(graph, { stepHandlerArn, partition: false });
    // THEN the set is the await states of the definition, and not empty (the check can fail)
    expect([...compiled.awaitingNodes].sort((a, b) => a - b)).toEqual(awaitStatesOf(compiled.definition));
    expect(compiled.awaitingNodes.size).toBeGreaterThan(0);
    expect(compiled.awaitingNodes.size).toBe(compiled.stats.awaitCount);
  });

  it('names no node of a chain', () => {
    const compiled = compileLattice(graphFromParents([[], [0], [1], [2]]), { stepHandlerArn });
    expect(compiled.awaitingNodes.size).toBe(0);
  });

  it('names every node of a split lattice', () => {
    const parents = Array.from({ length: 30 }, (_, i) => (i === 0 ? [] : [i - 1]));
    const compiled = compileLattice(graphFromParents(parents), { stepHandlerArn, partition: { above: 10, chunkSize: 8 } });
    expect(compiled.stats.partitions).toBeDefined();
    expect([...compiled.awaitingNodes]).toEqual(parents.map((_, i) => i));
  });
});

describe('readPartitionOption', () => {
  it('recompiles a deployed definition to the same form, split or nested', () => {
    const parents = Array.from({ length: 30 }, (_, i) => (i === 0 ? [] : [0]));
    const graph = graphFromParents(parents);
    for (const partition of [false, { above: 10, chunkSize: 8 }, { above: 10, chunkSize: 25 }] as const) {
      // GIVEN a definition deployed with some partition option
      const deployed = compileLattice(graph, { stepHandlerArn, partition });
      // WHEN the client recompiles from the deployed definition's text alone
      const again = compileLattice(graph, { stepHandlerArn, partition: readPartitionOption(JSON.stringify(deployed.definition)) });
      // THEN it gets the same form and the same awaiting nodes
      expect(again.definition).toEqual(deployed.definition);
      expect(again.awaitingNodes).toEqual(deployed.awaitingNodes);
    }
  });
});
