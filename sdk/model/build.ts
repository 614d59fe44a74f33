/**
 * Graph building: placeholders, the build session of a lattice body, and argument templates.
 *
 * A lattice body is an ordinary synchronous function. While it runs under a build session,
 * electron calls add nodes and return placeholders; a placeholder records where a value will
 * come from and refuses to be used as a value.
 *
 * @module
 */
import { inspect } from 'node:util';
import { stringify as stringifyDevalue } from 'devalue';
import { ValidationCode, ValidationError } from '../errors.ts';
import type { Executor } from './executors.ts';
import { LambdaExecutor } from './executors.ts';
import { escapeKey, formatKey, joinArgPath } from './graph.ts';
import type { ArgTemplate, GraphEdge, GraphNode, NodeCallable, NodeKind } from './graph.ts';

declare const nodeOutput: unique symbol;

/** The brand every {@link Node} carries: the output type, at the type level only. */
export interface NodeBrand<T> {
  /** Type-level only: the output type. */
  readonly [nodeOutput]: T;
}

/**
 * A placeholder for the output of type `T` of an electron (or sublattice) call inside a lattice
 * body. Pass it to other electrons — as an argument or inside arrays and plain objects — and
 * the graph gets an edge; it has no value while the graph is built.
 *
 * Its parts are placeholders too: `stats.loss` is a `Node<T['loss']>`, `rows[3]` a
 * `Node<T[number]>`, and `const [a, b] = split(x)` destructures a tuple or array output. Each
 * becomes an edge with a path (`{ $node, $path }`), so the next electron receives just that part.
 */
export type Node<T> = NodeBrand<T> & NodeParts<T>;

/** The typed parts of a node's output (see {@link Node}). */
export type NodeParts<T> = T extends Opaque
  ? unknown
  : T extends readonly unknown[]
    ? { readonly [K in keyof T]: Node<T[K]> } & { readonly [index: number]: Node<T[number]>; readonly length: Node<number> }
    : { readonly [K in keyof T]-?: Node<T[K]> };

type Primitive = string | number | boolean | bigint | symbol | null | undefined;
type Opaque =
  | Primitive
  | Date
  | RegExp
  | ReadonlyMap<unknown, unknown>
  | ReadonlySet<unknown>
  | ArrayBuffer
  | ArrayBufferView
  | ((...args: never[]) => unknown);

/** What an electron parameter of type `T` accepts in a lattice body: a value, a placeholder, or containers holding placeholders. */
export type Input<T> = T | Node<T> | (T extends Opaque ? never : { [K in keyof T]: Input<T[K]> });

/** {@link Input} for every parameter of an electron. */
export type Inputs<A extends readonly unknown[]> = { [K in keyof A]: Input<A[K]> };

/** The value a lattice body's result stands for once the dispatch has run. */
export type Resolved<R> = R extends NodeBrand<infer T> ? T : R extends Opaque ? R : { [K in keyof R]: Resolved<R[K]> };

const PLACEHOLDER = Symbol('valence.placeholder');

/** One step of a path into a node's output: an object key or an array index. */
export type PathSegment = string | number;

/** Iterating an output yields part placeholders; past this many, the body is surely spreading an output of unknown length. */
export const MAX_DESTRUCTURED = 1000;

const INDEX = /^(?:0|[1-9][0-9]*)$/;

/** The placeholder for part `segment` of a node output's placeholder. */
function partOf(info: PlaceholderInfo, segment: PathSegment): object {
  const ref = info.ref as { readonly $node: number; readonly $path?: readonly PathSegment[] };
  const label = typeof segment === 'number' ? `${info.label}[${segment}]` : `${info.label}${formatKey(segment)}`;
  return createPlaceholder({ session: info.session, ref: { $node: ref.$node, $path: [...(ref.$path ?? []), segment] }, label });
}

interface PlaceholderInfo {
  readonly session: BuildSession;
  readonly ref: { readonly $node: number; readonly $path?: readonly PathSegment[] } | { readonly $param: number };
  readonly label: string;
}

/** Prototype of placeholder targets: not a plain object, so serializers refuse them. */
class PlaceholderTarget {}

const VALUE_TRAPS: ReadonlyMap<string | symbol, string> = new Map<string | symbol, string>([
  ['valueOf', 'arithmetic or comparison'],
  ['toString', 'string conversion'],
  ['toLocaleString', 'string conversion'],
  ['toJSON', 'JSON.stringify'],
  ['then', 'await (a placeholder is not a promise)'],
  [Symbol.iterator, 'iteration or spreading'],
  [Symbol.asyncIterator, 'iteration'],
]);

function describeHint(hint: unknown): string {
  if (hint === 'number') return 'arithmetic or comparison';
  if (hint === 'string') return 'string conversion or template literal';
  return 'a `+`, `==` or other primitive conversion';
}

function asValueError(info: PlaceholderInfo, use: string): ValidationError {
  const nodeId = '$node' in info.ref ? info.ref.$node : undefined;
  return new ValidationError(
    ValidationCode.PLACEHOLDER_AS_VALUE,
    `lattice "${info.session.latticeName}": ${info.label} was used as a value (${use}) in the lattice body. ` +
      'While the graph is built it is a placeholder with no value. Move the logic into an electron, ' +
      'or use a sublattice, whose graph is built at run time from real inputs.',
    { lattice: info.session.latticeName, ...(nodeId === undefined ? {} : { nodeId }) },
  );
}

function createPlaceholder(info: PlaceholderInfo): object {
  // util.inspect (console.log) unwraps a proxy and prints its target without calling any trap,
  // so the readable form must live on the target too.
  const target = new PlaceholderTarget();
  Object.defineProperty(target, inspect.custom, { value: () => `[valence placeholder: ${info.label}]` });
  return new Proxy(target, {
    get(_target, key) {
      if (key === PLACEHOLDER) return info;
      if (key === Symbol.toPrimitive) {
        return (hint: unknown) => {
          throw asValueError(info, describeHint(hint));
        };
      }
      const isNode = '$node' in info.ref;
      if (isNode && key === Symbol.iterator) {
        return function* parts(): Generator<object> {
          for (let index = 0; index < MAX_DESTRUCTURED; index++) yield partOf(info, index);
          throw asValueError(info, `iteration or spreading past ${MAX_DESTRUCTURED} elements: an output's length is unknown while the graph is built; destructure a fixed number of elements, or pass the whole output to an electron`);
        };
      }
      const use = VALUE_TRAPS.get(key);
      if (use !== undefined) {
        return () => {
          throw asValueError(info, use);
        };
      }
      if (key === inspect.custom) return () => `[valence placeholder: ${info.label}]`;
      if (key === Symbol.toStringTag) return 'ValencePlaceholder';
      if (typeof key === 'symbol') return undefined;
      if (isNode) return partOf(info, INDEX.test(key) ? Number(key) : key);
      throw asValueError(info, `property access ".${key}"; pass the whole placeholder to an electron that reads it`);
    },
    set(_target, key) {
      throw asValueError(info, `assignment to ".${String(key)}"`);
    },
  });
}

function placeholderInfo(value: unknown): PlaceholderInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  // Reading the prototype goes through the proxy's default trap, so it never throws.
  if (Object.getPrototypeOf(value) !== PlaceholderTarget.prototype) return undefined;
  return (value as Record<symbol, PlaceholderInfo | undefined>)[PLACEHOLDER];
}

/** True when `value` is an electron-output or parameter placeholder. */
export function isPlaceholder(value: unknown): boolean {
  return placeholderInfo(value) !== undefined;
}

/** How a node is added: everything but its id and arguments. */
export interface NodeSpec {
  readonly name: string;
  readonly electron: string;
  readonly kind: NodeKind;
  readonly sublattice?: string;
  readonly executor: Executor | undefined;
  readonly retries: number;
  readonly timeoutSeconds?: number;
  readonly graceSeconds: number;
  readonly callable: NodeCallable;
}

const DEFAULT_EXECUTOR = new LambdaExecutor();

/** The state of one lattice body run. */
export class BuildSession {
  readonly nodes: GraphNode[] = [];
  readonly edges: GraphEdge[] = [];
  readonly callables = new Map<number, NodeCallable>();

  constructor(
    readonly latticeName: string,
    readonly lattice: object,
    readonly defaultExecutor: Executor | undefined,
  ) {}

  /** A placeholder for lattice parameter `index`. */
  param(index: number): unknown {
    return createPlaceholder({ session: this, ref: { $param: index }, label: `parameter ${index}` });
  }

  /** Add a node for a call with `args`; returns its output placeholder. */
  addNode(spec: NodeSpec, args: readonly unknown[]): unknown {
    const id = this.nodes.length;
    const where = `node ${id} (${spec.name})`;
    const templates = args.map((arg, position) =>
      this.template(arg, where, id, (from, path) => this.edges.push({ from, to: id, arg: joinArgPath(position, path) }), `argument ${position}`),
    );
    const executor = (spec.executor ?? this.defaultExecutor ?? DEFAULT_EXECUTOR).toJSON();
    this.nodes.push({
      id,
      name: spec.name,
      electron: spec.electron,
      kind: spec.kind,
      ...(spec.sublattice === undefined ? {} : { sublattice: spec.sublattice }),
      executor,
      retries: spec.retries,
      ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
      graceSeconds: spec.graceSeconds,
      args: templates,
    });
    this.callables.set(id, spec.callable);
    return createPlaceholder({ session: this, ref: { $node: id }, label: `the output of node ${id} (${spec.name})` });
  }

  /** The template of the lattice body's result. */
  outputTemplate(result: unknown): ArgTemplate {
    return this.template(result, 'the lattice result', undefined, () => undefined);
  }

  private template(
    value: unknown,
    where: string,
    nodeId: number | undefined,
    onNodeRef: (from: number, path: string) => void,
    root = 'the value',
  ): ArgTemplate {
    const fail = (code: ValidationCode, problem: string, cause?: unknown) =>
      new ValidationError(code, `lattice "${this.latticeName}", ${where}: ${problem}`, {
        lattice: this.latticeName,
        ...(nodeId === undefined ? {} : { nodeId }),
        cause,
      });
    const active = new Set<object>();
    const walk = (item: unknown, path: string, position: string): ArgTemplate => {
      const info = placeholderInfo(item);
      if (info !== undefined) {
        if (info.session !== this) {
          throw fail(
            ValidationCode.FOREIGN_PLACEHOLDER,
            `${position} is a placeholder from another lattice build (${info.label} of "${info.session.latticeName}"); placeholders only work inside the body that created them`,
          );
        }
        if ('$node' in info.ref) onNodeRef(info.ref.$node, path);
        return info.ref;
      }
      const container = plainContainer(item);
      if (container !== undefined && containsPlaceholder(item, new Set())) {
        if (active.has(container)) throw fail(ValidationCode.UNSERIALIZABLE_CONSTANT, `${position} is a cyclic structure that contains placeholders`);
        active.add(container);
        try {
          if (Array.isArray(container)) {
            return container.map((element: unknown, index) => walk(element, `${path}[${index}]`, `${position}[${index}]`));
          }
          const result: Record<string, ArgTemplate> = {};
          for (const [key, element] of Object.entries(container)) {
            result[escapeKey(key)] = walk(element, `${path}${formatKey(key)}`, `${position}${formatKey(key)}`);
          }
          return result;
        } finally {
          active.delete(container);
        }
      }
      if (item instanceof Map || item instanceof Set) {
        if (containsPlaceholder(item, new Set())) {
          throw fail(ValidationCode.UNSERIALIZABLE_CONSTANT, `${position} is a ${item instanceof Map ? 'Map' : 'Set'} that contains placeholders; use an array or a plain object`);
        }
      }
      try {
        return { $const: stringifyDevalue(item) };
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        const at = typeof (error as { path?: unknown }).path === 'string' ? (error as { path: string }).path : '';
        throw fail(
          ValidationCode.UNSERIALIZABLE_CONSTANT,
          `${position}${at} cannot be serialized (${detail}); constants must be data (primitives, Date, Map, Set, BigInt, typed arrays, plain objects and arrays), never functions, symbols or class instances`,
          error,
        );
      }
    };
    return walk(value, '', root);
  }
}

function plainContainer(value: unknown): unknown[] | Record<string, unknown> | undefined {
  if (Array.isArray(value)) return value as unknown[];
  if (typeof value !== 'object' || value === null) return undefined;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null ? (value as Record<string, unknown>) : undefined;
}

function containsPlaceholder(value: unknown, seen: Set<object>): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (placeholderInfo(value) !== undefined) return true;
  if (seen.has(value)) return false;
  seen.add(value);
  if (value instanceof Map) {
    for (const [key, item] of value) if (containsPlaceholder(key, seen) || containsPlaceholder(item, seen)) return true;
    return false;
  }
  if (value instanceof Set) {
    for (const item of value) if (containsPlaceholder(item, seen)) return true;
    return false;
  }
  const container = plainContainer(value);
  if (container === undefined) return false;
  return Object.values(container).some((item) => containsPlaceholder(item, seen));
}

const stack: BuildSession[] = [];

/** The innermost lattice body being built, if any. */
export function currentBuild(): BuildSession | undefined {
  return stack.at(-1);
}

/** True when `lattice` is being built somewhere up the stack (direct recursion). */
export function isBuilding(lattice: object): boolean {
  return stack.some((session) => session.lattice === lattice);
}

/** Run `body` with `session` as the current build. */
export function withBuild<T>(session: BuildSession, body: () => T): T {
  stack.push(session);
  try {
    return body();
  } finally {
    stack.pop();
  }
}
