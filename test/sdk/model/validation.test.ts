import { describe, expect, it } from 'vitest';
import {
  LatticeRegistry,
  TransportGraph,
  ValidationCode,
  ValidationError,
  defaultLatticeRegistry,
  electron,
  lattice,
  sublattice,
} from '../../../sdk/index.ts';

const registry = new LatticeRegistry();
const inc = electron(function inc(x: number) {
  return x + 1;
});
const use = electron(function use(..._values: unknown[]) {
  return 0;
});

/** Run `act` and return the ValidationError it throws (failing the test otherwise). */
function validationError(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('lattice names and the registry', () => {
  it('refuses two lattices with one name, naming it', () => {
    const local = new LatticeRegistry();
    lattice({ name: 'twice', registry: local }, () => inc(1));
    const error = validationError(() => lattice({ name: 'twice', registry: local }, () => inc(2)));
    expect(error.code).toBe(ValidationCode.DUPLICATE_LATTICE);
    expect(error.name).toBe('ValidationError');
    expect(error.lattice).toBe('twice');
    expect(error.message).toContain('"twice"');
  });

  it('accepts registering the same lattice object again, and separate registries', () => {
    const local = new LatticeRegistry();
    const once = lattice({ name: 'once', registry: local }, () => inc(1));
    expect(() => local.register(once)).not.toThrow();
    expect(local.list()).toEqual([once]);
    expect(() => lattice({ name: 'once', registry: new LatticeRegistry() }, () => inc(1))).not.toThrow();
    local.clear();
    expect(local.get('once')).toBeUndefined();
  });

  it('registers in the default registry unless told otherwise', () => {
    const defined = lattice(function defaultRegistered() {
      return inc(1);
    });
    expect(defined.name).toBe('defaultRegistered');
    expect(defaultLatticeRegistry.get('defaultRegistered')).toBe(defined);
  });

  it.each([
    ['', 'empty'],
    ['a'.repeat(81), 'too long'],
    ['has space', 'space'],
    ['dots.are.out', 'dot'],
    ['ünïcode', 'non-ASCII'],
  ])('refuses the state-machine name %j (%s)', (name) => {
    const error = validationError(() => lattice({ name, registry }, () => inc(1)));
    expect(error.code).toBe(ValidationCode.INVALID_NAME);
    expect(error.message).toContain('1-80 characters of [A-Za-z0-9_-]');
  });

  it('accepts an 80-character name and asks anonymous bodies for one', () => {
    expect(lattice({ name: 'a'.repeat(80), registry }, () => inc(1)).name).toHaveLength(80);
    const error = validationError(() => lattice({ registry }, () => inc(1)));
    expect(error.code).toBe(ValidationCode.INVALID_NAME);
    expect(error.message).toContain('pass { name }');
  });

  it('refuses bad electron names', () => {
    expect(validationError(() => electron({ name: 'bad name' }, () => 1)).code).toBe(ValidationCode.INVALID_NAME);
    expect(validationError(() => electron({ name: 'x'.repeat(65) }, () => 1)).code).toBe(ValidationCode.INVALID_NAME);
    expect(electron(() => 1).name).toBe('anonymous');
  });
});

describe('options', () => {
  it.each([
    [{ retries: -1 }, 'retries'],
    [{ retries: 1.5 }, 'retries'],
    [{ timeoutSeconds: 0 }, 'timeoutSeconds'],
    [{ timeoutSeconds: 2.5 }, 'timeoutSeconds'],
    [{ graceSeconds: -3 }, 'graceSeconds'],
    [{ executor: { kind: 'lambda' } }, 'executor'],
  ])('refuses electron options %j, naming %s', (options, option) => {
    const error = validationError(() => electron({ name: 'opt', ...(options as object) }, () => 1));
    expect(error.code).toBe(ValidationCode.INVALID_OPTION);
    expect(error.message).toContain(`"${option}"`);
    expect(error.message).toContain('electron "opt"');
  });

  it('refuses a bad lattice executor and sublattice options', () => {
    expect(validationError(() => lattice({ name: 'bad-exec', registry, executor: {} as never }, () => 1)).code).toBe(ValidationCode.INVALID_OPTION);
    const inner = lattice({ name: 'opt-inner', registry }, () => inc(1));
    expect(validationError(() => sublattice(inner, { retries: -1 })).code).toBe(ValidationCode.INVALID_OPTION);
  });
});

describe('constants', () => {
  class Point {
    constructor(readonly x: number) {}
  }
  it.each([
    ['a function', () => () => 1, 'function'],
    ['a class instance', () => new Point(1), 'non-POJO'],
    ['a symbol', () => Symbol('s'), 'Symbol'],
    ['a nested function', () => ({ deep: [1, { f: () => 2 }] }), 'function'],
  ])('refuses %s, naming lattice, node and argument', (_label, make, detail) => {
    const bad = lattice({ name: `const-${_label.replace(/ /g, '-')}`, registry }, () => use(1, make()));
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.UNSERIALIZABLE_CONSTANT);
    expect(error.lattice).toBe(bad.name);
    expect(error.nodeId).toBe(0);
    expect(error.message).toContain(`lattice "${bad.name}", node 0 (use)`);
    expect(error.message).toContain(detail);
  });

  it('refuses placeholders hidden in a Map', () => {
    const bad = lattice({ name: 'map-holder', registry }, () => use(new Map([['k', inc(1)]])));
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.UNSERIALIZABLE_CONSTANT);
    expect(error.message).toContain('Map that contains placeholders');
  });

  it('refuses an unserializable lattice result', () => {
    const bad = lattice({ name: 'bad-result', registry }, () => ({ value: inc(1), fn: () => 1 }));
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.UNSERIALIZABLE_CONSTANT);
    expect(error.message).toContain('the lattice result');
  });

  it('accepts Date, Map, Set, BigInt, typed arrays and undefined', () => {
    const fine = lattice({ name: 'rich-constants', registry }, () =>
      use(new Date(0), new Map([[1, 2]]), new Set([3]), 10n, new Float64Array([1.5]), undefined),
    );
    expect(fine.template().nodes[0]?.args).toHaveLength(6);
  });
});

describe('placeholders used as values', () => {
  // [label, body, what the message names, a real argument the same body accepts]
  // The bodies misuse a placeholder as the value it stands for, hence the casts.
  const cases: Array<[string, (x: unknown) => unknown, string, unknown]> = [
    ['arithmetic', (x) => use((x as number) + 1), 'primitive conversion', 5],
    ['comparison in a condition', (x) => ((x as number) > 3 ? use(1) : use(2)), 'arithmetic or comparison', 5],
    ['a template literal', (x) => use(`n=${x as number}`), 'string conversion', 5],
    ['String()', (x) => use(String(x)), 'string conversion', 5],
    ['valueOf()', (x) => use((x as number).valueOf()), 'arithmetic or comparison', 5],
    ['JSON.stringify', (x) => use(JSON.stringify(x)), 'JSON.stringify', 5],
    ['spreading', (x) => use(...(x as unknown[])), 'iteration', [1, 2]],
    ['for…of', (x) => {
      for (const item of x as unknown[]) use(item);
    }, 'iteration', [1, 2]],
    ['property access', (x) => use((x as string).length), 'property access ".length"', 'abc'],
  ];

  it.each(cases)('catches a parameter used in %s', (_label, body, use, real) => {
    const bad = lattice({ name: `param-${_label.replace(/[^a-z]/gi, '')}`, registry }, (x: unknown) => body(x));
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect(error.message).toContain(`lattice "${bad.name}": parameter 0`);
    expect(error.message).toContain(use);
    expect(error.message).toContain('sublattice');
    expect(error.message).toContain('electron');
    // The same body is fine with real arguments.
    expect(() => bad.build(real)).not.toThrow();
  });

  // Reading a part of an output (`x.length`) is an edge path, not a value use; see indexing.test.ts.
  it.each(cases.filter(([label]) => label !== 'property access'))('catches an electron output used in %s, naming the node', (_label, body) => {
    const bad = lattice({ name: `node-${_label.replace(/[^a-z]/gi, '')}`, registry }, () => body(inc(1)));
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect(error.nodeId).toBe(0);
    expect(error.message).toContain('the output of node 0 (inc)');
  });

  it('catches `await` on a placeholder in an async body', async () => {
    const bad = lattice({ name: 'awaits-node', registry }, async () => {
      // eslint-disable-next-line @typescript-eslint/await-thenable -- the mistake under test
      const value = await inc(1);
      return use(value);
    });
    const error = validationError(() => bad.template());
    expect(error.code).toBe(ValidationCode.ASYNC_LATTICE_BODY);
    // Awaiting the placeholder itself rejects with the placeholder error.
    let caught: Promise<unknown> | undefined;
    lattice({ name: 'await-capture', registry }, () => {
      const node = inc(1);
      caught = (async () => {
        // eslint-disable-next-line @typescript-eslint/await-thenable -- the mistake under test
        await node;
      })().catch((reason: unknown) => reason);
      return node;
    }).template();
    const reason = await caught;
    expect(reason).toBeInstanceOf(ValidationError);
    expect((reason as ValidationError).code).toBe(ValidationCode.PLACEHOLDER_AS_VALUE);
    expect((reason as ValidationError).message).toContain('await');
  });
});

describe('misuse', () => {
  it('refuses an electron call outside a lattice body and runs nothing', () => {
    let ran = false;
    const effect = electron(function effect() {
      ran = true;
    });
    const error = validationError(() => effect());
    expect(error.code).toBe(ValidationCode.ELECTRON_OUTSIDE_LATTICE);
    expect(error.message).toContain('effect.fn(');
    expect(ran).toBe(false);
    const inner = lattice({ name: 'outside-sub', registry }, () => inc(1));
    expect(validationError(() => sublattice(inner)()).code).toBe(ValidationCode.ELECTRON_OUTSIDE_LATTICE);
  });

  it('refuses placeholders from another build', () => {
    let leaked: unknown;
    lattice({ name: 'leaks', registry }, () => {
      leaked = inc(1);
      return leaked;
    }).template();
    const error = validationError(() => lattice({ name: 'uses-leak', registry }, () => use(leaked)).template());
    expect(error.code).toBe(ValidationCode.FOREIGN_PLACEHOLDER);
    expect(error.message).toContain('"leaks"');
  });

  it('refuses a lattice that uses itself as a sublattice', () => {
    const recursive: ReturnType<typeof lattice<[], unknown>> = lattice({ name: 'recursive', registry }, () => sublattice(recursive)());
    expect(validationError(() => recursive.template()).code).toBe(ValidationCode.RECURSIVE_SUBLATTICE);
  });
});

describe('TransportGraph.fromJSON', () => {
  /** The parsed graph JSON, loosely typed so the cases can corrupt it. */
  type GraphJSON = Record<string, unknown> & { nodes: Array<Record<string, unknown>>; edges: unknown[] };
  const good = (): GraphJSON =>
    JSON.parse(
      JSON.stringify(
        lattice({ name: `from-json-${Math.random().toString(36).slice(2)}`, registry: new LatticeRegistry() }, (x: number) => use(inc(x), [inc(2)])).template(),
      ),
    ) as GraphJSON;

  it('refuses another version', () => {
    const error = validationError(() => TransportGraph.fromJSON({ ...good(), version: 2 }));
    expect(error.code).toBe(ValidationCode.GRAPH_VERSION);
  });

  it.each([
    ['not JSON text', () => '{nope'],
    ['not an object', () => [1, 2]],
    ['ids out of order', () => ({ ...good(), nodes: good().nodes.reverse() })],
    ['an edge that is not in the templates', () => ({ ...good(), edges: [...good().edges, { from: 0, to: 2, arg: 5 }] })],
    ['a missing edge', () => ({ ...good(), edges: good().edges.slice(1) })],
    ['a forward reference', () => {
      const json = good();
      json.nodes[0]!.args = [{ $node: 2 }];
      return json;
    }],
    ['a parameter out of range', () => {
      const json = good();
      json.nodes[0]!.args = [{ $param: 3 }];
      return json;
    }],
    ['bad devalue', () => {
      const json = good();
      json.nodes[1]!.args = [{ $const: '[' }];
      return json;
    }],
    ['an unknown $ key', () => {
      const json = good();
      json.nodes[1]!.args = [{ $nod: 0 }];
      return json;
    }],
    ['a bad executor', () => {
      const json = good();
      json.nodes[0]!.executor = { kind: 'gpu', name: 'gpu', options: {} };
      return json;
    }],
    ['negative retries', () => {
      const json = good();
      json.nodes[0]!.retries = -1;
      return json;
    }],
  ])('refuses %s', (_label, make) => {
    expect(validationError(() => TransportGraph.fromJSON(make())).code).toBe(ValidationCode.INVALID_GRAPH);
  });

  it('accepts the unmodified form', () => {
    expect(() => TransportGraph.fromJSON(good())).not.toThrow();
  });
});
