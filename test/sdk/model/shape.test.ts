// Lattice shape: static lattices keep their template; a body that uses or branches on a
// parameter is argument-shaped, and its dispatch graph is the one the real arguments build.
import { describe, expect, it } from 'vitest';
import { electron, lattice, LatticeRegistry, LatticeShape, deployShape, planGraph } from '../../../sdk/model/index.ts';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import { resolveArgTemplate } from '../../../sdk/model/graph.ts';

const registry = new LatticeRegistry();
const sq = electron(function sq(x: number) {
  return x * x;
});
const total = electron(function total(xs: number[]) {
  return xs.reduce((a, b) => a + b, 0);
});
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('shape detection', () => {
  it('keeps a lattice that only passes its parameters along static, for any argument', () => {
    const pipeline = lattice({ name: 'static-pipe', registry }, (x: number, xs: number[]) => total([sq(x), total(xs), sq(2)]));
    expect(deployShape(pipeline)).toBe(LatticeShape.Static);
    for (const args of [[3, [1, 2]], [0, []]] as const) {
      const plan = planGraph(pipeline, [args[0], [...args[1]]]);
      expect(plan.shape).toBe(LatticeShape.Static);
      expect(plan.graph.toJSON()).toEqual(pipeline.template().toJSON());
    }
  });

  it('makes a body that uses a parameter as a value argument-shaped, built from the real arguments', () => {
    const squares = lattice({ name: 'range-squares', registry }, (n: number) => total(range(n).map((i) => sq(i))));
    expect(deployShape(squares)).toBe(LatticeShape.Argument);
    for (const n of [0, 3, 300]) {
      const plan = planGraph(squares, [n]);
      expect(plan.shape).toBe(LatticeShape.Argument);
      expect(plan.graph.nodes).toHaveLength(n + 1);
    }
  });

  it('catches a branch on a parameter\u2019s truthiness, which no trap sees', () => {
    const branch = lattice({ name: 'truthy-branch', registry }, (flag: boolean, x: number) => (flag ? sq(x) : total([x, x])));
    // The placeholder is truthy: the template is the `true` branch, so the deploy calls it static…
    expect(deployShape(branch)).toBe(LatticeShape.Static);
    expect(branch.template().nodes.map((n) => n.electron)).toEqual(['sq']);
    // …and the dispatch with `true` runs that state machine, but `false` never does.
    expect(planGraph(branch, [true, 4]).shape).toBe(LatticeShape.Static);
    const other = planGraph(branch, [false, 4]);
    expect(other.shape).toBe(LatticeShape.Argument);
    expect(other.graph.nodes.map((n) => n.electron)).toEqual(['total']);
    const lookup = { node: () => undefined, param: () => undefined };
    expect(resolveArgTemplate(other.graph.nodes[0]!.args[0]!, lookup)).toEqual([4, 4]);
  });

  it('catches `&&`, `||` and `if` on a parameter the graph also consumes', () => {
    const guarded = lattice({ name: 'guarded', registry }, (x: number) => {
      if (x) return sq(x);
      return total([]);
    });
    expect(planGraph(guarded, [2]).shape).toBe(LatticeShape.Static);
    expect(planGraph(guarded, [0]).shape).toBe(LatticeShape.Argument);
    expect(planGraph(guarded, [0]).graph.nodes.map((n) => n.electron)).toEqual(['total']);
  });

  it('still refuses an electron output used as a value, with or without real arguments', () => {
    const bad = lattice({ name: 'output-as-value', registry }, (n: number) => total(range(n + Number(sq(2))).map(sq)));
    for (const run of [() => deployShape(bad), () => planGraph(bad, [3])]) {
      let caught: unknown;
      try {
        run();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    }
  });
});
