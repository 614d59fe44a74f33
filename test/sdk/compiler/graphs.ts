/** Lattices of known shapes, and seeded random DAGs, for the compiler tests. */
import { LatticeRegistry, electron, lattice } from '../../../sdk/index.ts';
import type { Executor, TransportGraph } from '../../../sdk/index.ts';

const registry = new LatticeRegistry();
let counter = 0;

/** An electron that takes any number of inputs: each input is an edge. */
export const step = electron(function step(..._inputs: unknown[]) {
  return 0;
});

/** Build a graph from parent lists: node i gets an edge from each of `parents[i]` (all < i). */
export function graphFromParents(parents: readonly (readonly number[])[], executorOf?: (id: number) => Executor | undefined): TransportGraph {
  const steps = new Map<Executor | undefined, typeof step>();
  const electronFor = (id: number) => {
    const executor = executorOf?.(id);
    if (executor === undefined) return step;
    let found = steps.get(executor);
    if (found === undefined) {
      found = electron({ name: `step_${executor.kind}`, executor }, (..._inputs: unknown[]) => 0);
      steps.set(executor, found);
    }
    return found;
  };
  return lattice({ name: `shape-${counter++}`, registry }, () => {
    const outputs: unknown[] = [];
    for (const [id, list] of parents.entries()) outputs.push(electronFor(id)(...list.map((parent) => outputs[parent])));
    return outputs;
  }).template();
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parent lists of a random DAG: each earlier node is a parent with probability `density`. */
export function randomParents(size: number, density: number, random: () => number): number[][] {
  return Array.from({ length: size }, (_, id) => Array.from({ length: id }, (_, parent) => parent).filter(() => random() < density));
}

/** Named shapes (parent lists). */
export const SHAPES: Record<string, number[][]> = {
  single: [[]],
  chain: [[], [0], [1], [2]],
  diamond: [[], [0], [0], [1, 2]],
  fanOutIn: [[], [0], [0], [0], [0], [1, 2, 3, 4]],
  independent: [[], [], []],
  // a→c, a→d, b→d: the smallest DAG that is not series-parallel.
  nShape: [[], [], [0], [0, 1]],
  // Two layers fully connected (series-parallel: series of two parallels).
  bipartite: [[], [], [0, 1], [0, 1]],
  // Series-parallel with nesting: a → (b → (c | d) → e | f) → g.
  nested: [[], [0], [1], [1], [2, 3], [0], [4, 5]],
  // Transitive edge a→c next to a→b→c.
  transitive: [[], [0], [0, 1]],
  // Two N shapes sharing a node, plus a tail.
  doubleN: [[], [], [0], [0, 1], [], [1, 4], [2, 3, 5]],
};
