/**
 * Validation of electron and lattice options, shared by both.
 *
 * @module
 */
import { ValidationCode, ValidationError } from '../errors.ts';
import { Executor } from './executors.ts';

/** Lattice names become state-machine names: 1–80 characters of `[A-Za-z0-9_-]`. */
export const LATTICE_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/** Electron names appear in state names (`3-train_model`): 1–64 characters of `[A-Za-z0-9_.$-]`. */
export const ELECTRON_NAME = /^[A-Za-z0-9_.$-]{1,64}$/;

/** Default seconds between aborting a cancelled electron's signal and killing its worker. */
export const DEFAULT_GRACE_SECONDS = 10;

/** Options shared by electrons and sublattice nodes. */
export interface NodeOptions {
  /**
   * Extra attempts after a failure (not after a cancellation).
   * @default 0
   */
  readonly retries?: number;
  /**
   * Time limit of one attempt, in whole seconds.
   * @default no limit beyond the executor's own
   */
  readonly timeoutSeconds?: number;
  /**
   * Seconds a cancelled electron gets, after its `AbortSignal` fires, before its worker is killed.
   * @default 10
   */
  readonly graceSeconds?: number;
}

/** {@link NodeOptions} with defaults applied. */
export interface ResolvedNodeOptions {
  readonly retries: number;
  readonly timeoutSeconds?: number;
  readonly graceSeconds: number;
}

function invalidOption(owner: string, option: string, expected: string, got: unknown): ValidationError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : typeof got === 'object' && got !== null ? typeof got : String(got);
  return new ValidationError(ValidationCode.INVALID_OPTION, `${owner}: option "${option}" must be ${expected}, got ${shown}`);
}

function integerOption(owner: string, option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(owner, option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** Validate and default {@link NodeOptions}; `owner` names the electron in messages. */
export function resolveNodeOptions(owner: string, options: NodeOptions): ResolvedNodeOptions {
  const retries = options.retries === undefined ? 0 : integerOption(owner, 'retries', options.retries, 0, 100);
  const timeoutSeconds =
    options.timeoutSeconds === undefined ? undefined : integerOption(owner, 'timeoutSeconds', options.timeoutSeconds, 1, 31_536_000);
  const graceSeconds =
    options.graceSeconds === undefined ? DEFAULT_GRACE_SECONDS : integerOption(owner, 'graceSeconds', options.graceSeconds, 0, 3600);
  return { retries, ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }), graceSeconds };
}

/** Validate an optional executor option. */
export function resolveExecutor(owner: string, executor: unknown): Executor | undefined {
  if (executor === undefined) return undefined;
  if (!(executor instanceof Executor)) throw invalidOption(owner, 'executor', 'an Executor instance', executor);
  return executor;
}

/** Check a name against `pattern`, naming the rule in the error. */
export function checkName(kind: 'lattice' | 'electron', name: unknown, rule: string): string {
  const pattern = kind === 'lattice' ? LATTICE_NAME : ELECTRON_NAME;
  if (typeof name !== 'string' || !pattern.test(name)) {
    throw new ValidationError(
      ValidationCode.INVALID_NAME,
      `${kind} name ${JSON.stringify(name)} is invalid: ${rule}`,
      kind === 'lattice' && typeof name === 'string' ? { lattice: name } : {},
    );
  }
  return name;
}

/** A usable default name from a function's name: invalid characters become `_`. */
export function defaultName(fn: { readonly name: string }, maxLength: number): string {
  return fn.name.replace(/^bound /, '').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, maxLength);
}
