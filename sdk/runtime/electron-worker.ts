/**
 * The worker-thread side of {@link startElectronThread}: imports the workflows module, finds
 * the electron, runs it with a task context whose `signal` aborts on cancel or timeout, and
 * posts the serialized result back.
 *
 * This module is the worker's entry when running from source. A bundled step handler calls
 * {@link serveElectronWorker} itself when it finds it is not on the main thread.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type { FromWorker, ToWorker } from './electron-thread.ts';
import { deserialize, serialize, serializeError } from './serialization.ts';
import { findElectron, type WorkflowsModule } from './workflows.ts';
import { runWithTaskContext } from '../model/context.ts';
import { TaskCancelledError } from '../errors.ts';

/** The listener of this thread, once serving, and the loader it uses. */
let served: { load: (workflows: string) => Promise<WorkflowsModule> } | undefined;

/**
 * Answers one `run` message on this worker thread.
 * @param load imports the workflows module; a bundle passes its own statically imported module.
 */
export function serveElectronWorker(load: (workflows: string) => Promise<WorkflowsModule>): void {
  // In a bundle (the step handler's, on AWS and in the local cloud) this module's own
  // top-level call runs first, as a dependency, and the bundle's call with its statically
  // imported module comes after: the last loader given serves, through one listener. Two
  // listeners would both answer each run, and the first answer (a failed import by path) won.
  if (served) {
    served.load = load;
    return;
  }
  const port = parentPort;
  if (!port) throw new Error('serveElectronWorker must run on a worker thread');
  const current = (served = { load });
  const running = new Map<number, AbortController>();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'abort') {
      running.get(message.runId)?.abort(new TaskCancelledError(message.reason));
      return;
    }
    const { call } = message;
    const controller = new AbortController();
    running.set(call.runId, controller);
    void (async () => {
      let reply: FromWorker;
      try {
        const module = await current.load(call.workflows);
        const fn = findElectron(module, call.lattice, call.electron, call.buildArgs);
        const { args } = deserialize<{ args: unknown[] }>(call.inputs);
        const output = await runWithTaskContext({ ...call.context, signal: controller.signal }, () => fn(...args));
        reply = { type: 'completed', runId: call.runId, output: serialize(output) };
      } catch (error) {
        reply = { type: 'failed', runId: call.runId, error: serializeError(error) };
      } finally {
        running.delete(call.runId);
      }
      port.postMessage(reply);
    })();
  });
}

/**
 * The workflows module, imported once per thread: a second `import()` of a cached module still
 * asks the loader to resolve it, and under tsx that is a round trip to its hooks thread on every
 * electron run.
 */
function importWorkflows(workflows: string): Promise<WorkflowsModule> {
  let pending = imported.get(workflows);
  if (!pending) {
    const url = workflows.startsWith('file:') ? workflows : pathToFileURL(workflows).href;
    pending = import(url) as Promise<WorkflowsModule>;
    imported.set(workflows, pending);
    // A failed import is not kept: the next run tries again.
    pending.catch(() => imported.delete(workflows));
  }
  return pending;
}
const imported = new Map<string, Promise<WorkflowsModule>>();

if (!isMainThread && (workerData as { valenceElectronWorker?: boolean } | undefined)?.valenceElectronWorker) {
  serveElectronWorker(importWorkflows);
}
