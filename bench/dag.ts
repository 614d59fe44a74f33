/**
 * Seeded random DAGs shared by the benchmark workflows module (which turns them into lattices
 * at deploy time) and the benchmarks (which run the same shapes as baselines and compute
 * their critical paths and level-by-level schedules).
 */

/** A DAG over nodes 0..n-1 in topological (id) order: `parents[i]` are ids below i. */
export interface BenchDag {
  readonly parents: readonly (readonly number[])[];
  /** Per-node work in ms (0 for no-op DAGs). */
  readonly durationsMs: readonly number[];
}

/** mulberry32: a tiny deterministic PRNG, so every process builds identical DAGs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random DAG of `n` nodes: each non-root node takes 1–3 parents among the previous
 * `window` nodes (a layered-looking but irregular shape with joins that are not
 * series-parallel), about 10% of nodes are extra roots. Durations are uniform in
 * [minMs, maxMs] (rounded to whole ms), or all 0.
 */
export function randomDag(seed: number, n: number, durations: { minMs: number; maxMs: number } | undefined = undefined, window = 12): BenchDag {
  const random = prng(seed);
  const parents: number[][] = [];
  const durationsMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const own = new Set<number>();
    if (i > 0 && random() >= 0.1) {
      const count = 1 + Math.floor(random() * 3);
      for (let k = 0; k < count; k++) own.add(Math.max(0, i - 1 - Math.floor(random() * Math.min(window, i))));
    }
    parents.push([...own].sort((a, b) => a - b));
    durationsMs.push(durations ? Math.round(durations.minMs + random() * (durations.maxMs - durations.minMs)) : 0);
  }
  return { parents, durationsMs };
}

/** Longest path through the DAG, weighting each node by its duration (ms). */
export function criticalPathMs(dag: BenchDag): number {
  const finish: number[] = [];
  for (let i = 0; i < dag.parents.length; i++) {
    const ready = Math.max(0, ...(dag.parents[i] ?? []).map((p) => finish[p] ?? 0));
    finish.push(ready + (dag.durationsMs[i] ?? 0));
  }
  return Math.max(0, ...finish);
}

/** Depth of each node (roots are level 0). */
export function levels(dag: BenchDag): number[] {
  const level: number[] = [];
  for (let i = 0; i < dag.parents.length; i++) level.push(Math.max(-1, ...(dag.parents[i] ?? []).map((p) => level[p] ?? 0)) + 1);
  return level;
}

/**
 * Makespan of a level-by-level schedule (every node of level k starts once all of level k-1
 * ended; unlimited workers): the sum over levels of the longest node in the level.
 */
export function levelScheduleMs(dag: BenchDag): number {
  const byLevel = new Map<number, number>();
  levels(dag).forEach((l, i) => byLevel.set(l, Math.max(byLevel.get(l) ?? 0, dag.durationsMs[i] ?? 0)));
  let total = 0;
  for (const longest of byLevel.values()) total += longest;
  return total;
}

/** Largest number of nodes on one level (an upper bound on the parallelism a level schedule needs). */
export function maxWidth(dag: BenchDag): number {
  const counts = new Map<number, number>();
  for (const l of levels(dag)) counts.set(l, (counts.get(l) ?? 0) + 1);
  return Math.max(0, ...counts.values());
}

/** Seeds of the random DAG families (fixed so that every run compares the same graphs). */
export const NOOP_DAG_SEEDS = Array.from({ length: 50 }, (_, i) => 1000 + i);
export const SLEEP_DAG_SEEDS = Array.from({ length: 50 }, (_, i) => 2000 + i);
export const DAG_NODES = 100;
export const SLEEP_RANGE = { minMs: 50, maxMs: 500 } as const;
