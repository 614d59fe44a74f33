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
import { handleStep, type InvocationInfo, type StepEvent, type Waker } from '../sdk/runtime/step.ts';
import { selfInvoker } from './self-invoke.ts';
import { createGraphCatalog, importWorkflows, type WorkflowsModule } from '../sdk/runtime/workflows.ts';
import { serveElectronWorker } from '../sdk/runtime/electron-worker.ts';
import { logger, loggedInvocation, NO_NODE } from './log.ts';

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
  /**
   * A job-runner bundle with the workflows module inside, run by plain node for a
   * LocalExecutor's process (the local cloud builds one, as the Batch job image is one).
   * @default the job runner module beside this one, through tsx when it or the workflows module is TypeScript
   */
  readonly jobRunnerPath?: string;
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
      jobRunner: deps.jobRunnerPath !== undefined
        ? { path: deps.jobRunnerPath, execArgv: [] }
        : { path: JOB_RUNNER, execArgv: fromSource || (!deps.workflows && isTypeScript(workflows)) ? ['--import', import.meta.resolve('tsx')] : [] },
    });
    const wake = selfWaker(ctx);
    return { ctx, catalog, ...(wake ? { wake } : {}) };
  };
  return async (event, context) => {
    const base = (stepDeps ??= init());
    return runInvocation(base.ctx, context, (ctx) => loggedStep(event, (onAttempt) => handleStep({ ...base, ctx, onAttempt }, event, context)));
  };
}

/**
 * The deployed wake of a node released from an `await` that also runs it: an asynchronous
 * invocation (`InvocationType: Event`) of this same function with the node's `run` event, so the
 * releaser does not wait for the child's electron. Lambda retries a failed asynchronous
 * invocation twice; a wake lost past that is the sweeper's to hand back to Step Functions.
 * Without `AWS_LAMBDA_FUNCTION_NAME` there is none, and released nodes run in their Catch's
 * `run` state.
 */
function selfWaker(ctx: RuntimeContext): Waker | undefined {
  // A refused wake falls back to Step Functions: a few quick retries, not the store's patience.
  return selfInvoker<Parameters<Waker>[0]>(ctx, { maxAttempts: 3 });
}

/**
 * Runs one step between a start and an end (or failure) line, every line carrying the step's
 * dispatch, node and attempt. The attempt comes from the claim, which returns the node item
 * anyway (see `StepDeps.onAttempt`), so logging costs no DynamoDB read. For a node's `run` the
 * start line therefore waits until the attempt is known: it is written when the claim answered
 * (or, for a step that fails or ends before that, with the end line, attempt `none`).
 * Dispatch-level steps and `await` states have no attempt (`none`) and start at once.
 */
async function loggedStep<T>(event: StepEvent, work: (onAttempt: (attempt: number) => void) => Promise<T>): Promise<T> {
  const dispatchId = typeof event?.dispatchId === 'string' ? event.dispatchId : NO_NODE;
  const rawNodeId = (event as { nodeId?: unknown } | undefined)?.nodeId;
  const nodeId = typeof rawNodeId === 'number' ? rawNodeId : NO_NODE;
  const action = event?.action ?? 'run';
  const extra = { action };
  if (nodeId === NO_NODE || action !== 'run') {
    return loggedInvocation('step', { dispatchId, nodeId, attempt: NO_NODE }, extra, () => work(() => undefined));
  }
  logger.resetKeys();
  logger.appendKeys({ dispatchId, nodeId, attempt: NO_NODE });
  const started = performance.now();
  let announced = false;
  const announce = (attempt: number | typeof NO_NODE): void => {
    if (announced) return;
    announced = true;
    logger.appendKeys({ attempt });
    logger.info('step started', extra);
  };
  try {
    const result = await work(announce);
    announce(NO_NODE);
    logger.info('step ended', { ...extra, durationMs: Math.round(performance.now() - started) });
    return result;
  } catch (error) {
    announce(NO_NODE);
    logger.error('step failed', { ...extra, durationMs: Math.round(performance.now() - started), error: error as Error });
    throw error;
  } finally {
    logger.resetKeys();
  }
}
