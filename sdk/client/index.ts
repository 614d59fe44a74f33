/**
 * The client: dispatch lattices, read results, cancel — against a deployed stack on AWS,
 * on LocalStack, or on the embedded local cloud, chosen by endpoint configuration alone.
 *
 * The stack is found through CloudFormation's `DescribeStacks` outputs (the local cloud serves
 * the same outputs), so `connect({ stackName })` is all a caller needs.
 */
import { randomUUID } from 'node:crypto';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeStateMachineCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { createAwsClients, type AwsClients, type AwsConfig } from '../aws.ts';
import { ValenceError, ValidationCode, ValidationError } from '../errors.ts';
import { graphHash } from '../model/graph.ts';
import type { Lattice } from '../model/lattice.ts';
import { readGraphHash } from '../compiler/asl.ts';
import type { RuntimeContext } from '../runtime/context.ts';
import { createDispatchRecords } from '../runtime/dispatch-records.ts';
import { describeDispatch, type DispatchResult } from '../runtime/describe.ts';
import { isTerminalDispatchStatus } from '../status.ts';
import { PayloadStore, payloadKeys } from '../runtime/payloads.ts';
import { serialize, SerializationError } from '../runtime/serialization.ts';
import { DispatchNotFoundError, Store, type DispatchItem } from '../runtime/store.ts';
import type { CancelReport } from '../runtime/cancel.ts';

/** Where the client finds its stack. */
export interface ConnectOptions {
  /** Endpoint of a local cloud or LocalStack. @default process.env.AWS_ENDPOINT_URL (unset: AWS) */
  readonly endpoint?: string;
  /** @default process.env.AWS_REGION ?? 'us-east-1' */
  readonly region?: string;
  /** @default process.env.VALENCE_STACK ?? 'valence' */
  readonly stackName?: string;
  /** Static credentials; unset means the SDK's default provider chain. */
  readonly credentials?: AwsConfig['credentials'];
}

/** The outputs a valence stack publishes. */
export interface StackOutputs {
  readonly apiUrl: string;
  readonly tableName: string;
  readonly bucketName: string;
  readonly stateMachineArnPrefix: string;
  readonly graphRunnerArn: string;
  readonly jobQueueArn?: string;
}

/** Options of {@link ValenceClient.getResult}. */
export interface GetResultOptions {
  /** Wait until the dispatch is terminal, however it ended. @default false */
  readonly wait?: boolean;
  /** Give up waiting after this long (a `ValenceError` with code `RESULT_TIMEOUT`). @default 600000 */
  readonly timeoutMs?: number;
}

/** Options of {@link ValenceClient.cancel}. */
export interface CancelOptions {
  /** Node ids, or paths into sublattices (`"5/2"`); absent means the whole dispatch. */
  readonly taskIds?: readonly (number | string)[];
  /** Why; recorded with the request and passed to the services. */
  readonly reason?: string;
}

/** A connected client. */
export interface ValenceClient {
  /** Starts a run of `lattice`; resolves with its dispatch id once the execution started. */
  dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<string>;
  /** Reads a dispatch; with `wait`, resolves as soon as it is terminal. */
  getResult<R = unknown>(dispatchId: string, options?: GetResultOptions): Promise<DispatchResult<R>>;
  /** Cancels a dispatch or some of its tasks, through the stack's IAM-authorized API. */
  cancel(dispatchId: string, options?: CancelOptions): Promise<CancelReport>;
  /** A node's stored output (throws `PayloadNotFoundError` until the node completed). */
  getNodeOutput(dispatchId: string, nodeId: number): Promise<unknown>;
  /** The newest top-level dispatches. */
  listDispatches(options?: { limit?: number }): Promise<DispatchItem[]>;
  /** The stack's outputs. */
  outputs(): Promise<StackOutputs>;
  /** Closes the client's connections. */
  close(): void;
}

/** The stack could not be found, or does not look like a valence stack. */
export class StackNotFoundError extends ValenceError {
  override readonly name = 'StackNotFoundError';
}

/** The lattice has no state machine in the stack. */
export class NotDeployedError extends ValenceError {
  override readonly name = 'NotDeployedError';
}

/** The deployed state machine was compiled from a different graph than the local lattice builds. */
export class StaleDeployError extends ValenceError {
  override readonly name = 'StaleDeployError';
}

/** The cancel endpoint refused a request (400 or 403). */
export class CancelRequestError extends ValenceError {
  override readonly name = 'CancelRequestError';
}

/**
 * Connects to a valence stack.
 * @example
 * const client = connect({ endpoint: 'http://127.0.0.1:4566' });
 * const id = await client.dispatch(pipeline)(10);
 * const result = await client.getResult(id, { wait: true });
 */
export function connect(options: ConnectOptions = {}): ValenceClient {
  const aws = createAwsClients({
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
  const stackName = options.stackName ?? process.env.VALENCE_STACK ?? 'valence';
  let outputs: Promise<StackOutputs> | undefined;
  let runtime: Promise<RuntimeContext> | undefined;
  const readOutputs = (): Promise<StackOutputs> => {
    outputs ??= loadOutputs(aws, stackName).catch((error: unknown) => {
      outputs = undefined;
      throw error;
    });
    return outputs;
  };
  const context = (): Promise<RuntimeContext> => {
    runtime ??= readOutputs().then((o) => ({
      aws,
      config: {
        table: o.tableName,
        bucket: o.bucketName,
        stackName,
        stateMachinePrefix: o.stateMachineArnPrefix,
        graphRunnerArn: o.graphRunnerArn,
        watchdogIntervalMs: 100,
        leaseMs: 15_000,
        pollIntervalMs: 30_000,
      },
      store: new Store(aws.dynamodb, o.tableName),
      payloads: new PayloadStore(aws.s3, o.bucketName),
      now: () => new Date(),
      signal: new AbortController().signal,
    }));
    runtime.catch(() => (runtime = undefined));
    return runtime;
  };

  return {
    outputs: readOutputs,
    close: () => aws.destroy(),
    dispatch(lattice) {
      return async (...args) => {
        // Everything that can be refused is checked before anything is written.
        const graph = lattice.template();
        if (args.length !== lattice.paramCount) {
          throw new ValidationError(
            ValidationCode.INVALID_OPTION,
            `lattice "${lattice.name}" takes ${lattice.paramCount} argument(s), got ${args.length}`,
            { lattice: lattice.name },
          );
        }
        let serializedArgs: string;
        try {
          serializedArgs = serialize(args);
        } catch (error) {
          if (error instanceof SerializationError) {
            throw new ValidationError(
              ValidationCode.UNSERIALIZABLE_CONSTANT,
              `lattice "${lattice.name}": an argument cannot be serialized: ${error.message}. Arguments may hold plain data, Date, Map, Set, BigInt and typed arrays, not functions or class instances`,
              { lattice: lattice.name, cause: error },
            );
          }
          throw error;
        }
        const ctx = await context();
        const stateMachineArn = `${ctx.config.stateMachinePrefix}${lattice.name}`;
        let definition: string;
        try {
          definition = (await aws.sfn.send(new DescribeStateMachineCommand({ stateMachineArn }))).definition ?? '{}';
        } catch (error) {
          if ((error as { name?: string }).name === 'StateMachineDoesNotExist') {
            throw new NotDeployedError(
              'LATTICE_NOT_DEPLOYED',
              `Lattice "${lattice.name}" is not deployed in stack "${stackName}" (no state machine ${stateMachineArn}). Deploy the workflows module that defines it: npx cdk deploy -c workflows=<module.ts>, or start the local cloud with --workflows <module.ts>`,
            );
          }
          throw error;
        }
        const deployedHash = readGraphHash(definition);
        const localHash = graphHash(graph);
        if (deployedHash !== localHash) {
          throw new StaleDeployError(
            'STALE_DEPLOY',
            `Lattice "${lattice.name}" changed since it was deployed (deployed graph ${deployedHash?.slice(0, 12) ?? 'unknown'}, local graph ${localHash.slice(0, 12)}). Redeploy before dispatching.`,
          );
        }
        const dispatchId = randomUUID();
        await createDispatchRecords(ctx, {
          dispatchId,
          graph,
          serializedArgs,
          stateMachineArn,
          awaitingNodes: awaitingNodesOf(JSON.parse(definition), graph.nodes.length),
        });
        const started = await aws.sfn.send(new StartExecutionCommand({ stateMachineArn, name: dispatchId, input: JSON.stringify({ dispatchId }) }));
        await ctx.store.setExecutionArn(dispatchId, started.executionArn!);
        return dispatchId;
      };
    },
    async getResult(dispatchId, options = {}) {
      const ctx = await context();
      if (options.wait) {
        // Wait on the dispatch item alone (one read per poll); the nodes are read once, at the
        // end. Reading every node per poll costs O(nodes) and slowed large dispatches down.
        const deadline = Date.now() + (options.timeoutMs ?? 600_000);
        let delay = 50;
        for (;;) {
          const dispatch = await ctx.store.requireDispatch(dispatchId);
          if (isTerminalDispatchStatus(dispatch.status)) break;
          if (Date.now() >= deadline) {
            throw new ValenceError('RESULT_TIMEOUT', `Dispatch ${dispatchId} was still ${dispatch.status} after ${options.timeoutMs ?? 600_000} ms`);
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
          delay = Math.min(500, delay * 2);
        }
      }
      return (await describeDispatch(ctx, dispatchId)) as DispatchResult<never>;
    },
    async cancel(dispatchId, options = {}) {
      const o = await readOutputs();
      const url = new URL(`dispatches/${encodeURIComponent(dispatchId)}/cancel`, o.apiUrl.endsWith('/') ? o.apiUrl : `${o.apiUrl}/`);
      const body = JSON.stringify({ ...(options.taskIds ? { taskIds: options.taskIds } : {}), ...(options.reason ? { reason: options.reason } : {}) });
      const response = await signedFetch(aws, url, 'POST', body);
      const text = await response.text();
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        payload = { message: text };
      }
      if (response.status === 200) return payload as CancelReport;
      const message = (payload as { message?: string }).message ?? text;
      if (response.status === 404) throw new DispatchNotFoundError(dispatchId);
      throw new CancelRequestError(`CANCEL_HTTP_${response.status}`, `Cancel request refused (${response.status}): ${message}`);
    },
    async getNodeOutput(dispatchId, nodeId) {
      const ctx = await context();
      return ctx.payloads.getValue(payloadKeys.nodeOutput(dispatchId, nodeId));
    },
    async listDispatches(opts = {}) {
      const ctx = await context();
      return ctx.store.listDispatches(opts);
    },
  };
}

/** The node ids whose compiled state waits in an `await` state before it runs. */
export function awaitingNodesOf(definition: unknown, nodeCount = 0): Set<number> {
  const found = new Set<number>();
  // A split lattice waits on every node's parents in one `await` state per node.
  if ((definition as { States?: Record<string, unknown> } | null)?.States?.['partitions']) return new Set(Array.from({ length: nodeCount }, (_, i) => i));
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    const payload = (record['Parameters'] as { Payload?: { action?: unknown; nodeId?: unknown } } | undefined)?.Payload;
    if (payload?.action === 'await' && typeof payload.nodeId === 'number') found.add(payload.nodeId);
    for (const child of Object.values(record)) visit(child);
  };
  visit(definition);
  return found;
}

async function loadOutputs(aws: AwsClients, stackName: string): Promise<StackOutputs> {
  let stack;
  try {
    stack = (await aws.cloudformation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  } catch (error) {
    const name = (error as { name?: string }).name;
    const code = (error as { code?: string }).code;
    if (code === 'ECONNREFUSED' || (error as Error).message?.includes('ECONNREFUSED')) {
      throw new StackNotFoundError(
        'ENDPOINT_UNREACHABLE',
        `Nothing answers at ${aws.config.endpoint ?? 'the AWS endpoint'}. Start the local cloud with \`valence local\` (or \`npm run demo\`), or unset AWS_ENDPOINT_URL to use AWS.`,
        { cause: error },
      );
    }
    if (name === 'ValidationError' || /does not exist/.test((error as Error).message ?? '')) {
      throw new StackNotFoundError('STACK_NOT_FOUND', `No stack named "${stackName}" exists${aws.config.endpoint ? ` at ${aws.config.endpoint}` : ''}. Deploy it with \`npx cdk deploy\`, or pass the right --stack / VALENCE_STACK.`, { cause: error });
    }
    throw error;
  }
  const get = (key: string): string | undefined => stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
  const required = (key: string): string => {
    const value = get(key);
    if (!value) throw new StackNotFoundError('STACK_NOT_VALENCE', `Stack "${stackName}" has no output "${key}"; is it a valence stack?`);
    return value;
  };
  const jobQueueArn = get('JobQueueArn');
  return {
    apiUrl: required('ApiUrl'),
    tableName: required('TableName'),
    bucketName: required('BucketName'),
    stateMachineArnPrefix: required('StateMachineArnPrefix'),
    graphRunnerArn: required('GraphRunnerArn'),
    ...(jobQueueArn ? { jobQueueArn } : {}),
  };
}

/** Sends a SigV4-signed request (service `execute-api`) with the client's credentials. */
async function signedFetch(aws: AwsClients, url: URL, method: string, body: string): Promise<Response> {
  const credentials = aws.config.credentials ?? (await defaultProvider()());
  const signer = new SignatureV4({ service: 'execute-api', region: aws.config.region, credentials, sha256: Sha256 });
  const query: Record<string, string> = {};
  url.searchParams.forEach((value, key) => (query[key] = value));
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query,
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  return fetch(url, { method, headers: signed.headers as Record<string, string>, body });
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
export function dispatch<A extends unknown[], R>(lattice: Lattice<A, R>): (...args: A) => Promise<string> {
  return (...args) => defaultValenceClient().dispatch(lattice)(...args);
}

/** Reads a dispatch with the default client. */
export function getResult<R = unknown>(dispatchId: string, options?: GetResultOptions): Promise<DispatchResult<R>> {
  return defaultValenceClient().getResult<R>(dispatchId, options);
}

/** Cancels a dispatch, or tasks of it, with the default client. */
export function cancel(dispatchId: string, options?: CancelOptions): Promise<CancelReport> {
  return defaultValenceClient().cancel(dispatchId, options);
}

/** Lists dispatches with the default client. */
export function listDispatches(options?: { limit?: number }): Promise<DispatchItem[]> {
  return defaultValenceClient().listDispatches(options);
}
