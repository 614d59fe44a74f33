import { describe, expect, it } from 'vitest';
import { schedule } from '../../../sdk/compiler/index.ts';
import type { Block } from '../../../sdk/compiler/index.ts';
import { SHAPES, randomParents, seeded } from './graphs.ts';

const dagOf = (parents: readonly (readonly number[])[]) => ({ size: parents.length, parents: (id: number) => parents[id] ?? [] });

/** For every node: the nodes the block structure makes it wait for. */
function structuralPredecessors(root: Block | undefined, size: number): Map<number, Set<number>> {
  const result = new Map<number, Set<number>>();
  const walk = (block: Block, before: Set<number>): number[] => {
    if (block.type === 'task') {
      result.set(block.node, new Set(before));
      return [block.node];
    }
    if (block.type === 'parallel') return block.branches.flatMap((branch) => walk(branch, before));
    const running = new Set(before);
    const nodes: number[] = [];
    for (const item of block.items) {
      const inner = walk(item, running);
      inner.forEach((node) => running.add(node));
      nodes.push(...inner);
    }
    return nodes;
  };
  if (root !== undefined) walk(root, new Set());
  expect(result.size).toBe(size);
  return result;
}

function ancestors(parents: readonly (readonly number[])[]): Set<number>[] {
  const result: Set<number>[] = [];
  parents.forEach((list, id) => {
    const set = new Set<number>();
    for (const parent of list) {
      set.add(parent);
      result[parent]?.forEach((ancestor) => set.add(ancestor));
    }
    result[id] = set;
  });
  return result;
}

/** The exactness invariant, checked independently of the scheduler's own check. */
function expectExact(parents: readonly (readonly number[])[]) {
  const plan = schedule(dagOf(parents));
  const before = structuralPredecessors(plan.root, parents.length);
  const anc = ancestors(parents);
  parents.forEach((list, id) => {
    const structural = before.get(id) as Set<number>;
    for (const node of structural) expect(anc[id]?.has(node), `node ${id} would wait for non-ancestor ${node}`).toBe(true);
    const awaited = plan.awaits.get(id) ?? [];
    for (const parent of list) expect(structural.has(parent) || awaited.includes(parent), `parent ${parent} of ${id} is neither ordered nor awaited`).toBe(true);
    for (const parent of awaited) expect(list).toContain(parent);
  });
  return plan;
}

describe('schedule', () => {
  it.each(['single', 'chain', 'diamond', 'fanOutIn', 'independent', 'bipartite', 'nested', 'transitive'])(
    'lays out the series-parallel shape %s with no awaits',
    (shape) => {
      const plan = expectExact(SHAPES[shape] as number[][]);
      expect(plan.awaits.size).toBe(0);
    },
  );

  it('needs exactly one await for the N shape', () => {
    const plan = expectExact(SHAPES['nShape'] as number[][]);
    expect([...plan.awaits.values()].flat()).toHaveLength(1);
  });

  it('nests parallels inside series for the diamond', () => {
    expect(schedule(dagOf(SHAPES['diamond'] as number[][])).root).toEqual({
      type: 'series',
      items: [
        { type: 'task', node: 0 },
        { type: 'parallel', branches: [{ type: 'task', node: 1 }, { type: 'task', node: 2 }] },
        { type: 'task', node: 3 },
      ],
    });
  });

  it('reports the critical path length', () => {
    expect(schedule(dagOf(SHAPES['chain'] as number[][])).criticalPathLength).toBe(4);
    expect(schedule(dagOf(SHAPES['fanOutIn'] as number[][])).criticalPathLength).toBe(3);
    expect(schedule(dagOf([])).criticalPathLength).toBe(0);
    expect(schedule(dagOf([])).root).toBeUndefined();
  });

  it('is exact on 300 random DAGs', () => {
    const random = seeded(7);
    for (let trial = 0; trial < 300; trial++) {
      const size = 1 + Math.floor(random() * 30);
      expectExact(randomParents(size, 0.05 + random() * 0.4, random));
    }
  });

  // The 2,000-node hang catcher is in partition.test.ts, with the other large graphs.

  it('refuses parents that do not come earlier', () => {
    expect(() => schedule(dagOf([[1], []]))).toThrow(RangeError);
  });
});
