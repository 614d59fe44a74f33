/**
 * The step handler's factory: every Task state of every compiled lattice invokes the handler
 * with `{ action, dispatchId, nodeId }`. Thin: it builds its dependencies once per warm
 * container and hands each event to the SDK runtime. `lambdas/step.ts` is the entry that
 * reads the workflows module from the environment; a bundle's generated entry passes it.
 *
 * Two ways to get the workflows module: a bundle (infra) imports it statically and passes it
 * to {@link createStepHandler}; running from source (the local cloud) names it in
 * `VALENCE_WORKFLOWS` and this module imports it on first use. The same module is also the
 * entry of the worker threads that run electrons.
 *
 * Each invocation runs under its own signal: Lambda's remaining time minus the safety margin
 * (`runInvocation` in sdk/runtime/context.ts). At the deadline every store and AWS call stops,
 * the node keeps its last whole write, and the handler throws `InvocationDeadlineError`, which
 * the compiled Retry retries; the retry takes the node over once its lease lapses.
 */
import { ENV } from '../sdk/contract.ts';
import { isMainThread, workerData } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runInvocation, runtimeContextFromEnv, type RuntimeContext } from '../sdk/runtime/context.ts';
import { ConfigurationError } from '../sdk/runtime/config.ts';
import { handleStep, type InvocationInfo, type StepEvent } from '../sdk/runtime/step.ts';
import { createGraphCatalog, importWorkflows, type WorkflowsModule } from '../sdk/runtime/workflows.ts';
import { serveElectronWorker } from '../sdk/runtime/electron-worker.ts';
import { loggedInvocation, NO_NODE, type InvocationLogKeys } from './log.ts';

/** Dependencies of the step handler; everything optional comes from the environment. */
export interface StepHandlerDeps {
  /** The workflows module, when bundled with the handler. */
  readonly workflows?: WorkflowsModule;
  /** Its path or URL, when imported at run time. @default process.env[ENV.workflows] */
  readonly workflowsPath?: string;
  /** The runtime context. @default built from the environment on first use */
  readonly ctx?: RuntimeContext;
  /** Entry of electron worker threads. @default this module (or the bundle that contains it) */
  readonly workerUrl?: URL;
}

const fromSource = import.meta.url.endsWith('.ts');
// valence's own modules: `.ts` when it runs from source, `.js` in the published build.
const EXT = fromSource ? '.ts' : '.js';
const JOB_RUNNER = fileURLToPath(new URL(`../sdk/runtime/job-runner${EXT}`, import.meta.url));
/** A workflows module written in TypeScript needs tsx in every thread and process that imports it. */
const isTypeScript = (path: string): boolean => /\.[cm]?tsx?$/.test(path);

/** Creates the Lambda handler. On a worker thread it serves electron runs instead. */
export function createStepHandler(deps: StepHandlerDeps = {}): (event: StepEvent, context: InvocationInfo) => Promise<unknown> {
  if (!isMainThread && (workerData as { valenceElectronWorker?: boolean } | undefined)?.valenceElectronWorker) {
    serveElectronWorker(async (workflows) => deps.workflows ?? importWorkflows(workflows));
    return () => Promise.reject(new ConfigurationError('the step handler does not run on an electron worker thread'));
  }
  let stepDeps: Parameters<typeof handleStep>[0] | undefined;
  const init = (): Parameters<typeof handleStep>[0] => {
    const ctx = deps.ctx ?? runtimeContextFromEnv();
    const workflows = deps.workflowsPath ?? process.env[ENV.workflows] ?? (deps.workflows ? 'bundled' : undefined);
    if (!workflows) throw new ConfigurationError('VALENCE_WORKFLOWS is not set and no workflows module was bundled');
    const catalog = createGraphCatalog({
      ctx,
      // What a LocalExecutor's child process imports: the module's path when there is one (the
      // local cloud's bundles keep the source beside them), else this bundle.
      workflows: deps.workflows && deps.workflowsPath === undefined ? pathToFileURL(fileURLToPath(import.meta.url)).href : workflows,
      ...(deps.workflows ? { module: deps.workflows } : {}),
      // A bundle is its own worker entry (the local cloud's bundles say so with `workerUrl`);
      // from source or the published build, the worker imports the workflows module by path,
      // through tsx when it is TypeScript.
      worker: deps.workflows && (!fromSource || deps.workerUrl !== undefined)
        ? { workerUrl: deps.workerUrl ?? new URL(import.meta.url), typescript: false }
        : { workerUrl: new URL(`../sdk/runtime/electron-worker${EXT}`, import.meta.url), typescript: fromSource || isTypeScript(workflows) },
      jobRunner: { path: JOB_RUNNER, execArgv: fromSource || (!deps.workflows && isTypeScript(workflows)) ? ['--import', import.meta.resolve('tsx')] : [] },
    });
    return { ctx, catalog };
  };
  return async (event, context) => {
    const base = (stepDeps ??= init());
    return runInvocation(base.ctx, context, async (ctx) => {
      const keys = await logKeysOf(ctx, event);
      return loggedInvocation('step', keys, { action: event?.action ?? 'run' }, () => handleStep({ ...base, ctx }, event, context));
    });
  };
}


/**
 * The log keys of a step: its dispatch and node, and the attempt it makes — the node's stored
 * attempts plus one, read once (one GetItem) so that every line, the first too, carries it.
 */
async function logKeysOf(ctx: RuntimeContext, event: StepEvent): Promise<InvocationLogKeys> {
  const dispatchId = typeof event?.dispatchId === 'string' ? event.dispatchId : NO_NODE;
  const nodeId = 'nodeId' in (event ?? {}) && typeof (event as { nodeId?: unknown }).nodeId === 'number' ? (event as { nodeId: number }).nodeId : NO_NODE;
  if (dispatchId === NO_NODE || nodeId === NO_NODE) return { dispatchId, nodeId, attempt: NO_NODE };
  const node = await ctx.store.getNode(dispatchId, nodeId, { signal: ctx.signal }).catch(() => undefined);
  return { dispatchId, nodeId, attempt: (node?.attempts ?? 0) + 1 };
}
