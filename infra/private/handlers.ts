/**
 * valence's four handlers (step, cancel, completion, sweeper), each a bundled function with
 * its own role and log group, and the role Braket hybrid jobs assume; every handler gets the
 * contract's environment.
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { ENV, toEnvironment, type DeploymentConfig } from '../../sdk/contract.ts';
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
    const handler = (id: string, entry: string, description: string, timeout: Duration, memorySize = 512, fixedName = false): HandlerFunction =>
      new HandlerFunction(scope, id, { entry, projectRoot, description, environment, timeout, memorySize, logRetention, removalPolicy, fixedName });
    const withWorkflows = (name: string): string =>
      writeHandlerWithWorkflowsEntry({ projectRoot, workflowsPath, handlerModulePath: valenceModule(`lambdas/${name}`), name });

    this.step = handler(
      'StepHandler',
      writeStepHandlerEntry({ projectRoot, workflowsPath, stepModulePath: valenceModule('lambdas/step-handler') }),
      'valence step handler: runs, submits and awaits the nodes of every lattice',
      props.stepHandlerTimeout ?? Duration.minutes(15),
      props.stepHandlerMemorySize ?? 1024,
    );
    // A fixed name: a large cancel carries on in an asynchronous invocation of this same function.
    this.cancel = handler('CancelHandler', withWorkflows('cancel'), 'valence cancel handler: cancels dispatches and nodes, serves status', Duration.seconds(60), 512, true);
    this.completion = handler('CompletionHandler', valenceModule('lambdas/completion'), 'valence completion handler: releases task tokens on Batch and Braket state changes', Duration.seconds(60));
    // A sweep never outlasts the next one's start.
    const sweeperTimeout = Duration.seconds(Math.min(sweepInterval.isUnresolved() ? 60 : sweepInterval.toSeconds(), 300));
    this.sweeper = handler('Sweeper', withWorkflows('sweeper'), 'valence sweeper: cancels again what a lost event or failed call left running', sweeperTimeout);
  }
}
