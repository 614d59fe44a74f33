/**
 * Checking a state machine definition and preparing it for the `aws-local-stepfunctions`
 * interpreter.
 *
 * The interpreter lacks parts of the context object that valence relies on (`$$.Task.Token`,
 * `$$.State.Name`), applies its own 60 s default task timeout, and knows nothing of heartbeats.
 * So each definition is rewritten once, at CreateStateMachine/UpdateStateMachine time: context
 * paths the interpreter cannot resolve become constants or markers that the per-state task
 * override fills in, and every Task's timing moves to the service (which also records the
 * history events AWS shows for them).
 *
 * Validation is structural and in-house: `asl-validator` compiles its schema on every call
 * (≈130 ms), too slow for a local cloud that deploys many state machines at startup.
 */
import { StatesErrorCode, StatesServiceError } from './protocol.ts';

/** Placeholder for `$$.Task.Token` in a rewritten definition; replaced by the minted token. */
export const TASK_TOKEN_MARKER = '__valence_local_task_token__';

/**
 * Task timeout handed to the interpreter: the service enforces the real one. Large, but below
 * the 2^31 ms that `setTimeout` can hold.
 */
const INTERPRETER_TASK_TIMEOUT_SECONDS = 2_000_000;

/** How a Task state reaches Lambda. */
export const TaskIntegration = {
  /** `Resource` is a Lambda function ARN: the input is the payload, the result is the output. */
  LambdaFunction: 'lambda-function',
  /** `arn:aws:states:::lambda:invoke`: `Parameters.FunctionName`/`Payload`, result wrapped. */
  LambdaInvoke: 'lambda-invoke',
  /** `arn:aws:states:::lambda:invoke.waitForTaskToken`: completes on SendTaskSuccess/Failure. */
  LambdaInvokeCallback: 'lambda-invoke-callback',
} as const;
/** One of {@link TaskIntegration}. */
export type TaskIntegration = (typeof TaskIntegration)[keyof typeof TaskIntegration];

/** What the service needs to know about one Task state to run it. */
export interface TaskSpec {
  readonly stateName: string;
  readonly resource: string;
  readonly integration: TaskIntegration;
  /** `TimeoutSeconds`; undefined means no limit (AWS's default is a year). */
  readonly timeoutSeconds: number | undefined;
  /** `HeartbeatSeconds`; undefined means no heartbeat required. */
  readonly heartbeatSeconds: number | undefined;
}

/** A checked definition, ready to run. */
export interface PreparedDefinition {
  /** The rewritten definition handed to the interpreter. */
  readonly interpreterDefinition: Record<string, unknown>;
  /** Every Task state, by its (machine-wide unique) name. */
  readonly tasks: ReadonlyMap<string, TaskSpec>;
  /** `Type` of every state, by name, for naming history events. */
  readonly stateTypes: ReadonlyMap<string, string>;
  /** `InputPath`/`ItemsPath` of each Map state, to report the iteration count on start. */
  readonly mapItemPaths: ReadonlyMap<string, { readonly inputPath: string | undefined; readonly itemsPath: string | undefined }>;
  /** Execution-level `TimeoutSeconds`, if any. */
  readonly timeoutSeconds: number | undefined;
  /** States whose events belong to a DISTRIBUTED Map's child executions, not this history. */
  readonly childStates: ReadonlySet<string>;
  /** Map states in DISTRIBUTED mode. */
  readonly distributedMaps: ReadonlySet<string>;
}

const STATE_TYPES = new Set(['Task', 'Parallel', 'Map', 'Pass', 'Wait', 'Choice', 'Succeed', 'Fail']);
const LAMBDA_FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$/u;

function invalid(message: string): StatesServiceError {
  return new StatesServiceError(StatesErrorCode.InvalidDefinition, `Invalid State Machine Definition: '${message}'`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function positiveInteger(state: Record<string, unknown>, key: string, where: string): number | undefined {
  const value = state[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 99_999_999) {
    throw invalid(`${key} of ${where} must be a positive integer`);
  }
  return value;
}

/** Classifies a Task resource, or refuses what the local cloud cannot run. */
function integrationOf(resource: string, where: string): TaskIntegration {
  if (LAMBDA_FUNCTION_ARN.test(resource)) return TaskIntegration.LambdaFunction;
  const optimized = /^arn:aws[a-z-]*:states:[a-z0-9-]*:\d{0,12}:lambda:invoke(\.waitForTaskToken)?$/u.exec(resource);
  if (optimized) return optimized[1] ? TaskIntegration.LambdaInvokeCallback : TaskIntegration.LambdaInvoke;
  throw invalid(
    `Resource '${resource}' of ${where} is not supported by the local cloud (Lambda function ARNs, ` +
      `arn:aws:states:::lambda:invoke and arn:aws:states:::lambda:invoke.waitForTaskToken are)`,
  );
}

/** Quotes a string as an intrinsic-function literal. */
function intrinsicLiteral(text: string): string {
  return `'${text.replace(/[\\'{}]/gu, (c) => `\\${c}`)}'`;
}

/**
 * Rewrites a payload template (Parameters, ItemSelector, ResultSelector): `$$.State.Name`
 * becomes the state's name, `$$.Task.Token` the token marker.
 */
function rewriteTemplate(template: unknown, stateName: string): unknown {
  if (Array.isArray(template)) return template.map((item) => rewriteTemplate(item, stateName));
  if (!isRecord(template)) return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$') && typeof value === 'string') {
      const bare = key.slice(0, -2);
      if (value === '$$.Task.Token') {
        out[bare] = TASK_TOKEN_MARKER;
        continue;
      }
      if (value === '$$.State.Name') {
        out[bare] = stateName;
        continue;
      }
      // Inside an intrinsic function the path becomes a string literal argument.
      out[key] = value
        .replaceAll('$$.Task.Token', intrinsicLiteral(TASK_TOKEN_MARKER))
        .replaceAll('$$.State.Name', intrinsicLiteral(stateName));
      continue;
    }
    out[key] = rewriteTemplate(value, stateName);
  }
  return out;
}

interface Collector {
  /** States inside a DISTRIBUTED Map's processor: their events belong to child executions. */
  readonly childStates: Set<string>;
  /** Map states in DISTRIBUTED mode. */
  readonly distributedMaps: Set<string>;
  readonly tasks: Map<string, TaskSpec>;
  readonly stateTypes: Map<string, string>;
  readonly mapItemPaths: Map<string, { inputPath: string | undefined; itemsPath: string | undefined }>;
}

/** Checks one scope (the machine, a branch, a Map processor) and returns its rewrite. */
function prepareScope(scope: unknown, where: string, collector: Collector, inChild = false): Record<string, unknown> {
  if (!isRecord(scope)) throw invalid(`${where} must be an object`);
  if (scope.QueryLanguage === 'JSONata') throw invalid('JSONata is not supported by the local cloud');
  const states = scope.States;
  if (!isRecord(states) || Object.keys(states).length === 0) throw invalid(`${where} must have a non-empty 'States' object`);
  if (typeof scope.StartAt !== 'string' || !(scope.StartAt in states)) {
    throw invalid(`'StartAt' of ${where} must name one of its states`);
  }
  const names = new Set(Object.keys(states));
  const checkNext = (target: unknown, field: string, stateName: string): void => {
    if (typeof target !== 'string' || !names.has(target)) {
      throw invalid(`'${field}' of state '${stateName}' must name a state of the same scope (got ${JSON.stringify(target)})`);
    }
  };
  const rewritten: Record<string, unknown> = {};
  for (const [name, rawState] of Object.entries(states)) {
    if (name.length === 0 || name.length > 80) throw invalid(`state name '${name}' must have 1 to 80 characters`);
    if (collector.stateTypes.has(name)) throw invalid(`duplicate state name '${name}'`);
    if (!isRecord(rawState)) throw invalid(`state '${name}' must be an object`);
    const type = rawState.Type;
    if (typeof type !== 'string' || !STATE_TYPES.has(type)) throw invalid(`state '${name}' has an unknown Type ${JSON.stringify(type)}`);
    if (rawState.QueryLanguage === 'JSONata') throw invalid('JSONata is not supported by the local cloud');
    collector.stateTypes.set(name, type);
    if (inChild) collector.childStates.add(name);
    const where = `state '${name}'`;
    const state: Record<string, unknown> = { ...rawState };

    if (type === 'Choice') {
      if (!Array.isArray(state.Choices) || state.Choices.length === 0) throw invalid(`Choice ${where} needs a non-empty 'Choices'`);
      for (const rule of state.Choices) {
        if (!isRecord(rule)) throw invalid(`a choice rule of ${where} is not an object`);
        checkNext(rule.Next, 'Next', name);
      }
      if (state.Default !== undefined) checkNext(state.Default, 'Default', name);
    } else if (type !== 'Succeed' && type !== 'Fail') {
      if (state.End === true) {
        if (state.Next !== undefined) throw invalid(`${where} has both 'Next' and 'End'`);
      } else {
        checkNext(state.Next, 'Next', name);
      }
    }
    if (state.Catch !== undefined) {
      if (!Array.isArray(state.Catch)) throw invalid(`'Catch' of ${where} must be an array`);
      for (const catcher of state.Catch) {
        if (!isRecord(catcher) || !Array.isArray(catcher.ErrorEquals)) throw invalid(`a catcher of ${where} needs 'ErrorEquals'`);
        checkNext(catcher.Next, 'Catch.Next', name);
      }
    }
    if (state.Retry !== undefined) {
      if (!Array.isArray(state.Retry) || state.Retry.some((r) => !isRecord(r) || !Array.isArray(r.ErrorEquals))) {
        throw invalid(`every retrier of ${where} needs 'ErrorEquals'`);
      }
    }
    for (const field of ['Parameters', 'ItemSelector', 'ResultSelector'] as const) {
      if (state[field] !== undefined) state[field] = rewriteTemplate(state[field], name);
    }

    if (type === 'Task') {
      if (typeof state.Resource !== 'string') throw invalid(`Task ${where} needs a 'Resource'`);
      const timeoutSeconds = positiveInteger(state, 'TimeoutSeconds', where);
      const heartbeatSeconds = positiveInteger(state, 'HeartbeatSeconds', where);
      if (timeoutSeconds !== undefined && heartbeatSeconds !== undefined && heartbeatSeconds >= timeoutSeconds) {
        throw invalid(`HeartbeatSeconds of ${where} must be smaller than its TimeoutSeconds`);
      }
      if (state.TimeoutSecondsPath !== undefined || state.HeartbeatSecondsPath !== undefined) {
        throw invalid(`TimeoutSecondsPath/HeartbeatSecondsPath (${where}) are not supported by the local cloud`);
      }
      collector.tasks.set(name, {
        stateName: name,
        resource: state.Resource,
        integration: integrationOf(state.Resource, where),
        timeoutSeconds,
        heartbeatSeconds,
      });
      state.TimeoutSeconds = INTERPRETER_TASK_TIMEOUT_SECONDS;
      delete state.HeartbeatSeconds;
      delete state.Credentials;
    } else if (type === 'Parallel') {
      if (!Array.isArray(state.Branches) || state.Branches.length === 0) throw invalid(`Parallel ${where} needs 'Branches'`);
      state.Branches = state.Branches.map((branch: unknown, i: number) => prepareScope(branch, `branch ${i} of ${where}`, collector, inChild));
    } else if (type === 'Map') {
      if (state.ItemReader !== undefined || state.ItemBatcher !== undefined) {
        throw invalid(`ItemReader/ItemBatcher (${where}) are not supported by the local cloud; pass the items in the input`);
      }
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor === undefined) throw invalid(`Map ${where} needs an 'ItemProcessor'`);
      // A distributed Map runs like an inline one with its MaxConcurrency, but its iterations'
      // events are counted as child executions' histories, as on AWS.
      const { ProcessorConfig: config, ...processorBody } = isRecord(processor) ? processor : {};
      const distributed = isRecord(config) && config.Mode === 'DISTRIBUTED';
      if (distributed) collector.distributedMaps.add(name);
      state.ItemProcessor = prepareScope(processorBody, `the ItemProcessor of ${where}`, collector, inChild || distributed);
      delete state.Iterator;
      for (const field of ['Label', 'ResultWriter', 'ToleratedFailureCount', 'ToleratedFailurePercentage', 'ToleratedFailureCountPath', 'ToleratedFailurePercentagePath']) {
        delete state[field];
      }
      collector.mapItemPaths.set(name, {
        inputPath: typeof state.InputPath === 'string' ? state.InputPath : undefined,
        itemsPath: typeof state.ItemsPath === 'string' ? state.ItemsPath : undefined,
      });
    }
    rewritten[name] = state;
  }
  const { QueryLanguage: _language, ...rest } = scope;
  return { ...rest, States: rewritten };
}

/**
 * Parses, checks and rewrites a definition. Throws the `InvalidDefinition` error AWS answers
 * with when the text is not a usable state machine.
 */
export function prepareDefinition(definitionText: string): PreparedDefinition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(definitionText);
  } catch (error) {
    throw invalid(`definition is not valid JSON: ${(error as Error).message}`);
  }
  const collector: Collector = { childStates: new Set(), distributedMaps: new Set(), tasks: new Map(), stateTypes: new Map(), mapItemPaths: new Map() };
  const interpreterDefinition = prepareScope(parsed, 'the state machine', collector);
  const timeoutSeconds = isRecord(parsed) ? positiveInteger(parsed, 'TimeoutSeconds', 'the state machine') : undefined;
  return {
    interpreterDefinition,
    tasks: collector.tasks,
    stateTypes: collector.stateTypes,
    mapItemPaths: collector.mapItemPaths,
    childStates: collector.childStates,
    distributedMaps: collector.distributedMaps,
    timeoutSeconds,
  };
}

/** Replaces the token marker in every string of a payload with the minted token. */
export function fillTaskToken(value: unknown, token: string): unknown {
  if (typeof value === 'string') return value.includes(TASK_TOKEN_MARKER) ? value.replaceAll(TASK_TOKEN_MARKER, token) : value;
  if (Array.isArray(value)) return value.map((item) => fillTaskToken(item, token));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = fillTaskToken(item, token);
    return out;
  }
  return value;
}

/** True when a payload mentions the token marker anywhere. */
export function mentionsTaskToken(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(TASK_TOKEN_MARKER);
  if (Array.isArray(value)) return value.some(mentionsTaskToken);
  if (isRecord(value)) return Object.values(value).some(mentionsTaskToken);
  return false;
}

/**
 * Evaluates the simple JSONPaths AWS definitions use for Map items (`$`, `$.a.b`, `$.a[0]`),
 * for the iteration count in `MapStateStarted`; undefined for anything fancier.
 */
export function evaluateSimplePath(path: string | undefined, input: unknown): unknown {
  if (path === undefined || path === '$') return input;
  if (!path.startsWith('$')) return undefined;
  const steps = path.slice(1).match(/\.[A-Za-z0-9_-]+|\[\d+\]/gu);
  if (!steps || steps.join('') !== path.slice(1)) return undefined;
  let current: unknown = input;
  for (const step of steps) {
    if (step.startsWith('[')) {
      if (!Array.isArray(current)) return undefined;
      current = current[Number(step.slice(1, -1))];
    } else {
      if (!isRecord(current)) return undefined;
      current = current[step.slice(1)];
    }
  }
  return current;
}
