import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  ResourceNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { createLambdaService } from '../../../localstack/lambda/index.ts';
import type { LocalLambdaService } from '../../../localstack/lambda/index.ts';
import { ACCOUNT_ID, REGION, TEST_CREDENTIALS, eventually, hookBench, serve, sleep } from './harness.ts';
import type { HookBench, ServedService } from './harness.ts';

const fixture = (name: string): string => join(import.meta.dirname, 'fixtures', name);
const decode = (bytes: Uint8Array | undefined): unknown => JSON.parse(new TextDecoder().decode(bytes));
const lines = (file: string): number => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

describe('local Lambda service', () => {
  let bench: HookBench;
  let lambda: LocalLambdaService;
  let served: ServedService;
  let client: LambdaClient;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'valence-lambda-'));
    bench = hookBench('lambda');
    let endpoint = '';
    lambda = createLambdaService({
      hooks: bench.hooks,
      // Two sandboxes start on demand; past them the pool's growth limits apply (see 'burst').
      eagerSandboxes: 2,
      region: REGION,
      accountId: ACCOUNT_ID,
      environment: () => ({
        AWS_ENDPOINT_URL: endpoint,
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      }),
    });
    served = await serve(lambda, bench);
    endpoint = served.endpoint;
    client = new LambdaClient({ endpoint, region: REGION, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    lambda.register({ functionName: 'echo', entry: fixture('echo.ts'), environment: { TABLE_NAME: 'valence-table' }, timeoutSeconds: 30 });
    lambda.register({ functionName: 'fail', entry: fixture('fail.ts') });
    lambda.register({ functionName: 'heartbeat', entry: fixture('heartbeat.ts'), timeoutSeconds: 1 });
    lambda.register({ functionName: 'sleep', entry: fixture('sleep.ts'), reservedConcurrency: 2 });
    lambda.register({ functionName: 'missing-export', entry: fixture('echo.ts'), exportName: 'nope' });
  });

  afterAll(async () => {
    client?.destroy();
    await served?.close();
    await lambda?.stop();
    bench?.faults.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('invokes a .ts handler with its environment and a Lambda context, over the SDK', async () => {
    // Act
    const response = await client.send(new InvokeCommand({ FunctionName: 'echo', Payload: JSON.stringify({ hello: 'world' }) }));
    // Assess
    expect(response.StatusCode).toBe(200);
    expect(response.FunctionError).toBeUndefined();
    expect(response.ExecutedVersion).toBe('$LATEST');
    const result = decode(response.Payload) as {
      event: unknown;
      typed: number;
      env: Record<string, string | undefined>;
      context: Record<string, unknown> & { remainingMs: number };
    };
    expect(result.event).toEqual({ hello: 'world' });
    expect(result.typed).toBe(1);
    expect(result.env).toEqual({
      AWS_ENDPOINT_URL: served.endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_LAMBDA_FUNCTION_NAME: 'echo',
      TABLE_NAME: 'valence-table',
    });
    expect(result.context).toMatchObject({
      functionName: 'echo',
      invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:echo`,
      memoryLimitInMB: '128',
      functionVersion: '$LATEST',
    });
    expect(result.context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.context.remainingMs).toBeGreaterThan(25_000);
    expect(result.context.remainingMs).toBeLessThanOrEqual(30_000);
  });

  it('keeps a sandbox warm between invocations and accepts ARNs', async () => {
    const first = decode((await client.send(new InvokeCommand({ FunctionName: 'echo' }))).Payload) as { threadId: number; invocations: number };
    const arn = `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:echo`;
    const second = decode((await client.send(new InvokeCommand({ FunctionName: arn }))).Payload) as { threadId: number; invocations: number };
    expect(second.threadId).toBe(first.threadId);
    expect(second.invocations).toBe(first.invocations + 1);
  });

  it('reports a thrown error as an Unhandled function error with its name, message and trace', async () => {
    const response = await client.send(new InvokeCommand({ FunctionName: 'fail', Payload: JSON.stringify({ message: 'dispatch d-1 is gone' }) }));
    expect(response.StatusCode).toBe(200);
    expect(response.FunctionError).toBe('Unhandled');
    const error = decode(response.Payload) as { errorType: string; errorMessage: string; trace: string[] };
    expect(error.errorType).toBe('DispatchNotFoundError');
    expect(error.errorMessage).toBe('dispatch d-1 is gone');
    expect(error.trace[0]).toContain('DispatchNotFoundError: dispatch d-1 is gone');
  });

  it('reports a missing export as Runtime.HandlerNotFound', async () => {
    const outcome = await lambda.invoke('missing-export', {});
    expect(outcome).toMatchObject({ ok: false, functionError: 'Unhandled', payload: { errorType: 'Runtime.HandlerNotFound' } });
  });

  it('answers 404 ResourceNotFoundException for an unknown function', async () => {
    const error = await client.send(new InvokeCommand({ FunctionName: 'nope' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect((error as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
    expect((error as Error).message).toContain(`function:nope`);
    expect(lambda.has('nope')).toBe(false);
    expect(await lambda.invoke('nope', {})).toMatchObject({ ok: false, functionError: 'ResourceNotFoundException' });
  });

  it('kills the sandbox at the timeout: the handler stops writing its heartbeat', async () => {
    const file = join(scratch, 'heartbeat.log');
    const started = Date.now();
    const response = await client.send(new InvokeCommand({ FunctionName: 'heartbeat', Payload: JSON.stringify({ file }) }));
    const elapsed = Date.now() - started;
    expect(response.FunctionError).toBe('Unhandled');
    expect(decode(response.Payload)).toEqual({ errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 1.00 seconds' });
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    const atTimeout = lines(file);
    expect(atTimeout).toBeGreaterThan(5);
    await sleep(300);
    expect(lines(file)).toBe(atTimeout);
  });

  it('crashes an invocation on fault injection with Runtime.ExitError, then replaces the sandbox', async () => {
    const file = join(scratch, 'crash.log');
    const before = decode((await client.send(new InvokeCommand({ FunctionName: 'sleep', Payload: JSON.stringify({ ms: 0 }) }))).Payload) as { threadId: number };
    bench.faults.crashNthInvocation(1, 'sleep');
    const crashed = await client.send(new InvokeCommand({ FunctionName: 'sleep', Payload: JSON.stringify({ ms: 400, file }) }));
    expect(crashed.FunctionError).toBe('Unhandled');
    expect((decode(crashed.Payload) as { errorType: string }).errorType).toBe('Runtime.ExitError');
    await sleep(600);
    // The handler started but never reached its write: its sandbox died mid-run.
    expect(lines(file)).toBe(0);
    const after = decode((await client.send(new InvokeCommand({ FunctionName: 'sleep', Payload: JSON.stringify({ ms: 0 }) }))).Payload) as { threadId: number };
    expect(after.threadId).not.toBe(before.threadId);
  });

  it('runs at most reservedConcurrency invocations at once; the rest wait', async () => {
    // Prepare: two warm sandboxes, so that a slow cold start cannot serialize the run below.
    await Promise.all([0, 1].map(() => lambda.invoke('sleep', { ms: 50 })));
    const results = await Promise.all(
      Array.from({ length: 6 }, () => client.send(new InvokeCommand({ FunctionName: 'sleep', Payload: JSON.stringify({ ms: 250 }) }))),
    );
    const intervals = results.map((r) => decode(r.Payload) as { start: number; end: number; threadId: number });
    let maxInFlight = 0;
    for (const { start } of intervals) {
      const inFlight = intervals.filter((other) => other.start <= start && other.end > start).length;
      maxInFlight = Math.max(maxInFlight, inFlight);
    }
    expect(maxInFlight).toBe(2);
    expect(new Set(intervals.map((i) => i.threadId)).size).toBe(2);
  });

  it('grows an unreserved function a few cold starts at a time: a burst of short invocations reuses warm sandboxes', async () => {
    lambda.register({ functionName: 'burst', entry: fixture('echo.ts') });
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => lambda.invoke('burst', { i })));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const threads = new Set(outcomes.map((o) => (o.ok ? (o.payload as { threadId: number }).threadId : -1)));
    // Two start on demand; past them at most the host's parallelism (≥ 2) start at once, and
    // each finished init lets one more start while invocations wait; one cold start per
    // invocation would have started 12.
    expect(threads.size).toBeLessThanOrEqual(Math.min(9, 2 * Math.max(2, availableParallelism()) + 2));
  });

  it('queues Event invocations, answers 202 at once, and runs them in the background', async () => {
    const file = join(scratch, 'async.log');
    const response = await client.send(
      new InvokeCommand({ FunctionName: 'sleep', InvocationType: 'Event', Payload: JSON.stringify({ ms: 100, file, tag: 'async' }) }),
    );
    expect(response.StatusCode).toBe(202);
    expect(lines(file)).toBe(0);
    await eventually(() => (lines(file) === 1 ? true : undefined));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ tag: 'async' });
  });

  it('answers DryRun with 204 without running the function', async () => {
    const response = await client.send(new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun' }));
    expect(response.StatusCode).toBe(204);
  });

  it('counts every invocation, HTTP and in-process, and applies injected faults', async () => {
    const before = bench.counters.get('lambda', 'Invoke');
    await lambda.invoke('echo', {});
    await client.send(new InvokeCommand({ FunctionName: 'echo' }));
    expect(bench.counters.get('lambda', 'Invoke')).toBe(before + 2);

    bench.faults.add({ service: 'lambda', operation: 'Invoke', errorRate: 1, error: 'throttling', maxErrors: 2 });
    const error = await client.send(new InvokeCommand({ FunctionName: 'echo' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect(await lambda.invoke('echo', {})).toMatchObject({ ok: false, functionError: 'TooManyRequestsException' });
    bench.faults.clear();
    expect((await lambda.invoke('echo', {})).ok).toBe(true);
  });

  it('describes functions with GetFunction and ListFunctions', async () => {
    const got = await client.send(new GetFunctionCommand({ FunctionName: 'echo' }));
    expect(got.Configuration).toMatchObject({
      FunctionName: 'echo',
      FunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:echo`,
      Handler: 'echo.handler',
      Timeout: 30,
      State: 'Active',
      Environment: { Variables: { TABLE_NAME: 'valence-table' } },
    });
    // As on AWS, a function without reserved concurrency reports none (it has the account's 1,000).
    expect(got.Concurrency).toBeUndefined();
    const reserved = await client.send(new GetFunctionCommand({ FunctionName: 'sleep' }));
    expect(reserved.Concurrency?.ReservedConcurrentExecutions).toBe(2);
    const listed = await client.send(new ListFunctionsCommand({}));
    expect(listed.Functions?.map((f) => f.FunctionName).filter((name) => name !== 'burst')).toEqual(['echo', 'fail', 'heartbeat', 'missing-export', 'sleep']);
    const missing = await client.send(new GetFunctionCommand({ FunctionName: 'nope' })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
  });

  it('stops a caller waiting on an aborted signal without stopping the invocation', async () => {
    const file = join(scratch, 'abort.log');
    const controller = new AbortController();
    const pending = lambda.invoke('sleep', { ms: 200, file, tag: 'abandoned' }, { signal: controller.signal });
    await sleep(50);
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
    // As on AWS, the handler still runs to completion.
    await eventually(() => (lines(file) === 1 ? true : undefined));
  });
});

describe('local Lambda service stop()', () => {
  it('terminates every sandbox, idle or running, and waits for them', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'valence-lambda-stop-'));
    const bench = hookBench('lambda');
    const lambda = createLambdaService({ hooks: bench.hooks, region: REGION, accountId: ACCOUNT_ID, environment: () => ({}) });
    try {
      lambda.register({ functionName: 'heartbeat', entry: fixture('heartbeat.ts'), timeoutSeconds: 60 });
      lambda.register({ functionName: 'background', entry: fixture('background.ts') });
      lambda.register({ functionName: 'echo', entry: fixture('echo.ts') });
      const idleFile = join(scratch, 'idle.log');
      // An idle warm sandbox that keeps writing after its invocation returned.
      expect(await lambda.invoke('background', { file: idleFile })).toEqual({ ok: true, payload: 'started' });
      const file = join(scratch, 'running.log');
      const running = lambda.invoke('heartbeat', { file });
      await eventually(() => (lines(file) >= 2 && lines(idleFile) >= 2 ? true : undefined));

      await lambda.stop();

      const atStop = [lines(file), lines(idleFile)];
      await sleep(300);
      expect([lines(file), lines(idleFile)]).toEqual(atStop);
      expect(await running).toMatchObject({ ok: false, payload: { errorType: 'Runtime.ExitError' } });
      expect(await lambda.invoke('echo', {})).toMatchObject({ ok: false, functionError: 'ServiceException' });
    } finally {
      await lambda.stop();
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
