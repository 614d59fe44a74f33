/**
 * The local cloud's Step Functions: the AWS JSON 1.0 API (`AWSStepFunctions.<Operation>`,
 * signing name `states`) over the `aws-local-stepfunctions` interpreter.
 *
 * What cancellation depends on behaves as on AWS: StopExecution ends an execution ABORTED at
 * once and starts no further state, but a Lambda invocation already running keeps running to
 * its end (its result is discarded); task tokens of a closed execution answer `TaskTimedOut`;
 * StartExecution is idempotent on the execution name while the execution runs.
 *
 * @example
 * const sfn = createStepFunctionsService({ hooks, lambda, region: 'us-east-1', accountId: '000000000000' });
 * router.register(sfn); // requests signed for `states` reach sfn.handle
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LambdaInvoker, LocalService, RequestContext, ServiceHooks } from '../core/service.ts';
import { prepareDefinition, type PreparedDefinition } from './definition.ts';
import { Execution, ExecutionStatus, type HistoryEventRecord } from './execution.ts';
import { loadInterpreter } from './interpreter.ts';
import {
  StatesErrorCode,
  StatesServiceError,
  decodePageToken,
  encodePageToken,
  epochSeconds,
  isValidResourceName,
  operationOf,
  optionalInteger,
  optionalString,
  readJsonBody,
  requireString,
  sendError,
  sendResult,
} from './protocol.ts';
import { TaskTokenRegistry } from './tokens.ts';

export { ExecutionStatus } from './execution.ts';
export { StatesErrorCode, StatesServiceError } from './protocol.ts';

/** Options of {@link createStepFunctionsService}. */
export interface StepFunctionsServiceOptions {
  /** Counting and fault injection for the `states` service. */
  readonly hooks: ServiceHooks;
  /** The local Lambda service, which Task states invoke. */
  readonly lambda: LambdaInvoker;
  /** Region in the ARNs this service mints. */
  readonly region: string;
  /** Account id in the ARNs this service mints. */
  readonly accountId: string;
  /** History events at which an execution fails, as AWS's quota does. @default 25000 */
  readonly maxHistoryEvents?: number;
}

/** Counters of one execution, for benchmarks (AWS bills state transitions). */
export interface ExecutionStats {
  readonly status: ExecutionStatus;
  /** Events GetExecutionHistory returns. */
  readonly historyEvents: number;
  /** States entered plus retries. */
  readonly stateTransitions: number;
}

/** Counters over every execution this service ran. */
export interface StepFunctionsTotals {
  readonly executions: number;
  readonly stateTransitions: number;
}

/** The Step Functions service, with in-process access for benchmarks and tests. */
export interface StepFunctionsService extends LocalService {
  /** Counters of one execution, or undefined for an unknown ARN. */
  executionStats(executionArn: string): ExecutionStats | undefined;
  /** Counters over every execution started since the service was created. */
  totals(): StepFunctionsTotals;
  /** Resolves when the execution reached a terminal status (at once for an unknown ARN). */
  waitForExecution(executionArn: string): Promise<ExecutionStats | undefined>;
}

type StateMachineType = 'STANDARD' | 'EXPRESS';

interface StateMachineRecord {
  readonly arn: string;
  readonly name: string;
  readonly type: StateMachineType;
  readonly creationDate: number;
  definitionText: string;
  prepared: PreparedDefinition;
  roleArn: string;
  loggingConfiguration: unknown;
  tracingConfiguration: unknown;
  description: string | undefined;
  revisionId: string;
  updateDate: number | undefined;
  /** Executions in start order. */
  readonly executions: Execution[];
}

const MAX_INPUT_BYTES = 256 * 1024;
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:]+$/u;
const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:(execution|express):[^:]+:[^:]+$/u;

function invalidArn(arn: string): StatesServiceError {
  return new StatesServiceError(StatesErrorCode.InvalidArn, `Invalid Arn: 'Resource type not valid in this context: ${arn}'`);
}

function checkJson(text: string, code: StatesErrorCode, what: string): void {
  if (Buffer.byteLength(text) > MAX_INPUT_BYTES) {
    throw new StatesServiceError(code, `Invalid ${what}: '${what} exceeds the maximum size of ${MAX_INPUT_BYTES} bytes'`);
  }
  try {
    JSON.parse(text);
  } catch {
    throw new StatesServiceError(code, `Invalid ${what}: 'Invalid JSON: ${text.slice(0, 100)}'`);
  }
}

function serializeEvent(event: HistoryEventRecord, includeExecutionData: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    timestamp: epochSeconds(event.timestamp),
    type: event.type,
    id: event.id,
    previousEventId: event.previousEventId,
  };
  if (event.details) {
    let value = event.details.value;
    if (!includeExecutionData) {
      const { input: _input, output: _output, parameters: _parameters, ...rest } = value;
      value = rest;
    }
    out[event.details.key] = value;
  }
  return out;
}

/**
 * Creates the local Step Functions service. Executions run in this process; `stop()` ends
 * them (ABORTED) and aborts their in-flight Lambda invocations.
 */
export function createStepFunctionsService(opts: StepFunctionsServiceOptions): StepFunctionsService {
  const { hooks, lambda, region, accountId } = opts;
  const machines = new Map<string, StateMachineRecord>();
  const executions = new Map<string, Execution>();
  const tokens = new TaskTokenRegistry();
  const serviceController = new AbortController();
  // Every in-flight Lambda invocation listens to this one signal (it aborts only on stop()),
  // so the default limit of 10 listeners would warn of a leak that is not one.
  setMaxListeners(0, serviceController.signal);
  let totalExecutions = 0;
  let totalTransitions = 0;

  const machineArn = (name: string): string => `arn:aws:states:${region}:${accountId}:stateMachine:${name}`;

  const findMachine = (arn: string): StateMachineRecord => {
    if (!STATE_MACHINE_ARN.test(arn)) throw invalidArn(arn);
    const machine = machines.get(arn);
    if (!machine) throw new StatesServiceError(StatesErrorCode.StateMachineDoesNotExist, `State Machine Does Not Exist: '${arn}'`);
    return machine;
  };

  const findExecution = (arn: string): Execution => {
    if (!EXECUTION_ARN.test(arn)) throw invalidArn(arn);
    const execution = executions.get(arn);
    if (!execution) throw new StatesServiceError(StatesErrorCode.ExecutionDoesNotExist, `Execution Does Not Exist: '${arn}'`);
    return execution;
  };

  const statsOf = (execution: Execution): ExecutionStats => ({
    status: execution.status,
    historyEvents: execution.history.length,
    stateTransitions: execution.stateTransitions,
  });

  const forgetExecution = (execution: Execution): void => {
    executions.delete(execution.executionArn);
    tokens.forgetExecution(execution.executionArn);
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    CreateStateMachine(body) {
      const name = requireString(body, 'name');
      const definitionText = requireString(body, 'definition');
      const roleArn = requireString(body, 'roleArn');
      const requested = optionalString(body, 'type') ?? 'STANDARD';
      if (requested !== 'STANDARD' && requested !== 'EXPRESS') {
        throw new StatesServiceError(StatesErrorCode.ValidationException, `Value '${requested}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]`);
      }
      const type: StateMachineType = requested;
      if (!isValidResourceName(name)) throw new StatesServiceError(StatesErrorCode.InvalidName, `Invalid Name: '${name}'`);
      const arn = machineArn(name);
      const existing = machines.get(arn);
      if (existing) {
        if (existing.definitionText === definitionText && existing.roleArn === roleArn && existing.type === type) {
          return { stateMachineArn: arn, creationDate: epochSeconds(existing.creationDate) };
        }
        throw new StatesServiceError(StatesErrorCode.StateMachineAlreadyExists, `State Machine Already Exists: '${arn}'`);
      }
      const prepared = prepareDefinition(definitionText);
      const record: StateMachineRecord = {
        arn,
        name,
        type,
        creationDate: Date.now(),
        definitionText,
        prepared,
        roleArn,
        loggingConfiguration: body.loggingConfiguration ?? { level: 'OFF', includeExecutionData: false },
        tracingConfiguration: body.tracingConfiguration ?? { enabled: false },
        description: optionalString(body, 'versionDescription'),
        revisionId: randomUUID(),
        updateDate: undefined,
        executions: [],
      };
      machines.set(arn, record);
      return { stateMachineArn: arn, creationDate: epochSeconds(record.creationDate) };
    },

    UpdateStateMachine(body) {
      const machine = findMachine(requireString(body, 'stateMachineArn'));
      const definitionText = optionalString(body, 'definition');
      const roleArn = optionalString(body, 'roleArn');
      if (definitionText === undefined && roleArn === undefined && body.loggingConfiguration === undefined && body.tracingConfiguration === undefined) {
        throw new StatesServiceError('MissingRequiredParameter', 'Either the definition, the roleArn, the loggingConfiguration or the tracingConfiguration must be specified');
      }
      // Running executions keep the definition they started with.
      if (definitionText !== undefined) {
        machine.prepared = prepareDefinition(definitionText);
        machine.definitionText = definitionText;
      }
      if (roleArn !== undefined) machine.roleArn = roleArn;
      if (body.loggingConfiguration !== undefined) machine.loggingConfiguration = body.loggingConfiguration;
      if (body.tracingConfiguration !== undefined) machine.tracingConfiguration = body.tracingConfiguration;
      machine.updateDate = Date.now();
      machine.revisionId = randomUUID();
      return { updateDate: epochSeconds(machine.updateDate), revisionId: machine.revisionId };
    },

    DeleteStateMachine(body) {
      const arn = requireString(body, 'stateMachineArn');
      if (!STATE_MACHINE_ARN.test(arn)) throw invalidArn(arn);
      const machine = machines.get(arn);
      if (!machine) return {}; // deleting twice succeeds, as on AWS
      machines.delete(arn);
      // Running executions finish (as on AWS); every execution is forgotten once closed.
      for (const execution of machine.executions) {
        if (execution.isClosed) forgetExecution(execution);
        else void execution.done.then(() => forgetExecution(execution));
      }
      return {};
    },

    DescribeStateMachine(body) {
      const machine = findMachine(requireString(body, 'stateMachineArn'));
      return {
        stateMachineArn: machine.arn,
        name: machine.name,
        status: 'ACTIVE',
        definition: machine.definitionText,
        roleArn: machine.roleArn,
        type: machine.type,
        creationDate: epochSeconds(machine.creationDate),
        loggingConfiguration: machine.loggingConfiguration,
        tracingConfiguration: machine.tracingConfiguration,
        revisionId: machine.revisionId,
        ...(machine.description !== undefined ? { description: machine.description } : {}),
      };
    },

    ListStateMachines(body) {
      const maxResults = optionalInteger(body, 'maxResults', 0, 1000) || 100;
      const offset = decodePageToken(optionalString(body, 'nextToken'));
      const all = [...machines.values()].sort((a, b) => a.name.localeCompare(b.name));
      const page = all.slice(offset, offset + maxResults);
      return {
        stateMachines: page.map((m) => ({ stateMachineArn: m.arn, name: m.name, type: m.type, creationDate: epochSeconds(m.creationDate) })),
        ...(offset + maxResults < all.length ? { nextToken: encodePageToken(offset + maxResults) } : {}),
      };
    },

    async StartExecution(body) {
      const machine = findMachine(requireString(body, 'stateMachineArn'));
      const name = optionalString(body, 'name') ?? randomUUID();
      if (!isValidResourceName(name)) throw new StatesServiceError(StatesErrorCode.InvalidName, `Invalid Name: '${name}'`);
      const input = optionalString(body, 'input') ?? '{}';
      checkJson(input, StatesErrorCode.InvalidExecutionInput, 'Execution Input');
      const interpreter = await loadInterpreter();
      if (machines.get(machine.arn) !== machine) {
        throw new StatesServiceError(StatesErrorCode.StateMachineDoesNotExist, `State Machine Does Not Exist: '${machine.arn}'`);
      }
      const executionArn = `arn:aws:states:${region}:${accountId}:execution:${machine.name}:${name}`;
      const existing = executions.get(executionArn);
      if (existing) {
        // Idempotent while running with the same input; any other reuse of the name is refused.
        if (!existing.isClosed && existing.input === input) {
          return { executionArn, startDate: epochSeconds(existing.startDate) };
        }
        throw new StatesServiceError(StatesErrorCode.ExecutionAlreadyExists, `Execution Already Exists: '${executionArn}'`);
      }
      const execution = new Execution(
        {
          interpreter,
          lambda,
          region,
          tokens,
          serviceSignal: serviceController.signal,
          maxHistoryEvents: opts.maxHistoryEvents ?? 25_000,
          onStateTransition: () => {
            totalTransitions += 1;
          },
        },
        {
          executionArn,
          name,
          stateMachineArn: machine.arn,
          stateMachineName: machine.name,
          roleArn: machine.roleArn,
          input,
          definition: machine.prepared,
        },
      );
      executions.set(executionArn, execution);
      machine.executions.push(execution);
      totalExecutions += 1;
      return { executionArn, startDate: epochSeconds(execution.startDate) };
    },

    DescribeExecution(body) {
      const execution = findExecution(requireString(body, 'executionArn'));
      return {
        executionArn: execution.executionArn,
        stateMachineArn: execution.stateMachineArn,
        name: execution.name,
        status: execution.status,
        startDate: epochSeconds(execution.startDate),
        input: execution.input,
        inputDetails: { included: true },
        ...(execution.stopDate !== undefined ? { stopDate: epochSeconds(execution.stopDate) } : {}),
        ...(execution.output !== undefined ? { output: execution.output, outputDetails: { included: true } } : {}),
        ...(execution.error !== undefined ? { error: execution.error } : {}),
        ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
      };
    },

    ListExecutions(body) {
      const machine = findMachine(requireString(body, 'stateMachineArn'));
      const statusFilter = optionalString(body, 'statusFilter');
      const maxResults = optionalInteger(body, 'maxResults', 0, 1000) || 100;
      const offset = decodePageToken(optionalString(body, 'nextToken'));
      const matching = machine.executions
        .filter((e) => executions.has(e.executionArn) && (statusFilter === undefined || e.status === statusFilter))
        .reverse();
      const page = matching.slice(offset, offset + maxResults);
      return {
        executions: page.map((e) => ({
          executionArn: e.executionArn,
          stateMachineArn: e.stateMachineArn,
          name: e.name,
          status: e.status,
          startDate: epochSeconds(e.startDate),
          ...(e.stopDate !== undefined ? { stopDate: epochSeconds(e.stopDate) } : {}),
        })),
        ...(offset + maxResults < matching.length ? { nextToken: encodePageToken(offset + maxResults) } : {}),
      };
    },

    StopExecution(body) {
      const execution = findExecution(requireString(body, 'executionArn'));
      // Stopping a closed execution changes nothing and still succeeds.
      execution.stop(optionalString(body, 'error'), optionalString(body, 'cause'));
      return { stopDate: epochSeconds(execution.stopDate ?? Date.now()) };
    },

    GetExecutionHistory(body) {
      const execution = findExecution(requireString(body, 'executionArn'));
      const maxResults = optionalInteger(body, 'maxResults', 0, 1000) || 100;
      const offset = decodePageToken(optionalString(body, 'nextToken'));
      const includeExecutionData = body.includeExecutionData !== false;
      const ordered = body.reverseOrder === true ? [...execution.history].reverse() : execution.history;
      const page = ordered.slice(offset, offset + maxResults);
      return {
        events: page.map((event) => serializeEvent(event, includeExecutionData)),
        ...(offset + maxResults < ordered.length ? { nextToken: encodePageToken(offset + maxResults) } : {}),
      };
    },

    SendTaskSuccess(body) {
      const token = requireString(body, 'taskToken');
      const output = requireString(body, 'output');
      checkJson(output, StatesErrorCode.InvalidOutput, 'Output');
      tokens.waiterFor(token).succeed(output);
      return {};
    },

    SendTaskFailure(body) {
      const token = requireString(body, 'taskToken');
      tokens.waiterFor(token).fail(optionalString(body, 'error'), optionalString(body, 'cause'));
      return {};
    },

    SendTaskHeartbeat(body) {
      tokens.waiterFor(requireString(body, 'taskToken')).heartbeat();
      return {};
    },
  };

  return {
    signingName: 'states',

    async handle(req: IncomingMessage, res: ServerResponse, _ctx: RequestContext): Promise<void> {
      try {
        const body = await readJsonBody(req);
        const operation = operationOf(req);
        const run = operation === undefined ? undefined : operations[operation];
        if (operation === undefined || run === undefined) {
          throw new StatesServiceError(StatesErrorCode.UnknownOperationException, `Unknown operation ${operation ?? '(no X-Amz-Target)'}`);
        }
        hooks.count(operation);
        const fault = await hooks.fault(operation);
        if (fault) {
          sendError(res, fault);
          return;
        }
        sendResult(res, await run(body));
      } catch (error) {
        if (res.headersSent) {
          res.end();
        } else if (error instanceof StatesServiceError) {
          sendError(res, error.toShape());
        } else {
          sendError(res, { status: 500, code: StatesErrorCode.InternalFailure, message: error instanceof Error ? error.message : String(error) });
        }
      }
    },

    async stop(): Promise<void> {
      const running = [...executions.values()].filter((e) => !e.isClosed);
      for (const execution of running) execution.stop('States.Runtime', 'The local cloud stopped');
      serviceController.abort();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(running.map((e) => e.done)),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(timer);
    },

    executionStats(executionArn) {
      const execution = executions.get(executionArn);
      return execution ? statsOf(execution) : undefined;
    },

    totals() {
      return { executions: totalExecutions, stateTransitions: totalTransitions };
    },

    async waitForExecution(executionArn) {
      const execution = executions.get(executionArn);
      if (!execution) return undefined;
      await execution.done;
      return statsOf(execution);
    },
  };
}
