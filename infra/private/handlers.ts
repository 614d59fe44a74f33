/**
 * valence's four handlers (step, cancel, completion, sweeper), each a bundled function with
 * its own role and log group, and the role Braket hybrid jobs assume; every handler gets the
 * contract's environment.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { ENV, toEnvironment, type DeploymentConfig } from '../../sdk/contract.ts';
import { JOB_BUNDLE, writeJobRunnerBundle } from './batch.ts';
import { HandlerFunction } from './handler.ts';
import type { Settings } from './settings.ts';
import { valenceModule, writeHandlerWithWorkflowsEntry, writeStepHandlerEntry } from './workflows.ts';

/** Props of {@link Handlers}. */
export interface HandlersProps {
  readonly settings: Settings;
  readonly workflowsPath: string;
  /** What the handlers need to reach the stack (their environment). */
  readonly deployment: Omit<DeploymentConfig, 'watchdogIntervalMs' | 'leaseMs' | 'pollIntervalMs'>;
  /** @default 1024 */
  readonly stepHandlerMemorySize?: number;
  /** @default Duration.minutes(15) */
  readonly stepHandlerTimeout?: Duration;
}

/**
 * The handlers, built into the Orchestrator's own scope (ids `StepHandler`, `CancelHandler`,
 * `CompletionHandler`, `Sweeper`, `BraketJobRole`) so their logical ids stay those of
 * earlier versions. Each handler's permissions are granted by `grantHandlerPermissions`.
 */
export class Handlers {
  /** Runs every node (invoked by every state machine). */
  readonly step: HandlerFunction;
  /** Serves the cancel and status API. */
  readonly cancel: HandlerFunction;
  /** Releases task tokens on Batch and Braket state changes. */
  readonly completion: HandlerFunction;
  /** Re-cancels jobs whose cancel was requested but which still run, and finishes what a lost event left waiting. */
  readonly sweeper: HandlerFunction;
  /** The role Braket hybrid jobs of this stack run as. */
  readonly braketJobRole: iam.Role;

  constructor(scope: Construct, props: HandlersProps) {
    const { settings, workflowsPath } = props;
    const { projectRoot, logRetention, removalPolicy, sweepInterval } = settings;
    // Payload objects of this stack, nothing else (granted with the handlers' permissions).
    this.braketJobRole = new iam.Role(scope, 'BraketJobRole', {
      assumedBy: new iam.ServicePrincipal('braket.amazonaws.com'),
      description: 'valence: the role Braket hybrid jobs of this stack assume',
    });
    const environment = { ...toEnvironment(props.deployment), [ENV.braketJobRoleArn]: this.braketJobRole.roleArn };
    const handler = (id: string, entry: string, description: string, timeout: Duration, memorySize = 512, fixedName = false, extraFiles: { source: string; name: string }[] = []): HandlerFunction =>
      new HandlerFunction(scope, id, { entry, projectRoot, description, environment, timeout, memorySize, logRetention, removalPolicy, fixedName, extraFiles });
    const withWorkflows = (name: string): string =>
      writeHandlerWithWorkflowsEntry({ projectRoot, workflowsPath, handlerModulePath: valenceModule(`lambdas/${name}`), name });

    this.step = handler(
      'StepHandler',
      writeStepHandlerEntry({ projectRoot, workflowsPath, stepModulePath: valenceModule('lambdas/step-handler'), jobRunnerFile: JOB_BUNDLE }),
      'valence step handler: runs, submits and awaits the nodes of every lattice',
      props.stepHandlerTimeout ?? Duration.minutes(15),
      props.stepHandlerMemorySize ?? 1024,
      // A fixed name: a node released from an `await` that also runs it is woken by an
      // asynchronous invocation of this same function (sdk/runtime/settle.ts, issue 18).
      true,
      stepJobRunnerFiles(scope, projectRoot, workflowsPath),
    );
    // A fixed name: a large cancel carries on in an asynchronous invocation of this same function.
    this.cancel = handler('CancelHandler', withWorkflows('cancel'), 'valence cancel handler: cancels dispatches and nodes, serves status', Duration.seconds(60), 512, true);
    this.completion = handler('CompletionHandler', valenceModule('lambdas/completion'), 'valence completion handler: releases task tokens on Batch and Braket state changes', Duration.seconds(60));
    // A sweep never outlasts the next one's start.
    const sweeperTimeout = Duration.seconds(Math.min(sweepInterval.isUnresolved() ? 60 : sweepInterval.toSeconds(), 300));
    this.sweeper = handler('Sweeper', withWorkflows('sweeper'), 'valence sweeper: cancels again what a lost event or failed call left running', sweeperTimeout);
  }
}

/**
 * The job runner's bundle for the step handler's asset: a LocalExecutor node runs in a child
 * process of the step handler, which runs this file under plain `node` (found missing by
 * running the synthesized assembly on the local cloud: the handler looked for
 * `sdk/runtime/job-runner.js` beside its bundle).
 */
function stepJobRunnerFiles(scope: Construct, projectRoot: string, workflowsPath: string): { source: string; name: string }[] {
  const jobRunner = valenceModule('sdk/runtime/job-runner');
  const digest = createHash('sha256').update(`${workflowsPath}\u0000${jobRunner}`).digest('hex').slice(0, 16);
  const dir = join(projectRoot, '.valence', 'job-runner', digest);
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, JOB_BUNDLE);
  writeJobRunnerBundle({ projectRoot, jobRunner, workflowsPath }, outfile, Stack.of(scope).bundlingRequired);
  return [
    { source: outfile, name: JOB_BUNDLE },
    { source: `${outfile}.map`, name: `${JOB_BUNDLE}.map` },
  ];
}
