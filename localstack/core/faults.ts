/**
 * Fault injection for the local cloud: errors (throttling, 5xx) and added latency per service
 * and operation, and "crash the Nth Lambda invocation". Off until configured.
 *
 * valence's promises (no node runs twice, a cancel is truthful) must hold when AWS throttles,
 * fails or is slow; these faults let tests make AWS do so on purpose. The router applies them
 * to DynamoDB, S3 and CloudFormation before the request reaches the emulator; every other
 * service asks its {@link ServiceHooks} itself, so in-process calls are affected too.
 */
import type { InjectedFault } from './service.ts';
import { AwsServiceError } from '../wire/errors.ts';

/** Which kind of error a rule injects. */
export const FaultKind = {
  /** The service's throttling error (DynamoDB `ThrottlingException`, S3 `SlowDown`, …). */
  Throttling: 'throttling',
  /** A 500 internal error in the service's own code (`InternalServerError`, `InternalError`, …). */
  ServerError: 'server-error',
  /** 503 `ServiceUnavailable`. */
  Unavailable: 'unavailable',
} as const;
/** One of {@link FaultKind}. */
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

/** One fault rule. Every rule that matches a request applies: latencies add up, the first error drawn wins. */
export interface FaultRule {
  /** SigV4 signing name (`dynamodb`, `s3`, `states`, `lambda`, …) or `*`. */
  readonly service: string;
  /** Operation name as counted (`PutItem`, `GetObject`, `Invoke`, …). @default '*' */
  readonly operation?: string;
  /** Probability in [0, 1] that a matching request fails. @default 0 */
  readonly errorRate?: number;
  /** The error to fail with: a kind, or an exact status and code. @default 'throttling' */
  readonly error?: FaultKind | { readonly status: number; readonly code: string; readonly message?: string };
  /** Milliseconds added before the request is answered. @default 0 */
  readonly latencyMs?: number;
  /** Inject at most this many errors, then only the latency. @default unlimited */
  readonly maxErrors?: number;
}

/** Crash one future Lambda invocation: the `nth` (1-based) counted from when the rule was set. */
export interface LambdaCrashRule {
  readonly nth: number;
  /** Crash this long after the handler started (mid-run) instead of at once. @default 0 */
  readonly afterMs?: number;
  /** Function name (or ARN); unset means invocations of any function count. */
  readonly functionName?: string;
}

/** The whole fault configuration, as the HTTP admin API reads and writes it. */
export interface FaultConfig {
  readonly rules: readonly FaultRule[];
  readonly lambdaCrashes: readonly LambdaCrashRule[];
}

/** A fault configuration that does not parse. */
export class FaultConfigError extends AwsServiceError {
  override readonly name = 'FaultConfigError';
  constructor(message: string) {
    super('InvalidFaultConfig', 400, message);
  }
}

interface ActiveRule {
  readonly rule: FaultRule;
  injected: number;
}

interface ActiveCrash {
  readonly rule: LambdaCrashRule;
  seen: number;
}

/** Decides, per request, whether to delay it and whether to fail it. */
export class FaultInjector {
  #rules: ActiveRule[] = [];
  #crashes: ActiveCrash[] = [];
  readonly #random: () => number;
  readonly #stopped = new AbortController();

  /** @param options.random source of randomness for error rates (tests pass a seeded one). */
  constructor(options: { random?: () => number } = {}) {
    this.#random = options.random ?? Math.random;
  }

  /** Adds one rule on top of the current ones. */
  add(rule: FaultRule): void {
    this.#rules.push({ rule: validateRule(rule), injected: 0 });
  }

  /** Crashes the `nth` Lambda invocation from now (of `functionName`, or of any function). */
  crashNthInvocation(nth: number, functionName?: string, afterMs?: number): void {
    this.#crashes.push({
      rule: validateCrash({ nth, ...(functionName === undefined ? {} : { functionName }), ...(afterMs === undefined ? {} : { afterMs }) }),
      seen: 0,
    });
  }

  /** Replaces the whole configuration (validated first; an invalid one changes nothing). */
  set(config: Partial<FaultConfig>): void {
    const rules = (config.rules ?? []).map((rule) => ({ rule: validateRule(rule), injected: 0 }));
    const crashes = (config.lambdaCrashes ?? []).map((rule) => ({ rule: validateCrash(rule), seen: 0 }));
    this.#rules = rules;
    this.#crashes = crashes;
  }

  /** Turns every fault off. */
  clear(): void {
    this.#rules = [];
    this.#crashes = [];
  }

  /** The current configuration (crash rules already fired are gone). */
  config(): FaultConfig {
    return { rules: this.#rules.map((r) => r.rule), lambdaCrashes: this.#crashes.map((c) => c.rule) };
  }

  /** True when any fault is configured; the router skips all work otherwise. */
  get active(): boolean {
    return this.#rules.length > 0 || this.#crashes.length > 0;
  }

  /**
   * Applies the latency of every matching rule, then draws each matching rule's error rate.
   * Resolves early (with no error) once the injector is stopped, so no timer outlives it.
   */
  async decide(service: string, operation: string): Promise<InjectedFault | undefined> {
    if (this.#rules.length === 0) return undefined;
    const matching = this.#rules.filter(({ rule }) => matches(rule.service, service) && matches(rule.operation ?? '*', operation));
    if (matching.length === 0) return undefined;
    const latency = matching.reduce((sum, { rule }) => sum + (rule.latencyMs ?? 0), 0);
    if (latency > 0) await sleep(latency, this.#stopped.signal);
    if (this.#stopped.signal.aborted) return undefined;
    for (const active of matching) {
      const { rule } = active;
      const rate = rule.errorRate ?? 0;
      if (rate <= 0 || (rule.maxErrors !== undefined && active.injected >= rule.maxErrors)) continue;
      if (rate >= 1 || this.#random() < rate) {
        active.injected += 1;
        return faultFor(service, rule.error ?? FaultKind.Throttling);
      }
    }
    return undefined;
  }

  /** Counts one invocation of `functionName`; true when a crash rule says it must crash. */
  crashInvocation(functionName: string): boolean | { readonly afterMs: number } {
    let crash: boolean | { readonly afterMs: number } = false;
    for (const active of this.#crashes) {
      const wanted = active.rule.functionName;
      if (wanted !== undefined && !sameFunction(wanted, functionName)) continue;
      active.seen += 1;
      if (active.seen === active.rule.nth) crash = active.rule.afterMs ? { afterMs: active.rule.afterMs } : true;
    }
    this.#crashes = this.#crashes.filter((c) => c.seen < c.rule.nth);
    return crash;
  }

  /** Releases pending latency timers; later decisions inject nothing. */
  stop(): void {
    this.#stopped.abort();
    this.clear();
  }
}

/** The error AWS itself would send for `kind` from `service`, so SDK retry logic classifies it correctly. */
export function faultFor(service: string, kind: FaultRule['error']): InjectedFault {
  if (kind !== undefined && typeof kind === 'object') {
    return { status: kind.status, code: kind.code, message: kind.message ?? `Injected fault: ${kind.code}` };
  }
  switch (kind ?? FaultKind.Throttling) {
    case FaultKind.Throttling:
      if (service === 's3') return { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
      if (service === 'lambda') return { status: 429, code: 'TooManyRequestsException', message: 'Rate Exceeded.' };
      return { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' };
    case FaultKind.ServerError:
      if (service === 's3') return { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
      if (service === 'dynamodb') return { status: 500, code: 'InternalServerError', message: 'Internal server error' };
      if (service === 'lambda') return { status: 500, code: 'ServiceException', message: 'The AWS Lambda service encountered an internal error.' };
      return { status: 500, code: 'InternalFailure', message: 'The request processing has failed because of an unknown error, exception or failure.' };
    case FaultKind.Unavailable:
      return { status: 503, code: 'ServiceUnavailable', message: 'Service is unavailable. Please try again.' };
  }
}

function matches(pattern: string, value: string): boolean {
  return pattern === '*' || pattern === value;
}

function sameFunction(wanted: string, actual: string): boolean {
  const name = (s: string) => (s.includes(':function:') ? (s.split(':function:')[1]?.split(':')[0] ?? s) : s);
  return name(wanted) === name(actual);
}

function validateRule(input: unknown): FaultRule {
  if (typeof input !== 'object' || input === null) throw new FaultConfigError('a fault rule must be an object');
  const rule = input as Record<string, unknown>;
  if (typeof rule.service !== 'string' || !rule.service) throw new FaultConfigError('a fault rule needs a service (or "*")');
  if (rule.operation !== undefined && typeof rule.operation !== 'string') throw new FaultConfigError('operation must be a string');
  const rate = rule.errorRate;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate >= 0 && rate <= 1))) {
    throw new FaultConfigError('errorRate must be a number in [0, 1]');
  }
  const latency = rule.latencyMs;
  if (latency !== undefined && (typeof latency !== 'number' || !(latency >= 0 && latency <= 600_000))) {
    throw new FaultConfigError('latencyMs must be a number in [0, 600000]');
  }
  const maxErrors = rule.maxErrors;
  if (maxErrors !== undefined && (typeof maxErrors !== 'number' || !Number.isInteger(maxErrors) || maxErrors < 0)) {
    throw new FaultConfigError('maxErrors must be a non-negative integer');
  }
  const error = rule.error;
  if (error !== undefined) {
    const kinds: unknown[] = Object.values(FaultKind);
    const exact = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : undefined;
    const validExact = exact !== undefined && typeof exact.status === 'number' && exact.status >= 400 && exact.status <= 599 && typeof exact.code === 'string';
    if (!kinds.includes(error) && !validExact) {
      throw new FaultConfigError(`error must be one of ${Object.values(FaultKind).join(', ')} or { status: 4xx|5xx, code }`);
    }
  }
  return { ...(rule as unknown as FaultRule) };
}

function validateCrash(input: unknown): LambdaCrashRule {
  if (typeof input !== 'object' || input === null) throw new FaultConfigError('a Lambda crash rule must be an object');
  const rule = input as Record<string, unknown>;
  if (typeof rule.nth !== 'number' || !Number.isInteger(rule.nth) || rule.nth < 1) throw new FaultConfigError('nth must be an integer >= 1');
  if (rule.functionName !== undefined && typeof rule.functionName !== 'string') throw new FaultConfigError('functionName must be a string');
  if (rule.afterMs !== undefined && (typeof rule.afterMs !== 'number' || !Number.isFinite(rule.afterMs) || rule.afterMs < 0)) {
    throw new FaultConfigError('afterMs must be a number >= 0');
  }
  return {
    nth: rule.nth,
    ...(rule.functionName === undefined ? {} : { functionName: rule.functionName }),
    ...(rule.afterMs === undefined ? {} : { afterMs: rule.afterMs }),
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
