// Node options at their bounds, what electron() and sublattice() record, placeholders seen by
// inspection, and planGraph on templates whose parameters sit inside arrays and objects next
// to node outputs. A mutation run (npm run mutation, bench/mutation.ts) showed these unchecked.
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import { LambdaExecutor, LatticeRegistry, LatticeShape, electron, lattice, planGraph, sublattice } from '../../../sdk/model/index.ts';
import { MAX_DESTRUCTURED, isElectron, isPlaceholder } from '../../../sdk/model/index.ts';
import { idempotencyKeyOf } from '../../../sdk/model/context.ts';

const registry = new LatticeRegistry();
const sq = electron(function sq(x: number) {
  return x * x;
});
const pack = electron(function pack(..._args: unknown[]) {
  return { a: 1, list: [1, 2] };
});

function caught(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('it did not throw');
}

describe('node option bounds', () => {
  it.each([
    ['retries', 0, 100],
    ['timeoutSeconds', 1, 31_536_000],
    ['graceSeconds', 0, 3600],
  ] as const)('%s accepts %i and %i, and refuses one step past either', (option, min, max) => {
    expect(electron({ name: 'bounded', [option]: min }, () => 1).options[option]).toBe(min);
    expect(electron({ name: 'bounded', [option]: max }, () => 1).options[option]).toBe(max);
    for (const bad of [min - 1, max + 1]) {
      const error = caught(() => electron({ name: 'bounded', [option]: bad }, () => 1));
      expect(error.code).toBe(ValidationCode.INVALID_OPTION);
      expect(error.message).toBe(`electron "bounded": option "${option}" must be an integer from ${min} to ${max}, got ${bad}`);
    }
  });

  it('shows what it got: text quoted, objects by type, the rest as written', () => {
    expect(caught(() => electron({ name: 'shown', retries: '2' as never }, () => 1)).message).toContain('got "2"');
    expect(caught(() => electron({ name: 'shown', retries: [2] as never }, () => 1)).message).toContain('got object');
    expect(caught(() => electron({ name: 'shown', retries: null as never }, () => 1)).message).toContain('got null');
    expect(caught(() => electron({ name: 'shown', retries: true as never }, () => 1)).message).toContain('got true');
    expect(caught(() => electron({ name: 'shown', executor: 'lambda' as never }, () => 1)).message).toContain('got "lambda"');
  });

  it('leaves timeoutSeconds and executor out when not given, and records them when given', () => {
    const plain = electron({ name: 'plain' }, () => 1);
    expect(plain.options).toEqual({ name: 'plain', retries: 0, graceSeconds: 10 });
    const executor = new LambdaExecutor();
    expect(electron({ name: 'timed', timeoutSeconds: 5, executor }, () => 1).options).toEqual({ name: 'timed', executor, retries: 0, timeoutSeconds: 5, graceSeconds: 10 });
    const graph = lattice({ name: 'timed-nodes', registry }, () => [electron({ name: 'untimed' }, () => 1)(), electron({ name: 'timed', timeoutSeconds: 5 }, () => 1)()]).template();
    expect(graph.nodes[0]).not.toHaveProperty('timeoutSeconds');
    expect(graph.nodes[1]!.timeoutSeconds).toBe(5);
  });
});

describe('electron and sublattice objects', () => {
  it('refuses a missing function, and shows kind, fn and options as enumerable fields', () => {
    expect(caught(() => electron({ name: 'nofn' }, undefined as never)).message).toBe('electron(options, fn): fn must be a function');
    expect(caught(() => electron({ name: 'nofn' }, 'x' as never)).code).toBe(ValidationCode.INVALID_OPTION);
    const fn = (x: number) => x;
    const e = electron({ name: 'fields' }, fn);
    expect(Object.keys(e).sort()).toEqual(['fn', 'kind', 'options']);
    expect(e.kind).toBe('electron');
    expect(e.fn).toBe(fn);
    expect(e.name).toBe('fields');
  });

  it('names a default from the function: "bound " dropped, other characters become _, at most 64', () => {
    function plainName() {
      return 1;
    }
    expect(electron(plainName.bind(null)).name).toBe('plainName');
    expect(electron({ [`a${'b'.repeat(70)}`]: () => 1 }[`a${'b'.repeat(70)}`]!).name).toBe(`a${'b'.repeat(63)}`);
    const odd = { 'odd name!': () => 1 }['odd name!'];
    expect(electron(odd).name).toBe('odd_name_');
  });

  it('sublattice: refuses what is not a lattice, takes a name, records timeout and its fields', () => {
    expect(caught(() => sublattice({} as never)).message).toBe('sublattice(lattice): expected a lattice');
    const inner = lattice({ name: 'fields-inner', registry }, (x: number) => sq(x));
    const plain = sublattice(inner);
    expect(plain.name).toBe('fields-inner');
    const named = sublattice(inner, { name: 'renamed', timeoutSeconds: 9 });
    expect(named.name).toBe('renamed');
    expect(Object.keys(named).sort()).toEqual(['kind', 'lattice', 'options']);
    expect(named.kind).toBe('sublattice');
    expect(named.lattice).toBe(inner);
    expect(named.options).toEqual({ name: 'renamed', retries: 0, timeoutSeconds: 9, graceSeconds: 10 });
    expect(caught(() => sublattice(inner, { name: 'bad name' })).code).toBe(ValidationCode.INVALID_NAME);
    const graph = lattice({ name: 'fields-outer', registry }, () => [plain(1), named(2)]).template();
    expect(graph.nodes[0]).not.toHaveProperty('timeoutSeconds');
    expect(graph.nodes[0]).toMatchObject({ name: 'fields-inner', sublattice: 'fields-inner' });
    expect(graph.nodes[1]).toMatchObject({ name: 'renamed', electron: 'fields-inner', timeoutSeconds: 9 });
  });
});

describe('lattices', () => {
  it('records a description in the graph only when given, and refuses one that is not text', () => {
    expect(lattice({ name: 'described', registry, description: 'what it does' }, () => sq(1)).template().lattice).toEqual({ name: 'described', description: 'what it does', params: 0 });
    expect(lattice({ name: 'undescribed', registry }, () => sq(1)).template().lattice).toEqual({ name: 'undescribed', params: 0 });
    const error = caught(() => lattice({ name: 'bad-description', registry, description: 5 as never }, () => 1));
    expect(error.code).toBe(ValidationCode.INVALID_OPTION);
    expect(error.lattice).toBe('bad-description');
    expect(caught(() => lattice({ name: 'no-body', registry }, undefined as never)).code).toBe(ValidationCode.INVALID_OPTION);
  });

  it('names the lattice in a bad lattice-name error, and no lattice for a bad electron name', () => {
    expect(caught(() => lattice({ name: 'bad name', registry }, () => 1)).lattice).toBe('bad name');
    expect(caught(() => electron({ name: 'bad name' }, () => 1)).lattice).toBeUndefined();
    expect(caught(() => lattice({ name: 5 as never, registry }, () => 1)).lattice).toBeUndefined();
  });

  it('lets a registry take the same body again under its name, but not another body', () => {
    const own = new LatticeRegistry();
    const body = () => sq(1);
    lattice({ name: 'reused', registry: own }, body);
    expect(() => lattice({ name: 'reused', registry: own }, body)).not.toThrow();
    expect(caught(() => lattice({ name: 'reused', registry: own }, () => sq(2))).code).toBe(ValidationCode.DUPLICATE_LATTICE);
  });
});

describe('placeholders', () => {
  it('print as placeholders, tag themselves, read symbols as undefined, and name the node in errors', () => {
    let seen: { inspected: string; tag: unknown; symbol: unknown; part: string } | undefined;
    let partError: ValidationError | undefined;
    lattice({ name: 'inspected', registry }, () => {
      const out = pack() as unknown as Record<string | symbol, unknown>;
      seen = {
        inspected: inspect(out),
        tag: out[Symbol.toStringTag],
        symbol: out[Symbol('other')],
        part: inspect((out as { list: unknown[] }).list[1]),
      };
      try {
        String((out as { a: unknown }).a);
      } catch (error) {
        partError = error as ValidationError;
      }
      return out;
    }).template();
    expect(seen).toEqual({ inspected: '[valence placeholder: the output of node 0 (pack)]', tag: 'ValencePlaceholder', symbol: undefined, part: '[valence placeholder: the output of node 0 (pack).list[1]]' });
    expect(partError?.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect(partError?.nodeId).toBe(0);
    expect(partError?.lattice).toBe('inspected');
  });

  it('destructure up to MAX_DESTRUCTURED parts, then refuse', () => {
    let count = 0;
    const error = caught(() =>
      lattice({ name: 'spread', registry }, () => {
        for (const _part of pack() as unknown as Iterable<unknown>) count++;
        return 1;
      }).template(),
    );
    expect(count).toBe(MAX_DESTRUCTURED);
    expect(error.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
  });
});

describe('planGraph with parameters inside containers', () => {
  it('stays static when parameters sit in arrays and objects next to node outputs', () => {
    const mixed = lattice({ name: 'mixed-static', registry }, (x: number, label: string) => pack([sq(x), x, [label]], { out: sq(2), label, nested: { x } }));
    for (const args of [[3, 'a'], [0, '']] as const) {
      const plan = planGraph(mixed, [...args]);
      expect(plan.shape).toBe(LatticeShape.Static);
      expect(plan.graph.toJSON()).toEqual(mixed.template().toJSON());
    }
  });

  it('turns argument-shaped when the wiring of node outputs differs from the template', () => {
    // With a truthy x the template's wiring: pack(sq(x), sq(x)); with 0 the outputs are swapped for one constant.
    const wiring = lattice({ name: 'wiring', registry }, (x: number) => {
      const a = sq(1);
      const b = sq(2);
      return x ? pack([a, b]) : pack([b, a]);
    });
    expect(planGraph(wiring, [1]).shape).toBe(LatticeShape.Static);
    const other = planGraph(wiring, [0]);
    expect(other.shape).toBe(LatticeShape.Argument);
    expect(other.graph.edges.map((e) => [e.from, e.to, e.arg])).toEqual([
      [1, 2, '0[0]'],
      [0, 2, '0[1]'],
    ]);
    // Only the order of edges differs between these two, not the graph: static.
    const objects = lattice({ name: 'object-wiring', registry }, (x: number) => pack({ a: sq(1), b: sq(2), x }));
    expect(planGraph(objects, [7]).shape).toBe(LatticeShape.Static);
  });

  it('turns argument-shaped when only a constant next to a node output differs', () => {
    const constant = lattice({ name: 'constant-diff', registry }, (x: number) => pack([sq(1), x ? 'yes' : 'no']));
    expect(planGraph(constant, [1]).shape).toBe(LatticeShape.Static);
    expect(planGraph(constant, [0]).shape).toBe(LatticeShape.Argument);
    const inObject = lattice({ name: 'object-constant-diff', registry }, (x: number) => pack({ node: sq(1), word: x ? 'yes' : 'no' }));
    expect(planGraph(inObject, [0]).shape).toBe(LatticeShape.Argument);
  });
});

describe('idempotency keys and shape errors', () => {
  it('derive a 32-hex-digit key from dispatch and node: stable, and different for another node or dispatch', () => {
    const key = idempotencyKeyOf('d-1', 3);
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(key).toBe(createHash('sha256').update('valence-node\0d-1\u00003').digest('hex').slice(0, 32));
    expect(idempotencyKeyOf('d-1', 3)).toBe(key);
    expect(idempotencyKeyOf('d-1', 4)).not.toBe(key);
    expect(idempotencyKeyOf('d-2', 3)).not.toBe(key);
  });

  it('rethrows a body error that is not a parameter used as a value', () => {
    const asyncBody = lattice({ name: 'async-body', registry }, () => Promise.resolve(sq(1)));
    expect(caught(() => planGraph(asyncBody, [])).code).toBe(ValidationCode.ASYNC_LATTICE_BODY);
    const throwing = lattice({ name: 'throwing-body', registry }, () => {
      throw new RangeError('no');
    });
    expect(() => planGraph(throwing, [])).toThrow(RangeError);
  });
});

describe('argument templates from containers', () => {
  const edges = (graph: { edges: readonly { from: number; to: number; arg: number | string }[] }) => graph.edges.map((e) => [e.from, e.to, e.arg]);

  it('walks plain and prototype-less objects, nulls and a container used twice; refuses placeholders in a Map, a Set or a cycle', () => {
    const shared = lattice({ name: 'shared-container', registry }, () => {
      const p = pack();
      const bare = Object.create(null) as Record<string, unknown>;
      bare['x'] = p;
      const twice = { p };
      return pack([null, p, undefined], bare, [twice, twice]);
    }).template();
    expect(edges(shared)).toEqual([
      [0, 1, '0[1]'],
      [0, 1, '1.x'],
      [0, 1, '2[0].p'],
      [0, 1, '2[1].p'],
    ]);
    expect(shared.nodes[1]).not.toHaveProperty('sublattice');
    const inMap = caught(() => lattice({ name: 'in-map', registry }, () => pack(new Map([[pack(), 1]]))).template());
    expect(inMap.code).toBe(ValidationCode.UNSERIALIZABLE_CONSTANT);
    expect(inMap.message).toContain('node 1 (pack): argument 0 is a Map that contains placeholders');
    expect(inMap.nodeId).toBe(1);
    const inSet = caught(() => lattice({ name: 'in-set', registry }, () => pack(new Set([1, pack()]))).template());
    expect(inSet.message).toContain('argument 0 is a Set that contains placeholders');
    const cyclic = caught(() =>
      lattice({ name: 'cyclic', registry }, () => {
        const loop: Record<string, unknown> = { p: pack() };
        loop['self'] = loop;
        return pack(loop);
      }).template(),
    );
    expect(cyclic.message).toContain('is a cyclic structure that contains placeholders');
    // A cycle without placeholders is a constant (devalue keeps cycles).
    const constantLoop: Record<string, unknown> = { n: 1 };
    constantLoop['self'] = constantLoop;
    expect(() => lattice({ name: 'constant-cycle', registry }, () => pack(constantLoop, new Set([constantLoop]))).template()).not.toThrow();
  });

  it('names where a constant cannot be serialized: the argument, its index and path, or the lattice result', () => {
    const inArg = caught(() => lattice({ name: 'bad-arg-path', registry }, () => pack(1, { deep: [1, { f: () => 2 }] })).template());
    expect(inArg.message).toContain('node 0 (pack): argument 1.deep[1].f cannot be serialized');
    expect(inArg.cause).toBeInstanceOf(Error);
    const inResult = caught(() => lattice({ name: 'bad-result', registry }, () => [pack(), () => 1]).template());
    expect(inResult.message).toContain('the lattice result: the value[1] cannot be serialized');
    expect(inResult.nodeId).toBeUndefined();
  });

  it('refuses assignment to a placeholder, and leaves no build behind once one ends, even by an error', () => {
    const assigned = caught(() =>
      lattice({ name: 'assigned', registry }, () => {
        (pack() as unknown as Record<string, unknown>)['x'] = 1;
        return 1;
      }).template(),
    );
    expect(assigned.message).toContain('assignment to ".x"');
    expect(caught(() => sq(1)).code).toBe(ValidationCode.ELECTRON_OUTSIDE_LATTICE);
    lattice({ name: 'ends-well', registry }, () => sq(1)).template();
    expect(caught(() => sq(1)).code).toBe(ValidationCode.ELECTRON_OUTSIDE_LATTICE);
  });

  it('tells placeholders and electrons from other values', () => {
    let checks: boolean[] = [];
    lattice({ name: 'is-placeholder', registry }, (x: number) => {
      checks = [isPlaceholder(pack()), isPlaceholder(x), isPlaceholder({}), isPlaceholder(null), isPlaceholder(1)];
      return 1;
    }).template();
    expect(checks).toEqual([true, true, false, false, false]);
    expect([isElectron(sq), isElectron(() => 1), isElectron({ kind: 'electron' }), isElectron(sublattice(lattice({ name: 'not-electron', registry }, () => 1)))]).toEqual([true, false, false, false]);
  });
});
