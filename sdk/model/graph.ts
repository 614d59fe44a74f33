/**
 * The transport graph: the DAG of one lattice and its stable, versioned JSON form.
 *
 * Node ids are integers in call order from 0, so they are also a topological order (a node
 * can only consume the output of a node created before it). Arguments are stored as
 * templates in which node outputs, lattice parameters and constants are explicit:
 *
 * - `{ "$node": 3 }` — the output of node 3; `{ "$node": 3, "$path": ["loss"] }` — a part of it
 *   (`stats.loss`, `rows[3]`, destructuring): keys and array indices read in order, own
 *   properties only (and `length` of arrays and strings); a missing part reads as `undefined`;
 * - `{ "$param": 0 }` — lattice parameter 0 (templates only; `build(...args)` embeds constants);
 * - `{ "$const": "<devalue string>" }` — a constant in the safe serialization format;
 * - arrays and plain objects that contain any of the above, nested. An object key that starts
 *   with `$` is escaped by one more `$` so user data can never look like a reference.
 *
 * Every node reference in an argument is also an edge `{ from, to, arg }`, where `arg` is the
 * argument index (`0`) when the whole argument is the node's output, or a path into it
 * (`"1.items[3]"`, `'0["odd key"]'`).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { parse as parseDevalue } from 'devalue';
import { ValidationCode, ValidationError } from '../errors.ts';
import type { ExecutorJSON, ExecutorKind } from './executors.ts';

/** The JSON form's version; {@link TransportGraph.fromJSON} refuses any other. */
export const GRAPH_VERSION = 1;

/** A reference to another node's output. */
export interface NodeRef {
  readonly $node: number;
  /** A path into the output: the consumer receives only that part. */
  readonly $path?: readonly (string | number)[];
}
/** A reference to a lattice parameter (templates only). */
export interface ParamRef {
  readonly $param: number;
}
/** A constant, serialized with devalue. */
export interface ConstRef {
  readonly $const: string;
}
/** An argument as stored in the graph. */
export type ArgTemplate = NodeRef | ParamRef | ConstRef | readonly ArgTemplate[] | { readonly [key: string]: ArgTemplate };

/** Whether a node runs an electron or a whole lattice. */
export type NodeKind = 'electron' | 'sublattice';

/** One node of the transport graph. */
export interface GraphNode {
  /** Call order, from 0; also a topological order. */
  readonly id: number;
  /** Display name, used in state names (`3-train_model`). */
  readonly name: string;
  /** Name of the electron (for sublattice nodes: of the sublattice). */
  readonly electron: string;
  readonly kind: NodeKind;
  /** The lattice a sublattice node runs. */
  readonly sublattice?: string;
  readonly executor: ExecutorJSON;
  /** Extra attempts after a failure. */
  readonly retries: number;
  /** Time limit of one attempt; absent means no limit beyond the executor's own. */
  readonly timeoutSeconds?: number;
  /** How long a cancelled electron gets between its signal aborting and its worker being killed. */
  readonly graceSeconds: number;
  /** Positional argument templates. */
  readonly args: readonly ArgTemplate[];
}

/** A data dependency: `to` consumes `from`'s output at argument path `arg`. */
export interface GraphEdge {
  readonly from: number;
  readonly to: number;
  readonly arg: number | string;
}

/** Lattice-level metadata stored with the graph. */
export interface GraphLattice {
  readonly name: string;
  readonly description?: string;
  /** Number of lattice parameters. */
  readonly params: number;
}

/** The stable JSON form of a transport graph (`version: 1`). */
export interface TransportGraphJSON {
  readonly version: typeof GRAPH_VERSION;
  readonly lattice: GraphLattice;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** Template of the lattice's result. */
  readonly output: ArgTemplate;
}

/** What a node id maps to at run time: an electron, or a lattice for sublattice nodes. */
export interface NodeCallable {
  readonly kind: 'electron' | 'lattice';
  readonly name: string;
}

/**
 * A built transport graph: the JSON-able graph plus, when it came from a lattice build, the
 * non-serialized map from node id to the electron (or lattice) that runs it.
 */
export class TransportGraph<C extends NodeCallable = NodeCallable> {
  readonly version = GRAPH_VERSION;
  readonly lattice: GraphLattice;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly output: ArgTemplate;
  /** Node id → electron or lattice. Empty for graphs decoded from JSON; never serialized. */
  readonly callables: ReadonlyMap<number, C>;
  readonly #parents: readonly (readonly number[])[];
  readonly #children: readonly (readonly number[])[];

  constructor(json: Omit<TransportGraphJSON, 'version'>, callables: ReadonlyMap<number, C> = new Map()) {
    this.lattice = json.lattice;
    this.nodes = json.nodes;
    this.edges = json.edges;
    this.output = json.output;
    this.callables = callables;
    const parents = json.nodes.map(() => new Set<number>());
    const children = json.nodes.map(() => new Set<number>());
    for (const edge of json.edges) {
      parents[edge.to]?.add(edge.from);
      children[edge.from]?.add(edge.to);
    }
    this.#parents = parents.map((set) => [...set].sort((a, b) => a - b));
    this.#children = children.map((set) => [...set].sort((a, b) => a - b));
  }

  /** The node with id `id`; throws RangeError when absent. */
  node(id: number): GraphNode {
    const node = this.nodes[id];
    if (node === undefined) throw new RangeError(`lattice "${this.lattice.name}" has no node ${id}`);
    return node;
  }

  /** Distinct parent ids of `id`, ascending. */
  parents(id: number): readonly number[] {
    return this.#parents[id] ?? [];
  }

  /** Distinct child ids of `id`, ascending. */
  children(id: number): readonly number[] {
    return this.#children[id] ?? [];
  }

  /** The electron or lattice behind node `id` (only for graphs built from a lattice). */
  callable(id: number): C | undefined {
    return this.callables.get(id);
  }

  /** The stable JSON form. */
  toJSON(): TransportGraphJSON {
    return { version: GRAPH_VERSION, lattice: this.lattice, nodes: this.nodes, edges: this.edges, output: this.output };
  }

  /**
   * Decode and validate the JSON form (an object or a JSON string). Throws
   * `VALIDATION_GRAPH_VERSION` for another version and `VALIDATION_INVALID_GRAPH` for any
   * shape problem, including edges that disagree with the argument templates.
   */
  static fromJSON(input: unknown): TransportGraph {
    let json: unknown = input;
    if (typeof input === 'string') {
      try {
        json = JSON.parse(input);
      } catch (error) {
        throw invalid('the text is not JSON', error);
      }
    }
    return new TransportGraph(validateGraphJSON(json));
  }
}

function invalid(problem: string, cause?: unknown): ValidationError {
  return new ValidationError(ValidationCode.INVALID_GRAPH, `invalid transport graph: ${problem}`, { cause });
}

const EXECUTOR_KINDS: ReadonlySet<string> = new Set<ExecutorKind>(['lambda', 'batch', 'braket', 'local', 'custom']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function validateGraphJSON(json: unknown): TransportGraphJSON {
  if (!isRecord(json)) throw invalid('expected an object');
  if (json['version'] !== GRAPH_VERSION) {
    throw new ValidationError(
      ValidationCode.GRAPH_VERSION,
      `unsupported transport graph version ${JSON.stringify(json['version'])}; this valence reads version ${GRAPH_VERSION}`,
    );
  }
  const lattice = json['lattice'];
  if (!isRecord(lattice) || typeof lattice['name'] !== 'string' || !isCount(lattice['params'])) {
    throw invalid('"lattice" must be { name: string, params: integer, description?: string }');
  }
  if (lattice['description'] !== undefined && typeof lattice['description'] !== 'string') throw invalid('"lattice.description" must be a string');
  const params = lattice['params'];
  const nodes = json['nodes'];
  if (!Array.isArray(nodes)) throw invalid('"nodes" must be an array');
  const expectedEdges: string[] = [];
  nodes.forEach((node: unknown, index) => {
    const where = `node ${index}`;
    if (!isRecord(node)) throw invalid(`${where} must be an object`);
    if (node['id'] !== index) throw invalid(`${where} has id ${JSON.stringify(node['id'])}; ids must be 0, 1, 2, … in order`);
    for (const key of ['name', 'electron'] as const) {
      if (typeof node[key] !== 'string' || node[key] === '') throw invalid(`${where}: "${key}" must be a non-empty string`);
    }
    if (node['kind'] !== 'electron' && node['kind'] !== 'sublattice') throw invalid(`${where}: "kind" must be "electron" or "sublattice"`);
    if (node['kind'] === 'sublattice' && typeof node['sublattice'] !== 'string') throw invalid(`${where}: a sublattice node needs "sublattice"`);
    const executor = node['executor'];
    if (!isRecord(executor) || !EXECUTOR_KINDS.has(executor['kind'] as string) || typeof executor['name'] !== 'string' || !isRecord(executor['options'])) {
      throw invalid(`${where}: "executor" must be { kind, name, options }`);
    }
    if (!isCount(node['retries'])) throw invalid(`${where}: "retries" must be a non-negative integer`);
    if (!isCount(node['graceSeconds'])) throw invalid(`${where}: "graceSeconds" must be a non-negative integer`);
    if (node['timeoutSeconds'] !== undefined && !(isCount(node['timeoutSeconds']) && node['timeoutSeconds'] > 0)) {
      throw invalid(`${where}: "timeoutSeconds" must be a positive integer`);
    }
    if (!Array.isArray(node['args'])) throw invalid(`${where}: "args" must be an array`);
    node['args'].forEach((arg: unknown, position) => {
      validateTemplate(arg, `${where} argument ${position}`, { nodeLimit: index, params }, (from, path) =>
        expectedEdges.push(edgeKey(from, index, joinArgPath(position, path))),
      );
    });
  });
  validateTemplate(json['output'], 'output', { nodeLimit: nodes.length, params }, () => undefined);
  const edges = json['edges'];
  if (!Array.isArray(edges)) throw invalid('"edges" must be an array');
  const actualEdges = edges.map((edge: unknown, index) => {
    if (!isRecord(edge) || !isCount(edge['from']) || !isCount(edge['to']) || (typeof edge['arg'] !== 'number' && typeof edge['arg'] !== 'string')) {
      throw invalid(`edge ${index} must be { from, to, arg }`);
    }
    return edgeKey(edge['from'], edge['to'], edge['arg']);
  });
  if (JSON.stringify([...actualEdges].sort()) !== JSON.stringify([...expectedEdges].sort())) {
    throw invalid('"edges" do not match the node references in the argument templates');
  }
  return json as unknown as TransportGraphJSON;
}

function edgeKey(from: number, to: number, arg: number | string): string {
  return JSON.stringify([from, to, arg]);
}

function validateTemplate(
  template: unknown,
  where: string,
  limits: { nodeLimit: number; params: number },
  onNodeRef: (from: number, path: string) => void,
  path = '',
): void {
  if (Array.isArray(template)) {
    template.forEach((item, index) => validateTemplate(item, where, limits, onNodeRef, `${path}[${index}]`));
    return;
  }
  if (!isRecord(template)) throw invalid(`${where}: ${JSON.stringify(template)} is not an argument template`);
  const keys = Object.keys(template);
  if (keys.includes('$node') && keys.every((key) => key === '$node' || key === '$path')) {
    const id = template['$node'];
    const parts = template['$path'];
    if (parts !== undefined && !(Array.isArray(parts) && parts.every((part) => typeof part === 'string' || isCount(part)))) {
      throw invalid(`${where}: "$path" must be an array of keys and array indices`);
    }
    if (!isCount(id) || id >= limits.nodeLimit) throw invalid(`${where}: {"$node": ${JSON.stringify(id)}} must name an earlier node`);
    onNodeRef(id, path);
    return;
  }
  if (keys.length === 1 && keys[0] === '$param') {
    const index = template['$param'];
    if (!isCount(index) || index >= limits.params) throw invalid(`${where}: {"$param": ${JSON.stringify(index)}} is out of range`);
    return;
  }
  if (keys.length === 1 && keys[0] === '$const') {
    const text = template['$const'];
    if (typeof text !== 'string') throw invalid(`${where}: "$const" must be a devalue string`);
    try {
      parseDevalue(text);
    } catch (error) {
      throw invalid(`${where}: "$const" is not valid devalue`, error);
    }
    return;
  }
  for (const key of keys) {
    if (key.startsWith('$') && !key.startsWith('$$')) throw invalid(`${where}: unknown reference key "${key}"`);
    const userKey = unescapeKey(key);
    validateTemplate(template[key], where, limits, onNodeRef, `${path}${formatKey(userKey)}`);
  }
}

/** Escape a user object key for the template form (keys starting with `$` gain one `$`). */
export function escapeKey(key: string): string {
  return key.startsWith('$') ? `$${key}` : key;
}

/** Undo {@link escapeKey}. */
export function unescapeKey(key: string): string {
  return key.startsWith('$$') ? key.slice(1) : key;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Path segment for an object key: `.name`, or `["odd key"]` when not an identifier. */
export function formatKey(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** The edge `arg` for argument `position` and a path inside it (`''` for the whole argument). */
export function joinArgPath(position: number, path: string): number | string {
  return path === '' ? position : `${position}${path}`;
}

/**
 * Turn an argument template back into a value, given how to obtain node outputs and
 * parameters. Constants are decoded with devalue, which never runs code. The runtime uses
 * this to assemble an electron's arguments.
 */
export function resolveArgTemplate(
  template: ArgTemplate,
  lookup: { readonly node: (id: number) => unknown; readonly param: (index: number) => unknown },
): unknown {
  if (Array.isArray(template)) return template.map((item: ArgTemplate) => resolveArgTemplate(item, lookup));
  const record = template as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 2 && '$node' in record && '$path' in record) {
    return readPath(lookup.node(record['$node'] as number), record['$path'] as readonly (string | number)[]);
  }
  if (keys.length === 1) {
    if (keys[0] === '$node') return lookup.node(record['$node'] as number);
    if (keys[0] === '$param') return lookup.param(record['$param'] as number);
    if (keys[0] === '$const') return parseDevalue(record['$const'] as string);
  }
  const value: Record<string, unknown> = {};
  for (const key of keys) value[unescapeKey(key)] = resolveArgTemplate(record[key] as ArgTemplate, lookup);
  return value;
}

/**
 * The part of `value` at `path`: own properties only (so `constructor` or `__proto__` never
 * reach an electron), plus `length` of arrays and strings. A missing part is `undefined`.
 */
export function readPath(value: unknown, path: readonly (string | number)[]): unknown {
  let current = value;
  for (const segment of path) {
    if (current === null || current === undefined) return undefined;
    if (segment === 'length' && (typeof current === 'string' || Array.isArray(current))) {
      current = current.length;
      continue;
    }
    if (typeof current === 'string') {
      current = typeof segment === 'number' ? current[segment] : undefined;
      continue;
    }
    if (typeof current !== 'object' || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

/**
 * JSON with object keys sorted at every level and `undefined` members dropped: one text per
 * graph, whatever order its objects were built in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : sortKeys(item)));
  if (value !== null && typeof value === 'object') {
    const source = (typeof (value as { toJSON?: unknown }).toJSON === 'function'
      ? (value as { toJSON: () => unknown }).toJSON()
      : value) as Record<string, unknown>;
    if (source !== value) return sortKeys(source);
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(source).sort()) {
      if (source[key] !== undefined) sorted[key] = sortKeys(source[key]);
    }
    return sorted;
  }
  return value;
}

/**
 * The graph's identity: lowercase hex SHA-256 of its canonical JSON. The compiler writes it
 * into the state machine's `Comment` (`valence graph sha256:<hex>`) so the SDK can tell a
 * stale deploy from a current one.
 */
export function graphHash(graph: TransportGraph | TransportGraphJSON): string {
  const json = graph instanceof TransportGraph ? graph.toJSON() : graph;
  return createHash('sha256').update(canonicalJson(json)).digest('hex');
}
