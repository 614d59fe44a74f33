/**
 * The deployment contract: every name that infra (`cdk deploy`), the local deploy and the
 * runtime must agree on, each written once.
 *
 * A deployed stack and the code that runs in it meet only through these facts: the
 * environment variables set on handlers and Batch jobs, the table's keys and indexes, the
 * payload prefix in the bucket, the stack outputs the client reads, the graph runner's name
 * and Step Functions' limits. Infra writes them, the local deploy writes them the same way,
 * and the runtime and the client read them, all from this module. Pure data and two pure
 * functions: no AWS SDK, no I/O.
 *
 * @module
 */
import { ErrorCode, ValenceError } from './errors.ts';

/**
 * Environment variables infra and the local deploy set on every handler (and the stack-wide
 * ones on the Batch job definition), by the {@link DeploymentConfig} field they carry.
 */
export const ENV = {
  /** DynamoDB table of dispatch, node and cancel-request items. */
  table: 'VALENCE_TABLE',
  /** S3 bucket of payloads, graphs and results. */
  bucket: 'VALENCE_BUCKET',
  /** The stack's name. */
  stackName: 'VALENCE_STACK',
  /** `arn:…:stateMachine:{stackName}_`: a lattice's state machine ARN is this plus its name. */
  stateMachinePrefix: 'VALENCE_STATE_MACHINE_PREFIX',
  /** ARN of the graph-runner state machine. */
  graphRunnerArn: 'VALENCE_GRAPH_RUNNER_ARN',
  /** Batch job queue of BatchExecutor nodes that name none. */
  jobQueue: 'VALENCE_JOB_QUEUE',
  /** Batch job definition whose command is the job runner. */
  jobDefinition: 'VALENCE_JOB_DEFINITION',
  /** The role Braket hybrid jobs assume. */
  braketJobRoleArn: 'VALENCE_BRAKET_JOB_ROLE_ARN',
  /** How often a running node re-reads its cancel flag, in ms. */
  watchdogIntervalMs: 'VALENCE_WATCHDOG_MS',
  /** How long a running node's claim lasts without renewal, in ms. */
  leaseMs: 'VALENCE_LEASE_MS',
  /** How often long-running nodes are polled in case an event was lost, in ms. */
  pollIntervalMs: 'VALENCE_POLL_MS',
  /** Path or URL of the workflows module, for handlers and jobs that import it at run time. */
  workflows: 'VALENCE_WORKFLOWS',
} as const;

/**
 * Environment variables the runtime sets on one Batch job (or local job process) for the job
 * runner, besides the stack-wide {@link ENV} ones: which node of which dispatch it runs.
 */
export const JOB_ENV = {
  dispatchId: 'VALENCE_DISPATCH_ID',
  nodeId: 'VALENCE_NODE_ID',
  lattice: 'VALENCE_LATTICE',
  electron: 'VALENCE_ELECTRON',
  attempt: 'VALENCE_ATTEMPT',
  graceSeconds: 'VALENCE_GRACE_SECONDS',
  /** Set (to `1`) for nodes of a sublattice: the graph is built from the child dispatch's arguments. */
  childDispatch: 'VALENCE_CHILD_DISPATCH',
  /** Comma-separated node ids of a packed array job; the array index picks one. */
  packNodes: 'VALENCE_PACK_NODES',
} as const;

/** Values used when the deployment does not set them. */
export const DEFAULTS = {
  stackName: 'valence',
  /**
   * 75 ms, not 100: a cancel waits on average half an interval for the watchdog to read its
   * flag, and issue 13 asks for p95 ≤ 150 ms from the call to a stopped, terminal node. The
   * read costs half a read unit: 800 reads per running node-minute, $0.0036 per node-hour
   * (7.5% of a 1 GB ARM Lambda hour); VALENCE_WATCHDOG_MS trades it back.
   */
  watchdogIntervalMs: 75,
  leaseMs: 15_000,
  pollIntervalMs: 30_000,
} as const;

/** The table's key schema and its two global secondary indexes. */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  indexes: {
    /** Nodes by the job that runs them (completion events name a job, not a node). */
    byJobHandle: { name: 'byJobHandle', partitionKey: 'jobHandle' },
    /** Top-level dispatches, newest first, and nodes that wait on a job. */
    byList: { name: 'byList', partitionKey: 'listKey', sortKey: 'listSort' },
  },
} as const;

/** Every key of the bucket that valence writes starts with this (lifecycle rules and grants use it). */
export const PAYLOAD_PREFIX = 'dispatches/';

/** Keys of the stack outputs `connect({ stackName })` reads through `DescribeStacks`. */
export const OUTPUT = {
  apiUrl: 'ApiUrl',
  tableName: 'TableName',
  bucketName: 'BucketName',
  stateMachineArnPrefix: 'StateMachineArnPrefix',
  graphRunnerArn: 'GraphRunnerArn',
  jobQueueArn: 'JobQueueArn',
} as const;

/**
 * The error a released `await` state is failed with when its node has already ended (cancelled
 * in bulk, or below a parent that did not complete): the iteration's Catch ends it there, so
 * the node's `run` state, one step invocation that would only find the node ended, never runs.
 * Only `await` states that announce the Catch (`skippable` in their event, recorded with the
 * token) are released this way; every other wait gets a plain success.
 */
export const NODE_ENDED_ERROR = 'Valence.NodeEnded';

/**
 * The error a node's `await` state that also runs the node (`run: true` in its event, issue 18)
 * is failed with when whoever released it cannot run the node itself: the state's Catch goes on
 * to a plain `run` state, so Step Functions runs the node as it did before the two states were
 * one. The step handler wakes such a node with an asynchronous invocation of itself; the
 * completion and cancel handlers, the sweeper (for a wake that was lost) and a failed wake
 * hand the node back this way.
 */
export const RUN_NODE_ERROR = 'Valence.RunNode';

/** Name of the generic state machine that runs sublattices (so no lattice may take it). */
export const GRAPH_RUNNER_NAME = 'graph-runner';

/**
 * Where a dispatch's large arguments wait between their presigned upload and the dispatch
 * that reads them: outside {@link PAYLOAD_PREFIX}, so an upload can never be mistaken for (or
 * overwrite) a dispatch's own payloads. The bucket expires them after a day.
 */
export const UPLOAD_PREFIX = 'uploads/';

/** The dispatch, cancel and status API. */
export const API = {
  /** Stage the API is deployed to. */
  stage: 'prod',
  /** `POST` here dispatches a deployed lattice: `{ lattice, args | argsUpload, graphHash? }`. */
  dispatchPath: '/dispatches',
  /** `POST` here returns a presigned S3 `PUT` for arguments too large to send inline: `{ bytes }`. */
  uploadPath: '/uploads',
  /** `POST` here cancels a dispatch or some of its tasks. */
  cancelPath: '/dispatches/{id}/cancel',
  /** `GET` here reads one cancel request: its report, or its progress so far. */
  cancelReportPath: '/dispatches/{id}/cancels/{requestId}',
  /** `GET` here reads a dispatch's status. */
  statusPath: '/dispatches/{id}',
  /** Longest `reason` a cancel request may carry. */
  maxReasonLength: 1024,
  /**
   * Largest cancel request body, in bytes: room for the most task ids one request may name
   * (10,000 paths). Larger bodies are refused with 413 before they are decoded or parsed.
   */
  maxCancelBodyBytes: 256 * 1024,
  /**
   * Largest serialized arguments sent inline in a dispatch request. Larger ones go through a
   * presigned upload: a Lambda request payload is at most 6 MB, and JSON escaping can nearly
   * double a string, so the inline limit keeps every request far below it.
   */
  maxInlineArgsBytes: 256 * 1024,
  /** Largest dispatch request body: inline arguments (escaped) plus the lattice name and hash. */
  maxDispatchBodyBytes: 640 * 1024,
  /**
   * Largest arguments a presigned upload may carry. The dispatch handler reads them into memory
   * to build the graph (an argument can shape it), within its 512 MB.
   */
  maxUploadBytes: 64 * 1024 * 1024,
  /** How long a presigned upload URL stays valid, in seconds. */
  uploadUrlSeconds: 900,
  /** Largest serialized result `GET /dispatches/{id}?result=true` returns inline; a larger one comes as a presigned `GET` URL. */
  maxInlineResultBytes: 1024 * 1024,
} as const;

/** Step Functions' limits that decide what can be deployed. */
export const LIMITS = {
  /** Longest state machine name. */
  stateMachineName: 80,
  /** Characters allowed in a state machine name. */
  stateMachineNamePattern: /^[A-Za-z0-9_-]+$/,
  /** Largest state machine definition, in bytes. */
  definitionBytes: 1_048_576,
  /**
   * Largest node output (UTF-8 bytes of its serialized text) stored inline in the node's
   * DynamoDB item; larger outputs go to S3. 4 KiB keeps the finishing write within 5 write
   * units, and below about 8 KiB an inline write costs less than an S3 PUT plus GETs.
   */
  inlineOutputBytes: 4096,
} as const;

/**
 * The separator between the stack name and the lattice name in a state machine name. A
 * CloudFormation stack name cannot hold it (`[A-Za-z][A-Za-z0-9-]*`), so `{stack}_*` matches
 * this stack's state machines only: with `-`, stack `valence`'s pattern `valence-*` also
 * matched every state machine of a stack named `valence-staging` (issue 14).
 */
export const STATE_MACHINE_NAME_SEPARATOR = '_';

/** The state machine name of lattice (or graph runner) `name` in stack `stackName`: `{stackName}_{name}`. */
export function stateMachineName(stackName: string, name: string): string {
  return `${stackName}${STATE_MACHINE_NAME_SEPARATOR}${name}`;
}

/** What a deployed stack tells the code that runs in it; see {@link ENV}. */
export interface DeploymentConfig {
  /** DynamoDB table holding dispatch, node and cancel-request items. */
  readonly table: string;
  /** S3 bucket holding payloads, graphs and results. */
  readonly bucket: string;
  /** Stack name, e.g. `valence`. */
  readonly stackName: string;
  /** `arn:aws:states:{region}:{account}:stateMachine:{stackName}_`; a lattice's ARN is this plus its name. */
  readonly stateMachinePrefix: string;
  /** ARN of the generic graph-runner state machine that runs sublattices. */
  readonly graphRunnerArn: string;
  /** Batch job queue for BatchExecutor nodes that name none. */
  readonly jobQueue?: string;
  /** Batch job definition whose command is valence's job runner. */
  readonly jobDefinition?: string;
  /**
   * How often a running node re-reads its cancel flag. Lower means faster cancels and more
   * reads: one eventually consistent read per interval per running node.
   * @default 100
   */
  readonly watchdogIntervalMs: number;
  /**
   * How long a running node's claim lasts without renewal. A retried invocation after a crash
   * waits for the claim to lapse before it runs the node again.
   * @default 15000
   */
  readonly leaseMs: number;
  /** How often long-running nodes are polled when a state-change event may have been lost. @default 30000 */
  readonly pollIntervalMs: number;
}

/** The environment is missing a variable a handler needs, or one is malformed. */
export class ConfigurationError extends ValenceError {
  override readonly name = 'ConfigurationError';
  constructor(message: string) {
    super(ErrorCode.CONFIGURATION_INVALID, message);
  }
}

/**
 * The environment variables that carry `config`. Tuning values are written only when they
 * differ from {@link DEFAULTS}, and optional names only when set, so a template shows what
 * the deployment chose. Values may be CDK tokens: this function only places them.
 */
export function toEnvironment(config: Partial<DeploymentConfig> & Pick<DeploymentConfig, 'table' | 'bucket' | 'stackName' | 'stateMachinePrefix' | 'graphRunnerArn'>): Record<string, string> {
  const tuning = (key: 'watchdogIntervalMs' | 'leaseMs' | 'pollIntervalMs'): Record<string, string> =>
    config[key] === undefined || config[key] === DEFAULTS[key] ? {} : { [ENV[key]]: String(config[key]) };
  return {
    [ENV.table]: config.table,
    [ENV.bucket]: config.bucket,
    [ENV.stackName]: config.stackName,
    [ENV.stateMachinePrefix]: config.stateMachinePrefix,
    [ENV.graphRunnerArn]: config.graphRunnerArn,
    ...(config.jobQueue ? { [ENV.jobQueue]: config.jobQueue } : {}),
    ...(config.jobDefinition ? { [ENV.jobDefinition]: config.jobDefinition } : {}),
    ...tuning('watchdogIntervalMs'),
    ...tuning('leaseMs'),
    ...tuning('pollIntervalMs'),
  };
}

/** Reads the {@link DeploymentConfig} that {@link toEnvironment} wrote; throws {@link ConfigurationError} naming what is missing. */
export function fromEnvironment(env: Readonly<Record<string, string | undefined>>): DeploymentConfig {
  const required = (key: keyof typeof ENV): string => {
    const value = env[ENV[key]];
    if (!value) throw new ConfigurationError(`Environment variable ${ENV[key]} is not set; is this running inside a deployed valence stack?`);
    return value;
  };
  const positive = (key: 'watchdogIntervalMs' | 'leaseMs' | 'pollIntervalMs'): number => {
    const raw = env[ENV[key]];
    if (raw === undefined || raw === '') return DEFAULTS[key];
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(`Environment variable ${ENV[key]} must be a positive number, got "${raw}"`);
    return value;
  };
  const jobQueue = env[ENV.jobQueue];
  const jobDefinition = env[ENV.jobDefinition];
  return {
    table: required('table'),
    bucket: required('bucket'),
    stackName: env[ENV.stackName] || DEFAULTS.stackName,
    stateMachinePrefix: required('stateMachinePrefix'),
    graphRunnerArn: required('graphRunnerArn'),
    ...(jobQueue ? { jobQueue } : {}),
    ...(jobDefinition ? { jobDefinition } : {}),
    watchdogIntervalMs: positive('watchdogIntervalMs'),
    leaseMs: positive('leaseMs'),
    pollIntervalMs: positive('pollIntervalMs'),
  };
}
