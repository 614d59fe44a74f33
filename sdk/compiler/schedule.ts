/**
 * Scheduling a DAG as nested series and parallel blocks, plus callback waits for what the
 * nesting cannot say.
 *
 * A block structure orders node `y` after every node that precedes it structurally (earlier
 * items of every enclosing series). The schedule is exact — a node starts when its last parent
 * ends, never later — when every structural predecessor of `y` is an ancestor of `y`: then
 * waiting for them costs nothing, because `y`'s parents end after them anyway. Parents that are
 * not structural predecessors are waited for by an `await` callback task placed right before
 * the node. {@link schedule} builds such a structure and checks the exactness invariant.
 *
 * @module
 */

/** A node, a sequence, or branches that run side by side. */
export type Block =
  | { readonly type: 'task'; readonly node: number }
  | { readonly type: 'series'; readonly items: readonly Block[] }
  | { readonly type: 'parallel'; readonly branches: readonly Block[] };

/** The DAG the scheduler reads: nodes `0..n-1` in a topological order, and each node's parents. */
export interface Dag {
  readonly size: number;
  parents(node: number): readonly number[];
}

/** A block structure and the callback waits that complete it. */
export interface Schedule {
  /** Undefined for an empty graph. */
  readonly root: Block | undefined;
  /** Node → the parents an `await` task must wait for (absent when the structure covers them all). */
  readonly awaits: ReadonlyMap<number, readonly number[]>;
  /** Number of nodes on the longest dependency path. */
  readonly criticalPathLength: number;
}

/** Fixed-size bit set over node ids. */
class Bits {
  readonly words: Uint32Array;
  constructor(size: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array((size + 31) >>> 5);
  }
  has(i: number): boolean {
    return ((this.words[i >>> 5] ?? 0) & (1 << (i & 31))) !== 0;
  }
  add(i: number): void {
    this.words[i >>> 5] = (this.words[i >>> 5] ?? 0) | (1 << (i & 31));
  }
  or(other: Bits): void {
    for (let w = 0; w < this.words.length; w++) this.words[w] = (this.words[w] ?? 0) | (other.words[w] ?? 0);
  }
  copy(): Bits {
    return new Bits(0, this.words.slice());
  }
}

/** Union-find over positions `0..n-1`. */
function components(count: number, linked: (a: number, b: number) => boolean): number[][] {
  const parent = Array.from({ length: count }, (_, i) => i);
  const find = (i: number): number => {
    let root = i;
    while (parent[root] !== root) root = parent[root] as number;
    while (parent[i] !== root) {
      const next = parent[i] as number;
      parent[i] = root;
      i = next;
    }
    return root;
  };
  for (let a = 0; a < count; a++) {
    for (let b = a + 1; b < count; b++) {
      if (find(a) !== find(b) && linked(a, b)) parent[find(a)] = find(b);
    }
  }
  const groups = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const root = find(i);
    const group = groups.get(root);
    if (group === undefined) groups.set(root, [i]);
    else group.push(i);
  }
  return [...groups.values()];
}

function series(items: Block[]): Block {
  const flat = items.flatMap((item) => (item.type === 'series' ? item.items : [item]));
  return flat.length === 1 ? (flat[0] as Block) : { type: 'series', items: flat };
}

function parallel(branches: Block[]): Block {
  const flat = branches.flatMap((branch) => (branch.type === 'parallel' ? branch.branches : [branch]));
  return flat.length === 1 ? (flat[0] as Block) : { type: 'parallel', branches: flat };
}

/**
 * Schedule `dag`. Series-parallel parts become nested series and parallel blocks (exactly the
 * modules of the reachability order); a part that is not series-parallel (it contains an "N":
 * a→c, a→d, b→d) is laid out as a forest in which each node follows one parent, its other
 * parents being awaited.
 */
export function schedule(dag: Dag): Schedule {
  const n = dag.size;
  const parents = Array.from({ length: n }, (_, node) => [...new Set(dag.parents(node))]);
  for (const [node, list] of parents.entries()) {
    for (const parent of list) {
      if (!(parent >= 0 && parent < node)) throw new RangeError(`node ${node} has parent ${parent}; parents must come earlier in the order`);
    }
  }
  // ancestors[y] ∋ x  ⇔  x reaches y.
  const ancestors = parents.map(() => new Bits(n));
  const depth = new Array<number>(n).fill(1);
  for (let node = 0; node < n; node++) {
    const own = ancestors[node] as Bits;
    for (const parent of parents[node] as number[]) {
      own.add(parent);
      own.or(ancestors[parent] as Bits);
      depth[node] = Math.max(depth[node] as number, (depth[parent] as number) + 1);
    }
  }
  const less = (a: number, b: number): boolean => (ancestors[b] as Bits).has(a);
  const comparable = (a: number, b: number): boolean => less(a, b) || less(b, a);

  const forest = (set: readonly number[]): Block => {
    const inSet = new Set(set);
    const treeChildren = new Map<number, number[]>();
    const roots: number[] = [];
    for (const node of set) {
      const local = (parents[node] as number[]).filter((parent) => inSet.has(parent));
      if (local.length === 0) {
        roots.push(node);
        continue;
      }
      // Follow the parent expected to end last (deepest; latest in call order on ties), so the await
      // for the others is most often released at once.
      const primary = local.reduce((best, parent) =>
        (depth[parent] as number) > (depth[best] as number) || ((depth[parent] as number) === (depth[best] as number) && parent > best) ? parent : best,
      );
      const list = treeChildren.get(primary);
      if (list === undefined) treeChildren.set(primary, [node]);
      else list.push(node);
    }
    const blockOf = (node: number): Block => {
      const children = treeChildren.get(node) ?? [];
      const task: Block = { type: 'task', node };
      return children.length === 0 ? task : series([task, parallel(children.map(blockOf))]);
    };
    return parallel(roots.map(blockOf));
  };

  const decompose = (set: readonly number[]): Block => {
    if (set.length === 1) return { type: 'task', node: set[0] as number };
    const byComparability = components(set.length, (a, b) => comparable(set[a] as number, set[b] as number));
    if (byComparability.length > 1) {
      return parallel(byComparability.map((group) => decompose(group.map((i) => set[i] as number))));
    }
    const byIncomparability = components(set.length, (a, b) => !comparable(set[a] as number, set[b] as number));
    if (byIncomparability.length > 1) {
      // The groups are totally ordered; each group's first node orders them.
      const groups = byIncomparability.map((group) => group.map((i) => set[i] as number));
      groups.sort((x, y) => (less(x[0] as number, y[0] as number) ? -1 : 1));
      return series(groups.map(decompose));
    }
    return forest(set);
  };

  const root = n === 0 ? undefined : decompose(Array.from({ length: n }, (_, i) => i));

  // Walk the structure: structural predecessors must be ancestors (exactness); parents that are
  // not structural predecessors become awaits.
  const awaits = new Map<number, readonly number[]>();
  const seen = new Bits(n);
  const walk = (block: Block, before: Bits): number[] => {
    if (block.type === 'task') {
      const node = block.node;
      if (seen.has(node)) throw new Error(`scheduler placed node ${node} twice`);
      seen.add(node);
      const own = ancestors[node] as Bits;
      for (let w = 0; w < before.words.length; w++) {
        if (((before.words[w] ?? 0) & ~(own.words[w] ?? 0)) !== 0) {
          throw new Error(`scheduler would make node ${node} wait for a node that is not its ancestor`);
        }
      }
      const missing = (parents[node] as number[]).filter((parent) => !before.has(parent)).sort((a, b) => a - b);
      if (missing.length > 0) awaits.set(node, missing);
      return [node];
    }
    if (block.type === 'parallel') return block.branches.flatMap((branch) => walk(branch, before));
    const running = before.copy();
    const nodes: number[] = [];
    for (const item of block.items) {
      const inner = walk(item, running);
      for (const node of inner) running.add(node);
      nodes.push(...inner);
    }
    return nodes;
  };
  if (root !== undefined) walk(root, new Bits(n));
  for (let node = 0; node < n; node++) if (!seen.has(node)) throw new Error(`scheduler left out node ${node}`);

  return { root, awaits, criticalPathLength: depth.reduce((longest, value) => Math.max(longest, value), 0) };
}
