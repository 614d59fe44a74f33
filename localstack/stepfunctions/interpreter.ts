/**
 * Loading the `aws-local-stepfunctions` interpreter safely on Node 20.
 *
 * The interpreter calls `Promise.withResolvers` (Node ≥ 22) in every Task; without it each Task
 * fails with "Promise.withResolvers is not a function". The polyfill is installed before the
 * module is imported, and the import is lazy so that a local cloud that never runs an
 * execution does not pay for loading it (and its AWS SDK Lambda client) at startup.
 */
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

/** Installs `Promise.withResolvers` on Node 20, where the interpreter needs it; a no-op on 22+. */
export function installPromiseWithResolvers(): void {
  const promiseStatics = Promise as unknown as { withResolvers?: unknown };
  if (typeof promiseStatics.withResolvers === 'function') return;
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
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
    installPromiseWithResolvers();
    const module = await import('aws-local-stepfunctions');
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
