/**
 * Runs electrons in worker threads so that they can really be stopped.
 *
 * A cancel first aborts the electron's `AbortSignal` (a well-behaved electron returns or
 * throws promptly); an electron that ignores it is terminated with `worker.terminate()` once
 * its grace period ends — a CPU-bound loop stops within milliseconds. A timeout ends the same
 * way. Values cross the thread boundary only in valence's serialization format.
 *
 * A thread whose electron ended normally is kept warm for the next run in the same handler
 * container (loading the workflows module dominates a cold run); a thread that was stopped
 * is always terminated, so nothing of a cancelled electron survives.
 */
import { Worker } from 'node:worker_threads';
import type { SerializedError } from './serialization.ts';

const TS_BOOT = new URL('./ts-worker-boot.mjs', import.meta.url);

/** What the worker needs to find and run the electron. */
export interface ElectronCall {
  /** URL of the module the worker imports: it must call `serveElectronWorker` when not on the main thread. */
  readonly workerUrl: URL;
  /** Whether the worker must register tsx before importing (modules taken as written). */
  readonly typescript: boolean;
  /** The workflows module (file URL) that defines the lattice. */
  readonly workflows: string;
  /** The lattice whose graph holds the node (for a child dispatch, the sublattice's lattice). */
  readonly lattice: string;
  /** Electron name, as the graph records it. */
  readonly electron: string;
  /** Serialized `{ args }` for the call. */
  readonly inputs: string;
  /** Serialized build arguments when the lattice's graph depends on them (child dispatches). */
  readonly buildArgs?: string;
  readonly context: { readonly dispatchId: string; readonly nodeId: number; readonly attempt: number };
}

/** How a run in a thread ended. */
export type ThreadOutcome =
  | { readonly outcome: 'completed'; readonly output: string }
  | { readonly outcome: 'failed'; readonly error: SerializedError }
  | { readonly outcome: 'cancelled'; readonly method: 'signal' | 'terminated' }
  | { readonly outcome: 'timed-out'; readonly method: 'signal' | 'terminated' };

/** The run request as posted to the worker. */
export type RunRequest = Omit<ElectronCall, 'workerUrl' | 'typescript'> & { readonly runId: number };
/** Messages from parent to worker. */
export type ToWorker = { readonly type: 'run'; readonly call: RunRequest } | { readonly type: 'abort'; readonly runId: number; readonly reason: string };
/** Messages from worker to parent. */
export type FromWorker =
  | { readonly type: 'completed'; readonly runId: number; readonly output: string }
  | { readonly type: 'failed'; readonly runId: number; readonly error: SerializedError };

/** A running electron: await `done`, call `stop` to cancel it (signal, then terminate). */
export interface ThreadRun {
  readonly done: Promise<ThreadOutcome>;
  /**
   * Aborts the electron's signal, then terminates the thread after `graceMs`. Called again
   * with `graceMs` 0 while stopping (a forced cancel during the grace period), it terminates now.
   */
  stop(kind: 'cancelled' | 'timed-out', reason: string, graceMs: number): void;
  /** Thread id, for diagnostics and tests. */
  readonly threadId: number;
}

const idle = new Map<string, Worker[]>();
let nextRunId = 1;

function poolKey(call: ElectronCall): string {
  return `${call.typescript}\u0000${call.workerUrl.href}`;
}

function takeWorker(call: ElectronCall): Worker {
  const pooled = idle.get(poolKey(call))?.pop();
  if (pooled) return pooled;
  const worker = new Worker(call.typescript ? TS_BOOT : call.workerUrl, {
    workerData: { valenceElectronWorker: true, entry: call.workerUrl.href },
  });
  // An idle worker must not keep the process alive.
  worker.unref();
  return worker;
}

function parkWorker(call: ElectronCall, worker: Worker): void {
  const list = idle.get(poolKey(call)) ?? [];
  if (list.length >= 2) {
    void worker.terminate();
    return;
  }
  list.push(worker);
  idle.set(poolKey(call), list);
}

/** Terminates every warm worker (tests and shutdown). */
export async function closeElectronThreads(): Promise<void> {
  const all = [...idle.values()].flat();
  idle.clear();
  await Promise.all(all.map((w) => w.terminate()));
}

/** Starts the electron on a warm or fresh worker thread. */
export function startElectronThread(call: ElectronCall): ThreadRun {
  const worker = takeWorker(call);
  worker.ref();
  const runId = nextRunId++;
  let stopping: { kind: 'cancelled' | 'timed-out'; method: 'signal' | 'terminated' } | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let settle!: (outcome: ThreadOutcome) => void;
  const done = new Promise<ThreadOutcome>((resolve) => {
    settle = resolve;
  });
  let settled = false;
  const cleanup = (): void => {
    worker.off('message', onMessage);
    worker.off('error', onError);
    worker.off('exit', onExit);
    if (killTimer) clearTimeout(killTimer);
  };
  const finish = (outcome: ThreadOutcome, reusable: boolean): void => {
    if (settled) return;
    settled = true;
    cleanup();
    settle(outcome);
    if (reusable) {
      worker.unref();
      parkWorker(call, worker);
    } else {
      void worker.terminate();
    }
  };
  const onMessage = (message: FromWorker): void => {
    if (message.runId !== runId) return;
    if (stopping) {
      // The electron returned or threw after its signal fired: it honoured the cancel.
      finish({ outcome: stopping.kind, method: 'signal' }, false);
      return;
    }
    if (message.type === 'completed') finish({ outcome: 'completed', output: message.output }, true);
    else finish({ outcome: 'failed', error: message.error }, true);
  };
  const onError = (error: Error): void => {
    if (stopping) return finish({ outcome: stopping.kind, method: stopping.method }, false);
    finish({ outcome: 'failed', error: { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) } }, false);
  };
  const onExit = (code: number): void => {
    if (stopping) return finish({ outcome: stopping.kind, method: stopping.method }, false);
    finish({ outcome: 'failed', error: { name: 'WorkerExited', message: `The electron's worker thread exited with code ${code} before it returned` } }, false);
  };
  worker.on('message', onMessage);
  worker.on('error', onError);
  worker.on('exit', onExit);
  const request: RunRequest = {
    runId,
    workflows: call.workflows,
    lattice: call.lattice,
    electron: call.electron,
    inputs: call.inputs,
    context: call.context,
    ...(call.buildArgs === undefined ? {} : { buildArgs: call.buildArgs }),
  };
  worker.postMessage({ type: 'run', call: request } satisfies ToWorker);
  return {
    done,
    threadId: worker.threadId,
    stop(kind, reason, graceMs) {
      if (settled) return;
      if (stopping) {
        // Escalation: a forced cancel does not wait out the grace period already running.
        if (graceMs > 0) return;
        if (killTimer) clearTimeout(killTimer);
        stopping.method = 'terminated';
        void worker.terminate();
        return;
      }
      const state: { kind: 'cancelled' | 'timed-out'; method: 'signal' | 'terminated' } = { kind, method: 'signal' };
      stopping = state;
      worker.postMessage({ type: 'abort', runId, reason } satisfies ToWorker);
      killTimer = setTimeout(() => {
        if (settled) return;
        state.method = 'terminated';
        void worker.terminate();
      }, Math.max(0, graceMs));
    },
  };
}
