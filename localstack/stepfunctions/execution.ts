/**
 * One execution of a state machine: the interpreter run, the Task states it delegates to the
 * service, and the history AWS would show for it.
 *
 * The interpreter walks the states; every Task state is overridden (by state name) with
 * {@link Execution.runTask}, which calls the local Lambda service, mints task tokens, and
 * enforces `TimeoutSeconds` and `HeartbeatSeconds`. Once an execution is closed — stopped,
 * failed, timed out or succeeded — no override starts new work: the interpreter keeps
 * launching Map iterations after `abort()`, so the gate lives here. A Lambda invocation already
 * running is not cancelled (AWS does not either); its result is discarded.
 */
import { setMaxListeners } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { LambdaInvoker, InvocationOutcome } from '../core/service.ts';
import {
  TaskIntegration,
  evaluateSimplePath,
  fillTaskToken,
  mentionsTaskToken,
  type PreparedDefinition,
  type TaskSpec,
} from './definition.ts';
import type { Interpreter } from './interpreter.ts';
import type { TaskTokenRegistry } from './tokens.ts';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** Execution statuses as DescribeExecution reports them. */
export const ExecutionStatus = {
  Running: 'RUNNING',
  Succeeded: 'SUCCEEDED',
  Failed: 'FAILED',
  TimedOut: 'TIMED_OUT',
  Aborted: 'ABORTED',
} as const;
/** One of {@link ExecutionStatus}. */
export type ExecutionStatus = (typeof ExecutionStatus)[keyof typeof ExecutionStatus];

/** One entry of GetExecutionHistory, with its details under the key AWS uses for its type. */
export interface HistoryEventRecord {
  readonly id: number;
  readonly previousEventId: number;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  readonly type: string;
  readonly details?: { readonly key: string; readonly value: Record<string, unknown> };
}

/** What every execution of one service shares. */
export interface ExecutionEnvironment {
  /**
   * aws-local-stepfunctions, loaded. @internal: left out of the published declarations, so
   * that they do not pull in that package's own, which do not resolve under `nodenext`.
   */
  readonly interpreter: Interpreter;
  readonly lambda: LambdaInvoker;
  readonly region: string;
  readonly tokens: TaskTokenRegistry;
  /** Aborted when the service stops: the only thing that cancels Lambda invocations. */
  readonly serviceSignal: AbortSignal;
  /** AWS fails an execution that reaches this many history events. */
  readonly maxHistoryEvents: number;
  /** Called on every state transition, for service-wide counters. */
  readonly onStateTransition: () => void;
}

/** Identity and input of a new execution. */
export interface ExecutionInit {
  readonly executionArn: string;
  readonly name: string;
  readonly stateMachineArn: string;
  readonly stateMachineName: string;
  readonly roleArn: string;
  /** The input as sent (JSON text). */
  readonly input: string;
  readonly definition: PreparedDefinition;
}

/** Thrown into the interpreter once the execution is closed; never retried or caught. */
class ExecutionClosedError extends ValenceError {
  override readonly name = 'States.ExecutionClosed';
  get isRetryable(): boolean {
    return false;
  }
  get isCatchable(): boolean {
    return false;
  }
  constructor() {
    super(ErrorCode.LOCAL_EXECUTION_FAILED, 'The execution is closed; no further state starts');
  }
}

/** A state error as Step Functions matches it: `name` against `ErrorEquals`, `message` as Cause. */
class TaskStateError extends ValenceError {
  override readonly name: string;
  constructor(error: string, cause: string) {
    super(ErrorCode.LOCAL_EXECUTION_FAILED, cause);
    this.name = error;
  }
}

/** How an invocation failed, as a state error. */
interface StateFailure {
  readonly error: string;
  readonly cause: string;
}

function failureOfOutcome(outcome: Extract<InvocationOutcome, { ok: false }>): StateFailure {
  const payload = outcome.payload;
  if (outcome.functionError === 'Unhandled' || outcome.functionError === 'Handled') {
    // A function error: the errorType is the state error, the error payload its cause.
    return { error: payload.errorType || 'Error', cause: JSON.stringify(payload) };
  }
  // A Lambda service error (throttling, a fault): Step Functions prefixes it with `Lambda.`.
  const code = outcome.functionError.startsWith('Lambda.') ? outcome.functionError : `Lambda.${outcome.functionError}`;
  return { error: code, cause: payload.errorMessage ?? JSON.stringify(payload) };
}

function failureOfThrown(thrown: unknown): StateFailure {
  const error = thrown instanceof Error ? thrown : new Error(String(thrown));
  const name = error.name && error.name !== 'Error' ? error.name : 'ServiceException';
  return { error: name.startsWith('Lambda.') ? name : `Lambda.${name}`, cause: error.message };
}

/** The result of the optimized `lambda:invoke` integration, as AWS wraps it. */
function wrapInvokeResult(payload: unknown): Record<string, unknown> {
  const requestId = randomUUID();
  const headers = { 'Content-Type': 'application/json', 'X-Amz-Executed-Version': '$LATEST', 'x-amzn-RequestId': requestId };
  return {
    ExecutedVersion: '$LATEST',
    Payload: payload,
    SdkHttpMetadata: { AllHttpHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])), HttpHeaders: headers, HttpStatusCode: 200 },
    SdkResponseMetadata: { RequestId: requestId },
    StatusCode: 200,
  };
}

function functionNameOf(parameters: unknown): string | undefined {
  if (parameters === null || typeof parameters !== 'object') return undefined;
  const name = (parameters as Record<string, unknown>).FunctionName;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** Yields to the event loop so that interpreter events already dispatched are recorded first. */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Interpreter event fields the history uses. */
interface InterpreterEvent {
  readonly type: string;
  readonly timestamp: number;
  readonly state?: { readonly name: string; readonly type: string; readonly input: unknown; readonly output?: unknown };
  readonly parentState?: { readonly name: string };
  readonly index?: number;
}

/** One execution; see the module documentation. */
export class Execution {
  readonly executionArn: string;
  readonly name: string;
  readonly stateMachineArn: string;
  readonly roleArn: string;
  readonly input: string;
  readonly startDate: number;
  status: ExecutionStatus = ExecutionStatus.Running;
  stopDate: number | undefined;
  output: string | undefined;
  error: string | undefined;
  cause: string | undefined;
  /** Every state entered plus every retry, as AWS bills transitions. */
  stateTransitions = 0;
  /** History events of DISTRIBUTED Map child executions (kept out of this history, as on AWS). */
  childHistoryEvents = 0;
  readonly history: HistoryEventRecord[] = [];
  /** Settles when the interpreter run and its event stream are both over. */
  readonly done: Promise<void>;

  private readonly env: ExecutionEnvironment;
  private readonly definition: PreparedDefinition;
  /** Aborted when the execution closes; every running task listens to it. */
  private readonly closed = (() => {
    const controller = new AbortController();
    // One listener per running task: a wide Map has thousands, none of them leaked.
    setMaxListeners(0, controller.signal);
    return controller;
  })();
  private abortInterpreter: (() => void) | undefined;
  private markDone!: () => void;

  constructor(env: ExecutionEnvironment, init: ExecutionInit) {
    this.env = env;
    this.executionArn = init.executionArn;
    this.name = init.name;
    this.stateMachineArn = init.stateMachineArn;
    this.roleArn = init.roleArn;
    this.input = init.input;
    this.definition = init.definition;
    this.startDate = Date.now();
    this.done = new Promise((resolve) => {
      this.markDone = resolve;
    });
    this.append('ExecutionStarted', 'executionStartedEventDetails', {
      input: init.input,
      inputDetails: { truncated: false },
      roleArn: init.roleArn,
    });
    this.start(init);
  }

  /** True once the execution reached a terminal status. */
  get isClosed(): boolean {
    return this.status !== ExecutionStatus.Running;
  }

  /** Ends a running execution ABORTED (StopExecution); false when it was already closed. */
  stop(error: string | undefined, cause: string | undefined): boolean {
    return this.close(ExecutionStatus.Aborted, { error, cause });
  }

  private start(init: ExecutionInit): void {
    const { StateMachine } = this.env.interpreter;
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const spec of this.definition.tasks.values()) {
      handlers[spec.stateName] = (input) => this.runTask(spec, input);
    }
    const machine = new StateMachine(this.definition.interpreterDefinition as never, { validationOptions: { noValidate: true } });
    const startTime = new Date(this.startDate).toISOString();
    const run = machine.run(JSON.parse(init.input) as never, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      noThrowOnAbort: true,
      context: {
        Execution: { Id: init.executionArn, Name: init.name, RoleArn: init.roleArn, StartTime: startTime, Input: JSON.parse(init.input) as never },
        StateMachine: { Id: init.stateMachineArn, Name: init.stateMachineName },
      },
    });
    this.abortInterpreter = run.abort;
    const events = (async () => {
      for await (const event of run.eventLogs) this.onInterpreterEvent(event);
    })();
    const outcome = run.result.then(
      (output) => ({ ok: true as const, output }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    void Promise.all([outcome, events.catch(() => undefined)]).then(([result]) => {
      if (result.ok) {
        this.close(ExecutionStatus.Succeeded, { output: JSON.stringify(result.output ?? null) });
      } else if (result.error instanceof this.env.interpreter.ExecutionTimeoutError) {
        this.close(ExecutionStatus.TimedOut, { error: 'States.Timeout', cause: 'The execution timed out' });
      } else {
        const inner = (result.error as { cause?: unknown }).cause;
        const failure = inner instanceof Error ? inner : result.error instanceof Error ? result.error : new Error(String(result.error));
        const innerCause = (failure as { cause?: unknown }).cause;
        this.close(ExecutionStatus.Failed, {
          error: failure.name && failure.name !== 'FailStateError' ? failure.name : undefined,
          cause: typeof innerCause === 'string' ? innerCause : failure.message,
        });
      }
      this.markDone();
    });
  }

  /** Moves to a terminal status once; records the closing event and ends all further work. */
  private close(
    status: Exclude<ExecutionStatus, 'RUNNING'>,
    fields: { output?: string; error?: string | undefined; cause?: string | undefined },
  ): boolean {
    if (this.isClosed) return false;
    this.status = status;
    this.stopDate = Date.now();
    this.output = fields.output;
    this.error = fields.error;
    this.cause = fields.cause;
    const errorDetails = { ...(fields.error !== undefined ? { error: fields.error } : {}), ...(fields.cause !== undefined ? { cause: fields.cause } : {}) };
    switch (status) {
      case ExecutionStatus.Succeeded:
        this.append('ExecutionSucceeded', 'executionSucceededEventDetails', { output: fields.output, outputDetails: { truncated: false } }, true);
        break;
      case ExecutionStatus.Failed:
        this.append('ExecutionFailed', 'executionFailedEventDetails', errorDetails, true);
        break;
      case ExecutionStatus.TimedOut:
        this.append('ExecutionTimedOut', 'executionTimedOutEventDetails', errorDetails, true);
        break;
      case ExecutionStatus.Aborted:
        this.append('ExecutionAborted', 'executionAbortedEventDetails', errorDetails, true);
        break;
    }
    this.env.tokens.endExecution(this.executionArn);
    this.closed.abort();
    this.abortInterpreter?.();
    return true;
  }

  /** Appends one history event; nothing is recorded after the execution closed. */
  private append(type: string, detailsKey?: string, details?: Record<string, unknown>, closing = false): void {
    if (this.isClosed && !closing) return;
    if (!closing && this.history.length >= this.env.maxHistoryEvents - 1) {
      this.close(ExecutionStatus.Failed, {
        error: 'States.Runtime',
        cause: `The execution reached the maximum number of history events (${this.env.maxHistoryEvents}).`,
      });
      return;
    }
    const id = this.history.length + 1;
    this.history.push({
      id,
      previousEventId: id - 1,
      timestamp: Date.now(),
      type,
      ...(detailsKey && details ? { details: { key: detailsKey, value: details } } : {}),
    });
  }

  private countTransition(): void {
    this.stateTransitions += 1;
    this.env.onStateTransition();
  }

  private onInterpreterEvent(event: InterpreterEvent): void {
    if (this.isClosed) return;
    const state = event.state;
    // States inside a DISTRIBUTED Map run in child executions, each with its own history; the
    // parent records only the Map state itself (its iterations are a map run, not events here).
    const parentName = (event as { parentState?: { name?: string } }).parentState?.name;
    const iterationOfChild =
      event.type.startsWith('MapIteration') && parentName !== undefined && (this.definition.distributedMaps.has(parentName) || this.definition.childStates.has(parentName));
    if ((state && this.definition.childStates.has(state.name)) || iterationOfChild) {
      this.childHistoryEvents += 1;
      if (event.type === 'StateEntered' || event.type === 'StateRetried') this.countTransition();
      return;
    }
    switch (event.type) {
      case 'StateEntered': {
        if (!state) return;
        this.countTransition();
        this.append(`${state.type}StateEntered`, 'stateEnteredEventDetails', {
          name: state.name,
          input: JSON.stringify(state.input ?? null),
          inputDetails: { truncated: false },
        });
        if (state.type === 'Parallel') this.append('ParallelStateStarted');
        if (state.type === 'Map') {
          const paths = this.definition.mapItemPaths.get(state.name);
          const items = evaluateSimplePath(paths?.itemsPath, evaluateSimplePath(paths?.inputPath, state.input));
          this.append('MapStateStarted', 'mapStateStartedEventDetails', Array.isArray(items) ? { length: items.length } : {});
          if (this.definition.distributedMaps.has(state.name)) this.append('MapRunStarted');
        }
        return;
      }
      case 'StateExited': {
        if (!state) return;
        if (state.type === 'Parallel') this.append('ParallelStateSucceeded');
        if (state.type === 'Map' && this.definition.distributedMaps.has(state.name)) this.append('MapRunSucceeded');
        if (state.type === 'Map') this.append('MapStateSucceeded');
        this.append(`${state.type}StateExited`, 'stateExitedEventDetails', {
          name: state.name,
          output: JSON.stringify(state.output ?? null),
          outputDetails: { truncated: false },
        });
        return;
      }
      case 'StateFailed':
        if (state?.type === 'Parallel') this.append('ParallelStateFailed');
        if (state?.type === 'Map' && this.definition.distributedMaps.has(state.name)) this.append('MapRunFailed');
        if (state?.type === 'Map') this.append('MapStateFailed');
        return;
      case 'StateRetried':
        this.countTransition();
        return;
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const detailsKey = `${event.type.charAt(0).toLowerCase()}${event.type.slice(1)}EventDetails`;
        this.append(event.type, detailsKey, { name: event.parentState?.name, index: event.index });
        return;
      }
      default:
        // Execution-level events are recorded by the service; branch events have no AWS twin.
        return;
    }
  }

  /**
   * The override of one Task state: runs the Lambda integration named by the state, records
   * the history AWS shows for it, and settles as the state's result or error.
   */
  private async runTask(spec: TaskSpec, input: unknown): Promise<unknown> {
    // Inside a DISTRIBUTED Map the task's events belong to a child execution's history.
    const record = this.definition.childStates.has(spec.stateName)
      ? (): void => void (this.childHistoryEvents += 1)
      : (type: string, detailsKey?: string, details?: Record<string, unknown>): void => this.append(type, detailsKey, details);
    if (this.isClosed) throw new ExecutionClosedError();
    // The interpreter dispatched TaskStateEntered just before calling us; let it land first.
    await nextMacrotask();
    if (this.isClosed) throw new ExecutionClosedError();

    const plainFunction = spec.integration === TaskIntegration.LambdaFunction;
    const callback = spec.integration === TaskIntegration.LambdaInvokeCallback;
    const resourceType = 'lambda';
    const resource = callback ? 'invoke.waitForTaskToken' : 'invoke';

    return new Promise<unknown>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      let token: string | undefined;
      const onClosed = (): void => finish(() => reject(new ExecutionClosedError()));
      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        this.closed.signal.removeEventListener('abort', onClosed);
        if (token) this.env.tokens.end(token);
        settle();
      };
      const fail = (failure: StateFailure): void => {
        if (settled) return;
        if (plainFunction) {
          record('LambdaFunctionFailed', 'lambdaFunctionFailedEventDetails', { error: failure.error, cause: failure.cause });
        } else {
          record('TaskFailed', 'taskFailedEventDetails', {
            resourceType,
            resource,
            ...(failure.error ? { error: failure.error } : {}),
            ...(failure.cause ? { cause: failure.cause } : {}),
          });
        }
        finish(() => reject(new TaskStateError(failure.error, failure.cause)));
      };
      const timeOut = (cause: string): void => {
        if (settled) return;
        if (plainFunction) {
          record('LambdaFunctionTimedOut', 'lambdaFunctionTimedOutEventDetails', { error: 'States.Timeout', cause });
        } else {
          record('TaskTimedOut', 'taskTimedOutEventDetails', { resourceType, resource, error: 'States.Timeout', cause });
        }
        finish(() => reject(this.env.interpreter.timeoutError(cause)));
      };
      const succeed = (output: unknown): void => {
        if (settled) return;
        const outputText = JSON.stringify(output ?? null);
        if (plainFunction) {
          record('LambdaFunctionSucceeded', 'lambdaFunctionSucceededEventDetails', { output: outputText, outputDetails: { truncated: false } });
        } else {
          record('TaskSucceeded', 'taskSucceededEventDetails', { resourceType, resource, output: outputText, outputDetails: { truncated: false } });
        }
        finish(() => resolve(output));
      };
      this.closed.signal.addEventListener('abort', onClosed, { once: true });

      let heartbeatTimer: NodeJS.Timeout | undefined;
      const armHeartbeat = (): void => {
        if (spec.heartbeatSeconds === undefined || settled) return;
        if (heartbeatTimer) clearTimeout(heartbeatTimer);
        heartbeatTimer = setTimeout(() => timeOut(`No heartbeat received within ${spec.heartbeatSeconds} seconds`), spec.heartbeatSeconds * 1000);
        timers.push(heartbeatTimer);
      };

      let functionName: string | undefined;
      let payload: unknown;
      if (plainFunction) {
        functionName = spec.resource;
        payload = input;
        record('LambdaFunctionScheduled', 'lambdaFunctionScheduledEventDetails', {
          resource: spec.resource,
          input: JSON.stringify(input ?? null),
          inputDetails: { truncated: false },
          ...(spec.timeoutSeconds !== undefined ? { timeoutInSeconds: spec.timeoutSeconds } : {}),
        });
        record('LambdaFunctionStarted');
      } else {
        let parameters = input;
        if (callback || mentionsTaskToken(input)) {
          token = callback
            ? this.env.tokens.mint(this.executionArn, {
                succeed: (outputJson) => succeed(JSON.parse(outputJson)),
                fail: (error, cause) => fail({ error: error ?? '', cause: cause ?? '' }),
                heartbeat: armHeartbeat,
              })
            : `AQ${randomUUID().replaceAll('-', '')}`;
          parameters = fillTaskToken(input, token);
        }
        functionName = functionNameOf(parameters);
        payload = (parameters as Record<string, unknown> | null)?.Payload ?? {};
        record('TaskScheduled', 'taskScheduledEventDetails', {
          resourceType,
          resource,
          region: this.env.region,
          parameters: JSON.stringify(parameters ?? null),
          ...(spec.timeoutSeconds !== undefined ? { timeoutInSeconds: spec.timeoutSeconds } : {}),
          ...(spec.heartbeatSeconds !== undefined ? { heartbeatInSeconds: spec.heartbeatSeconds } : {}),
        });
        record('TaskStarted', 'taskStartedEventDetails', { resourceType, resource });
      }
      if (this.isClosed) {
        // Recording the events above hit the history limit and closed the execution.
        onClosed();
        return;
      }
      if (spec.timeoutSeconds !== undefined) {
        timers.push(setTimeout(() => timeOut(`Task timed out after ${spec.timeoutSeconds} seconds`), spec.timeoutSeconds * 1000));
      }
      if (callback) armHeartbeat();
      if (functionName === undefined) {
        fail({ error: 'States.Runtime', cause: "The lambda:invoke Parameters must include a 'FunctionName'" });
        return;
      }

      // Not tied to the execution: a stop leaves the invocation running to its end, as on AWS.
      this.env.lambda.invoke(functionName, payload, { signal: this.env.serviceSignal }).then(
        (outcome) => {
          if (!outcome.ok) return fail(failureOfOutcome(outcome));
          if (!callback) return succeed(plainFunction ? outcome.payload : wrapInvokeResult(outcome.payload));
          if (!settled) {
            record('TaskSubmitted', 'taskSubmittedEventDetails', {
              resourceType,
              resource,
              output: JSON.stringify(wrapInvokeResult(outcome.payload)),
              outputDetails: { truncated: false },
            });
          }
        },
        (thrown: unknown) => fail(failureOfThrown(thrown)),
      );
    });
  }
}
