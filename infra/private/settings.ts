/**
 * The Orchestrator's props with their defaults applied, checked at synth: a prop or a
 * workflows module that cannot be deployed fails here, naming what is wrong, never at deploy.
 */
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { join } from 'node:path';
import { GRAPH_RUNNER_NAME, LIMITS, stateMachineName } from '../../sdk/contract.ts';
import { OrchestratorValidationCode, OrchestratorValidationError } from './errors.ts';
import { latticesOf, type ExportedLattice } from './lattices.ts';
import { findProjectRoot, type WorkflowsModule } from './workflows.ts';

/** The API's default method throttling (re-exported by the construct as `DEFAULT_API_THROTTLING`). */
export const DEFAULT_API_THROTTLING = { rateLimit: 100, burstLimit: 200 } as const;

/** The props settings reads (a subset of `OrchestratorProps`, so this file does not import the construct). */
export interface SettingsProps {
  readonly workflows: WorkflowsModule;
  readonly projectRoot?: string;
  readonly removalPolicy?: RemovalPolicy;
  readonly autoDeleteObjects?: boolean;
  readonly payloadRetentionDays?: number;
  readonly sweepInterval?: Duration;
  readonly logRetention?: logs.RetentionDays;
  readonly enableBatch?: boolean;
  readonly jobQueue?: unknown;
  readonly jobDefinition?: unknown;
  readonly vpc?: unknown;
  readonly apiThrottling?: { readonly rateLimit: number; readonly burstLimit: number };
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
}

/** What the parts of the construct build from. */
export interface Settings {
  readonly stackName: string;
  readonly projectRoot: string;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  readonly enableBatch: boolean;
  readonly autoDeleteObjects: boolean;
  readonly payloadRetentionDays: number;
  readonly sweepInterval: Duration;
  /** Method throttling of the API's stage. */
  readonly apiThrottling: { readonly rateLimit: number; readonly burstLimit: number };
  /** The module's lattices, each with a valid, unique state machine name. */
  readonly lattices: readonly ExportedLattice[];
  /** When lattices (and graphs the graph runner runs) are split into partitions: the compiler's option; undefined is its default. */
  readonly partition: false | { readonly above?: number; readonly chunkSize?: number } | undefined;
  /** Throws the construct's validation error (for checks made later, e.g. on compiled sizes). */
  readonly invalid: (code: OrchestratorValidationCode, message: string) => never;
}

/** Applies defaults to `props` and checks them and the workflows module; `constructPath` names the construct in errors. */
export function resolveSettings(props: SettingsProps, stackName: string, constructPath: string): Settings {
  const invalid = (code: OrchestratorValidationCode, message: string): never => {
    throw new OrchestratorValidationError(code, message, constructPath);
  };
  const settings: Settings = {
    stackName,
    projectRoot: props.projectRoot ?? findProjectRoot(join(props.workflows.path, '..')),
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    enableBatch: props.enableBatch ?? true,
    autoDeleteObjects: props.autoDeleteObjects ?? false,
    payloadRetentionDays: props.payloadRetentionDays ?? 30,
    sweepInterval: props.sweepInterval ?? Duration.minutes(1),
    apiThrottling: props.apiThrottling ?? DEFAULT_API_THROTTLING,
    lattices: latticesOf(props.workflows.exports),
    partition: props.partition,
    invalid,
  };
  checkProps(settings, props);
  checkLattices(settings, props.workflows.path);
  return settings;
}

function checkProps(settings: Settings, props: SettingsProps): void {
  const { invalid, payloadRetentionDays, sweepInterval } = settings;
  if (!Number.isInteger(payloadRetentionDays) || payloadRetentionDays < 1) {
    invalid(OrchestratorValidationCode.INVALID_PROP, `payloadRetentionDays must be a whole number of days ≥ 1, got ${payloadRetentionDays}`);
  }
  if (!sweepInterval.isUnresolved() && (sweepInterval.toSeconds() < 60 || sweepInterval.toSeconds() % 60 !== 0)) {
    invalid(OrchestratorValidationCode.INVALID_PROP, `sweepInterval must be a whole number of minutes ≥ 1 (EventBridge's schedule resolution), got ${sweepInterval.toHumanString()}`);
  }
  const { rateLimit, burstLimit } = settings.apiThrottling;
  if (!Number.isFinite(rateLimit) || rateLimit <= 0) {
    invalid(OrchestratorValidationCode.INVALID_PROP, `apiThrottling.rateLimit must be a number of requests per second above 0, got ${rateLimit}`);
  }
  if (!Number.isInteger(burstLimit) || burstLimit < 1) {
    invalid(OrchestratorValidationCode.INVALID_PROP, `apiThrottling.burstLimit must be a whole number of requests ≥ 1, got ${burstLimit}`);
  }
  if (settings.autoDeleteObjects && settings.removalPolicy !== RemovalPolicy.DESTROY) {
    invalid(OrchestratorValidationCode.INVALID_PROP, 'autoDeleteObjects needs removalPolicy: RemovalPolicy.DESTROY (a retained bucket is never emptied)');
  }
  if (!settings.enableBatch && (props.jobQueue || props.jobDefinition || props.vpc)) {
    invalid(OrchestratorValidationCode.INVALID_PROP, 'jobQueue, jobDefinition and vpc configure Batch; they cannot be given with enableBatch: false');
  }
}

function checkLattices(settings: Settings, workflowsPath: string): void {
  const { invalid, lattices } = settings;
  if (lattices.length === 0) {
    invalid(OrchestratorValidationCode.NO_LATTICES, `the workflows module ${workflowsPath} exports no lattice; export each lattice to deploy it`);
  }
  const seen = new Map<string, string>();
  for (const lattice of lattices) {
    if (lattice.name === GRAPH_RUNNER_NAME) {
      invalid(OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME, `lattice "${lattice.name}" (export ${lattice.exportName}) takes the name of valence's graph-runner state machine; rename the lattice`);
    }
    const other = seen.get(lattice.name);
    if (other !== undefined) {
      invalid(OrchestratorValidationCode.DUPLICATE_LATTICE, `exports ${other} and ${lattice.exportName} are two different lattices named "${lattice.name}"; lattice names must be unique in a workflows module`);
    }
    seen.set(lattice.name, lattice.exportName);
    checkedStateMachineName(settings, lattice.name, `lattice "${lattice.name}" (export ${lattice.exportName})`);
  }
}

/** The state machine name of `name` in this stack, refused when Step Functions would refuse it. */
export function checkedStateMachineName(settings: Settings, name: string, what: string): string {
  const full = stateMachineName(settings.stackName, name);
  if (!LIMITS.stateMachineNamePattern.test(name)) {
    settings.invalid(OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME, `${what} has characters Step Functions rejects in state machine names (allowed: A-Z a-z 0-9 _ -)`);
  }
  if (!Token.isUnresolved(settings.stackName) && full.length > LIMITS.stateMachineName) {
    settings.invalid(
      OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME,
      `${what} makes the state machine name "${full}" ${full.length} characters long; Step Functions allows ${LIMITS.stateMachineName}. Shorten the lattice name or the stack name.`,
    );
  }
  return full;
}
