/**
 * A Step Functions service on a loopback port, with a small in-process Lambda service that
 * runs plain async functions — a real stand-in for the local Lambda service (same
 * `LambdaInvoker` contract, same outcome shapes), not a mock library.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { InjectedFault, InvocationOutcome, LambdaInvoker, RequestContext, ServiceHooks } from '../../../localstack/core/service.ts';
import { createStepFunctionsService, type StepFunctionsService } from '../../../localstack/stepfunctions/index.ts';

export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';
export const ROLE = `arn:aws:iam::${ACCOUNT}:role/valence-test`;

/** A function of the stand-in Lambda service: returns its result, or a promise of it (as Lambda handlers may). */
export type TestFunction = (event: unknown) => unknown;

/** An error thrown by a test function, reported as Lambda reports an unhandled error. */
export class FunctionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** The stand-in Lambda service: functions by name, invocation log, scripted service errors. */
export class TestLambda implements LambdaInvoker {
  readonly functions = new Map<string, TestFunction>();
  readonly invocations: { functionName: string; payload: unknown }[] = [];
  /** Service error codes to answer with, per function, before running it (throttling etc.). */
  readonly serviceErrors = new Map<string, string[]>();

  private nameOf(functionNameOrArn: string): string {
    const match = /:function:([^:]+)/u.exec(functionNameOrArn);
    return match?.[1] ?? functionNameOrArn;
  }

  has(functionNameOrArn: string): boolean {
    return this.functions.has(this.nameOf(functionNameOrArn));
  }

  async invoke(functionNameOrArn: string, payload: unknown): Promise<InvocationOutcome> {
    const name = this.nameOf(functionNameOrArn);
    const fn = this.functions.get(name);
    if (!fn) throw Object.assign(new Error(`Function not found: ${name}`), { name: 'ResourceNotFoundException' });
    const scripted = this.serviceErrors.get(name)?.shift();
    if (scripted) {
      return { ok: false, functionError: scripted, payload: { errorType: scripted, errorMessage: `${scripted} (scripted)` } };
    }
    // Lambda delivers the event as JSON text.
    const event = JSON.parse(JSON.stringify(payload ?? null)) as unknown;
    this.invocations.push({ functionName: name, payload: event });
    try {
      const result = await fn(event);
      return { ok: true, payload: JSON.parse(JSON.stringify(result ?? null)) as unknown };
    } catch (error) {
      const e = error as Error;
      return { ok: false, functionError: 'Unhandled', payload: { errorType: e.name, errorMessage: e.message, trace: [] } };
    }
  }

  count(name: string): number {
    return this.invocations.filter((i) => i.functionName === name).length;
  }
}

/** Minimal hooks: counters and a per-operation scripted fault. */
export class TestHooks implements ServiceHooks {
  readonly counts = new Map<string, number>();
  readonly faults = new Map<string, InjectedFault>();
  count(operation: string): void {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
  }
  fault(operation: string): Promise<InjectedFault | undefined> {
    return Promise.resolve(this.faults.get(operation));
  }
  crashInvocation(): boolean {
    return false;
  }
}

/** A running service, its server and a client pointing at it. */
export interface Harness {
  readonly service: StepFunctionsService;
  readonly lambda: TestLambda;
  readonly hooks: TestHooks;
  readonly sfn: SFNClient;
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Starts the service behind `http.createServer` on port 0. */
export async function startHarness(options: { maxHistoryEvents?: number } = {}): Promise<Harness> {
  const lambda = new TestLambda();
  const hooks = new TestHooks();
  const service = createStepFunctionsService({ hooks, lambda, region: REGION, accountId: ACCOUNT, ...options });
  const ctx: RequestContext = {
    region: REGION,
    accessKeyId: 'test',
    accountId: ACCOUNT,
    count: () => undefined,
    fault: () => Promise.resolve(undefined),
  };
  const server: Server = createServer((req, res) => {
    void service.handle(req, res, ctx);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const sfn = new SFNClient({ endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
  return {
    service,
    lambda,
    hooks,
    sfn,
    endpoint,
    async close() {
      sfn.destroy();
      await service.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
