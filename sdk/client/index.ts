/**
 * The client: dispatch lattices, read results, cancel — against a deployed stack on AWS,
 * on LocalStack, or on the embedded local cloud, chosen by endpoint configuration alone.
 *
 * The stack is found through CloudFormation's `DescribeStacks` outputs (the local cloud serves
 * the same outputs), so `connect({ stackName })` is all a caller needs. From the outputs the
 * client builds the same runtime context a handler builds from its environment.
 */
import { createAwsClients, type AwsClients, type AwsConfig } from '../aws.ts';
import { DEFAULTS, ENV } from '../contract.ts';
import { ErrorCode, ValenceError } from '../errors.ts';
import type { Lattice } from '../model/lattice.ts';
import type { CancelReport } from '../runtime/cancel.ts';
import { runtimeConfigFromOutputs, type StackOutputs } from '../runtime/config.ts';
import { runtimeContextFrom, type RuntimeContext } from '../runtime/context.ts';
import { describeDispatch, type DispatchResult } from '../runtime/describe.ts';
import type { DispatchItem } from '../runtime/store.ts';
import { isTerminalDispatchStatus } from '../status.ts';
import { getCancelReport, requestCancel, type CancelAccepted, type CancelOptions, type CancelProgress } from './cancel.ts';
import { startDispatch } from './dispatch.ts';
import { redispatch, type RedispatchOptions, type RedispatchPlan } from './redispatch.ts';
import { loadStackOutputs } from './stack.ts';

export { CancelRequestError, type CancelAccepted, type CancelOptions, type CancelProgress } from './cancel.ts';
export { NotDeployedError, StaleDeployError } from './dispatch.ts';
export { PlanAction, RedispatchError, type PlannedNode, type RedispatchOptions, type RedispatchPlan } from './redispatch.ts';
export { StackNotFoundError } from './stack.ts';
export type { StackOutputs } from '../runtime/config.ts';

/** Where the client finds its stack. */
export interface ConnectOptions {
  /** Endpoint of a local cloud or LocalStack. @default process.env.AWS_ENDPOINT_URL (unset: AWS) */
  readonly endpoint?: string;
  /** @default process.env.AWS_REGION ?? 'us-east-1' */
  readonly region?: string;
  /** @default process.env.VALENCE_STACK ?? 'valence' */
  readonly stackName?: string;
  /** Static credentials; unset means the SDK's default provider chain. */
  readonly credentials?: AwsConfig['credentials'];
}

/** Options of {@link ValenceClient.getResult}. */
export interface GetResultOptions {
  /** Wait until the dispatch is terminal, however it ended. @default false */
  readonly wait?: boolean;
  /** Give up waiting after this long (a `ValenceError` with code `RESULT_TIMEOUT`). @default 600000 */
  readonly timeoutMs?: number;
}

/** A connected client. */
export interface ValenceClient {
  /** Starts a run of `lattice`; resolves with its dispatch id once the execution started. */
  dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<string>;
  /**
   * Runs a dispatch again as a new dispatch linked to it, reusing completed results whose
   * content matches (see redispatch.ts); with `dryRun`, only reports the plan.
   */
  redispatch(dispatchId: string, options?: RedispatchOptions): Promise<RedispatchPlan>;
  /** Reads a dispatch; with `wait`, resolves as soon as it is terminal. */
  getResult<R = unknown>(dispatchId: string, options?: GetResultOptions): Promise<DispatchResult<R>>;
  /** Cancels a dispatch or some of its tasks, through the stack's IAM-authorized API. */
  cancel(dispatchId: string, options: CancelOptions & { readonly wait: false }): Promise<CancelReport | CancelAccepted>;
  /** Cancels and, when the endpoint finishes the request outside it (202), waits for the final report. */
  cancel(dispatchId: string, options?: CancelOptions): Promise<CancelReport>;
  /** One cancel request's final report, or its progress so far. */
  getCancelReport(dispatchId: string, requestId: string): Promise<CancelProgress>;
  /** A node's stored output (throws `PayloadNotFoundError` until the node completed). */
  getNodeOutput(dispatchId: string, nodeId: number): Promise<unknown>;
  /** The newest top-level dispatches. */
  listDispatches(options?: { limit?: number }): Promise<DispatchItem[]>;
  /** The stack's outputs. */
  outputs(): Promise<StackOutputs>;
  /** Closes the client's connections. */
  close(): void;
}

/**
 * Connects to a valence stack. Nothing is read until the first call; the stack's outputs are
 * then read once (and again after a failed read).
 * @example
 * const client = connect({ endpoint: 'http://127.0.0.1:4566' });
 * const id = await client.dispatch(pipeline)(10);
 * const result = await client.getResult(id, { wait: true });
 */
export function connect(options: ConnectOptions = {}): ValenceClient {
  const aws = createAwsClients({
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
  const stack = connectedStack(aws, options.stackName ?? process.env[ENV.stackName] ?? DEFAULTS.stackName);
  return {
    outputs: stack.outputs,
    close: () => aws.destroy(),
    dispatch: (lattice) => async (...args) => startDispatch(await stack.context(), lattice as Lattice<unknown[], unknown>, args),
    redispatch: async (dispatchId, options) => redispatch(await stack.context(), dispatchId, options),
    async getResult(dispatchId, options = {}) {
      const ctx = await stack.context();
      if (options.wait) await waitUntilTerminal(ctx, dispatchId, options.timeoutMs ?? DEFAULT_RESULT_TIMEOUT_MS);
      return describeDispatch<never>(ctx, dispatchId);
    },
    async cancel(dispatchId: string, options: CancelOptions = {}): Promise<CancelReport> {
      return requestCancel(aws, (await stack.outputs()).apiUrl, dispatchId, options);
    },
    async getCancelReport(dispatchId, requestId) {
      return getCancelReport(aws, (await stack.outputs()).apiUrl, dispatchId, requestId);
    },
    async getNodeOutput(dispatchId, nodeId) {
      const ctx = await stack.context();
      // Small outputs live in the node item (LIMITS.inlineOutputBytes); others in S3.
      const node = await ctx.store.getNode(dispatchId, nodeId);
      return ctx.payloads.getNodeOutput(node ?? { dispatchId, nodeId });
    },
    async listDispatches(opts = {}) {
      return (await stack.context()).store.listDispatches(opts);
    },
  };
}

/** How long `getResult({ wait: true })` waits by default. */
const DEFAULT_RESULT_TIMEOUT_MS = 600_000;

/** A stack's outputs and runtime context, each read once and shared by every call. */
interface ConnectedStack {
  readonly outputs: () => Promise<StackOutputs>;
  readonly context: () => Promise<RuntimeContext>;
}

function connectedStack(aws: AwsClients, stackName: string): ConnectedStack {
  const outputs = retryingOnce(() => loadStackOutputs(aws, stackName));
  const context = retryingOnce(async () => runtimeContextFrom(runtimeConfigFromOutputs(await outputs(), stackName), aws));
  return { outputs, context };
}

/** Memoizes `load`, forgetting a rejection so that the next call tries again. */
function retryingOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/**
 * Waits on the dispatch item alone (one read per poll), backing off to 500 ms; the nodes are
 * read once, at the end. Reading every node per poll costs O(nodes) and slowed large
 * dispatches down.
 */
async function waitUntilTerminal(ctx: RuntimeContext, dispatchId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const dispatch = await ctx.store.requireDispatch(dispatchId);
    if (isTerminalDispatchStatus(dispatch.status)) return;
    if (Date.now() >= deadline) throw new ValenceError(ErrorCode.RESULT_TIMEOUT, `Dispatch ${dispatchId} was still ${String(dispatch.status)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(500, delay * 2);
  }
}

let defaultClient: ValenceClient | undefined;

/** The client the top-level functions use, configured from the environment. */
export function defaultValenceClient(): ValenceClient {
  defaultClient ??= connect();
  return defaultClient;
}

/**
 * Starts a run of `lattice` with the default client: `await dispatch(pipeline)(10)`.
 * The shape of Covalent's `ct.dispatch(workflow)(args)`.
 */
export function dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<string> {
  return (...args) => defaultValenceClient().dispatch(lattice)(...args);
}

/** Reads a dispatch with the default client. */
export function getResult<R = unknown>(dispatchId: string, options?: GetResultOptions): Promise<DispatchResult<R>> {
  return defaultValenceClient().getResult<R>(dispatchId, options);
}

/** Cancels a dispatch, or tasks of it, with the default client. */
export function cancel(dispatchId: string, options?: CancelOptions): Promise<CancelReport> {
  return defaultValenceClient().cancel(dispatchId, options);
}

/** Lists dispatches with the default client. */
export function listDispatches(options?: { limit?: number }): Promise<DispatchItem[]> {
  return defaultValenceClient().listDispatches(options);
}
