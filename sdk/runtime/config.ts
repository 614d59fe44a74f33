/**
 * Where a deployed valence stack keeps its state, as the handlers, the job runner and the
 * client see it.
 *
 * The names and defaults are the deployment contract's (`sdk/contract.ts`). Handlers learn
 * them from the environment infra and the local deploy set ({@link runtimeConfigFromEnv});
 * the client learns them from the stack's outputs ({@link runtimeConfigFromOutputs}). Both
 * give the same {@link RuntimeConfig}, from which `runtimeContextFrom` builds the one kind of
 * runtime context every path uses.
 */
import { DEFAULTS, fromEnvironment, type DeploymentConfig } from '../contract.ts';

export { ConfigurationError } from '../contract.ts';

/** Names and tuning of one deployed stack. */
export type RuntimeConfig = DeploymentConfig;

/** The outputs a valence stack publishes (keys in the contract's `OUTPUT`). */
export interface StackOutputs {
  /** Base URL of the cancel and status API. */
  readonly apiUrl: string;
  /** DynamoDB table of dispatches and nodes. */
  readonly tableName: string;
  /** S3 bucket of payloads and results. */
  readonly bucketName: string;
  /** A lattice's state machine ARN is this prefix plus the lattice name. */
  readonly stateMachineArnPrefix: string;
  /** State machine that runs sublattices. */
  readonly graphRunnerArn: string;
  /** Batch job queue of BatchExecutor nodes, when the stack has Batch. */
  readonly jobQueueArn?: string;
}

/** Reads the configuration from the environment infra and the local cloud set. */
export function runtimeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  return fromEnvironment(env);
}

/**
 * The configuration a client outside the stack works with: names from the stack's outputs,
 * tuning from the contract's defaults (what an unconfigured handler uses too).
 */
export function runtimeConfigFromOutputs(outputs: StackOutputs, stackName: string): RuntimeConfig {
  return {
    table: outputs.tableName,
    bucket: outputs.bucketName,
    stackName,
    stateMachinePrefix: outputs.stateMachineArnPrefix,
    graphRunnerArn: outputs.graphRunnerArn,
    ...(outputs.jobQueueArn ? { jobQueue: outputs.jobQueueArn } : {}),
    watchdogIntervalMs: DEFAULTS.watchdogIntervalMs,
    leaseMs: DEFAULTS.leaseMs,
    pollIntervalMs: DEFAULTS.pollIntervalMs,
  };
}
