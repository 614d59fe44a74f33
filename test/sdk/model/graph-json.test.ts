// The transport graph's JSON form, read back: every shape problem TransportGraph.fromJSON must
// refuse (one case per check, each naming its problem), the templates it must accept, and the
// helpers the runtime uses on a decoded graph (readPath, resolveArgTemplate, canonicalJson).
// A mutation run (npm run mutation, bench/mutation.ts) showed each check here unexercised.
import { stringify as stringifyDevalue } from 'devalue';
import { describe, expect, it } from 'vitest';
import { ValidationCode, ValidationError } from '../../../sdk/errors.ts';
import { LatticeRegistry, electron, lattice, sublattice } from '../../../sdk/model/index.ts';
import { TransportGraph, canonicalJson, readPath, resolveArgTemplate } from '../../../sdk/model/graph.ts';
import type { TransportGraphJSON } from '../../../sdk/model/graph.ts';

const registry = new LatticeRegistry();
const pair = electron(function pair() {
  return { a: 1, list: [1, 2] };
});
const use = electron(function use(..._args: unknown[]) {
  return 0;
});
const inner = lattice({ name: 'json-inner', registry }, (x: number) => use(x));
// Node 0 pair; node 1 use(pair.a, [pair, param], { $odd: pair.list[1], plain: 3 }); node 2 the sublattice on node 1.
const sample = lattice({ name: 'json-sample', registry, description: 'a sample' }, (x: number) => {
  const p = pair();
  const u = use(p.a, [p, x], { $odd: p.list[1], plain: 3 });
  return [sublattice(inner)(u), x];
});
const base = (): TransportGraphJSON => JSON.parse(JSON.stringify(sample.template().toJSON())) as TransportGraphJSON;
type Json = Record<string, unknown> & { nodes: Record<string, unknown>[]; edges: Record<string, unknown>[]; lattice: Record<string, unknown> };

/** The ValidationError fromJSON throws for `json`. */
function refusal(json: unknown): ValidationError {
  try {
    TransportGraph.fromJSON(json);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('fromJSON accepted it');
}

/** A copy of the sample graph's JSON changed by `change`. */
function changed(change: (json: Json) => void): Json {
  const json = base() as unknown as Json;
  change(json);
  return json;
}

describe('TransportGraph.fromJSON', () => {
  it('accepts the JSON of a built graph, sublattice node and escaped keys included, and rebuilds it', () => {
    const json = base();
    expect(json.nodes[2]).toMatchObject({ kind: 'sublattice', sublattice: 'json-inner' });
    expect(JSON.stringify(json.nodes[1]!.args)).toContain('"$$odd"');
    const graph = TransportGraph.fromJSON(json);
    expect(graph.toJSON()).toEqual(json);
    expect(TransportGraph.fromJSON(JSON.stringify(json)).toJSON()).toEqual(json);
    expect(graph.lattice.description).toBe('a sample');
  });

  it('refuses text that is not JSON, keeping the parse error as the cause', () => {
    const error = refusal('{not json');
    expect(error.code).toBe(ValidationCode.INVALID_GRAPH);
    expect(error.message).toContain('the text is not JSON');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses another version with its own code', () => {
    expect(refusal({ ...base(), version: 2 }).code).toBe(ValidationCode.GRAPH_VERSION);
  });

  it.each<[string, unknown, string]>([
    ['an array', [], 'expected an object'],
    ['null', null, 'expected an object'],
    ['a lattice that is not an object', changed((j) => (j['lattice'] = [] as never)), '"lattice" must be'],
    ['a lattice name that is not a string', changed((j) => (j.lattice['name'] = 5)), '"lattice" must be'],
    ['fractional params', changed((j) => (j.lattice['params'] = 1.5)), '"lattice" must be'],
    ['negative params', changed((j) => (j.lattice['params'] = -1)), '"lattice" must be'],
    ['params as text', changed((j) => (j.lattice['params'] = '1')), '"lattice" must be'],
    ['a description that is not a string', changed((j) => (j.lattice['description'] = 5)), '"lattice.description" must be a string'],
    ['nodes that are not an array', changed((j) => (j['nodes'] = {} as never)), '"nodes" must be an array'],
    ['a node that is not an object', changed((j) => (j.nodes[0] = 'node' as never)), 'node 0 must be an object'],
    ['a node id out of order', changed((j) => (j.nodes[0]!['id'] = 1)), 'node 0 has id 1'],
    ['an empty node name', changed((j) => (j.nodes[1]!['name'] = '')), 'node 1: "name" must be a non-empty string'],
    ['a node name that is not a string', changed((j) => (j.nodes[1]!['name'] = 7)), 'node 1: "name" must be a non-empty string'],
    ['an empty electron name', changed((j) => (j.nodes[0]!['electron'] = '')), 'node 0: "electron" must be a non-empty string'],
    ['an unknown node kind', changed((j) => (j.nodes[0]!['kind'] = 'task')), 'node 0: "kind" must be'],
    ['a sublattice node without its lattice', changed((j) => delete j.nodes[2]!['sublattice']), 'node 2: a sublattice node needs "sublattice"'],
    ['a missing executor', changed((j) => delete j.nodes[0]!['executor']), 'node 0: "executor" must be'],
    ['an unknown executor kind', changed((j) => ((j.nodes[0]!['executor'] as Record<string, unknown>)['kind'] = 'gpu')), 'node 0: "executor" must be'],
    ['an executor name that is not a string', changed((j) => ((j.nodes[0]!['executor'] as Record<string, unknown>)['name'] = 1)), 'node 0: "executor" must be'],
    ['executor options that are not an object', changed((j) => ((j.nodes[0]!['executor'] as Record<string, unknown>)['options'] = null)), 'node 0: "executor" must be'],
    ['negative retries', changed((j) => (j.nodes[0]!['retries'] = -1)), 'node 0: "retries"'],
    ['fractional graceSeconds', changed((j) => (j.nodes[0]!['graceSeconds'] = 1.5)), 'node 0: "graceSeconds"'],
    ['a zero timeoutSeconds', changed((j) => (j.nodes[0]!['timeoutSeconds'] = 0)), 'node 0: "timeoutSeconds" must be a positive integer'],
    ['a fractional timeoutSeconds', changed((j) => (j.nodes[0]!['timeoutSeconds'] = 2.5)), 'node 0: "timeoutSeconds" must be a positive integer'],
    ['args that are not an array', changed((j) => (j.nodes[0]!['args'] = {})), 'node 0: "args" must be an array'],
    ['an argument that is not a template', changed((j) => (j.nodes[0]!['args'] = [5])), 'node 0 argument 0: 5 is not an argument template'],
    ['a reference to a later node', changed((j) => (j.nodes[0]!['args'] = [{ $node: 1 }])), 'node 0 argument 0: {"$node": 1} must name an earlier node'],
    ['a reference to the node itself', changed((j) => (j.nodes[1]!['args'] = [{ $node: 1 }])), 'node 1 argument 0: {"$node": 1} must name an earlier node'],
    ['a node reference that is not a count', changed((j) => (j.nodes[1]!['args'] = [{ $node: 'x' }])), 'must name an earlier node'],
    ['a path that is not an array', changed((j) => (j.nodes[1]!['args'] = [{ $node: 0, $path: 'a' }])), '"$path" must be an array'],
    ['a path with a negative index', changed((j) => (j.nodes[1]!['args'] = [{ $node: 0, $path: ['a', -1] }])), '"$path" must be an array'],
    ['a path with a boolean', changed((j) => (j.nodes[1]!['args'] = [{ $node: 0, $path: [true] }])), '"$path" must be an array'],
    ['a node reference with another key', changed((j) => (j.nodes[1]!['args'] = [{ $node: 0, extra: { $const: '[1]' } }])), 'unknown reference key "$node"'],
    ['a path without a node', changed((j) => (j.nodes[1]!['args'] = [{ $path: ['a'] }])), 'unknown reference key "$path"'],
    ['a parameter index equal to params', changed((j) => (j.nodes[1]!['args'] = [{ $param: 1 }])), '{"$param": 1} is out of range'],
    ['a parameter with another key', changed((j) => (j.nodes[1]!['args'] = [{ $param: 0, extra: { $const: '[1]' } }])), 'unknown reference key "$param"'],
    ['a constant that is not a string', changed((j) => (j.nodes[1]!['args'] = [{ $const: 5 }])), '"$const" must be a devalue string'],
    ['a constant that is not devalue', changed((j) => (j.nodes[1]!['args'] = [{ $const: 'not devalue' }])), '"$const" is not valid devalue'],
    ['a constant with another key', changed((j) => (j.nodes[1]!['args'] = [{ $const: '[1]', extra: { $const: '[1]' } }])), 'unknown reference key "$const"'],
    ['an unknown $ key', changed((j) => (j.nodes[1]!['args'] = [{ $foo: { $const: '[1]' } }])), 'unknown reference key "$foo"'],
    ['an output that names no node', changed((j) => (j['output'] = { $node: 3 })), 'output: {"$node": 3} must name an earlier node'],
    ['an output that is not a template', changed((j) => (j['output'] = 'x')), 'output: "x" is not an argument template'],
    ['edges that are not an array', changed((j) => (j['edges'] = {} as never)), '"edges" must be an array'],
    ['an edge that is not an object', changed((j) => (j.edges[0] = 1 as never)), 'edge 0 must be { from, to, arg }'],
    ['an edge with a negative from', changed((j) => (j.edges[0]!['from'] = -1)), 'edge 0 must be { from, to, arg }'],
    ['an edge with a fractional to', changed((j) => (j.edges[0]!['to'] = 0.5)), 'edge 0 must be { from, to, arg }'],
    ['an edge with a boolean arg', changed((j) => (j.edges[0]!['arg'] = true)), 'edge 0 must be { from, to, arg }'],
    ['a missing edge', changed((j) => j.edges.pop()), '"edges" do not match'],
    ['an edge with another arg path', changed((j) => (j.edges[0]!['arg'] = '0.b')), '"edges" do not match'],
  ])('refuses %s, naming the problem', (_what, json, problem) => {
    const error = refusal(json);
    expect(error.code).toBe(ValidationCode.INVALID_GRAPH);
    expect(error.message).toContain(problem);
  });

  it('accepts a timeout of 1 s, an escaped $$ key, and edges in any order', () => {
    const json = changed((j) => {
      j.nodes[0]!['timeoutSeconds'] = 1;
      j.edges.reverse();
    });
    const graph = TransportGraph.fromJSON(json);
    expect(graph.node(0).timeoutSeconds).toBe(1);
    // Parents and children come out sorted and distinct whatever the edge order.
    expect(graph.parents(1)).toEqual([0]);
    expect(graph.children(0)).toEqual([1]);
    expect(graph.parents(2)).toEqual([1]);
  });
});

describe('TransportGraph', () => {
  it('sorts distinct parents and children, and names the lattice when a node is missing', () => {
    const node = (id: number) => ({ id, name: `n${id}`, electron: 'n', kind: 'electron' as const, executor: { kind: 'lambda' as const, name: 'lambda', options: {} }, retries: 0, graceSeconds: 10, args: [] });
    const graph = new TransportGraph({
      lattice: { name: 'sorting', params: 0 },
      nodes: [node(0), node(1), node(2), node(3)],
      edges: [
        { from: 2, to: 3, arg: 0 },
        { from: 0, to: 3, arg: 1 },
        { from: 1, to: 3, arg: 2 },
        { from: 0, to: 3, arg: 3 },
        { from: 0, to: 2, arg: 0 },
        { from: 0, to: 1, arg: 0 },
      ],
      output: [],
    });
    expect(graph.parents(3)).toEqual([0, 1, 2]);
    expect(graph.children(0)).toEqual([1, 2, 3]);
    expect(graph.parents(9)).toEqual([]);
    expect(graph.children(9)).toEqual([]);
    expect(() => graph.node(4)).toThrow(new RangeError('lattice "sorting" has no node 4'));
    expect(graph.node(3).name).toBe('n3');
  });
});

describe('readPath', () => {
  it('reads own properties, indices and length; anything else is undefined', () => {
    const value = { a: { list: [10, 20, 30], text: 'abc', nothing: null } };
    expect(readPath(value, ['a', 'list', 1])).toBe(20);
    expect(readPath(value, ['a', 'list', 'length'])).toBe(3);
    expect(readPath(value, ['a', 'text', 'length'])).toBe(3);
    expect(readPath(value, ['a', 'text', 1])).toBe('b');
    expect(readPath(value, ['a', 'text', 'x'])).toBeUndefined();
    expect(readPath(value, ['a', 'nothing', 'x'])).toBeUndefined();
    expect(readPath(value, ['a', 'missing', 'x'])).toBeUndefined();
    expect(readPath(value, ['a', 'list', 1, 'x'])).toBeUndefined();
    expect(readPath(value, ['a', 'constructor'])).toBeUndefined();
    expect(readPath({ length: 7 }, ['length'])).toBe(7);
    expect(readPath(value, [])).toBe(value);
  });
});

describe('resolveArgTemplate', () => {
  it('resolves node outputs, their parts, parameters, constants, arrays and escaped keys', () => {
    const lookup = { node: (id: number) => ({ id, part: { x: id * 2 } }), param: (index: number) => `param-${index}` };
    expect(resolveArgTemplate({ $node: 1, $path: ['part', 'x'] }, lookup)).toBe(2);
    expect(resolveArgTemplate({ $node: 2 }, lookup)).toEqual({ id: 2, part: { x: 4 } });
    expect(resolveArgTemplate({ $param: 3 }, lookup)).toBe('param-3');
    expect(resolveArgTemplate({ $const: stringifyDevalue(new Map([[1, 2]])) }, lookup)).toEqual(new Map([[1, 2]]));
    expect(resolveArgTemplate([{ $param: 0 }, { $node: 1 }], lookup)).toEqual(['param-0', { id: 1, part: { x: 2 } }]);
    expect(resolveArgTemplate({ $$node: { $param: 1 }, plain: { $const: stringifyDevalue(5) } }, lookup)).toEqual({ $node: 'param-1', plain: 5 });
    // Two keys that are not $node and $path: a plain object.
    expect(resolveArgTemplate({ a: { $param: 0 }, b: { $param: 1 } }, lookup)).toEqual({ a: 'param-0', b: 'param-1' });
    expect(resolveArgTemplate({ only: { $param: 2 } }, lookup)).toEqual({ only: 'param-2' });
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined members, writes undefined array items as null, and uses toJSON', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,null,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ when: new Date(0) })).toBe('{"when":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson({ nested: { toJSON: () => ({ b: 2, a: 1 }) } })).toBe('{"nested":{"a":1,"b":2}}');
    expect(canonicalJson([null, 'x', 1])).toBe('[null,"x",1]');
    expect(canonicalJson(null)).toBe('null');
  });
});
