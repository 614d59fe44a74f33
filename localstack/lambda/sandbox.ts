/**
 * One Lambda execution environment: a worker thread that loads the handler once and serves
 * invocations one at a time. Like a Lambda sandbox it dies on timeout (the worker is
 * terminated, not asked to stop) and after a crash; the pool replaces dead sandboxes.
 */
import { Worker } from 'node:worker_threads';
import type { InvocationOutcome } from '../core/service.ts';
import type { FromSandbox, InvocationContextData, LambdaErrorPayload, SandboxData, ToSandbox } from './protocol.ts';

const bootstrapUrl = new URL('./bootstrap.mjs', import.meta.url);

/** How long a sandbox may take to load its handler module before it is declared broken. */
const INIT_TIMEOUT_MS = 30_000;

/** What one invocation needs besides the event. */
export interface SandboxInvocation {
  readonly requestId: string;
  readonly eventJson: string;
  readonly context: Omit<InvocationContextData, 'deadlineMs'>;
  readonly timeoutSeconds: number;
  /** Terminate the sandbox once the handler started (fault injection). */
  readonly crash: boolean | { readonly afterMs: number };
}

/** A sandbox's outcome: the invocation outcome, with the payload still as JSON text when ok. */
export type SandboxOutcome =
  | { readonly ok: true; readonly payloadJson: string }
  | Extract<InvocationOutcome, { ok: false }>;

interface Pending {
  readonly invocation: SandboxInvocation;
  readonly resolve: (outcome: SandboxOutcome) => void;
  timer?: NodeJS.Timeout;
  /** Pending injected crash (mid-run). */
  crashTimer?: NodeJS.Timeout;
  /** Set when the main thread decided the outcome before killing the worker. */
  decided?: SandboxOutcome;
}

/** Options of one sandbox. */
export interface SandboxOptions {
  readonly data: SandboxData;
  readonly env: Record<string, string>;
  readonly name: string;
}

/** A worker-thread Lambda sandbox. */
export class Sandbox {
  readonly #worker: Worker;
  readonly #ready: Promise<LambdaErrorPayload | undefined>;
  readonly #exited: Promise<void>;
  #alive = true;
  #pending: Pending | undefined;
  #lastError: Error | undefined;

  constructor(options: SandboxOptions) {
    this.#worker = new Worker(bootstrapUrl, {
      workerData: options.data,
      env: options.env,
      name: options.name,
      // Flags of the host process (a test runner's loader, say) are not the sandbox's business.
      execArgv: [],
      // A function's log (what it writes to stdout) is not the host's output: `valence local
      // --json` and the demo own stdout. It goes to stderr, as a log stream beside the output.
      stdout: true,
    });
    // Forwarded chunk by chunk rather than piped: a pipe per sandbox adds listeners to
    // process.stderr, and a function may have many sandboxes.
    this.#worker.stdout.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    this.#ready = new Promise((resolve) => {
      const timer = setTimeout(() => {
        resolve({ errorType: 'Runtime.InitTimeout', errorMessage: `Init phase did not finish within ${INIT_TIMEOUT_MS / 1000} seconds` });
        void this.terminate();
      }, INIT_TIMEOUT_MS);
      const onMessage = (message: FromSandbox): void => {
        if (message.type === 'ready') {
          finish(undefined);
        } else if (message.type === 'initError') {
          finish(message.error);
          // A sandbox whose init failed is discarded, as Lambda resets it.
          void this.terminate();
        }
      };
      const onExit = (code: number): void => {
        const error = this.#lastError;
        finish(error
          ? { errorType: 'Runtime.ImportModuleError', errorMessage: `${error.name}: ${error.message}` }
          : { errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during init with exit code ${code}` });
      };
      const finish = (error: LambdaErrorPayload | undefined): void => {
        clearTimeout(timer);
        this.#worker.off('message', onMessage);
        this.#worker.off('exit', onExit);
        resolve(error);
      };
      this.#worker.on('message', onMessage);
      this.#worker.on('exit', onExit);
    });
    this.#worker.on('message', (message: FromSandbox) => this.#onMessage(message));
    this.#worker.on('error', (error: Error) => {
      this.#lastError = error;
    });
    this.#worker.on('exit', (code: number) => this.#onExit(code));
  }

  /** False once the worker exited or is being terminated; a dead sandbox is never reused. */
  get alive(): boolean {
    return this.#alive;
  }

  /** Thread id of the worker, for logs and tests. */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /** Resolves when the handler module is loaded, with the init error if it failed. */
  ready(): Promise<LambdaErrorPayload | undefined> {
    return this.#ready;
  }

  /** Runs one invocation; the caller must not start another before this one settles. */
  run(invocation: SandboxInvocation): Promise<SandboxOutcome> {
    if (!this.#alive || this.#pending) {
      return Promise.resolve(exitOutcome(invocation.requestId, 'sandbox unavailable'));
    }
    return new Promise<SandboxOutcome>((resolve) => {
      const pending: Pending = { invocation, resolve };
      this.#pending = pending;
      const timeoutMs = Math.round(invocation.timeoutSeconds * 1000);
      const context: InvocationContextData = { ...invocation.context, deadlineMs: Date.now() + timeoutMs };
      pending.timer = setTimeout(() => {
        // As on Lambda, a timed-out sandbox is destroyed: whatever the handler still does dies with it.
        this.#decide({
          ok: false,
          functionError: 'Unhandled',
          payload: { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${invocation.timeoutSeconds.toFixed(2)} seconds` },
        });
      }, timeoutMs);
      const message: ToSandbox = { type: 'invoke', requestId: invocation.requestId, eventJson: invocation.eventJson, context, announceStart: Boolean(invocation.crash) };
      this.#worker.postMessage(message);
    });
  }

  /** Terminates the worker and waits until it exited. */
  async terminate(): Promise<void> {
    this.#alive = false;
    await this.#worker.terminate();
    await this.#exited;
  }

  /** Settles the current invocation with `outcome` and kills the worker. */
  #decide(outcome: SandboxOutcome): void {
    const pending = this.#pending;
    if (!pending || pending.decided) return;
    pending.decided = outcome;
    this.#alive = false;
    void this.#worker.terminate();
  }

  #settle(outcome: SandboxOutcome): void {
    const pending = this.#pending;
    if (!pending) return;
    clearTimeout(pending.timer);
    clearTimeout(pending.crashTimer);
    this.#pending = undefined;
    pending.resolve(pending.decided ?? outcome);
  }

  #onMessage(message: FromSandbox): void {
    const pending = this.#pending;
    if (!pending || !('requestId' in message) || message.requestId !== pending.invocation.requestId) return;
    if (pending.decided) return;
    switch (message.type) {
      case 'started':
        if (pending.invocation.crash) {
          const crash = pending.invocation.crash;
          const kill = (): void => this.#decide(exitOutcome(pending.invocation.requestId, 'signal: killed (crash injected)'));
          if (typeof crash === 'object' && crash.afterMs > 0) pending.crashTimer = setTimeout(kill, crash.afterMs);
          else kill();
        }
        return;
      case 'result':
        this.#settle({ ok: true, payloadJson: message.payloadJson });
        return;
      case 'error':
        this.#settle({ ok: false, functionError: 'Unhandled', payload: message.error });
        return;
    }
  }

  #onExit(code: number): void {
    this.#alive = false;
    const pending = this.#pending;
    if (!pending) return;
    if (pending.decided) {
      this.#settle(pending.decided);
      return;
    }
    // The handler's code ended the worker: an uncaught error or process.exit().
    const error = this.#lastError;
    this.#settle(error
      ? { ok: false, functionError: 'Unhandled', payload: { errorType: error.name || 'Error', errorMessage: error.message, ...(error.stack ? { trace: error.stack.split('\n') } : {}) } }
      : exitOutcome(pending.invocation.requestId, `exit status ${code}`));
  }
}

function exitOutcome(requestId: string, detail: string): SandboxOutcome {
  return {
    ok: false,
    functionError: 'Unhandled',
    payload: { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${detail}` },
  };
}
