/**
 * The one place where valence creates AWS SDK clients.
 *
 * Pointing valence at AWS, LocalStack or the embedded local cloud is configuration only: an
 * endpoint (or `AWS_ENDPOINT_URL`, which the SDK reads itself), a region and credentials. The
 * settings that a non-AWS endpoint needs — path-style S3 and checksums only when required
 * (s3rver stores streamed bodies with their chunk framing otherwise) — are applied here so
 * that no caller has to remember them.
 */
import { BatchClient } from '@aws-sdk/client-batch';
import { BraketClient } from '@aws-sdk/client-braket';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Where and as whom valence talks to AWS. Every field falls back to the SDK's own chain. */
export interface AwsConfig {
  /** Endpoint of a local cloud or LocalStack; unset means the real AWS endpoints. */
  readonly endpoint?: string;
  /** @default process.env.AWS_REGION ?? 'us-east-1' */
  readonly region?: string;
  /** Static credentials; unset means the default provider chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /**
   * SDK attempts per call (the first and its retries). The SDK's `standard` retry mode retries
   * throttles, 5xx and timeouts with exponential backoff and full jitter, apart from any
   * electron's `retries`. @default {@link DEFAULT_MAX_ATTEMPTS}
   */
  readonly maxAttempts?: number;
}

/**
 * Attempts per AWS call. At 5 % injected faults a call still fails after n attempts with
 * probability 0.05^n: with the SDK's default of 3 that is about one call in 8,000, so a
 * 1,000-node run (some ten calls per node) lost a node; with 8 it is one in 2.6·10^10. The
 * backoff (100 ms base, doubling, full jitter, 20 s cap) bounds the added wait to ~25 s.
 */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** Error names AWS uses for throttling and transient failures, beyond any 5xx status. */
const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceException',
  'TransactionInProgressException',
]);

/** Node.js socket errors the SDK treats as transient. */
const TRANSIENT_SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/**
 * True for an AWS error that says "try again" — a throttle, a 5xx or a timeout — rather than
 * something wrong with the request. The runtime uses it to tell its own transient AWS failures
 * (retried as a whole invocation) from a node's own failure; the SDK has already retried the
 * call {@link DEFAULT_MAX_ATTEMPTS} times when such an error reaches valence code.
 */
export function isTransientAwsError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: unknown; code?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (e.name === 'AbortError') return false;
  if (e.$retryable !== undefined && e.$retryable !== null) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  return typeof e.code === 'string' && TRANSIENT_SOCKET_CODES.has(e.code);
}

/** Lazily created clients that share one configuration. */
export interface AwsClients {
  readonly config: ResolvedAwsConfig;
  readonly dynamodb: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly batch: BatchClient;
  readonly braket: BraketClient;
  readonly cloudformation: CloudFormationClient;
  /** Closes every client created so far (their sockets keep a process alive otherwise). */
  destroy(): void;
}

/** An {@link AwsConfig} with the region decided. */
export interface ResolvedAwsConfig extends AwsConfig {
  readonly region: string;
}

/** Resolves region and endpoint from the arguments, then the environment. */
export function resolveAwsConfig(config: AwsConfig = {}): ResolvedAwsConfig {
  const endpoint = config.endpoint ?? process.env.AWS_ENDPOINT_URL ?? undefined;
  const region = config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  return { ...config, region, ...(endpoint ? { endpoint } : {}) };
}

/**
 * Creates the clients valence uses, each on first access.
 * @example const aws = createAwsClients({ endpoint: 'http://127.0.0.1:4566' });
 */
export function createAwsClients(config: AwsConfig = {}): AwsClients {
  const resolved = resolveAwsConfig(config);
  const base = {
    region: resolved.region,
    maxAttempts: resolved.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    // 'standard': exponential backoff with full jitter on throttles, 5xx and timeouts. Not
    // 'adaptive': its client-side rate limiter would slow every node of a dispatch after one throttle.
    retryMode: 'standard',
    ...(resolved.endpoint ? { endpoint: resolved.endpoint } : {}),
    ...(resolved.credentials ? { credentials: resolved.credentials } : {}),
  };
  const made: { destroy(): void }[] = [];
  const lazy = <T extends { destroy(): void }>(make: () => T): (() => T) => {
    let client: T | undefined;
    return () => {
      if (!client) {
        client = make();
        made.push(client);
      }
      return client;
    };
  };
  const rawDynamo = lazy(() => new DynamoDBClient(base));
  const dynamodb = lazy(() =>
    DynamoDBDocumentClient.from(rawDynamo(), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
  );
  const s3 = lazy(
    () =>
      new S3Client({
        ...base,
        forcePathStyle: Boolean(resolved.endpoint),
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
  );
  const sfn = lazy(() => new SFNClient(base));
  const batch = lazy(() => new BatchClient(base));
  const braket = lazy(() => new BraketClient(base));
  const cloudformation = lazy(() => new CloudFormationClient(base));
  return {
    config: resolved,
    get dynamodb() {
      return dynamodb();
    },
    get s3() {
      return s3();
    },
    get sfn() {
      return sfn();
    },
    get batch() {
      return batch();
    },
    get braket() {
      return braket();
    },
    get cloudformation() {
      return cloudformation();
    },
    destroy() {
      for (const client of made.splice(0)) client.destroy();
    },
  };
}
