/**
 * The local EventBridge: rules with event patterns, Lambda targets, PutEvents, and the
 * in-process {@link EventSink} that Batch and Braket emit their state-change events into.
 *
 * valence's completion handler learns that a Batch job or Braket task ended from these
 * events; delivery here is what it is on AWS: asynchronous, as the EventBridge envelope,
 * retried a few times when the invocation fails, and silent to the producer.
 *
 * @example
 * ```ts
 * const events = createEventBridgeService({ hooks, lambda, region, accountId });
 * events.putRule({ name: 'batch-done', eventPattern: { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'] } });
 * events.putTargets('batch-done', [{ id: 'completion', arn: completionFunctionArn }]);
 * events.emit({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', detail: { status: 'SUCCEEDED' } });
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { CloudEvent, EventSink, LambdaInvoker, LocalService, RequestContext, ServiceHooks } from '../core/service.ts';
import { readBody } from '../wire/body.ts';
import { send } from '../wire/json.ts';
import { InvalidEventPatternError, matchesPattern, parsePattern } from './pattern.ts';
import type { EventPattern } from './pattern.ts';
import { AwsServiceError } from '../wire/errors.ts';

/** Options of {@link createEventBridgeService}. */
export interface EventBridgeServiceOptions {
  readonly hooks: ServiceHooks;
  readonly lambda: LambdaInvoker;
  readonly region: string;
  readonly accountId: string;
  /** Delivery attempts per target and event, unless the target's RetryPolicy says otherwise. @default 3 */
  readonly maxDeliveryAttempts?: number;
  /** Delay before the first retry; doubles each retry. @default 200 */
  readonly retryBaseDelayMs?: number;
}

/** A rule as {@link LocalEventBridgeService.putRule} takes it. */
export interface RuleInput {
  readonly name: string;
  /** Pattern object or its JSON text. */
  readonly eventPattern?: string | object;
  /** `rate(5 minutes)` fires locally; `cron(...)` is stored but never fires. */
  readonly scheduleExpression?: string;
  /** @default 'ENABLED' */
  readonly state?: RuleState;
  readonly description?: string;
  /** @default 'default' */
  readonly eventBusName?: string;
}

/** A target as {@link LocalEventBridgeService.putTargets} takes it. */
export interface TargetInput {
  readonly id: string;
  /** Lambda function ARN; other ARNs are stored but nothing is delivered to them. */
  readonly arn: string;
  /** Constant JSON text delivered instead of the event. */
  readonly input?: string;
  /** JSONPath (`$.detail`) of the part of the event to deliver. */
  readonly inputPath?: string;
  readonly inputTransformer?: { readonly inputPathsMap?: Readonly<Record<string, string>>; readonly inputTemplate: string };
  readonly retryPolicy?: { readonly maximumRetryAttempts?: number };
}

/** Whether a rule delivers. */
export const RuleState = {
  Enabled: 'ENABLED',
  Disabled: 'DISABLED',
  EnabledWithAllCloudTrailManagementEvents: 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS',
} as const;
/** One of {@link RuleState}. */
export type RuleState = (typeof RuleState)[keyof typeof RuleState];

/** The local EventBridge service. */
export interface LocalEventBridgeService extends LocalService, EventSink {
  /** Creates or updates a rule (its targets are kept); returns the rule ARN. */
  putRule(rule: RuleInput): string;
  /** Adds or replaces targets of a rule. */
  putTargets(rule: string, targets: readonly TargetInput[], eventBusName?: string): void;
  /** Resolves when every delivery started so far finished (retries included). */
  drain(): Promise<void>;
}

/** An EventBridge API error: rendered as the JSON protocol's `__type` and message. */
export class EventBridgeError extends AwsServiceError {
  override readonly name = 'EventBridgeError';
  constructor(code: string, message: string, status = 400) {
    super(code, status, message);
  }
}

/** The EventBridge envelope delivered to targets. */
export interface EventEnvelope {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: unknown;
}

interface Target {
  readonly Id: string;
  readonly Arn: string;
  readonly Input?: string;
  readonly InputPath?: string;
  readonly InputTransformer?: { InputPathsMap?: Record<string, string>; InputTemplate: string };
  readonly RetryPolicy?: { MaximumRetryAttempts?: number; MaximumEventAgeInSeconds?: number };
  readonly [extra: string]: unknown;
}

interface Rule {
  readonly name: string;
  readonly bus: string;
  readonly arn: string;
  patternText: string | undefined;
  pattern: EventPattern | undefined;
  scheduleExpression: string | undefined;
  state: RuleState;
  description: string | undefined;
  roleArn: string | undefined;
  readonly targets: Map<string, Target>;
  schedule: NodeJS.Timeout | undefined;
}

const DEFAULT_BUS = 'default';
const MAX_TARGETS_PER_RULE = 5;
const NAME = /^[.\-_A-Za-z0-9]{1,64}$/;

/** Creates the local EventBridge service. */
export function createEventBridgeService(opts: EventBridgeServiceOptions): LocalEventBridgeService {
  const { hooks, lambda, region, accountId } = opts;
  const maxAttempts = opts.maxDeliveryAttempts ?? 3;
  const baseDelayMs = opts.retryBaseDelayMs ?? 200;
  const rules = new Map<string, Rule>(); // key: `${bus}/${name}`
  const deliveries = new Set<Promise<void>>();
  const stopping = new AbortController();

  const busName = (nameOrArn: unknown): string => {
    if (nameOrArn === undefined || nameOrArn === null || nameOrArn === '') return DEFAULT_BUS;
    const text = fieldText(nameOrArn);
    return text.startsWith('arn:') ? (text.split(':event-bus/')[1] ?? DEFAULT_BUS) : text;
  };
  const ruleArn = (bus: string, name: string): string =>
    `arn:aws:events:${region}:${accountId}:rule/${bus === DEFAULT_BUS ? '' : `${bus}/`}${name}`;
  const busArn = (bus: string): string => `arn:aws:events:${region}:${accountId}:event-bus/${bus}`;

  function getRule(name: unknown, bus: unknown): Rule {
    const busKey = busName(bus);
    const rule = rules.get(`${busKey}/${String(name)}`);
    if (!rule) throw new EventBridgeError('ResourceNotFoundException', `Rule ${String(name)} does not exist on EventBus ${busKey}.`);
    return rule;
  }

  function putRule(input: {
    Name?: unknown;
    EventPattern?: unknown;
    ScheduleExpression?: unknown;
    State?: unknown;
    Description?: unknown;
    RoleArn?: unknown;
    EventBusName?: unknown;
  }): string {
    const name = input.Name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new EventBridgeError('ValidationException', `1 validation error detected: Value '${String(name)}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+`);
    }
    if (input.EventPattern === undefined && input.ScheduleExpression === undefined) {
      throw new EventBridgeError('ValidationException', 'Parameter(s) EventPattern or ScheduleExpression must be specified.');
    }
    let pattern: EventPattern | undefined;
    let patternText: string | undefined;
    if (input.EventPattern !== undefined) {
      if (typeof input.EventPattern !== 'string' && (typeof input.EventPattern !== 'object' || input.EventPattern === null)) {
        throw new InvalidEventPatternError('Filter is not an object');
      }
      pattern = parsePattern(input.EventPattern);
      patternText = typeof input.EventPattern === 'string' ? input.EventPattern : JSON.stringify(input.EventPattern);
    }
    let scheduleMs: number | undefined;
    if (input.ScheduleExpression !== undefined) {
      scheduleMs = parseSchedule(fieldText(input.ScheduleExpression));
    }
    const state = input.State === undefined ? RuleState.Enabled : fieldText(input.State);
    if (!Object.values<string>(RuleState).includes(state)) {
      throw new EventBridgeError('ValidationException', `Value '${state}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]`);
    }
    const bus = busName(input.EventBusName);
    const key = `${bus}/${name}`;
    const existing = rules.get(key);
    if (existing?.schedule) clearInterval(existing.schedule);
    const rule: Rule = existing ?? {
      name,
      bus,
      arn: ruleArn(bus, name),
      targets: new Map(),
      patternText: undefined,
      pattern: undefined,
      scheduleExpression: undefined,
      state: RuleState.Enabled,
      description: undefined,
      roleArn: undefined,
      schedule: undefined,
    };
    rule.pattern = pattern;
    rule.patternText = patternText;
    rule.scheduleExpression = input.ScheduleExpression === undefined ? undefined : fieldText(input.ScheduleExpression);
    rule.state = state as RuleState;
    rule.description = input.Description === undefined ? undefined : fieldText(input.Description);
    rule.roleArn = input.RoleArn === undefined ? undefined : fieldText(input.RoleArn);
    rule.schedule = undefined;
    if (scheduleMs !== undefined) {
      rule.schedule = setInterval(() => fireSchedule(rule), scheduleMs);
      rule.schedule.unref();
    }
    rules.set(key, rule);
    return rule.arn;
  }

  function fireSchedule(rule: Rule): void {
    if (!isEnabled(rule)) return;
    const envelope = makeEnvelope({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {}, resources: [rule.arn] });
    for (const target of rule.targets.values()) deliver(rule, target, envelope);
  }

  function putTargets(ruleName: unknown, bus: unknown, targets: unknown): { FailedEntryCount: number; FailedEntries: unknown[] } {
    const rule = getRule(ruleName, bus);
    if (!Array.isArray(targets) || targets.length === 0 || targets.length > 10) {
      throw new EventBridgeError('ValidationException', 'Targets must hold between 1 and 10 entries.');
    }
    const incoming = new Map(rule.targets);
    for (const raw of targets as Record<string, unknown>[]) {
      if (typeof raw?.['Id'] !== 'string' || !/^[.\-_A-Za-z0-9]{1,64}$/.test(raw['Id']) || typeof raw['Arn'] !== 'string' || !raw['Arn'].startsWith('arn:')) {
        throw new EventBridgeError('ValidationException', `Target ${JSON.stringify(raw?.['Id'])} needs a valid Id and Arn.`);
      }
      if ([raw['Input'], raw['InputPath'], raw['InputTransformer']].filter((v) => v !== undefined).length > 1) {
        throw new EventBridgeError('ValidationException', 'Only one of Input, InputPath, or InputTransformer must be provided.');
      }
      if (typeof raw['Input'] === 'string') {
        try {
          JSON.parse(raw['Input']);
        } catch {
          throw new EventBridgeError('ValidationException', `Target ${raw['Id']}: Input is not valid JSON text.`);
        }
      }
      incoming.set(raw['Id'], raw as Target);
    }
    if (incoming.size > MAX_TARGETS_PER_RULE) {
      throw new EventBridgeError('LimitExceededException', `The requested resource exceeds the maximum number allowed (${MAX_TARGETS_PER_RULE} targets per rule).`);
    }
    rule.targets.clear();
    for (const [id, target] of incoming) rule.targets.set(id, target);
    return { FailedEntryCount: 0, FailedEntries: [] };
  }

  function makeEnvelope(event: CloudEvent & { time?: string }): EventEnvelope {
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': event['detail-type'],
      source: event.source,
      account: accountId,
      time: event.time ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region,
      resources: [...(event.resources ?? [])],
      detail: event.detail,
    };
  }

  /** Sends an envelope to every enabled rule of `bus` that matches it. */
  function route(bus: string, envelope: EventEnvelope): void {
    for (const rule of rules.values()) {
      if (rule.bus !== bus || !isEnabled(rule) || !rule.pattern) continue;
      if (!matchesPattern(rule.pattern, envelope)) continue;
      for (const target of rule.targets.values()) deliver(rule, target, envelope);
    }
  }

  function deliver(rule: Rule, target: Target, envelope: EventEnvelope): void {
    if (stopping.signal.aborted) return;
    const task = deliverWithRetries(rule, target, envelope).catch((error: unknown) => {
      console.error(`[local events] delivery of ${envelope.id} to ${target.Arn} failed`, error);
    });
    deliveries.add(task);
    void task.finally(() => deliveries.delete(task));
  }

  async function deliverWithRetries(rule: Rule, target: Target, envelope: EventEnvelope): Promise<void> {
    if (!target.Arn.startsWith('arn:aws:lambda:')) {
      console.warn(`[local events] rule ${rule.name}: target ${target.Id} (${target.Arn}) is not a Lambda function; not delivered`);
      return;
    }
    const payload = targetInput(target, envelope);
    const retries = target.RetryPolicy?.MaximumRetryAttempts;
    const attempts = retries === undefined ? maxAttempts : Math.max(1, retries + 1);
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (stopping.signal.aborted) return;
      const outcome = await lambda.invoke(target.Arn, payload, { signal: stopping.signal }).catch((error: unknown) => {
        if (stopping.signal.aborted) return undefined;
        throw error;
      });
      if (!outcome) return;
      if (outcome.ok) return;
      lastError = `${outcome.payload.errorType}: ${outcome.payload.errorMessage}`;
      if (attempt < attempts) await abortableSleep(baseDelayMs * 2 ** (attempt - 1), stopping.signal);
    }
    console.error(`[local events] rule ${rule.name}: gave up delivering event ${envelope.id} to ${target.Arn} after ${attempts} attempts (${lastError})`);
  }

  function emit(event: CloudEvent): void {
    try {
      if (stopping.signal.aborted) return;
      route(DEFAULT_BUS, makeEnvelope(event));
    } catch (error) {
      // Producers (Batch, Braket) must never fail because the bus did.
      console.error('[local events] emit failed', error);
    }
  }

  function putEvents(entries: unknown): { FailedEntryCount: number; Entries: unknown[] } {
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > 10) {
      throw new EventBridgeError('ValidationException', '1 validation error detected: Value at \'entries\' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1');
    }
    const results: unknown[] = [];
    let failed = 0;
    for (const raw of entries as Record<string, unknown>[]) {
      const problem = entryProblem(raw);
      if (problem) {
        failed++;
        results.push(problem);
        continue;
      }
      const envelope = makeEnvelope({
        source: raw['Source'] as string,
        'detail-type': raw['DetailType'] as string,
        detail: JSON.parse(raw['Detail'] as string) as Record<string, unknown>,
        resources: Array.isArray(raw['Resources']) ? (raw['Resources'] as string[]) : [],
        ...(raw['Time'] !== undefined ? { time: eventTime(raw['Time']) } : {}),
      });
      route(busName(raw['EventBusName']), envelope);
      results.push({ EventId: envelope.id });
    }
    return { FailedEntryCount: failed, Entries: results };
  }

  function describe(rule: Rule): Record<string, unknown> {
    return {
      Name: rule.name,
      Arn: rule.arn,
      State: rule.state,
      EventBusName: rule.bus,
      ...(rule.patternText !== undefined ? { EventPattern: rule.patternText } : {}),
      ...(rule.scheduleExpression !== undefined ? { ScheduleExpression: rule.scheduleExpression } : {}),
      ...(rule.description !== undefined ? { Description: rule.description } : {}),
      ...(rule.roleArn !== undefined ? { RoleArn: rule.roleArn } : {}),
    };
  }

  /** One JSON-protocol operation; throws {@link EventBridgeError} for AWS errors. */
  function operate(operation: string, input: Record<string, unknown>): unknown {
    switch (operation) {
      case 'PutRule':
        return { RuleArn: putRule(input) };
      case 'DescribeRule':
        return { ...describe(getRule(input['Name'], input['EventBusName'])), CreatedBy: accountId };
      case 'ListRules': {
        const bus = busName(input['EventBusName']);
        const prefix = typeof input['NamePrefix'] === 'string' ? input['NamePrefix'] : '';
        const all = [...rules.values()].filter((r) => r.bus === bus && r.name.startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name));
        return paginate(all.map(describe), input, 'Rules');
      }
      case 'DeleteRule': {
        const key = `${busName(input['EventBusName'])}/${String(input['Name'])}`;
        const rule = rules.get(key);
        // Deleting a rule that does not exist succeeds on AWS too.
        if (!rule) return {};
        if (rule.targets.size > 0 && input['Force'] !== true) {
          throw new EventBridgeError('ValidationException', "Rule can't be deleted since it has targets.");
        }
        if (rule.schedule) clearInterval(rule.schedule);
        rules.delete(key);
        return {};
      }
      case 'EnableRule':
      case 'DisableRule':
        getRule(input['Name'], input['EventBusName']).state = operation === 'EnableRule' ? RuleState.Enabled : RuleState.Disabled;
        return {};
      case 'PutTargets':
        return putTargets(input['Rule'], input['EventBusName'], input['Targets']);
      case 'ListTargetsByRule': {
        const rule = getRule(input['Rule'], input['EventBusName']);
        return paginate([...rule.targets.values()], input, 'Targets');
      }
      case 'RemoveTargets': {
        const rule = getRule(input['Rule'], input['EventBusName']);
        const ids = Array.isArray(input['Ids']) ? (input['Ids'] as unknown[]).map(String) : [];
        for (const id of ids) rule.targets.delete(id);
        return { FailedEntryCount: 0, FailedEntries: [] };
      }
      case 'PutEvents':
        return putEvents(input['Entries']);
      case 'TestEventPattern': {
        const pattern = parsePattern(typeof input['EventPattern'] === 'string' ? input['EventPattern'] : '');
        let event: unknown;
        try {
          event = JSON.parse(String(input['Event']));
        } catch {
          throw new EventBridgeError('InvalidEventPatternException', 'Event is not valid JSON.');
        }
        return { Result: matchesPattern(pattern, event) };
      }
      case 'ListEventBuses':
        return { EventBuses: [{ Name: DEFAULT_BUS, Arn: busArn(DEFAULT_BUS) }] };
      case 'DescribeEventBus': {
        const bus = busName(input['Name']);
        return { Name: bus, Arn: busArn(bus) };
      }
      default:
        throw new EventBridgeError('UnknownOperationException', `Operation ${operation} is not supported by the local EventBridge`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, _ctx: RequestContext): Promise<void> {
    const requestId = randomUUID();
    const answer = (status: number, body: unknown, errorType?: string): void => {
      send(res, status, JSON.stringify(body), {
        'Content-Type': 'application/x-amz-json-1.1',
        'x-amzn-RequestId': requestId,
        ...(errorType ? { 'x-amzn-ErrorType': errorType } : {}),
      });
    };
    try {
      const body = await readBody(req);
      const target = String(req.headers['x-amz-target'] ?? '');
      const [prefix, operation] = target.split('.');
      if (req.method !== 'POST' || prefix !== 'AWSEvents' || !operation) {
        answer(400, { __type: 'UnknownOperationException', message: `Unknown operation ${target || '(no X-Amz-Target)'}` }, 'UnknownOperationException');
        return;
      }
      hooks.count(operation);
      const fault = await hooks.fault(operation);
      if (fault) {
        answer(fault.status, { __type: fault.code, message: fault.message }, fault.code);
        return;
      }
      let input: Record<string, unknown>;
      try {
        const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
        input = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
      } catch {
        answer(400, { __type: 'SerializationException', message: 'Start of structure or map found where not expected.' }, 'SerializationException');
        return;
      }
      answer(200, operate(operation, input));
    } catch (error) {
      if (error instanceof AwsServiceError) {
        answer(error.status, { __type: error.awsCode, message: error.message }, error.awsCode);
      } else if (!res.headersSent) {
        answer(500, { __type: 'InternalException', message: error instanceof Error ? error.message : String(error) }, 'InternalException');
      } else {
        res.destroy();
      }
    }
  }

  return {
    signingName: 'events',
    handle,
    emit,
    putRule: (rule) =>
      putRule({
        Name: rule.name,
        EventPattern: rule.eventPattern,
        ScheduleExpression: rule.scheduleExpression,
        State: rule.state,
        Description: rule.description,
        EventBusName: rule.eventBusName,
      }),
    putTargets: (rule, targets, eventBusName) => {
      putTargets(
        rule,
        eventBusName,
        targets.map((t) => ({
          Id: t.id,
          Arn: t.arn,
          ...(t.input !== undefined ? { Input: t.input } : {}),
          ...(t.inputPath !== undefined ? { InputPath: t.inputPath } : {}),
          ...(t.inputTransformer !== undefined
            ? { InputTransformer: { InputPathsMap: { ...t.inputTransformer.inputPathsMap }, InputTemplate: t.inputTransformer.inputTemplate } }
            : {}),
          ...(t.retryPolicy !== undefined ? { RetryPolicy: { MaximumRetryAttempts: t.retryPolicy.maximumRetryAttempts } } : {}),
        })),
      );
    },
    drain: async () => {
      while (deliveries.size > 0) await Promise.allSettled([...deliveries]);
    },
    stop: async () => {
      stopping.abort(new Error('EventBridge stopped'));
      for (const rule of rules.values()) if (rule.schedule) clearInterval(rule.schedule);
      await Promise.allSettled([...deliveries]);
    },
  };
}

/** A request field as text: strings as they are, anything else as its JSON, so an error names what was sent. */
function fieldText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function isEnabled(rule: Rule): boolean {
  return rule.state !== RuleState.Disabled;
}

/** The PutEvents entry error, or undefined when the entry is valid. */
function entryProblem(raw: Record<string, unknown>): { ErrorCode: string; ErrorMessage: string } | undefined {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    if (typeof raw?.[field] !== 'string' || raw[field] === '') {
      return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
    }
  }
  if ((raw['Source'] as string).startsWith('aws.')) {
    return { ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: 'Not authorized for the source.' };
  }
  try {
    const detail: unknown = JSON.parse(raw['Detail'] as string);
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) throw new Error('not an object');
  } catch {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
  }
  return undefined;
}

/** `Time` arrives as epoch seconds (the SDK's JSON timestamp) or as text. */
function eventTime(value: unknown): string {
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(String(value));
  return (Number.isNaN(date.getTime()) ? new Date() : date).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** What a target receives: the envelope, a constant, a part of it, or a transformed template. */
function targetInput(target: Target, envelope: EventEnvelope): unknown {
  if (typeof target.Input === 'string') return JSON.parse(target.Input) as unknown;
  if (typeof target.InputPath === 'string') return jsonPath(envelope, target.InputPath);
  if (target.InputTransformer) {
    const values: Record<string, unknown> = {};
    for (const [name, path] of Object.entries(target.InputTransformer.InputPathsMap ?? {})) values[name] = jsonPath(envelope, path);
    const text = target.InputTransformer.InputTemplate.replace(/<([A-Za-z0-9_.-]+)>/g, (whole, name: string) => {
      if (name === 'aws.events.event' || name === 'aws.events.event.json') return JSON.stringify(envelope);
      if (!(name in values)) return whole;
      const value = values[name];
      // Strings go in raw (the template quotes them); anything else as JSON.
      return typeof value === 'string' ? value : JSON.stringify(value ?? null);
    });
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return envelope;
}

/** Simple JSONPath: `$`, `$.a.b`, `$.a[0]`, `$['a-b']`. */
function jsonPath(root: unknown, path: string): unknown {
  const tokens = path.replace(/^\$/, '').match(/\.([^.[\]]+)|\[(\d+)\]|\['([^']+)'\]/g) ?? [];
  let value: unknown = root;
  for (const token of tokens) {
    const key = token.startsWith('.') ? token.slice(1) : token.startsWith("['") ? token.slice(2, -2) : Number(token.slice(1, -1));
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/** Milliseconds between firings of `rate(...)`; undefined for `cron(...)` (stored, never fired). */
function parseSchedule(expression: string): number | undefined {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const n = Number(rate[1]);
    const unit = rate[2]!.replace(/s$/, '');
    if (n < 1 || (n === 1) !== !rate[2]!.endsWith('s')) {
      throw new EventBridgeError('ValidationException', 'Parameter ScheduleExpression is not valid.');
    }
    return n * (unit === 'minute' ? 60_000 : unit === 'hour' ? 3_600_000 : 86_400_000);
  }
  if (/^cron\(.+\)$/.test(expression)) return undefined;
  throw new EventBridgeError('ValidationException', 'Parameter ScheduleExpression is not valid.');
}

function paginate<T>(items: readonly T[], input: Record<string, unknown>, key: string): Record<string, unknown> {
  const start = Number(input['NextToken'] ?? 0) || 0;
  const limit = Math.min(Math.max(Number(input['Limit'] ?? 100) || 100, 1), 100);
  const page = items.slice(start, start + limit);
  return { [key]: page, ...(start + limit < items.length ? { NextToken: String(start + limit) } : {}) };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
