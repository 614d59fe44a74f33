/**
 * Batch for `BatchExecutor` nodes: this stack's queue (on a new Fargate compute environment,
 * unless the user brings one) and its job definition (whose image runs valence's job runner,
 * unless the user brings one), the queues and definitions that nodes name themselves, and
 * the grants to submit, stop and describe their jobs.
 */
import { Size, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../sdk/contract.ts';
import { toEnvironment } from '../../sdk/contract.ts';
import { createJobDefinition, createJobVpc } from './batch.ts';
import { batchTargetsOf } from './lattices.ts';
import { acknowledgeWildcardResources, allow } from './nag.ts';
import type { Settings } from './settings.ts';
import { valenceModule } from './workflows.ts';
import { STACK_TAG } from './arns.ts';

/** Props of {@link Jobs}. */
export interface JobsProps {
  readonly settings: Settings;
  readonly workflowsPath: string;
  /** What the job runner needs to reach the stack (set on the job definition). */
  readonly deployment: Pick<DeploymentConfig, 'table' | 'bucket' | 'stackName' | 'stateMachinePrefix' | 'graphRunnerArn'>;
  readonly jobQueue?: batch.IJobQueue;
  readonly jobDefinition?: batch.IJobDefinition;
  readonly vpc?: ec2.IVpc;
  readonly maxvCpus?: number;
  readonly jobCpu?: number;
  readonly jobMemory?: Size;
  readonly jobArchitecture?: ecs.CpuArchitecture;
}

/**
 * The Batch resources, built into the Orchestrator's own scope (ids `ComputeEnvironment`,
 * `JobQueue`, `JobRole`, the VPC's and the job definition's) so their logical ids stay those
 * of earlier versions. Without Batch (`enableBatch: false`) it holds nothing and grants nothing.
 */
export class Jobs {
  /** The queue `BatchExecutor` submits to, if Batch is enabled. */
  readonly jobQueue?: batch.IJobQueue;
  /** The job definition that runs valence's job runner, if Batch is enabled. */
  readonly jobDefinition?: batch.IJobDefinition;
  /** The VPC created for Fargate jobs, if one was created. */
  readonly vpc?: ec2.IVpc;
  /** The role valence's own job definition runs as, if it created one. */
  readonly jobRole?: iam.Role;
  /** This stack's queue and the queues nodes name. */
  readonly jobQueueArns: readonly string[];
  /** Every revision of this stack's job definition and of the definitions nodes name. */
  readonly jobDefinitionArns: readonly string[];
  private readonly batchJobs: string;

  constructor(scope: Construct, props: JobsProps) {
    const { settings } = props;
    const stack = Stack.of(scope);
    this.batchJobs = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    if (settings.enableBatch) {
      if (props.jobQueue) {
        this.jobQueue = props.jobQueue;
      } else {
        // aws-cdk-lib's classes do not satisfy their own interfaces under exactOptionalPropertyTypes
        // (optional props declared `T | undefined`); the class is the interface's implementation.
        const vpc = props.vpc ?? (createJobVpc(scope, { logRetention: settings.logRetention, removalPolicy: settings.removalPolicy }) as ec2.IVpc);
        if (!props.vpc) this.vpc = vpc;
        const computeEnvironment = new batch.FargateComputeEnvironment(scope, 'ComputeEnvironment', {
          vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          maxvCpus: props.maxvCpus ?? 256,
        });
        this.jobQueue = new batch.JobQueue(scope, 'JobQueue', { computeEnvironments: [{ computeEnvironment, order: 1 }] }) as batch.IJobQueue;
      }
      if (props.jobDefinition) {
        this.jobDefinition = props.jobDefinition;
      } else {
        this.jobRole = new iam.Role(scope, 'JobRole', {
          assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
          description: 'valence job runner: reads inputs and writes outputs of Batch-executor nodes',
        });
        const jobDefinition = createJobDefinition(scope, {
          projectRoot: settings.projectRoot,
          jobRunner: valenceModule('sdk/runtime/job-runner'),
          workflowsPath: props.workflowsPath,
          environment: toEnvironment(props.deployment),
          jobRole: this.jobRole,
          cpu: props.jobCpu ?? 1,
          memory: props.jobMemory ?? Size.gibibytes(2),
          architecture: props.jobArchitecture ?? ecs.CpuArchitecture.X86_64,
          logRetention: settings.logRetention,
          removalPolicy: settings.removalPolicy,
          assignPublicIp: false,
        });
        acknowledgeWildcardResources(jobDefinition.container.executionRole, ['*'], 'ecr:GetAuthorizationToken (to pull the job image) supports only the * resource');
        this.jobDefinition = jobDefinition;
      }
    }
    const named = settings.enableBatch ? batchTargetsOf(settings.lattices) : { jobQueues: [], jobDefinitions: [] };
    const batchArn = (resource: string, nameOrArn: string): string =>
      nameOrArn.startsWith('arn:') ? nameOrArn : stack.formatArn({ service: 'batch', resource, resourceName: nameOrArn });
    this.jobQueueArns = [...(this.jobQueue ? [this.jobQueue.jobQueueArn] : []), ...named.jobQueues.map((q) => batchArn('job-queue', q))];
    this.jobDefinitionArns = [
      ...(this.jobDefinition ? [jobDefinitionRevisions(this.jobDefinition)] : []),
      ...named.jobDefinitions.map((d) => (d.startsWith('arn:') ? d : batchArn('job-definition', d.includes(':') ? d : `${d}:*`))),
    ];
  }

  /** Allows submitting (and tagging at submission) jobs to the queues with the definitions, when both exist. */
  grantSubmit(role: iam.Role): void {
    if (!this.jobQueue || !this.jobDefinition) return;
    allow(role, {
      actions: ['batch:SubmitJob'],
      resources: [...this.jobQueueArns, ...this.jobDefinitionArns],
      // Every job valence submits carries its stack's tag, which the stop statements require.
      conditions: { StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: Stack.of(role).stackName } },
      wildcardReason: 'The job queues of this stack and of its BatchExecutor nodes, and every revision of their job definitions',
    });
    // SubmitJob with tags is also authorized as TagResource on the new job.
    allow(role, {
      actions: ['batch:TagResource'],
      resources: [this.batchJobs],
      conditions: { StringEquals: { 'batch:CreateAction': 'SubmitJob', [`aws:RequestTag/${STACK_TAG}`]: Stack.of(role).stackName } },
      wildcardReason: 'Tags on jobs at submission only (batch:CreateAction = SubmitJob); job ARNs are minted by Batch',
    });
  }

  /** Allows cancelling and terminating jobs. */
  grantStop(role: iam.Role): void {
    if (!this.jobQueue) return;
    // Batch job resources support aws:ResourceTag (Service Authorization Reference), so only
    // jobs that carry this stack's valence:stack tag can be stopped, whatever handle the table holds.
    allow(role, {
      actions: ['batch:CancelJob', 'batch:TerminateJob'],
      resources: [this.batchJobs],
      conditions: { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: Stack.of(role).stackName } },
      wildcardReason: `Batch job ARNs are minted by Batch at submission; only jobs tagged ${STACK_TAG}=<this stack> (aws:ResourceTag condition)`,
    });
  }

  /** Allows reading jobs' states. */
  grantDescribe(role: iam.Role): void {
    if (!this.jobQueue) return;
    allow(role, { actions: ['batch:DescribeJobs'], resources: ['*'], wildcardReason: 'batch:DescribeJobs supports no resource-level permissions' });
  }
}

/** The ARN pattern that covers every revision of a job definition (SubmitJob may name any). */
function jobDefinitionRevisions(jobDefinition: batch.IJobDefinition): string {
  const stack = Stack.of(jobDefinition);
  return stack.formatArn({ service: 'batch', resource: 'job-definition', resourceName: `${jobDefinition.jobDefinitionName}:*` });
}
