/**
 * The valence error hierarchy.
 *
 * Every error valence throws on purpose is a {@link ValenceError}: it has an explicit `name`
 * (bundlers rename classes, and Step Functions matches `ErrorEquals` on the name) and a stable
 * `code` that callers can branch on. Errors cross Lambda, worker and process boundaries as
 * plain data, so the helpers here recognise them by `name`/`code` as well as by class.
 *
 * @module
 */

/** Options accepted by every valence error. */
export interface ValenceErrorOptions {
  /** The underlying error, kept on `error.cause` for diagnosis. */
  readonly cause?: unknown;
}

/**
 * Base class of every error valence throws on purpose.
 *
 * `code` is the stable, machine-readable identity of the error; `message` is for humans and
 * may change between versions.
 */
export class ValenceError extends Error {
  override readonly name: string = 'ValenceError';
  /** Stable identifier of the failure (for example `VALIDATION_INVALID_NAME`). */
  readonly code: string;

  constructor(code: string, message: string, options: ValenceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/**
 * The stable codes of every {@link ValenceError} that is not a {@link ValidationError}. One
 * table, so the CLI, the API and users' own code branch on one set of strings; add a code here
 * before throwing a new kind of error anywhere in valence.
 */
export const ErrorCode = {
  /** The dispatch id names no dispatch in this stack. */
  DISPATCH_NOT_FOUND: 'DISPATCH_NOT_FOUND',
  /** The stack could not be found, or does not look like a valence stack. */
  STACK_NOT_FOUND: 'STACK_NOT_FOUND',
  /** Nothing answers at the endpoint (no local cloud running there, say). */
  ENDPOINT_UNREACHABLE: 'ENDPOINT_UNREACHABLE',
  /** The lattice has no state machine in the stack. */
  NOT_DEPLOYED: 'NOT_DEPLOYED',
  /** The deployed state machine was compiled from a different graph than the local lattice builds. */
  STALE_DEPLOY: 'STALE_DEPLOY',
  /** The cancel endpoint refused the request (its HTTP status is on the error). */
  CANCEL_REFUSED: 'CANCEL_REFUSED',
  /** The dispatch endpoint refused the request, or its arguments' upload failed (the HTTP status is on the error). */
  DISPATCH_REFUSED: 'DISPATCH_REFUSED',
  /** A client connected with `apiUrl` alone was asked for something only stack access (DescribeStacks, the table) gives. */
  STACK_ACCESS_REQUIRED: 'STACK_ACCESS_REQUIRED',
  /** A cancel request whose body or target ids are malformed. */
  CANCEL_INVALID_REQUEST: 'CANCEL_INVALID_REQUEST',
  /** A cancel request was recorded but could not finish in its invocation; the sweeper finishes it. */
  CANCEL_UNFINISHED: 'CANCEL_UNFINISHED',
  /** An environment variable a handler needs is missing or malformed. */
  CONFIGURATION_INVALID: 'CONFIGURATION_INVALID',
  /** A payload object that should exist in S3 does not. */
  PAYLOAD_NOT_FOUND: 'PAYLOAD_NOT_FOUND',
  /** A value cannot be carried by valence's safe serialization format. */
  SERIALIZATION_FAILED: 'SERIALIZATION_FAILED',
  /** A Step Functions event a handler received does not have the documented shape. */
  STEP_EVENT_INVALID: 'STEP_EVENT_INVALID',
  /** The workflows module or a lattice in it cannot be found or loaded. */
  WORKFLOW_LOOKUP_FAILED: 'WORKFLOW_LOOKUP_FAILED',
  /** A node ran past its `timeoutSeconds`. */
  NODE_TIMEOUT: 'NODE_TIMEOUT',
  /** `getResult({ wait: true })` gave up before the dispatch ended. */
  RESULT_TIMEOUT: 'RESULT_TIMEOUT',
  /** A run's result was asked for, and the dispatch ended FAILED or CANCELLED instead. */
  DISPATCH_ENDED: 'DISPATCH_ENDED',
  /** A handler's invocation reached its deadline (remaining time minus the safety margin). */
  INVOCATION_DEADLINE: 'INVOCATION_DEADLINE',
  /** An AWS call of the runtime's own kept failing transiently (throttled, 5xx, timed out) after the SDK's retries; the invocation is retried, the node is not failed. */
  TRANSIENT_AWS_ERROR: 'TRANSIENT_AWS_ERROR',
  /** A job handle read from the table does not carry this stack's and dispatch's tags; valence refused to stop it. */
  FOREIGN_JOB_HANDLE: 'FOREIGN_JOB_HANDLE',
  /** A built-in executor's `cancel()` was called without the valence runtime (its drivers) loaded. */
  EXECUTOR_RUNTIME_MISSING: 'EXECUTOR_RUNTIME_MISSING',
  /** A command-line mistake. */
  CLI_USAGE: 'CLI_USAGE',
  /** A redispatch that cannot start as asked (a child or dry-run dispatch, a missing lattice, a bad replacement). */
  REDISPATCH_REFUSED: 'REDISPATCH_REFUSED',
  /** `Orchestrator` construct props that cannot be deployed. */
  ORCHESTRATOR_INVALID_PROPS: 'ORCHESTRATOR_INVALID_PROPS',
  /** The workflows module a CDK app or the construct was given does not exist. */
  WORKFLOWS_MODULE_NOT_FOUND: 'WORKFLOWS_MODULE_NOT_FOUND',
  /** The workflows module exists but cannot be loaded as asked (top-level await where a synchronous load is needed, or TypeScript without a loader or esbuild). */
  WORKFLOWS_MODULE_UNLOADABLE: 'WORKFLOWS_MODULE_UNLOADABLE',
  /** An optional peer dependency an entry point needs is not installed (the message names every missing package). */
  PEER_DEPENDENCIES_MISSING: 'PEER_DEPENDENCIES_MISSING',
  /** The local cloud could not start or was misconfigured. */
  LOCAL_CLOUD_START_FAILED: 'LOCAL_CLOUD_START_FAILED',
  /** A local-cloud service was configured with something it cannot model. */
  LOCAL_CLOUD_INVALID_CONFIG: 'LOCAL_CLOUD_INVALID_CONFIG',
  /** The local cloud's port is taken by another process. */
  LOCAL_CLOUD_PORT_IN_USE: 'LOCAL_CLOUD_PORT_IN_USE',
  /** A local-cloud service answers with an AWS error; the AWS code is on `awsCode`. */
  LOCAL_AWS_ERROR: 'LOCAL_AWS_ERROR',
  /** A local-cloud request body is larger than the service accepts. */
  LOCAL_BODY_TOO_LARGE: 'LOCAL_BODY_TOO_LARGE',
  /** A local-cloud service (or its worker pool) is stopping or stopped. */
  LOCAL_SERVICE_STOPPED: 'LOCAL_SERVICE_STOPPED',
  /** The local cloud's fault-injection configuration is invalid. */
  LOCAL_FAULT_CONFIG_INVALID: 'LOCAL_FAULT_CONFIG_INVALID',
  /** A local Batch job or Braket job process could not be started. */
  LOCAL_PROCESS_START_FAILED: 'LOCAL_PROCESS_START_FAILED',
  /** An OpenQASM program the local Braket simulator cannot run. */
  LOCAL_OPENQASM_INVALID: 'LOCAL_OPENQASM_INVALID',
  /** An in-process S3 call named a bucket that does not exist (AWS code `NoSuchBucket` on `awsCode`). */
  LOCAL_NO_SUCH_BUCKET: 'LOCAL_NO_SUCH_BUCKET',
  /** A state-machine execution of the local Step Functions stopped or a task state failed. */
  LOCAL_EXECUTION_FAILED: 'LOCAL_EXECUTION_FAILED',
} as const;

/** One of the stable {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Thrown when a dispatch id names no dispatch in this stack (the CLI exits 2, the API answers 404). */
export class DispatchNotFoundError extends ValenceError {
  override readonly name: string = 'DispatchNotFoundError';
  declare readonly code: typeof ErrorCode.DISPATCH_NOT_FOUND;

  constructor(
    /** The id that was looked up. */
    readonly dispatchId: string,
    options: ValenceErrorOptions = {},
  ) {
    super(ErrorCode.DISPATCH_NOT_FOUND, `No dispatch with id "${dispatchId}" exists in this stack`, options);
  }
}

/**
 * Thrown by a handler whose invocation reached its deadline: Lambda's remaining time fell
 * below the handler's safety margin, the invocation signal aborted, and every store and AWS
 * call still in flight stopped. Nothing was half-written: every write is one conditional
 * single-item update, so each either happened or did not, and a node that was RUNNING stays
 * RUNNING under a lease that lapses. It is retryable by design — the compiled state machines
 * list its `name` in their Retry, and a retried invocation takes the node over once the lease
 * lapses (see sdk/runtime/README.md).
 */
export class InvocationDeadlineError extends ValenceError {
  override readonly name: string = 'InvocationDeadlineError';
  declare readonly code: typeof ErrorCode.INVOCATION_DEADLINE;

  constructor(message = 'The invocation reached its deadline before its work was recorded', options: ValenceErrorOptions = {}) {
    super(ErrorCode.INVOCATION_DEADLINE, message, options);
  }
}

/**
 * Thrown by a handler when one of the runtime's own AWS calls (store, payloads, job submission
 * or stop) still failed transiently after the SDK's retries with backoff and jitter. It is not
 * the node's failure: the compiled state machines list its `name` in their Retry, and the retried
 * invocation takes the node over once its lease lapses. The AWS error is its `cause`.
 */
export class TransientAwsError extends ValenceError {
  override readonly name: string = 'TransientAwsError';
  declare readonly code: typeof ErrorCode.TRANSIENT_AWS_ERROR;

  constructor(message: string, options: ValenceErrorOptions = {}) {
    super(ErrorCode.TRANSIENT_AWS_ERROR, message, options);
  }
}

/**
 * Thrown (and reported on the node) when a job handle does not belong to the dispatch that
 * wants to stop it: the handle came from the table, which a principal with table write could
 * forge, so valence reads the job's tags back from the service and refuses a job it did not
 * start rather than act as a confused deputy.
 */
export class ForeignJobHandleError extends ValenceError {
  override readonly name: string = 'ForeignJobHandleError';
  declare readonly code: typeof ErrorCode.FOREIGN_JOB_HANDLE;

  constructor(
    /** The handle that was refused. */
    readonly handle: string,
    message: string,
    options: ValenceErrorOptions = {},
  ) {
    super(ErrorCode.FOREIGN_JOB_HANDLE, message, options);
  }
}

/**
 * The stable codes of {@link ValidationError}. Each is raised while defining or building a
 * lattice, compiling it, or decoding a stored graph — never while a dispatch runs.
 */
export const ValidationCode = {
  /** Two different lattices in one registry (one app) share a name. */
  DUPLICATE_LATTICE: 'VALIDATION_DUPLICATE_LATTICE',
  /** A lattice name Step Functions rejects (1–80 of `[A-Za-z0-9_-]`), or a bad electron name. */
  INVALID_NAME: 'VALIDATION_INVALID_NAME',
  /** An electron, lattice or executor option has the wrong type or range. */
  INVALID_OPTION: 'VALIDATION_INVALID_OPTION',
  /** A constant argument that the safe serialization format cannot carry (functions, class instances, symbols). */
  UNSERIALIZABLE_CONSTANT: 'VALIDATION_UNSERIALIZABLE_CONSTANT',
  /** A placeholder (electron output or lattice parameter) used as a value in a lattice body. */
  PLACEHOLDER_AS_VALUE: 'VALIDATION_PLACEHOLDER_AS_VALUE',
  /** A placeholder created by another lattice build was passed into this one. */
  FOREIGN_PLACEHOLDER: 'VALIDATION_FOREIGN_PLACEHOLDER',
  /** An electron or sublattice was called outside a lattice body. */
  ELECTRON_OUTSIDE_LATTICE: 'VALIDATION_ELECTRON_OUTSIDE_LATTICE',
  /** A lattice body returned a promise; bodies must be synchronous (they only wire the graph). */
  ASYNC_LATTICE_BODY: 'VALIDATION_ASYNC_LATTICE_BODY',
  /** A lattice uses itself as a sublattice. */
  RECURSIVE_SUBLATTICE: 'VALIDATION_RECURSIVE_SUBLATTICE',
  /** Two different executor classes registered under one name. */
  DUPLICATE_EXECUTOR: 'VALIDATION_DUPLICATE_EXECUTOR',
  /** Graph metadata names an executor that is not registered in this process. */
  UNKNOWN_EXECUTOR: 'VALIDATION_UNKNOWN_EXECUTOR',
  /** A stored transport graph has an unsupported `version`. */
  GRAPH_VERSION: 'VALIDATION_GRAPH_VERSION',
  /** A stored transport graph does not have the documented shape. */
  INVALID_GRAPH: 'VALIDATION_INVALID_GRAPH',
  /** A compiled state machine exceeds a Step Functions limit (1 MB definition, 25,000 history events). */
  LIMIT_EXCEEDED: 'VALIDATION_LIMIT_EXCEEDED',
} as const;

/** One of the stable {@link ValidationCode} values. */
export type ValidationCode = (typeof ValidationCode)[keyof typeof ValidationCode];

/** Where a validation failure was found, to make messages actionable. */
export interface ValidationErrorOptions extends ValenceErrorOptions {
  /** The lattice being defined, built or compiled. */
  readonly lattice?: string;
  /** The node id (call order) the failure concerns. */
  readonly nodeId?: number;
}

/**
 * A lattice, electron, executor or graph definition that valence refuses.
 *
 * Thrown at definition, build or compile time, so a bad workflow fails on the developer's
 * machine (or in `cdk synth`) instead of in a running dispatch.
 */
export class ValidationError extends ValenceError {
  override readonly name: string = 'ValidationError';
  declare readonly code: ValidationCode;
  /** The lattice concerned, when known. */
  readonly lattice: string | undefined;
  /** The node concerned, when known. */
  readonly nodeId: number | undefined;

  constructor(code: ValidationCode, message: string, options: ValidationErrorOptions = {}) {
    super(code, message, options);
    this.lattice = options.lattice;
    this.nodeId = options.nodeId;
  }
}

/** The stable code of {@link TaskCancelledError}. */
export const TASK_CANCELLED = 'TASK_CANCELLED';

/** Options of {@link TaskCancelledError}. */
export interface TaskCancelledErrorOptions extends ValenceErrorOptions {
  /** The dispatch whose node was cancelled. */
  readonly dispatchId?: string;
  /** The cancelled node. */
  readonly nodeId?: number;
  /** Why (free text recorded with the cancel request, or `upstream-failed`). */
  readonly reason?: string;
}

/**
 * The one cancellation error: thrown when an executor step finds the node's `cancelRequested`
 * flag set, and used as the `AbortSignal` reason when a running electron is aborted. A node
 * that ends with this error ends `CANCELLED`, never `FAILED`. Recognise it with
 * {@link isCancellation}, which also sees through wrapping and serialization.
 */
export class TaskCancelledError extends ValenceError {
  override readonly name: string = 'TaskCancelledError';
  readonly dispatchId: string | undefined;
  readonly nodeId: number | undefined;
  readonly reason: string | undefined;

  constructor(message = 'task cancelled', options: TaskCancelledErrorOptions = {}) {
    super(TASK_CANCELLED, message, options);
    this.dispatchId = options.dispatchId;
    this.nodeId = options.nodeId;
    this.reason = options.reason;
  }
}

/**
 * True when `error` is, wraps (through `cause` chains or `AggregateError.errors`), or is the
 * plain-data form of a {@link TaskCancelledError}. Plain data is recognised by `name`, by
 * Lambda's `errorType`, by Step Functions' `Error` field, or by `code === 'TASK_CANCELLED'`,
 * because errors cross worker and process boundaries without their class.
 *
 * A bare `AbortError` is not a cancellation: valence aborts electrons with a
 * `TaskCancelledError` reason, so user timeouts stay distinguishable.
 */
export function isCancellation(error: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const current = pending.pop();
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    if (current instanceof TaskCancelledError) return true;
    const record = current as Record<string, unknown>;
    if (
      record['name'] === 'TaskCancelledError' ||
      record['errorType'] === 'TaskCancelledError' ||
      record['Error'] === 'TaskCancelledError' ||
      record['code'] === TASK_CANCELLED
    ) {
      return true;
    }
    if ('cause' in record) pending.push(record['cause']);
    if (Array.isArray(record['errors'])) pending.push(...(record['errors'] as unknown[]));
  }
  return false;
}
