import { parse as parseDevalue } from 'devalue';
import { describe, expect, it } from 'vitest';
import {
  BatchExecutor,
  BraketExecutor,
  LatticeRegistry,
  TransportGraph,
  electron,
  graphHash,
  lattice,
  sublattice,
} from '../../../sdk/index.ts';
import { resolveArgTemplate } from '../../../sdk/model/index.ts';
import type { ArgTemplate, TransportGraphJSON } from '../../../sdk/index.ts';

const registry = new LatticeRegistry();
const one = electron(function one() {
  return 1;
});
const inc = electron(function inc(x: number) {
  return x + 1;
});
const add = electron(function add(a: number, b: number) {
  return a + b;
});
const total = electron(function total(xs: number[]) {
  return xs.reduce((a, b) => a + b, 0);
});
const configure = electron(function configure(options: { seed: number; items: number[]; label: string }) {
  return options.items.length + options.seed;
});

const edgesOf = (graph: TransportGraph) => graph.edges.map(({ from, to, arg }) => [from, to, arg]);
const constant = (template: ArgTemplate | undefined): unknown => parseDevalue((template as { $const: string }).$const);

describe('graph building', () => {
  it('numbers nodes in call order and wires a chain', () => {
    // Prepare
    const chain = lattice({ name: 'chain', registry }, (x: number) => inc(inc(inc(x))));
    // Act
    const graph = chain.template();
    // Assess
    expect(graph.nodes.map((node) => [node.id, node.name])).toEqual([
      [0, 'inc'],
      [1, 'inc'],
      [2, 'inc'],
    ]);
    expect(edgesOf(graph)).toEqual([
      [0, 1, 0],
      [1, 2, 0],
    ]);
    expect(graph.nodes[0]?.args).toEqual([{ $param: 0 }]);
    expect(graph.output).toEqual({ $node: 2 });
    expect(graph.lattice).toEqual({ name: 'chain', params: 1 });
  });

  it('wires a diamond with argument positions on the edges', () => {
    const diamond = lattice({ name: 'diamond', registry }, () => {
      const top = one();
      return add(inc(top), inc(top));
    });
    const graph = diamond.template();
    expect(edgesOf(graph)).toEqual([
      [0, 1, 0],
      [0, 2, 0],
      [1, 3, 0],
      [2, 3, 1],
    ]);
    expect(graph.parents(3)).toEqual([1, 2]);
    expect(graph.children(0)).toEqual([1, 2]);
  });

  it('fans out and in over arrays, one edge per element', () => {
    const fan = lattice({ name: 'fan', registry }, (n: number) => total([0, 1, 2, 3].map(() => inc(n))));
    const graph = fan.template();
    expect(graph.nodes).toHaveLength(5);
    expect(graph.nodes[4]?.args).toEqual([[{ $node: 0 }, { $node: 1 }, { $node: 2 }, { $node: 3 }]]);
    expect(edgesOf(graph).filter(([, to]) => to === 4)).toEqual([
      [0, 4, '0[0]'],
      [1, 4, '0[1]'],
      [2, 4, '0[2]'],
      [3, 4, '0[3]'],
    ]);
  });

  it('finds placeholders inside nested data and keeps the rest as constants', () => {
    const nested = lattice({ name: 'nested', registry }, () => {
      const seed = one();
      const item = one();
      return configure({ seed, items: [1, 2, item, 4], label: 'run' });
    });
    const graph = nested.template();
    expect(edgesOf(graph)).toEqual([
      [0, 2, '0.seed'],
      [1, 2, '0.items[2]'],
    ]);
    const [options] = graph.nodes[2]?.args as [Record<string, ArgTemplate>];
    expect(options['seed']).toEqual({ $node: 0 });
    expect(constant(options['label'])).toBe('run');
    expect((options['items'] as ArgTemplate[]).map((entry) => ('$node' in entry ? entry : constant(entry)))).toEqual([1, 2, { $node: 1 }, 4]);
  });

  it('quotes odd keys in edge paths and escapes $-keys so user data never reads as a reference', () => {
    const takes = electron(function takes(_value: Record<string, unknown>) {
      return 0;
    });
    const odd = lattice({ name: 'odd-keys', registry }, () => {
      const a = one();
      return takes({ 'two words': a, $node: a, plain: { $const: 'x' } });
    });
    const graph = odd.template();
    expect(edgesOf(graph)).toEqual([
      [0, 1, '0["two words"]'],
      [0, 1, '0.$node'],
    ]);
    const template = graph.nodes[1]?.args[0] as Record<string, ArgTemplate>;
    expect(Object.keys(template).sort()).toEqual(['$$node', 'plain', 'two words']);
    // The whole value round-trips to what the body passed.
    const value = resolveArgTemplate(template, { node: (id) => `output-${id}`, param: () => undefined });
    expect(value).toEqual({ 'two words': 'output-0', $node: 'output-0', plain: { $const: 'x' } });
    expect(TransportGraph.fromJSON(JSON.parse(JSON.stringify(graph))).edges).toEqual(graph.edges);
  });

  it('builds the non-series-parallel N shape', () => {
    const nShape = lattice({ name: 'n-shape', registry }, () => {
      const a = one();
      const b = one();
      inc(a); // c
      return add(a, b); // d
    });
    const graph = nShape.template();
    expect(edgesOf(graph)).toEqual([
      [0, 2, 0],
      [0, 3, 0],
      [1, 3, 1],
    ]);
  });

  it('records sublattice nodes and maps node ids to electrons and lattices', () => {
    const inner = lattice({ name: 'inner', registry, executor: new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 }) }, (x: number) =>
      inc(x),
    );
    const outer = lattice({ name: 'outer', registry }, (x: number) => {
      const first = inc(x);
      const viaSub = sublattice(inner, { timeoutSeconds: 120, retries: 2 })(first);
      return add(viaSub, 1);
    });
    const graph = outer.template();
    expect(graph.nodes[1]).toMatchObject({
      kind: 'sublattice',
      sublattice: 'inner',
      electron: 'inner',
      name: 'inner',
      retries: 2,
      timeoutSeconds: 120,
      graceSeconds: 10,
    });
    expect(graph.callable(0)).toBe(inc);
    expect(graph.callable(1)).toBe(inner);
    expect(graph.callable(2)).toBe(add);
    // The sublattice's own graph uses its executor as the default.
    expect(inner.build(5).nodes[0]?.executor).toEqual({ kind: 'batch', name: 'batch', options: { jobQueue: 'q', vcpus: 1, memoryMiB: 512 } });
  });

  it('records node metadata: executor, retries, timeout, grace', () => {
    const braket = new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 10 });
    const circuit = electron({ name: 'bell', executor: braket, retries: 3, timeoutSeconds: 30, graceSeconds: 5 }, () => 'OPENQASM 3;');
    const withMeta = lattice({ name: 'with-meta', registry }, () => [circuit(), one()]);
    const [bell, plain] = withMeta.template().nodes;
    expect(bell).toMatchObject({ name: 'bell', electron: 'bell', kind: 'electron', retries: 3, timeoutSeconds: 30, graceSeconds: 5 });
    expect(bell?.executor).toEqual({ kind: 'braket', name: 'braket', options: { deviceArn: braket.options.deviceArn, shots: 10 } });
    expect(plain).toMatchObject({ retries: 0, graceSeconds: 10, executor: { kind: 'lambda', name: 'lambda', options: {} } });
    expect(plain).not.toHaveProperty('timeoutSeconds');
  });

  it('build(...args) embeds real arguments as constants and lets the body branch on them', () => {
    const branching = lattice({ name: 'branching', registry }, (n: number, when: Date) =>
      n > 2 ? total(Array.from({ length: n }, () => inc(n))) : configure({ seed: n, items: [], label: when.toISOString() }),
    );
    const big = branching.build(3, new Date(0));
    expect(big.nodes).toHaveLength(4);
    expect(constant(big.nodes[0]?.args[0])).toBe(3);
    const small = branching.build(1, new Date(0));
    expect(small.nodes).toHaveLength(1);
    const [options] = small.nodes[0]?.args as [ArgTemplate];
    expect(constant(options)).toEqual({ seed: 1, items: [], label: '1970-01-01T00:00:00.000Z' });
  });

  it('runs no electron while building', () => {
    let calls = 0;
    const counted = electron(function counted() {
      calls++;
      return calls;
    });
    lattice({ name: 'counting', registry }, () => counted()).template();
    expect(calls).toBe(0);
    expect(counted.fn()).toBe(1);
  });

  it('round-trips through JSON with the same hash', () => {
    const pipeline = lattice({ name: 'round-trip', registry, description: 'demo' }, (x: number, when: Date) => {
      const a = inc(x);
      return { sum: add(a, 2), meta: configure({ seed: a, items: [1], label: when.toISOString() }) };
    });
    const graph = pipeline.build(1, new Date(5));
    const text = JSON.stringify(graph);
    const decoded = TransportGraph.fromJSON(text);
    expect(decoded.toJSON()).toEqual(JSON.parse(text));
    expect(JSON.stringify(decoded)).toBe(text);
    expect(graphHash(decoded)).toBe(graphHash(graph));
    expect(graphHash(graph)).toMatch(/^[0-9a-f]{64}$/);
    expect(decoded.callables.size).toBe(0);
    expect(decoded.version).toBe(1);
    expect((JSON.parse(text) as TransportGraphJSON).version).toBe(1);
  });

  it('hashes canonically: key order does not matter, content does', () => {
    const json = lattice({ name: 'hashing', registry }, (x: number) => inc(x)).template().toJSON();
    const reordered = JSON.parse(JSON.stringify({ output: json.output, edges: json.edges, nodes: json.nodes, lattice: json.lattice, version: 1 })) as TransportGraphJSON;
    expect(graphHash(reordered)).toBe(graphHash(json));
    const changed = { ...json, nodes: json.nodes.map((node) => ({ ...node, retries: 1 })) };
    expect(graphHash(changed)).not.toBe(graphHash(json));
  });

  it('resolves argument templates back into values', () => {
    const graph = lattice({ name: 'resolving', registry }, (x: number) => {
      const a = inc(x);
      return configure({ seed: a, items: [1, a], label: 'L' });
    }).template();
    const value = resolveArgTemplate(graph.nodes[1]?.args[0] as ArgTemplate, { node: (id) => id * 100 + 7, param: (index) => index });
    expect(value).toEqual({ seed: 7, items: [1, 7], label: 'L' });
    expect(resolveArgTemplate(graph.nodes[0]?.args[0] as ArgTemplate, { node: () => 0, param: () => 42 })).toBe(42);
  });
});

describe('placeholder types', () => {
  it('type electron outputs, Braket outputs as measurement counts, and reject mismatches', () => {
    const braket = new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 10 });
    const circuit = electron({ executor: braket }, () => 'OPENQASM 3;');
    const tally = electron(function tally(counts: Record<string, number>) {
      return Object.keys(counts).length;
    });
    const shout = electron(function shout(text: string) {
      return text.toUpperCase();
    });
    const typed = lattice({ name: 'typed', registry }, () => {
      const counts = circuit();
      const size = tally(counts);
      // @ts-expect-error -- a Node<number> is not a string input
      shout(size);
      // @ts-expect-error -- Braket outputs are counts, not the program text
      shout(counts);
      return shout('ok');
    });
    expect(typed.template().nodes.map((node) => node.name)).toEqual(['anonymous', 'tally', 'shout', 'shout', 'shout']);
  });
});
