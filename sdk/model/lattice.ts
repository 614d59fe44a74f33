/**
 * Lattices (workflows), sublattices, and the app-wide lattice registry.
 *
 * @module
 */
import { ValidationCode, ValidationError } from '../errors.ts';
import type { Executor } from './executors.ts';
import { BuildSession, currentBuild, isBuilding, withBuild } from './build.ts';
import type { Inputs, Node, Resolved } from './build.ts';
import type { Electron } from './electron.ts';
import { TransportGraph } from './graph.ts';
import { checkName, defaultName, resolveExecutor, resolveNodeOptions } from './options.ts';
import type { NodeOptions, ResolvedNodeOptions } from './options.ts';

/**
 * The lattices of one app, by name. Lattice names must be unique in an app because each
 * becomes a state machine. Tests create their own registry (or `clear()` the default one).
 */
export class LatticeRegistry {
  readonly #byName = new Map<string, Lattice>();

  /**
   * Add `lattice`. Registering the same lattice object again is a no-op; another lattice
   * under a taken name is a `VALIDATION_DUPLICATE_LATTICE` error.
   */
  register(lattice: Lattice): void {
    const existing = this.#byName.get(lattice.name);
    if (existing !== undefined && existing !== lattice && existing.fn !== lattice.fn) {
      throw new ValidationError(
        ValidationCode.DUPLICATE_LATTICE,
        `lattice name "${lattice.name}" is already used by another lattice in this app; lattice names must be unique because each becomes a state machine`,
        { lattice: lattice.name },
      );
    }
    this.#byName.set(lattice.name, lattice);
  }

  /** The lattice named `name`, if registered. */
  get(name: string): Lattice | undefined {
    return this.#byName.get(name);
  }

  /** Every registered lattice, in registration order. */
  list(): Lattice[] {
    return [...this.#byName.values()];
  }

  /** Forget every lattice (for tests). */
  clear(): void {
    this.#byName.clear();
  }
}

/** The registry {@link lattice} uses unless told otherwise. */
export const defaultLatticeRegistry = new LatticeRegistry();

/** Options of {@link lattice}. */
export interface LatticeOptions {
  /**
   * Unique in the app; becomes the state machine's name: 1–80 characters of `[A-Za-z0-9_-]`.
   * @default the function's name
   */
  readonly name?: string;
  /**
   * Default executor of the lattice's electrons.
   * @default a `LambdaExecutor`
   */
  readonly executor?: Executor;
  /** Free text stored with the graph. */
  readonly description?: string;
  /**
   * Where the lattice is registered.
   * @default defaultLatticeRegistry
   */
  readonly registry?: LatticeRegistry;
}

/** What a transport graph built from a lattice maps node ids to. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- must accept electrons and lattices of every signature (variance)
export type GraphCallable = Electron<any, any> | Lattice<any, any>;

/**
 * A workflow. Its body wires electrons together; {@link Lattice.template} and
 * {@link Lattice.build} run the body to produce a transport graph and run no electron.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- default must accept any argument list (parameter variance)
export class Lattice<A extends unknown[] = any[], R = unknown> {
  readonly kind = 'lattice';
  readonly name: string;
  readonly description: string | undefined;
  readonly executor: Executor | undefined;
  /** The body. */
  readonly fn: (...args: A) => R;
  /** Number of parameters (the body's declared parameters, `fn.length`). */
  readonly paramCount: number;

  /** Use {@link lattice} to define lattices. */
  constructor(options: LatticeOptions, fn: (...args: A) => R) {
    if (typeof fn !== 'function') throw new ValidationError(ValidationCode.INVALID_OPTION, 'lattice(options, fn): fn must be a function');
    this.name = checkName(
      'lattice',
      options.name ?? defaultName(fn, 80),
      'lattice names become Step Functions state-machine names: 1-80 characters of [A-Za-z0-9_-]' +
        (options.name === undefined ? '; pass { name } for an anonymous body' : ''),
    );
    this.executor = resolveExecutor(`lattice "${this.name}"`, options.executor);
    if (options.description !== undefined && typeof options.description !== 'string') {
      throw new ValidationError(ValidationCode.INVALID_OPTION, `lattice "${this.name}": option "description" must be a string`, { lattice: this.name });
    }
    this.description = options.description;
    this.fn = fn;
    this.paramCount = fn.length;
    (options.registry ?? defaultLatticeRegistry).register(this);
  }

  /**
   * The graph with parameter placeholders (`{ $param: i }`): what is compiled, hashed and
   * deployed. A parameter used as a value in the body is a `VALIDATION_PLACEHOLDER_AS_VALUE` error.
   */
  template(): TransportGraph<GraphCallable> {
    return this.#run((session) => Array.from({ length: this.paramCount }, (_, index) => session.param(index)));
  }

  /**
   * The graph for real arguments, embedded as constants. Used for sublattices at run time
   * (the body may branch on its inputs) and in tests. Runs no electron.
   */
  build(...args: A): TransportGraph<GraphCallable> {
    return this.#run(() => args);
  }

  #run(argsFor: (session: BuildSession) => unknown[]): TransportGraph<GraphCallable> {
    const session = new BuildSession(this.name, this, this.executor);
    const output = withBuild(session, () => {
      const result: unknown = this.fn(...(argsFor(session) as A));
      if (result instanceof Promise) {
        result.catch(() => undefined); // the body's own rejection is reported by the error below
        throw new ValidationError(
          ValidationCode.ASYNC_LATTICE_BODY,
          `lattice "${this.name}": the body returned a promise. A lattice body only wires electrons together and must be synchronous; ` +
            'put awaited work inside electrons.',
          { lattice: this.name },
        );
      }
      return session.outputTemplate(result);
    });
    return new TransportGraph<GraphCallable>(
      {
        lattice: {
          name: this.name,
          ...(this.description === undefined ? {} : { description: this.description }),
          params: this.paramCount,
        },
        nodes: session.nodes,
        edges: session.edges,
        output,
      },
      session.callables as Map<number, GraphCallable>,
    );
  }
}

/**
 * Define a lattice (a workflow).
 *
 * @example
 * ```ts
 * export const pipeline = lattice({ name: 'pipeline' }, (n: number) => {
 *   const data = load(n);
 *   return summarize(clean(data));
 * });
 * ```
 */
export function lattice<A extends unknown[], R>(fn: (...args: A) => R): Lattice<A, R>;
export function lattice<A extends unknown[], R>(options: LatticeOptions, fn: (...args: A) => R): Lattice<A, R>;
export function lattice<A extends unknown[], R>(
  optionsOrFn: LatticeOptions | ((...args: A) => R),
  maybeFn?: (...args: A) => R,
): Lattice<A, R> {
  if (typeof optionsOrFn === 'function') return new Lattice<A, R>({}, optionsOrFn);
  return new Lattice<A, R>(optionsOrFn ?? {}, maybeFn as (...args: A) => R);
}

/** Options of {@link sublattice}. */
export interface SublatticeOptions extends NodeOptions {
  /**
   * Node name in the parent graph.
   * @default the lattice's name
   */
  readonly name?: string;
}

/** A lattice used as one node of another lattice. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- default must accept any argument list (parameter variance)
export interface Sublattice<A extends unknown[] = any[], R = unknown> {
  (...args: Inputs<A>): Node<Resolved<R>>;
  readonly kind: 'sublattice';
  readonly lattice: Lattice<A, R>;
  readonly options: ResolvedNodeOptions & { readonly name: string };
}

/**
 * Use `lattice` as one node of another lattice: its graph is built at run time from the real
 * inputs (so its body may branch on them) and runs as a child dispatch.
 */
export function sublattice<A extends unknown[], R>(lattice: Lattice<A, R>, options: SublatticeOptions = {}): Sublattice<A, R> {
  if (!(lattice instanceof Lattice)) throw new ValidationError(ValidationCode.INVALID_OPTION, 'sublattice(lattice): expected a lattice');
  const name = options.name === undefined ? lattice.name : checkName('electron', options.name, '1-64 characters of [A-Za-z0-9_.$-]');
  const resolved = Object.freeze({ name, ...resolveNodeOptions(`sublattice "${name}"`, options) });
  const call = (...args: unknown[]): unknown => {
    const session = currentBuild();
    if (session === undefined) {
      throw new ValidationError(
        ValidationCode.ELECTRON_OUTSIDE_LATTICE,
        `sublattice "${lattice.name}" was called outside a lattice body, so nothing ran; call it inside another lattice's body`,
        { lattice: lattice.name },
      );
    }
    if (isBuilding(lattice)) {
      throw new ValidationError(
        ValidationCode.RECURSIVE_SUBLATTICE,
        `lattice "${session.latticeName}": sublattice "${lattice.name}" is used inside its own body, which would never finish`,
        { lattice: session.latticeName },
      );
    }
    return session.addNode(
      {
        name,
        electron: lattice.name,
        kind: 'sublattice',
        sublattice: lattice.name,
        executor: lattice.executor,
        retries: resolved.retries,
        ...(resolved.timeoutSeconds === undefined ? {} : { timeoutSeconds: resolved.timeoutSeconds }),
        graceSeconds: resolved.graceSeconds,
        callable: lattice,
      },
      args,
    );
  };
  Object.defineProperty(call, 'name', { value: name });
  Object.defineProperties(call, {
    kind: { value: 'sublattice', enumerable: true },
    lattice: { value: lattice, enumerable: true },
    options: { value: resolved, enumerable: true },
  });
  return call as unknown as Sublattice<A, R>;
}
