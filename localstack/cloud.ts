/**
 * The shape of a running local cloud, apart from how it starts: what valence's local deploy
 * (`deploy.ts`) and tests are given. It lives apart from `index.ts` so that the deploy, which
 * `startLocalCloud` loads, does not import back into the module that loads it.
 *
 * @module
 */
import type { BatchClient } from '@aws-sdk/client-batch';
import type { BraketClient } from '@aws-sdk/client-braket';
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { LocalApiGatewayService } from './apigateway/index.ts';
import type { LocalBatchService } from './batch/index.ts';
import type { LocalBraketService } from './braket/index.ts';
import type { LocalCloudFormationService } from './cloudformation/index.ts';
import type { CounterSnapshot, RequestCounters } from './core/counters.ts';
import type { LocalCredentials, StaticCredentialStore } from './core/credentials.ts';
import type { FaultInjector } from './core/faults.ts';
import type { LocalService } from './core/service.ts';
import type { LocalEventBridgeService } from './events/index.ts';
import type { LocalLambdaService } from './lambda/index.ts';
import type { LocalS3Service } from './s3/index.ts';
import type { StepFunctionsService } from './stepfunctions/index.ts';
import type { AssemblyDeployment } from './assembly/types.ts';
import type { IamEnforcer } from './iam/index.ts';

/** AWS SDK v3 clients connected to the local cloud, each created on first use. */
export interface LocalCloudClients {
  readonly dynamodb: DynamoDBClient;
  /** Path-style, checksums only when required. */
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly lambda: LambdaClient;
  readonly batch: BatchClient;
  readonly braket: BraketClient;
  readonly eventbridge: EventBridgeClient;
  readonly cloudformation: CloudFormationClient;
}

/** Every service of a running local cloud, for in-process use (deploying, inspecting). */
export interface LocalCloudServices {
  readonly dynamodb: LocalService;
  readonly s3: LocalS3Service;
  readonly cloudformation: LocalCloudFormationService;
  readonly lambda: LocalLambdaService;
  readonly apigateway: LocalApiGatewayService;
  readonly events: LocalEventBridgeService;
  readonly stepfunctions: StepFunctionsService;
  readonly batch: LocalBatchService;
  readonly braket: LocalBraketService;
}

/** A running local cloud. */
export interface LocalCloud {
  /** `http://host:port`; give it to SDK clients as `endpoint` or to the CLI as `--endpoint-url`. */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  /** The key pair `clients` sign with. */
  readonly credentials: LocalCredentials;
  /** Every key pair whose signatures the services accept; tests may add more. */
  readonly credentialStore: StaticCredentialStore;
  readonly clients: LocalCloudClients;
  readonly services: LocalCloudServices;
  /**
   * The secret of this start that the admin API under `/_valence/` requires, sent in the
   * `x-valence-admin-token` header ({@link ADMIN_TOKEN_HEADER}); new on every start.
   */
  readonly adminToken: string;
  /** Requests per service and operation since start (or the last reset). */
  counters(): CounterSnapshot;
  /** Zeroes the counters. */
  resetCounters(): void;
  /** The live counter table, for callers that want `get(service, operation)`. */
  readonly requestCounters: RequestCounters;
  /** Fault injection, in process (also at `/_valence/faults` over HTTP). */
  readonly faults: FaultInjector;
  /** The environment a deployed Lambda function or Batch job sees. */
  environment(): Record<string, string>;
  /** Adds variables to {@link environment} (the deploy step sets table, bucket and stack names). */
  setEnvironment(variables: Readonly<Record<string, string>>): void;
  /** What a cloud-assembly start deployed (`assembly` option): functions, roles, outputs, what was skipped. */
  readonly assembly?: AssemblyDeployment;
  /** IAM enforcement of an assembly start (`iam` option): roles, decisions, per-role usage. */
  readonly iam?: IamEnforcer;
  /** Credentials that act as a role of the deployed assembly (IAM on), for a test to call as that role. */
  credentialsForRole?(roleArn: string): LocalCredentials;
  /** Releases every port, timer, worker, child process and file handle. Idempotent. */
  stop(): Promise<void>;
}
