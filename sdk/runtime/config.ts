/**
 * Where a deployed valence stack keeps its state, as the handlers and the job runner see it.
 *
 * Infra sets these variables on every handler and job; the local cloud sets the same ones, so
 * the runtime has exactly one way of learning its table, bucket and state machines.
 */
import { ErrorCode, ValenceError } from '../errors.ts';

/** Names and tuning of one deployed stack. */
export interface RuntimeConfig {
  /** DynamoDB table holding dispatch, node and cancel-request items. */
  readonly table: string;
  /** S3 bucket holding payloads, graphs and results. */
  readonly bucket: string;
  /** Stack name, e.g. `valence`. */
  readonly stackName: string;
  /** `arn:aws:states:{region}:{account}:stateMachine:{stackName}-`; a lattice's ARN is this plus its name. */
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

/** Thrown when the environment lacks a variable a handler needs. */
export class ConfigurationError extends ValenceError {
  override readonly name: string = 'ConfigurationError';
  constructor(message: string) {
    super(ErrorCode.CONFIGURATION_INVALID, message);
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigurationError(`Environment variable ${name} is not set; is this running inside a deployed valence stack?`);
  return value;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(`Environment variable ${name} must be a positive number, got "${raw}"`);
  return value;
}

/** Reads the configuration from the environment infra and the local cloud set. */
export function runtimeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  return {
    table: required(env, 'VALENCE_TABLE'),
    bucket: required(env, 'VALENCE_BUCKET'),
    stackName: env.VALENCE_STACK ?? 'valence',
    stateMachinePrefix: required(env, 'VALENCE_STATE_MACHINE_PREFIX'),
    graphRunnerArn: required(env, 'VALENCE_GRAPH_RUNNER_ARN'),
    ...(env.VALENCE_JOB_QUEUE ? { jobQueue: env.VALENCE_JOB_QUEUE } : {}),
    ...(env.VALENCE_JOB_DEFINITION ? { jobDefinition: env.VALENCE_JOB_DEFINITION } : {}),
    watchdogIntervalMs: positive(env, 'VALENCE_WATCHDOG_MS', 100),
    leaseMs: positive(env, 'VALENCE_LEASE_MS', 15_000),
    pollIntervalMs: positive(env, 'VALENCE_POLL_MS', 30_000),
  };
}
