/**
 * Electrons: tasks, written as ordinary TypeScript functions.
 *
 * @module
 */
import { ValidationCode, ValidationError } from '../errors.ts';
import type { BraketExecutor, Executor } from './executors.ts';
import { currentBuild } from './build.ts';
import type { Inputs, Node } from './build.ts';
import { checkName, defaultName, resolveExecutor, resolveNodeOptions } from './options.ts';
import type { NodeOptions, ResolvedNodeOptions } from './options.ts';

/** Options of {@link electron}. */
export interface ElectronOptions extends NodeOptions {
  /**
   * The electron's name, shown in state names and results: 1–64 characters of `[A-Za-z0-9_.$-]`.
   * @default the function's name, or `anonymous`
   */
  readonly name?: string;
  /**
   * Where the electron runs.
   * @default the lattice's executor, else a `LambdaExecutor`
   */
  readonly executor?: Executor;
}

/** {@link ElectronOptions} after validation and defaults. */
export interface ResolvedElectronOptions extends ResolvedNodeOptions {
  readonly name: string;
  readonly executor?: Executor;
}

/**
 * What a Braket node outputs: measurement counts per bitstring, e.g. `{ "00": 503, "11": 497 }`.
 * (The electron itself returns the OpenQASM 3 program; the quantum task's result is the output.)
 */
export type MeasurementCounts = Record<string, number>;

/**
 * A task. Called inside a lattice body it adds a node and returns a placeholder for its
 * output (`O`: the function's resolved result, or {@link MeasurementCounts} on Braket); it
 * never runs there. The runtime (or a unit test) runs the function itself via
 * {@link Electron.fn}.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- default must accept any argument list (parameter variance)
export interface Electron<A extends unknown[] = any[], R = unknown, O = Awaited<R>> {
  (...args: Inputs<A>): Node<O>;
  readonly kind: 'electron';
  /** The electron's name. */
  readonly name: string;
  /** The original function: what the runtime runs. */
  readonly fn: (...args: A) => R;
  /** Validated options. */
  readonly options: ResolvedElectronOptions;
}

/**
 * Define an electron.
 *
 * @example
 * ```ts
 * const add = electron((a: number, b: number) => a + b);
 * const train = electron({ executor: new BatchExecutor({ jobQueue: 'gpu', vcpus: 8, memoryMiB: 32768, gpus: 1 }), timeoutSeconds: 3600 },
 *   async function train(data: number[]) { ... });
 * ```
 */
export function electron<A extends unknown[], R>(fn: (...args: A) => R): Electron<A, R>;
export function electron<A extends unknown[]>(
  options: ElectronOptions & { readonly executor: BraketExecutor },
  fn: (...args: A) => string | Promise<string>,
): Electron<A, string | Promise<string>, MeasurementCounts>;
export function electron<A extends unknown[], R>(options: ElectronOptions, fn: (...args: A) => R): Electron<A, R>;
export function electron<A extends unknown[], R>(
  optionsOrFn: ElectronOptions | ((...args: A) => R),
  maybeFn?: (...args: A) => R,
): Electron<A, R, unknown> {
  const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn ?? {}, maybeFn];
  if (typeof fn !== 'function') {
    throw new ValidationError(ValidationCode.INVALID_OPTION, 'electron(options, fn): fn must be a function');
  }
  const name =
    options.name === undefined
      ? defaultName(fn, 64) || 'anonymous'
      : checkName('electron', options.name, '1-64 characters of [A-Za-z0-9_.$-]');
  const owner = `electron "${name}"`;
  const executor = resolveExecutor(owner, options.executor);
  const resolved: ResolvedElectronOptions = Object.freeze({
    name,
    ...(executor === undefined ? {} : { executor }),
    ...resolveNodeOptions(owner, options),
  });
  const call = (...args: unknown[]): unknown => {
    const session = currentBuild();
    if (session === undefined) {
      throw new ValidationError(
        ValidationCode.ELECTRON_OUTSIDE_LATTICE,
        `electron "${name}" was called outside a lattice body, so nothing ran. Inside a lattice body an electron call ` +
          `adds a node to the graph; to run the function itself (for example in a unit test), call ${name}.fn(...).`,
      );
    }
    return session.addNode(
      {
        name,
        electron: name,
        kind: 'electron',
        executor: resolved.executor,
        retries: resolved.retries,
        ...(resolved.timeoutSeconds === undefined ? {} : { timeoutSeconds: resolved.timeoutSeconds }),
        graceSeconds: resolved.graceSeconds,
        callable: electronObject,
      },
      args,
    );
  };
  Object.defineProperty(call, 'name', { value: name });
  Object.defineProperties(call, {
    kind: { value: 'electron', enumerable: true },
    fn: { value: fn, enumerable: true },
    options: { value: resolved, enumerable: true },
  });
  const electronObject = call as unknown as Electron<A, R, unknown>;
  return electronObject;
}

/** True when `value` was made by {@link electron}. */
export function isElectron(value: unknown): value is Electron {
  return typeof value === 'function' && (value as { kind?: unknown }).kind === 'electron';
}
