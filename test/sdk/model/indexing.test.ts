// Parts of an electron's output are typed placeholders that become edge paths.
import { describe, expect, it } from 'vitest';
import { electron, lattice, LatticeRegistry, MAX_DESTRUCTURED } from '../../../sdk/model/index.ts';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import type { Node } from '../../../sdk/model/index.ts';
import { readPath, resolveArgTemplate, TransportGraph } from '../../../sdk/model/graph.ts';

const registry = new LatticeRegistry();
const split = electron(function split(x: number): [number, number] {
  return [x - 1, x + 1];
});
const fit = electron(function fit(x: number) {
  return { loss: x / 2, weights: [x, x * 2] };
});
const rows = electron(function rows(n: number) {
  return Array.from({ length: n }, (_, i) => i * 10);
});
const add = electron(function add(a: number, b: number) {
  return a + b;
});

describe('indexing an output', () => {
  it('destructures a tuple, reads a key and an index, typed as the parts', () => {
    const parts = lattice({ name: 'parts', registry }, (x: number) => {
      const [a, b] = split(x);
      const stats = fit(x);
      const loss: Node<number> = stats.loss;
      const weight: Node<number> = stats.weights[1]!; // an index signature: `!` under noUncheckedIndexedAccess
      const row: Node<number> = rows(x)[3]!;
      return [add(a, b), add(loss, weight), add(row, 0)];
    });
    const graph = parts.template();
    // Round-trips through the stable JSON form, paths included.
    const decoded = TransportGraph.fromJSON(JSON.stringify(graph.toJSON()));
    const byName = (name: string) => decoded.nodes.filter((n) => n.name === name);
    expect(byName('add')[0]!.args).toEqual([{ $node: 0, $path: [0] }, { $node: 0, $path: [1] }]);
    expect(byName('add')[1]!.args).toEqual([{ $node: 1, $path: ['loss'] }, { $node: 1, $path: ['weights', 1] }]);
    expect(byName('add')[2]!.args[0]).toEqual({ $node: 2, $path: [3] });
    expect(decoded.parents(byName('add')[0]!.id)).toEqual([0]);
    // The consumer receives only the part.
    const outputs = new Map<number, unknown>([[0, split.fn(5)], [1, fit.fn(8)], [2, rows.fn(5)]]);
    const lookup = { node: (id: number) => outputs.get(id), param: () => 5 };
    expect(byName('add').map((n) => n.args.map((arg) => resolveArgTemplate(arg, lookup)))).toEqual([[4, 6], [4, 16], [30, 0]]);
  });

  it('reads own properties only; a missing part is undefined', () => {
    expect(readPath({ a: { b: [1, 2] } }, ['a', 'b', 1])).toBe(2);
    expect(readPath([1, 2, 3], ['length'])).toBe(3);
    expect(readPath({}, ['constructor'])).toBeUndefined();
    expect(readPath({ a: null }, ['a', 'b'])).toBeUndefined();
  });

  it('refuses spreading an output of unknown length, and a value use of a part', () => {
    const spread = lattice({ name: 'spread-out', registry }, (n: number) => add(...(rows(n) as unknown as [number, number])));
    const caught = (fn: () => unknown): ValidationError => {
      try {
        fn();
      } catch (error) {
        return error as ValidationError;
      }
      throw new Error('expected an error');
    };
    const error = caught(() => spread.template());
    expect(error.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect(error.message).toContain(`${MAX_DESTRUCTURED} elements`);
    const arithmetic = lattice({ name: 'part-arith', registry }, (x: number) => add(Number(fit(x).loss) + 1, 0));
    const partError = caught(() => arithmetic.template());
    expect(partError.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect(partError.message).toContain('the output of node 0 (fit).loss');
  });
});
