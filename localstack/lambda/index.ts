/**
 * The local Lambda service: functions registered from code (a module path, no zip), run in
 * worker-thread sandboxes that stay warm between invocations, with Lambda's timeouts, error
 * shapes and a per-function concurrency limit, behind Lambda's REST-JSON wire protocol so
 * `@aws-sdk/client-lambda` works unchanged.
 *
 * Where AWS behaviour matters for cancellation, this behaves like AWS: a timed-out or crashed
 * sandbox dies with everything it was doing, and a caller that stops waiting (an aborted
 * signal, a stopped Step Functions execution) does not stop the invocation.
 *
 * @example
 * ```ts
 * const lambda = createLambdaService({ hooks, region, accountId, environment: () => ({ AWS_ENDPOINT_URL: endpoint }) });
 * lambda.register({ functionName: 'step', entry: '/path/to/lambdas/step.ts', timeoutSeconds: 60 });
 * const outcome = await lambda.invoke('step', { action: 'run' });
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { randomUUID, createHash } from 'node:crypto';
import { plainRuntimeUrl } from './plain-runtime.ts';
import { basename, dirname, extname, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type {
  InvocationOutcome,
  LambdaInvoker,
  LocalFunctionConfig,
  LocalService,
  RequestContext,
  ServiceHooks,
} from '../core/service.ts';
import { readBody } from '../wire/body.ts';
import { workloadEnvironment } from '../core/credentials.ts';
import { send } from '../wire/json.ts';
import { PoolClosedError, SandboxPool } from './pool.ts';
import type { SandboxOptions, SandboxOutcome } from './sandbox.ts';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** Options of {@link createLambdaService}. */
export interface LambdaServiceOptions {
  readonly hooks: ServiceHooks;
  readonly region: string;
  readonly accountId: string;
  /**
   * Environment the cloud gives every function (endpoint, region, test credentials, table and
   * bucket names); read each time a sandbox starts, so it may change after the server listens.
   */
  readonly environment: () => Record<string, string>;
  /**
   * How long an idle warm sandbox is kept before its worker is terminated.
   * @default 300000 (five minutes)
   */
  readonly sandboxIdleMs?: number;
  /**
   * Sandboxes of one function in their init phase at once: how fast a function's pool grows.
   * @default the host's available parallelism (at least 2)
   */
  readonly sandboxStartsAtOnce?: number;
  /**
   * Sandboxes of one function started as soon as invocations need them, before the pool's growth
   * limits apply (see pool.ts). @default 8
   */
  readonly eagerSandboxes?: number;
}

/** The local Lambda service: HTTP API, in-process invoker, and registration from code. */
export interface LocalLambdaService extends LocalService, LambdaInvoker {
  /** Registers (or replaces) a function; returns its ARN. Replacing discards warm sandboxes. */
  register(cfg: LocalFunctionConfig): string;
  /** Resolves when every asynchronous (`Event`) invocation accepted so far has finished. */
  drain(): Promise<void>;
  /** Names of the registered functions. */
  functionNames(): string[];
}

const API_VERSION = '2015-03-31';
/** Lambda's payload limits: 6 MB for synchronous and 256 KB for asynchronous invocations. */
const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
const ASYNC_PAYLOAD_LIMIT = 256 * 1024;
const DEFAULT_TIMEOUT_SECONDS = 900;
/**
 * A function without reserved concurrency may run as many invocations at once as its account
 * allows: 1,000 concurrent executions per Region is Lambda's default quota ("Lambda quotas",
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html; new accounts may
 * start lower, and AWS raises them with use). The local pool grows toward it no faster than its
 * init limit lets it (see pool.ts), as Lambda's scaling rate bounds a function on AWS.
 */
const DEFAULT_CONCURRENCY = 1000;
const DEFAULT_MEMORY_MB = 128;

/** How an invocation is requested, as `X-Amz-Invocation-Type` names it. */
export const InvocationType = {
  RequestResponse: 'RequestResponse',
  Event: 'Event',
  DryRun: 'DryRun',
} as const;
/** One of {@link InvocationType}. */
export type InvocationType = (typeof InvocationType)[keyof typeof InvocationType];

/** A refusal by the Lambda service itself (not the function): rendered as an HTTP error. */
interface ServiceError {
  readonly kind: 'service';
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly type: 'User' | 'Service';
}

interface RegisteredFunction {
  readonly cfg: LocalFunctionConfig;
  readonly name: string;
  readonly arn: string;
  readonly pool: SandboxPool;
  readonly lastModified: string;
  readonly codeSha256: string;
  readonly timeoutSeconds: number;
  readonly concurrency: number;
  readonly memoryMB: number;
  readonly handlerSetting: string;
  readonly entryUrl: string;
}

/** Creates the local Lambda service. */
export function createLambdaService(opts: LambdaServiceOptions): LocalLambdaService {
  const { hooks, region, accountId } = opts;
  const functions = new Map<string, RegisteredFunction>();
  const asyncInvocations = new Set<Promise<unknown>>();
  let stopped = false;

  const arnOf = (name: string): string => `arn:aws:lambda:${region}:${accountId}:function:${name}`;

  /** Accepts a name, `name:qualifier`, a partial ARN (`account:function:name`) or a full ARN. */
  function lookup(nameOrArn: string): RegisteredFunction | undefined {
    const parts = nameOrArn.split(':');
    let name: string | undefined;
    let qualifier: string | undefined;
    if (parts[0] === 'arn') {
      if (parts[2] !== 'lambda' || parts[5] !== 'function') return undefined;
      if (parts[3] !== region || parts[4] !== accountId) return undefined;
      name = parts[6];
      qualifier = parts[7];
    } else if (parts[1] === 'function') {
      if (parts[0] !== accountId) return undefined;
      name = parts[2];
      qualifier = parts[3];
    } else {
      name = parts[0];
      qualifier = parts[1];
    }
    if (qualifier !== undefined && qualifier !== '$LATEST') return undefined;
    return name === undefined ? undefined : functions.get(name);
  }

  function sandboxOptions(fn: RegisteredFunction): SandboxOptions {
    const logStream = `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${randomUUID().replaceAll('-', '')}`;
    return {
      name: `lambda:${fn.name}`,
      data: { entryUrl: fn.entryUrl, exportName: fn.cfg.exportName ?? 'handler', handlerSetting: fn.handlerSetting, ...javaScriptRuntime(fn.entryUrl) },
      env: workloadEnvironment(opts.environment(), fn.cfg.environment, {
        // Reserved variables: a function's own configuration cannot override them on AWS either.
        AWS_REGION: region,
        AWS_DEFAULT_REGION: region,
        AWS_LAMBDA_FUNCTION_NAME: fn.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMB),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
        AWS_LAMBDA_LOG_STREAM_NAME: logStream,
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
        LAMBDA_TASK_ROOT: dirname(fileURLToPath(fn.entryUrl)),
        _HANDLER: fn.handlerSetting,
      }),
    };
  }

  /** A JavaScript handler runs without a TypeScript loader, as on Lambda. */
  function javaScriptRuntime(entryUrl: string): { runtimeUrl?: string } {
    if (!/\.[cm]?js$/.test(entryUrl)) return {};
    const runtimeUrl = plainRuntimeUrl();
    return runtimeUrl === undefined ? {} : { runtimeUrl };
  }

  function register(cfg: LocalFunctionConfig): string {
    if (stopped) throw new LambdaServiceStoppedError();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(cfg.functionName)) {
      throw new InvalidFunctionConfigError(`function name '${cfg.functionName}' must be 1-64 letters, digits, '-' or '_'`);
    }
    const entryUrl = cfg.entry.startsWith('file:') ? cfg.entry : pathToFileURL(resolvePath(cfg.entry)).href;
    const file = fileURLToPath(entryUrl);
    const exportName = cfg.exportName ?? 'handler';
    const previous = functions.get(cfg.functionName);
    // Replaced code must not run in sandboxes that loaded the old code.
    if (previous) void previous.pool.close();
    const pool = new SandboxPool({
      limit: cfg.reservedConcurrency ?? DEFAULT_CONCURRENCY,
      idleMs: opts.sandboxIdleMs ?? 300_000,
      maxStarting: opts.sandboxStartsAtOnce ?? Math.max(2, availableParallelism()),
      ...(opts.eagerSandboxes !== undefined ? { eagerSandboxes: opts.eagerSandboxes } : {}),
      // Read at spawn time: the function record below exists by the time a sandbox starts.
      spawn: () => sandboxOptions(fn),
    });
    const fn: RegisteredFunction = {
      cfg,
      name: cfg.functionName,
      arn: arnOf(cfg.functionName),
      entryUrl,
      pool,
      handlerSetting: `${basename(file, extname(file))}.${exportName}`,
      timeoutSeconds: cfg.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
      concurrency: cfg.reservedConcurrency ?? DEFAULT_CONCURRENCY,
      memoryMB: cfg.memorySizeMB ?? DEFAULT_MEMORY_MB,
      lastModified: new Date().toISOString().replace('Z', '+0000'),
      codeSha256: createHash('sha256').update(`${entryUrl}#${exportName}`).digest('base64'),
    };
    functions.set(fn.name, fn);
    return fn.arn;
  }

  /** Runs one invocation through count, fault injection, lookup, the pool and a sandbox. */
  async function run(
    nameOrArn: string,
    eventJson: string,
    options: { signal?: AbortSignal | undefined; dryRun?: boolean },
  ): Promise<ServiceError | SandboxOutcome | { kind: 'dryRun' }> {
    hooks.count('Invoke');
    const fault = await hooks.fault('Invoke');
    if (fault) return { kind: 'service', status: fault.status, code: fault.code, message: fault.message, type: 'Service' };
    if (stopped) return stoppedError();
    const fn = lookup(nameOrArn);
    if (!fn) return notFound(nameOrArn);
    if (options.dryRun) return { kind: 'dryRun' };
    const crash = hooks.crashInvocation(fn.name);
    let sandbox;
    try {
      sandbox = await fn.pool.acquire(options.signal);
    } catch (error) {
      if (error instanceof PoolClosedError) return stoppedError();
      throw error;
    }
    const acquired = sandbox;
    const requestId = randomUUID();
    const work = (async (): Promise<SandboxOutcome> => {
      try {
        const initError = await acquired.ready();
        if (initError) return { ok: false, functionError: 'Unhandled', payload: initError };
        return await acquired.run({
          requestId,
          eventJson,
          timeoutSeconds: fn.timeoutSeconds,
          crash,
          context: {
            functionName: fn.name,
            functionVersion: '$LATEST',
            invokedFunctionArn: nameOrArn.startsWith('arn:') ? nameOrArn : fn.arn,
            memoryLimitInMB: String(fn.memoryMB),
            awsRequestId: requestId,
            logGroupName: `/aws/lambda/${fn.name}`,
            logStreamName: `$LATEST/${requestId}`,
          },
        });
      } finally {
        fn.pool.release(acquired);
      }
    })();
    // A caller that stops waiting does not stop the invocation (as on AWS); the slot stays
    // taken until the handler really finished.
    return options.signal ? raceAbort(work, options.signal) : work;
  }

  async function invoke(functionNameOrArn: string, payload: unknown, options?: { signal?: AbortSignal }): Promise<InvocationOutcome> {
    const eventJson = JSON.stringify(payload ?? null) ?? 'null';
    const result = await run(functionNameOrArn, eventJson, { signal: options?.signal });
    if ('kind' in result) {
      if (result.kind === 'dryRun') return { ok: true, payload: null };
      return { ok: false, functionError: result.code, payload: { errorType: result.code, errorMessage: result.message } };
    }
    if (result.ok) return { ok: true, payload: JSON.parse(result.payloadJson) as unknown };
    return result;
  }

  function invokeAsync(nameOrArn: string, eventJson: string): void {
    const task = run(nameOrArn, eventJson, {}).then(
      (result) => {
        if ('kind' in result || result.ok) return;
        // Lambda writes async failures to the function's log; this is the local equivalent.
        console.error(`[local lambda] async invocation of ${nameOrArn} failed: ${result.payload.errorType}: ${result.payload.errorMessage}`);
      },
      (error: unknown) => console.error(`[local lambda] async invocation of ${nameOrArn} failed`, error),
    );
    asyncInvocations.add(task);
    void task.finally(() => asyncInvocations.delete(task));
  }

  function stoppedError(): ServiceError {
    return { kind: 'service', status: 503, code: 'ServiceException', message: 'The local Lambda service is stopped', type: 'Service' };
  }

  function notFound(nameOrArn: string): ServiceError {
    const arn = nameOrArn.startsWith('arn:') ? nameOrArn : arnOf(nameOrArn);
    return { kind: 'service', status: 404, code: 'ResourceNotFoundException', message: `Function not found: ${arn}`, type: 'User' };
  }

  function configuration(fn: RegisteredFunction): Record<string, unknown> {
    return {
      FunctionName: fn.name,
      FunctionArn: fn.arn,
      Runtime: 'nodejs20.x',
      Role: `arn:aws:iam::${accountId}:role/valence-local-lambda`,
      Handler: fn.handlerSetting,
      CodeSize: 0,
      Description: `local function loaded from ${fileURLToPath(fn.entryUrl)}`,
      Timeout: fn.timeoutSeconds,
      MemorySize: fn.memoryMB,
      LastModified: fn.lastModified,
      CodeSha256: fn.codeSha256,
      Version: '$LATEST',
      Environment: { Variables: { ...fn.cfg.environment } },
      TracingConfig: { Mode: 'PassThrough' },
      State: 'Active',
      LastUpdateStatus: 'Successful',
      PackageType: 'Zip',
      Architectures: ['x86_64'],
      EphemeralStorage: { Size: 512 },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://lambda.local');
    const segments = url.pathname.split('/').filter(Boolean).map((segment) => decodeURIComponent(segment));
    const method = (req.method ?? 'GET').toUpperCase();
    const fail = (error: ServiceError): void => {
      send(res, error.status, JSON.stringify({ Type: error.type, Message: error.message, message: error.message }), {
        'Content-Type': 'application/json',
        'x-amzn-ErrorType': error.code,
        'x-amzn-RequestId': requestId,
      });
    };
    const ok = (status: number, body: unknown): void => {
      send(res, status, JSON.stringify(body), { 'Content-Type': 'application/json', 'x-amzn-RequestId': requestId });
    };
    try {
      const body = await readBody(req);
      if (segments[0] !== API_VERSION || segments[1] !== 'functions') {
        fail({ kind: 'service', status: 404, code: 'UnknownOperationException', message: `Unknown operation ${method} ${url.pathname}`, type: 'User' });
        return;
      }
      const name = segments[2];
      const tail = segments[3];
      const qualifier = url.searchParams.get('Qualifier');
      const target = name !== undefined && qualifier ? `${name}:${qualifier}` : name;

      if (method === 'POST' && target !== undefined && tail === 'invocations' && segments.length === 4) {
        await handleInvoke(req, res, target, body, requestId, fail);
        return;
      }
      if (method === 'GET' && target === undefined) {
        ctx.count('ListFunctions');
        const fault = await ctx.fault('ListFunctions');
        if (fault) return fail({ kind: 'service', ...fault, type: 'Service' });
        const all = [...functions.values()].sort((a, b) => a.name.localeCompare(b.name));
        const start = Number(url.searchParams.get('Marker') ?? '0') || 0;
        const maxItems = Math.min(Math.max(Number(url.searchParams.get('MaxItems') ?? '50') || 50, 1), 50);
        const page = all.slice(start, start + maxItems);
        const next = start + maxItems < all.length ? String(start + maxItems) : undefined;
        ok(200, { Functions: page.map(configuration), ...(next ? { NextMarker: next } : {}) });
        return;
      }
      if (method === 'GET' && target !== undefined && (tail === undefined || tail === 'configuration') && segments.length <= 4) {
        const operation = tail === undefined ? 'GetFunction' : 'GetFunctionConfiguration';
        ctx.count(operation);
        const fault = await ctx.fault(operation);
        if (fault) return fail({ kind: 'service', ...fault, type: 'Service' });
        const fn = lookup(target);
        if (!fn) return fail(notFound(target));
        if (tail === 'configuration') {
          ok(200, configuration(fn));
        } else {
          ok(200, {
            Configuration: configuration(fn),
            Code: { RepositoryType: 'S3', Location: fn.entryUrl },
            // As on AWS, only a function with reserved concurrency reports it.
            ...(fn.cfg.reservedConcurrency !== undefined ? { Concurrency: { ReservedConcurrentExecutions: fn.cfg.reservedConcurrency } } : {}),
            Tags: {},
          });
        }
        return;
      }
      fail({ kind: 'service', status: 404, code: 'UnknownOperationException', message: `Unknown operation ${method} ${url.pathname}`, type: 'User' });
    } catch (error) {
      if (!res.headersSent) {
        fail({ kind: 'service', status: 500, code: 'ServiceException', message: error instanceof Error ? error.message : String(error), type: 'Service' });
      } else {
        res.destroy();
      }
    }
  }

  async function handleInvoke(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    body: Buffer,
    requestId: string,
    fail: (error: ServiceError) => void,
  ): Promise<void> {
    const typeHeader = String(req.headers['x-amz-invocation-type'] ?? InvocationType.RequestResponse);
    if (!Object.values<string>(InvocationType).includes(typeHeader)) {
      return fail({ kind: 'service', status: 400, code: 'InvalidParameterValueException', message: `Unsupported invocation type ${typeHeader}`, type: 'User' });
    }
    const invocationType = typeHeader as InvocationType;
    const limit = invocationType === InvocationType.Event ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
    if (body.length > limit) {
      return fail({
        kind: 'service',
        status: 413,
        code: 'RequestTooLargeException',
        message: `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
        type: 'User',
      });
    }
    const eventJson = body.length === 0 ? '{}' : body.toString('utf8');
    try {
      JSON.parse(eventJson);
    } catch {
      return fail({ kind: 'service', status: 400, code: 'InvalidRequestContentException', message: 'Could not parse request body into json', type: 'User' });
    }
    if (invocationType === InvocationType.Event) {
      // Validate synchronously (unknown function is a 404 to the caller), then run in the background.
      if (stopped) return fail(stoppedError());
      if (!lookup(target)) {
        hooks.count('Invoke');
        return fail(notFound(target));
      }
      invokeAsync(target, eventJson);
      send(res, 202, '', { 'x-amzn-RequestId': requestId });
      return;
    }
    // The caller going away does not stop the invocation, as on AWS.
    const result = await run(target, eventJson, { dryRun: invocationType === InvocationType.DryRun });
    if ('kind' in result) {
      if (result.kind === 'dryRun') {
        send(res, 204, '', { 'x-amzn-RequestId': requestId });
        return;
      }
      return fail(result);
    }
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'x-amzn-RequestId': requestId,
      'X-Amz-Executed-Version': '$LATEST',
    };
    if (String(req.headers['x-amz-log-type'] ?? '') === 'Tail') {
      const log = `START RequestId: ${requestId} Version: $LATEST\nEND RequestId: ${requestId}\n`;
      headers['X-Amz-Log-Result'] = Buffer.from(log).toString('base64');
    }
    if (result.ok) {
      if (Buffer.byteLength(result.payloadJson) > SYNC_PAYLOAD_LIMIT) {
        headers['X-Amz-Function-Error'] = 'Unhandled';
        send(res, 200, JSON.stringify({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' }), headers);
        return;
      }
      send(res, 200, result.payloadJson, headers);
      return;
    }
    headers['X-Amz-Function-Error'] = result.functionError;
    send(res, 200, JSON.stringify(result.payload), headers);
  }

  async function stop(): Promise<void> {
    stopped = true;
    await Promise.all([...functions.values()].map((fn) => fn.pool.close()));
    await Promise.allSettled([...asyncInvocations]);
  }

  return {
    signingName: 'lambda',
    handle,
    stop,
    register,
    invoke,
    has: (functionNameOrArn) => lookup(functionNameOrArn) !== undefined,
    drain: async () => {
      while (asyncInvocations.size > 0) await Promise.allSettled([...asyncInvocations]);
    },
    functionNames: () => [...functions.keys()],
  };
}

/** Registration after `stop()`. */
export class LambdaServiceStoppedError extends ValenceError {
  override readonly name = 'LambdaServiceStoppedError';
  constructor() {
    super(ErrorCode.LOCAL_SERVICE_STOPPED, 'the local Lambda service is stopped');
  }
}

/** A function configuration the service cannot register. */
export class InvalidFunctionConfigError extends ValenceError {
  override readonly name = 'InvalidFunctionConfigError';
  constructor(message: string) {
    super(ErrorCode.LOCAL_CLOUD_INVALID_CONFIG, message);
  }
}

/** Resolves like `work`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error), { cause: error }));
      },
    );
  });
}
