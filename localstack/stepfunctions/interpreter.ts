/**
 * Loading the `aws-local-stepfunctions` interpreter on Node 20 without touching the host.
 *
 * The interpreter calls `Promise.withResolvers` (Node ≥ 22) in every Task; without it each Task
 * fails with "Promise.withResolvers is not a function". Installing a polyfill on the global
 * `Promise` would change every module of the host process (the user's program, when the
 * local cloud runs inside it). Instead, on a Node without it, the interpreter's CommonJS build
 * is compiled with its own `Promise` binding, a subclass that has `withResolvers`: only the
 * interpreter sees it, and the global `Promise` stays as it is. On Node 22+ it is loaded as is.
 * The load is lazy so that a local cloud that never runs an execution does not pay for it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { compileFunction } from 'node:vm';
import type { StateMachine as InterpreterStateMachine } from 'aws-local-stepfunctions';

/** The interpreter's exports that the service uses. */
export interface Interpreter {
  readonly StateMachine: typeof InterpreterStateMachine;
  readonly ExecutionAbortedError: new () => Error;
  readonly ExecutionTimeoutError: new () => Error;
  /**
   * Builds the interpreter's own `States.Timeout` error. Its `Retry`/`Catch` matching treats
   * `States.TaskFailed` as "anything but a timeout" by checking `instanceof` on its private
   * timeout class, so timeouts the service enforces must be instances of that very class.
   */
  readonly timeoutError: (cause: string) => Error;
}

/** The interpreter module's exports. */
export type InterpreterModule = typeof import('aws-local-stepfunctions');

/** `Promise` plus `withResolvers`, for the interpreter's eyes only (Node 20 lacks it). */
class PromiseWithResolvers<T> extends Promise<T> {
  static withResolvers<T>(): { promise: Promise<T>; resolve: (value: T | PromiseLike<T>) => void; reject: (reason?: unknown) => void } {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }
}

let interpreterModule: InterpreterModule | undefined;

/**
 * The `aws-local-stepfunctions` module, loaded once per process, with `Promise.withResolvers`
 * available to it alone (see the module comment). Tests and benchmarks that drive the
 * interpreter directly load it through here too.
 */
export function loadInterpreterModule(): InterpreterModule {
  if (interpreterModule) return interpreterModule;
  const require = createRequire(import.meta.url);
  if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers === 'function') {
    interpreterModule = require('aws-local-stepfunctions') as InterpreterModule;
    return interpreterModule;
  }
  const file = require.resolve('aws-local-stepfunctions');
  const run = compileFunction(readFileSync(file, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname', 'Promise'], { filename: file });
  const module = { exports: {} as InterpreterModule };
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file), PromiseWithResolvers);
  interpreterModule = module.exports;
  return interpreterModule;
}

/**
 * Runs a one-state machine whose task outlives a 1 ms timeout and returns the class of the
 * error the interpreter raises, falling back to a look-alike if that ever changes.
 */
async function discoverTimeoutErrorClass(StateMachine: typeof InterpreterStateMachine): Promise<(new () => Error) | undefined> {
  const probe = new StateMachine(
    {
      StartAt: 'Probe',
      States: { Probe: { Type: 'Task', Resource: 'probe', TimeoutSeconds: 0.001, End: true } },
    },
    { validationOptions: { noValidate: true } },
  );
  const run = probe.run(null, {
    overrides: {
      taskResourceLocalHandlers: {
        Probe: () => new Promise((resolve) => setTimeout(() => resolve(null), 30).unref()),
      },
    },
  });
  try {
    await run.result;
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.name === 'States.Timeout') {
      return cause.constructor as new () => Error;
    }
  }
  return undefined;
}

let loading: Promise<Interpreter> | undefined;

/** The interpreter, loaded once per process. */
export function loadInterpreter(): Promise<Interpreter> {
  loading ??= (async () => {
    const module = loadInterpreterModule();
    const TimeoutError = await discoverTimeoutErrorClass(module.StateMachine);
    const timeoutError = (cause: string): Error => {
      const error = TimeoutError ? new TimeoutError() : Object.assign(new Error(cause), { name: 'States.Timeout' });
      error.message = cause;
      return error;
    };
    return {
      StateMachine: module.StateMachine,
      ExecutionAbortedError: module.ExecutionAbortedError,
      ExecutionTimeoutError: module.ExecutionTimeoutError,
      timeoutError,
    };
  })();
  return loading;
}
