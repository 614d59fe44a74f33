/**
 * valence's local cloud: the AWS services valence uses — DynamoDB, S3, Step Functions, Lambda,
 * Batch, Braket, EventBridge, API Gateway and a minimal CloudFormation — in one process, on one
 * port, with no Docker and no account.
 *
 * Requests are routed by the service name in their SigV4 credential scope, as LocalStack does,
 * so AWS SDK v3 clients (given `endpoint`, or `AWS_ENDPOINT_URL`) and the AWS CLI (given
 * `--endpoint-url`) work unchanged. Counters and fault injection are built in.
 *
 * @example
 * ```ts
 * import { startLocalCloud } from 'valence/local';
 * const cloud = await startLocalCloud({ port: 0 });
 * await cloud.clients.dynamodb.send(new ListTablesCommand({}));
 * await cloud.stop();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createApiGatewayService } from './apigateway/index.ts';
import { createBatchService } from './batch/index.ts';
import type { BatchDelays } from './batch/index.ts';
import { createBraketService } from './braket/index.ts';
import { createCloudFormationService } from './cloudformation/index.ts';
import { RequestCounters } from './core/counters.ts';
import { DEFAULT_CREDENTIALS, StaticCredentialStore } from './core/credentials.ts';
import type { LocalCredentials } from './core/credentials.ts';
import { createDynamoDbService } from './dynamodb/index.ts';
import { createEventBridgeService } from './events/index.ts';
import { FaultInjector } from './core/faults.ts';
import type { FaultConfig } from './core/faults.ts';
import { createLambdaService } from './lambda/index.ts';
import { createS3Service } from './s3/index.ts';
import { createRouter, listen } from './core/router.ts';
import { hostMatcher } from './core/gate.ts';
import type { ListeningServer, RouterOptions } from './core/router.ts';
import type { LocalService, ServiceHooks } from './core/service.ts';
import { createStepFunctionsService } from './stepfunctions/index.ts';
import { ErrorCode, ValenceError } from '../sdk/errors.ts';
import { assertLocalCloudPackages, assertPackages, IAM_PACKAGES } from './requirements.ts';

import type { LocalCloud, LocalCloudClients, LocalCloudServices } from './cloud.ts';

// The emulators are optional peer dependencies: say at once, in one line, which are missing.
assertLocalCloudPackages();

export type { LocalCloud, LocalCloudClients, LocalCloudServices } from './cloud.ts';
export { RequestCounters, diffCounters } from './core/counters.ts';
export type { CounterSnapshot } from './core/counters.ts';
export { FaultInjector, FaultKind, FaultConfigError } from './core/faults.ts';
export type { FaultConfig, FaultRule, LambdaCrashRule } from './core/faults.ts';
export { DEFAULT_CREDENTIALS, StaticCredentialStore } from './core/credentials.ts';
export type { LocalCredentials } from './core/credentials.ts';
export { parseCredentialScope, verifySignature } from './core/sigv4.ts';
export { ADMIN_TOKEN_HEADER } from './core/router.ts';
export { IAM_PACKAGES, LOCAL_CLOUD_PACKAGES, missingLocalCloudPackages } from './requirements.ts';
export type { CredentialScope, SignatureVerdict } from './core/sigv4.ts';
export type { LocalCloudFormationService, StackOutput } from './cloudformation/index.ts';
export type { LocalS3Service } from './s3/index.ts';
export type * from './core/service.ts';
export type { LocalApiGatewayService } from './apigateway/index.ts';
export type { BatchDelays, LocalBatchService } from './batch/index.ts';
export type { LocalBraketService } from './braket/index.ts';
export type { LocalEventBridgeService } from './events/index.ts';
export type { LocalLambdaService } from './lambda/index.ts';
export type { StepFunctionsService } from './stepfunctions/index.ts';

/** LocalStack's port, so tools configured for LocalStack find the local cloud too. */
export const DEFAULT_PORT = 4566;
/** Loopback only by default: the default key pair is LocalStack's public `test`/`test`. */
export const DEFAULT_HOST = '127.0.0.1';
/** @default region of the local cloud */
export const DEFAULT_REGION = 'us-east-1';
/** LocalStack's account id convention. */
export const DEFAULT_ACCOUNT_ID = '000000000000';

/** Options of {@link startLocalCloud}. */
export interface LocalCloudOptions {
  /** TCP port; `0` picks a free one. @default 4566 */
  readonly port?: number;
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /**
   * Path of a module exporting lattices; they are deployed (state machines, handlers, table,
   * bucket, stack outputs) as `cdk deploy` would deploy them on AWS.
   */
  readonly workflows?: string;
  /** Directory that keeps DynamoDB tables and S3 buckets across restarts. @default in memory / a temporary directory */
  readonly dataDir?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  /** Key pairs whose SigV4 signatures every service accepts; the first one is used by `clients` and workloads. @default test/test */
  readonly credentials?: readonly LocalCredentials[];
  /** Faults active from the start. @default none */
  readonly faults?: Partial<FaultConfig>;
  /** Extra environment for every Lambda function and Batch job (table and bucket names, …). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Time Batch jobs spend in each status before the next one. @default the Batch service's */
  readonly batchDelays?: BatchDelays;
  /** How long a Braket quantum task stays QUEUED. @default the Braket service's */
  readonly braketQueueDelayMs?: number;
  /** How long a Braket quantum task stays RUNNING. @default the Braket service's */
  readonly braketRunMs?: number;
  /** When the deploy splits a lattice into partitions (the compiler's `partition` option). @default the compiler's */
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
  /**
   * The deployed sweeper's schedule: every `intervalMs` (30 s if not given), or `false` for
   * none. Off by default, so that no sweep repairs or races what a test observes; a test of
   * the sweeper invokes it. `valence local` and the demo run it on a schedule.
   * @default false
   */
  readonly sweeper?: { readonly intervalMs?: number } | false;
  /**
   * A CDK cloud assembly (`cdk.out`, after `npx cdk synth`) to deploy at start from its
   * templates and bundled assets, instead of `workflows`. The sweeper's schedule follows
   * `sweeper` (off unless given); resource types not modeled are in `cloud.assembly.skipped`.
   */
  readonly assembly?: string;
  /** Which stack of `assembly`. @default its only stack */
  readonly assemblyStack?: string;
  /**
   * With `assembly`: each Lambda function signs as its execution role, and every request
   * signed with a role's credentials is authorized against the role's policies from the
   * template. The default key pair acts as an administrator.
   * @default true with `assembly`
   */
  readonly iam?: boolean;
}

/** The local cloud could not start (port taken, a service failed, the workflows failed to deploy). */
export class LocalCloudStartError extends ValenceError {
  override readonly name = 'LocalCloudStartError';
  /** Why: the port is taken, or anything else. */
  readonly reason: 'PortInUse' | 'StartFailed';
  constructor(message: string, reason: 'PortInUse' | 'StartFailed', options: { cause?: unknown } = {}) {
    super(reason === 'PortInUse' ? ErrorCode.LOCAL_CLOUD_PORT_IN_USE : ErrorCode.LOCAL_CLOUD_START_FAILED, message, options);
    this.reason = reason;
  }
}

/**
 * Starts the local cloud and resolves once it accepts requests.
 *
 * @example
 * ```ts
 * const cloud = await startLocalCloud({ port: 0, workflows: './examples/workflows.ts' });
 * process.env.AWS_ENDPOINT_URL = cloud.endpoint;
 * ```
 */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const region = options.region ?? DEFAULT_REGION;
  const accountId = options.accountId ?? DEFAULT_ACCOUNT_ID;
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  const pairs = options.credentials && options.credentials.length > 0 ? options.credentials : [DEFAULT_CREDENTIALS];
  const credentials = pairs[0] ?? DEFAULT_CREDENTIALS;
  const credentialStore = new StaticCredentialStore(pairs);
  const counters = new RequestCounters();
  const faults = new FaultInjector();
  if (options.faults) faults.set(options.faults);
  const extraEnvironment: Record<string, string> = { ...options.environment };
  let endpoint = '';
  const adminToken = randomBytes(24).toString('base64url');
  // Known once the server listens (port 0 picks the port); until then nothing is allowed.
  let hostAllowed: (host: string | undefined) => boolean = () => false;
  // Known once an assembly is deployed with IAM on.
  let authorize: RouterOptions['authorize'];

  const environment = (): Record<string, string> => ({
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
    VALENCE_LOCAL_CLOUD: '1',
    // The handlers' structured log at INFO is two lines a step: on a developer's terminal (and
    // in a test run) that buries what matters. Warnings and errors only, unless asked for.
    POWERTOOLS_LOG_LEVEL: 'WARN',
    ...extraEnvironment,
  });
  const hooksFor = (service: string): ServiceHooks => ({
    count: (operation) => counters.record(service, operation),
    fault: (operation) => faults.decide(service, operation),
    crashInvocation: (functionName) => faults.crashInvocation(functionName),
  });

  const started: LocalService[] = [];
  const services = new Map<string, LocalService>();
  const add = <T extends LocalService>(service: T): T => {
    started.push(service);
    services.set(service.signingName, service);
    return service;
  };
  let listening: ListeningServer | undefined;
  const startedAt = Date.now();

  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    // Stop accepting first, then the services that call others, then those they call.
    const closing = listening?.close();
    for (const service of started.reverse()) {
      try {
        await service.stop();
      } catch (error) {
        errors.push(error);
      }
    }
    faults.stop();
    await closing;
    if (errors.length > 0) throw new AggregateError(errors, 'some local cloud services failed to stop');
  };

  let servicesView: LocalCloudServices;
  try {
    const dynamodb = add(createDynamoDbService(options.dataDir ? { dataDir: options.dataDir } : {}));
    const s3 = add(createS3Service({ ...(options.dataDir ? { dataDir: options.dataDir } : {}), credentials: credentialStore }));
    const cloudformation = add(createCloudFormationService({ region, accountId }));
    const lambda = add(createLambdaService({ hooks: hooksFor('lambda'), region, accountId, environment }));
    const events = add(createEventBridgeService({ hooks: hooksFor('events'), lambda, region, accountId }));
    const apigateway = add(createApiGatewayService({ hooks: hooksFor('execute-api'), lambda, credentials: credentialStore, region, accountId }));
    const stepfunctions = add(createStepFunctionsService({ hooks: hooksFor('states'), lambda, region, accountId }));
    const batch = add(
      createBatchService({
        hooks: hooksFor('batch'),
        events,
        region,
        accountId,
        environment,
        ...(options.batchDelays ? { delays: options.batchDelays } : {}),
      }),
    );
    const braket = add(
      createBraketService({
        hooks: hooksFor('braket'),
        events,
        region,
        accountId,
        environment,
        writeObject: (bucket, key, body) => s3.writeObject(bucket, key, body),
        ...(options.braketQueueDelayMs !== undefined ? { queueDelayMs: options.braketQueueDelayMs } : {}),
        ...(options.braketRunMs !== undefined ? { runMs: options.braketRunMs } : {}),
      }),
    );
    servicesView = { dynamodb, s3, cloudformation, lambda, apigateway, events, stepfunctions, batch, braket };

    const router = createRouter({
      services,
      counters,
      faults,
      region,
      accountId,
      credentials: credentialStore,
      adminToken,
      hostAllowed: (value) => hostAllowed(value),
      authorize: (req, body, service, accessKeyId) => authorize?.(req, body, service, accessKeyId) ?? Promise.resolve(undefined),
      health: () => ({ status: 'ok', endpoint, region, accountId, services: [...services.keys()].sort(), uptimeMs: Date.now() - startedAt }),
    });
    try {
      listening = await listen(router, host, port);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'PortInUse' : 'StartFailed';
      throw new LocalCloudStartError(
        code === 'PortInUse' ? `Port ${port} on ${host} is in use; pass port: 0 (or --port 0) to pick a free one` : `Cannot listen on ${host}:${port}`,
        code,
        { cause: error },
      );
    }
    endpoint = listening.endpoint;
    hostAllowed = hostMatcher(listening.host, listening.port);
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }

  const listeningServer = listening;
  const clients = createClients(endpoint, region, credentials);
  let stopping: Promise<void> | undefined;
  // What a workflows deploy left running (the sweeper's schedule), stopped first.
  let deployment: { stop(): Promise<void> } | undefined;
  const cloud: Mutable<LocalCloud> = {
    endpoint,
    port: listeningServer.port,
    region,
    accountId,
    credentials,
    credentialStore,
    adminToken,
    clients: clients.clients,
    services: servicesView,
    counters: () => counters.snapshot(),
    resetCounters: () => counters.reset(),
    requestCounters: counters,
    faults,
    environment,
    setEnvironment(variables) {
      Object.assign(extraEnvironment, variables);
    },
    stop() {
      stopping ??= (async () => {
        await deployment?.stop();
        clients.destroy();
        await stopAll();
        // Closed handles are released by libuv on the next turn; let that happen first.
        await new Promise((resolve) => setImmediate(resolve));
      })();
      return stopping;
    },
  };

  if (options.assembly !== undefined) {
    if (options.workflows) {
      await cloud.stop().catch(() => {});
      throw new LocalCloudStartError('Pass either workflows or assembly, not both', 'StartFailed');
    }
    try {
      const { deployAssembly } = await import('./assembly/index.ts');
      if (options.iam !== false) assertPackages('IAM enforcement in assembly mode (iam: false turns it off)', IAM_PACKAGES);
      const iam = options.iam === false ? undefined : await import('./iam/enforce.ts').then((m) => m.enforceIam(cloud));
      const assembly = await deployAssembly(cloud, options.assembly, {
        schedules: options.sweeper !== undefined && options.sweeper !== false,
        ...(options.assemblyStack !== undefined ? { stackName: options.assemblyStack } : {}),
        ...(iam ? { roleEnvironment: (roleArn: string) => iam.enforcer.environmentForRole(roleArn) } : {}),
      });
      deployment = assembly;
      cloud.assembly = assembly;
      if (iam) {
        iam.enforcer.putRoles(assembly.roles.map((r) => ({ arn: r.arn, policies: r.policies })));
        authorize = iam.authorize;
        cloud.iam = iam.enforcer;
        cloud.credentialsForRole = (roleArn) => iam.enforcer.credentialsForRole(roleArn);
      }
    } catch (error) {
      await cloud.stop().catch(() => {});
      throw new LocalCloudStartError(`Deploying the cloud assembly ${options.assembly} failed: ${error instanceof Error ? error.message : String(error)}`, 'StartFailed', { cause: error });
    }
  }
  if (options.workflows) {
    try {
      // Imported only when needed: deploying loads the SDK compiler and the workflows module.
      const deploy = await import('./deploy.ts');
      const workflowsPath = options.workflows.startsWith('file:') ? fileURLToPath(options.workflows) : options.workflows;
      deployment = await deploy.deployWorkflows(cloud, workflowsPath, { sweeper: options.sweeper ?? false, ...(options.partition === undefined ? {} : { partition: options.partition }) });
    } catch (error) {
      await cloud.stop().catch(() => {});
      throw new LocalCloudStartError(`Deploying ${options.workflows} failed: ${error instanceof Error ? error.message : String(error)}`, 'StartFailed', {
        cause: error,
      });
    }
  }
  return cloud;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * SDK clients for the local cloud, each made on first access; the SDK packages are loaded
 * only then, which keeps the local cloud's own start fast.
 */
function createClients(endpoint: string, region: string, credentials: LocalCredentials): { clients: LocalCloudClients; destroy(): void } {
  const require = createRequire(import.meta.url);
  const base = { endpoint, region, credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey } };
  const made = new Map<string, { destroy(): void }>();
  const lazy = <T extends { destroy(): void }>(name: string, make: () => T): T => {
    let client = made.get(name) as T | undefined;
    if (!client) {
      client = make();
      made.set(name, client);
    }
    return client;
  };
  const clients: LocalCloudClients = {
    get dynamodb() {
      return lazy('dynamodb', () => {
        const { DynamoDBClient } = require('@aws-sdk/client-dynamodb') as typeof import('@aws-sdk/client-dynamodb');
        return new DynamoDBClient(base);
      });
    },
    get s3() {
      return lazy('s3', () => {
        const { S3Client } = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
        return new S3Client({ ...base, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      });
    },
    get sfn() {
      return lazy('sfn', () => {
        const { SFNClient } = require('@aws-sdk/client-sfn') as typeof import('@aws-sdk/client-sfn');
        return new SFNClient(base);
      });
    },
    get lambda() {
      return lazy('lambda', () => {
        const { LambdaClient } = require('@aws-sdk/client-lambda') as typeof import('@aws-sdk/client-lambda');
        return new LambdaClient(base);
      });
    },
    get batch() {
      return lazy('batch', () => {
        const { BatchClient } = require('@aws-sdk/client-batch') as typeof import('@aws-sdk/client-batch');
        return new BatchClient(base);
      });
    },
    get braket() {
      return lazy('braket', () => {
        const { BraketClient } = require('@aws-sdk/client-braket') as typeof import('@aws-sdk/client-braket');
        return new BraketClient(base);
      });
    },
    get eventbridge() {
      return lazy('eventbridge', () => {
        const { EventBridgeClient } = require('@aws-sdk/client-eventbridge') as typeof import('@aws-sdk/client-eventbridge');
        return new EventBridgeClient(base);
      });
    },
    get cloudformation() {
      return lazy('cloudformation', () => {
        const { CloudFormationClient } = require('@aws-sdk/client-cloudformation') as typeof import('@aws-sdk/client-cloudformation');
        return new CloudFormationClient(base);
      });
    },
  };
  return {
    clients,
    destroy() {
      for (const client of made.values()) client.destroy();
      made.clear();
    },
  };
}

