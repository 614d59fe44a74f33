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
import type { Resolved } from '../model/build.ts';
import type { Lattice } from '../model/lattice.ts';
import type { CancelReport } from '../runtime/cancel.ts';
import { runtimeConfigFromOutputs, type StackOutputs } from '../runtime/config.ts';
import { runtimeContextFrom, type RuntimeContext } from '../runtime/context.ts';
import { describeDispatch, type DispatchResult } from '../runtime/describe.ts';
import type { DispatchItem } from '../runtime/store.ts';
import { isTerminalDispatchStatus } from '../status.ts';
import { getCancelReport, requestCancel, type CancelAccepted, type CancelOptions, type CancelProgress } from './cancel.ts';
import { loopbackCredentials, resolveRegion } from './connection.ts';
import { requestDispatch } from './dispatch.ts';
import { readDispatchThroughApi, waitThroughApi } from './status.ts';
import { redispatch, type RedispatchOptions, type RedispatchPlan } from './redispatch.ts';
import { dispatchIdOf, dispatchRun, type DispatchRef, type DispatchRun } from './run.ts';
import { loadStackOutputs } from './stack.ts';

export { CancelRequestError, type CancelAccepted, type CancelOptions, type CancelProgress } from './cancel.ts';
export { DispatchRequestError, NotDeployedError, StaleDeployError } from './dispatch.ts';
export { PlanAction, RedispatchError, type PlannedNode, type RedispatchOptions, type RedispatchPlan } from './redispatch.ts';
export { StackNotFoundError } from './stack.ts';
export { DispatchEndedError, dispatchIdOf, type DispatchRef, type DispatchRun, type RunResultOptions } from './run.ts';
export { isLoopbackEndpoint, loopbackCredentials, resolveRegion, LOCAL_TEST_CREDENTIALS } from './connection.ts';
export type { StackOutputs } from '../runtime/config.ts';

/** Where the client finds its stack. */
export interface ConnectOptions {
  /**
   * Endpoint of a local cloud or LocalStack. A loopback one (127.0.0.1, localhost, ::1) gets
   * the test key pair unless the environment names credentials.
   * @default process.env.AWS_ENDPOINT_URL (unset: AWS)
   */
  readonly endpoint?: string;
  /** @default `AWS_REGION`, then the profile's `region` in ~/.aws/config, then `AWS_DEFAULT_REGION`, then 'us-east-1' */
  readonly region?: string;
  /** @default process.env.VALENCE_STACK ?? 'valence' */
  readonly stackName?: string;
  /** Static credentials; unset means the SDK's default provider chain (or the test pair for a loopback endpoint). */
  readonly credentials?: AwsConfig['credentials'];
  /**
   * The stack's API URL (its `ApiUrl` output). Given, the client talks to the API alone and
   * never reads the stack: `dispatch`, `getResult`, `cancel` and `getCancelReport` work with
   * nothing but `execute-api:Invoke` on their methods (what `grantDispatch`, `grantCancel`
   * and `grantReadStatus` give); `redispatch`, `listDispatches`, `getNodeOutput` and
   * `outputs` need the stack's table and throw a `ValenceError` (`STACK_ACCESS_REQUIRED`).
   * @default process.env.VALENCE_API_URL (unset: read from the stack's outputs)
   */
  readonly apiUrl?: string;
}

/** Options of {@link ValenceClient.getResult}. */
export interface GetResultOptions {
  /** Wait until the dispatch is terminal, however it ended. @default false */
  readonly wait?: boolean;
  /** Give up waiting after this long (a `ValenceError` with code `RESULT_TIMEOUT`). @default 600000 */
  readonly timeoutMs?: number;
}

/** A connected client. Every dispatch id it takes may also be the run's {@link DispatchRun} handle. */
export interface ValenceClient {
  /** Starts a run of `lattice`; resolves with its handle (`run.id`, `run.result()`, …) once the execution started. */
  dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<DispatchRun<Resolved<R>>>;
  /**
   * Runs a dispatch again as a new dispatch linked to it, reusing completed results whose
   * content matches (see redispatch.ts); with `dryRun`, only reports the plan.
   */
  redispatch(dispatch: DispatchRef, options?: RedispatchOptions): Promise<RedispatchPlan>;
  /** Reads a dispatch; with `wait`, resolves as soon as it is terminal. */
  getResult<R = unknown>(dispatch: DispatchRef, options?: GetResultOptions): Promise<DispatchResult<R>>;
  /** Cancels a dispatch or some of its tasks, through the stack's IAM-authorized API. */
  cancel(dispatch: DispatchRef, options: CancelOptions & { readonly wait: false }): Promise<CancelReport | CancelAccepted>;
  /** Cancels and, when the endpoint finishes the request outside it (202), waits for the final report. */
  cancel(dispatch: DispatchRef, options?: CancelOptions): Promise<CancelReport>;
  /** One cancel request's final report, or its progress so far. */
  getCancelReport(dispatch: DispatchRef, requestId: string): Promise<CancelProgress>;
  /** A node's stored output (throws `PayloadNotFoundError` until the node completed). */
  getNodeOutput(dispatch: DispatchRef, nodeId: number): Promise<unknown>;
  /** The newest top-level dispatches. */
  listDispatches(options?: { limit?: number }): Promise<DispatchItem[]>;
  /** The stack's outputs. */
  outputs(): Promise<StackOutputs>;
  /** Closes the client's connections. */
  close(): void;
}

/**
 * Connects to a valence stack. Nothing is read until the first call; the region and the
 * stack's outputs are then read once (and again after a failed read).
 * @example
 * const client = connect({ endpoint: 'http://127.0.0.1:4566' });
 * const run = await client.dispatch(pipeline)(10);
 * const total = await run.result();
 */
export function connect(options: ConnectOptions = {}): ValenceClient {
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
  const credentials = options.credentials ?? loopbackCredentials(endpoint);
  let made: AwsClients | undefined;
  let closed = false;
  const aws = retryingOnce(async () => {
    const region = await resolveRegion(options.region);
    if (closed) throw new ValenceError(ErrorCode.CONFIGURATION_INVALID, 'This valence client was closed');
    made = createAwsClients({ ...(endpoint ? { endpoint } : {}), region, ...(credentials ? { credentials } : {}) });
    return made;
  });
  const apiOnlyUrl = options.apiUrl ?? process.env['VALENCE_API_URL'];
  const stack = apiOnlyUrl ? apiOnlyStack(apiOnlyUrl) : connectedStack(aws, options.stackName ?? process.env[ENV.stackName] ?? DEFAULTS.stackName);
  const apiUrl = async (): Promise<string> => apiOnlyUrl ?? (await stack.outputs()).apiUrl;
  const client: ValenceClient = {
    outputs: stack.outputs,
    close: () => {
      closed = true;
      made?.destroy();
    },
    dispatch: (lattice) => async (...args) => {
      const id = await requestDispatch(await aws(), await apiUrl(), lattice as Lattice<unknown[], unknown>, args);
      return dispatchRun(client, id, lattice.name);
    },
    redispatch: async (dispatch, options) => redispatch(await stack.context(), dispatchIdOf(dispatch), options),
    async getResult(dispatch, options = {}) {
      const dispatchId = dispatchIdOf(dispatch);
      const timeoutMs = options.timeoutMs ?? DEFAULT_RESULT_TIMEOUT_MS;
      if (apiOnlyUrl) {
        return options.wait ? waitThroughApi<never>(await aws(), apiOnlyUrl, dispatchId, timeoutMs) : readDispatchThroughApi<never>(await aws(), apiOnlyUrl, dispatchId, true);
      }
      const ctx = await stack.context();
      if (options.wait) await waitUntilTerminal(ctx, dispatchId, timeoutMs);
      return describeDispatch<never>(ctx, dispatchId);
    },
    async cancel(dispatch: DispatchRef, options: CancelOptions = {}): Promise<CancelReport> {
      return requestCancel(await aws(), await apiUrl(), dispatchIdOf(dispatch), options);
    },
    async getCancelReport(dispatch, requestId) {
      return getCancelReport(await aws(), await apiUrl(), dispatchIdOf(dispatch), requestId);
    },
    async getNodeOutput(dispatch, nodeId) {
      const ctx = await stack.context();
      const dispatchId = dispatchIdOf(dispatch);
      // Small outputs live in the node item (LIMITS.inlineOutputBytes); others in S3.
      const node = await ctx.store.getNode(dispatchId, nodeId);
      return ctx.payloads.getNodeOutput(node ?? { dispatchId, nodeId });
    },
    async listDispatches(opts = {}) {
      return (await stack.context()).store.listDispatches(opts);
    },
  };
  return client;
}

/** How long `getResult({ wait: true })` waits by default. */
const DEFAULT_RESULT_TIMEOUT_MS = 600_000;

/** A stack's outputs and runtime context, each read once and shared by every call. */
interface ConnectedStack {
  readonly outputs: () => Promise<StackOutputs>;
  readonly context: () => Promise<RuntimeContext>;
}

/** A client connected with `apiUrl` alone: what needs the stack itself says so. */
function apiOnlyStack(apiUrl: string): ConnectedStack {
  const refuse = (): Promise<never> =>
    Promise.reject(
      new ValenceError(
        ErrorCode.STACK_ACCESS_REQUIRED,
        `This client was connected with apiUrl (${apiUrl}) alone, which reaches dispatch, results and cancel; this call reads the stack's outputs and table. Connect with { stackName } and credentials that may read them (cloudformation:DescribeStacks and the table).`,
      ),
    );
  return { outputs: refuse, context: refuse };
}

function connectedStack(aws: () => Promise<AwsClients>, stackName: string): ConnectedStack {
  const outputs = retryingOnce(async () => loadStackOutputs(await aws(), stackName));
  const context = retryingOnce(async () => runtimeContextFrom(runtimeConfigFromOutputs(await outputs(), stackName), await aws()));
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
export function dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<DispatchRun<Resolved<R>>> {
  return (...args) => defaultValenceClient().dispatch(lattice)(...args);
}

/** Reads a dispatch (by id or handle) with the default client. Covalent's `ct.get_result`. */
export function getResult<R = unknown>(dispatch: DispatchRef, options?: GetResultOptions): Promise<DispatchResult<R>> {
  return defaultValenceClient().getResult<R>(dispatch, options);
}

/** Cancels a dispatch (by id or handle), or tasks of it, with the default client. */
export function cancel(dispatch: DispatchRef, options?: CancelOptions): Promise<CancelReport> {
  return defaultValenceClient().cancel(dispatch, options);
}

/** Lists dispatches with the default client. */
export function listDispatches(options?: { limit?: number }): Promise<DispatchItem[]> {
  return defaultValenceClient().listDispatches(options);
}
