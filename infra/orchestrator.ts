/**
 * The `Orchestrator` construct: everything one valence deployment needs, in one stack.
 *
 * One Standard state machine per lattice of the workflows module (compiled by the SDK
 * compiler) and the graph runner for sublattices; the step, cancel, completion and sweeper
 * handlers; the table and the payload bucket; the IAM-authorized cancel API; the EventBridge
 * rules that bring Batch and Braket state changes back; and, unless the user brings their
 * own, a Fargate job queue whose image runs valence's job runner.
 *
 * Every state machine ARN the handlers use is built from the stack name (never from the
 * state machine objects), because the state machines reference the step handler: a reference
 * back would be a dependency cycle.
 *
 * @module
 */
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Size, Stack, Tags, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { compileGraphRunner, compileLattice } from '../sdk/index.ts';
import { createJobDefinition, createJobVpc } from './private/batch.ts';
import { HandlerFunction } from './private/handler.ts';
import { batchTargetsOf, latticesOf } from './private/lattices.ts';
import { acknowledge, acknowledgeWildcardResources, allow } from './private/nag.ts';
import { VALENCE_ROOT, findProjectRoot, writeHandlerWithWorkflowsEntry, writeStepHandlerEntry, type WorkflowsModule } from './private/workflows.ts';

export { loadWorkflows, type WorkflowsModule } from './private/workflows.ts';

/** Step Functions' limit on state machine names. */
const MAX_STATE_MACHINE_NAME = 80;
/** Step Functions' limit on a definition's size. */
const MAX_DEFINITION_BYTES = 1024 * 1024;
/** Name of the generic state machine that runs sublattices (and so, no lattice may use it). */
export const GRAPH_RUNNER_NAME = 'graph-runner';
/** Item actions on the table and its indexes: no Scan, no table management. */
const TABLE_READ_WRITE = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];
const OBJECT_READ = ['s3:GetObject'];
const OBJECT_WRITE = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];
/** API stage that the cancel endpoint lives in. */
export const API_STAGE = 'prod';
/** Placeholder for the step handler's ARN in compiled definitions, filled by `DefinitionSubstitutions`. */
const STEP_HANDLER_ARN_SUBSTITUTION = 'StepHandlerArn';

/** The stable codes of {@link OrchestratorValidationError}. */
export const OrchestratorValidationCode = {
  /** The workflows module exports no lattice. */
  NO_LATTICES: 'INFRA_NO_LATTICES',
  /** A state machine name would be longer than 80 characters, or has characters Step Functions rejects. */
  INVALID_STATE_MACHINE_NAME: 'INFRA_INVALID_STATE_MACHINE_NAME',
  /** Two different lattices share a name (their state machines would collide). */
  DUPLICATE_LATTICE: 'INFRA_DUPLICATE_LATTICE',
  /** A compiled definition exceeds Step Functions' 1 MiB limit. */
  DEFINITION_TOO_LARGE: 'INFRA_DEFINITION_TOO_LARGE',
  /** A prop is out of range or contradicts another prop. */
  INVALID_PROP: 'INFRA_INVALID_PROP',
} as const;
/** One of {@link OrchestratorValidationCode}. */
export type OrchestratorValidationCode = (typeof OrchestratorValidationCode)[keyof typeof OrchestratorValidationCode];

/** Thrown by the {@link Orchestrator} constructor when props or the workflows module cannot be deployed. */
export class OrchestratorValidationError extends Error {
  override readonly name = 'OrchestratorValidationError';
  constructor(
    /** Stable identity of the problem. */
    readonly code: OrchestratorValidationCode,
    message: string,
    /** Path of the construct that rejected its props. */
    readonly constructPath: string,
  ) {
    super(`${constructPath}: ${message}`);
  }
}

/** Props of {@link Orchestrator}. */
export interface OrchestratorProps {
  /**
   * The workflows module: each exported lattice becomes a state machine, and the step handler
   * (which runs Lambda-executor electrons inline) bundles the module. Load it with
   * {@link loadWorkflows}.
   */
  readonly workflows: WorkflowsModule;

  /**
   * The project whose lockfile the handlers are bundled against and whose files form the job
   * image's build context.
   * @default the nearest folder at or above the workflows module that holds a package.json
   */
  readonly projectRoot?: string;

  /**
   * What happens to the table, the buckets and the log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Empty the buckets on stack deletion (adds a custom resource). Needs
   * `removalPolicy: RemovalPolicy.DESTROY`.
   * @default false
   */
  readonly autoDeleteObjects?: boolean;

  /**
   * Days after which a dispatch's payloads, graphs and results (`dispatches/` in the bucket) expire.
   * @default 30
   */
  readonly payloadRetentionDays?: number;

  /**
   * How often the sweeper looks for nodes whose cancel was requested but whose job still runs.
   * Whole minutes, at least one.
   * @default Duration.minutes(1)
   */
  readonly sweepInterval?: Duration;

  /**
   * Retention of every log group the construct creates.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Memory of the step handler, which runs Lambda-executor electrons inline.
   * @default 1024
   */
  readonly stepHandlerMemorySize?: number;

  /**
   * Time limit of the step handler, and so of one Lambda-executor electron.
   * @default Duration.minutes(15)
   */
  readonly stepHandlerTimeout?: Duration;

  /**
   * Create the Batch resources (and grant the handlers Batch permissions). Turn off to deploy
   * without a VPC when no electron uses `BatchExecutor`.
   * @default true
   */
  readonly enableBatch?: boolean;

  /**
   * The job queue `BatchExecutor` submits to.
   * @default a queue on a new Fargate compute environment
   */
  readonly jobQueue?: batch.IJobQueue;

  /**
   * The job definition `BatchExecutor` submits; its command must run valence's job runner.
   * @default a Fargate job definition whose image is built from valence's Dockerfile
   */
  readonly jobDefinition?: batch.IJobDefinition;

  /**
   * The VPC of the Fargate compute environment (its private subnets with egress are used).
   * Ignored when `jobQueue` is given.
   * @default a new VPC with two AZs, private subnets and one NAT gateway
   */
  readonly vpc?: ec2.IVpc;

  /**
   * CPU architecture of the job image and the Fargate tasks. The image is built at deploy
   * time on the deploying machine; X86_64 builds natively on most of them.
   * @default ecs.CpuArchitecture.X86_64
   */
  readonly jobArchitecture?: ecs.CpuArchitecture;

  /**
   * vCPUs of one Fargate job (0.25, 0.5, 1, 2, 4, 8 or 16).
   * @default 1
   */
  readonly jobCpu?: number;

  /**
   * Memory of one Fargate job.
   * @default Size.gibibytes(2)
   */
  readonly jobMemory?: Size;

  /**
   * Upper bound of the Fargate compute environment.
   * @default 256
   */
  readonly maxvCpus?: number;

  /**
   * Set the account-wide role API Gateway uses to write access and execution logs. Turn off
   * when the account already has one (the setting is one per account and region).
   * @default true
   */
  readonly apiCloudWatchRole?: boolean;
}

/**
 * Everything one valence deployment needs: state machines, handlers, storage, the cancel API,
 * event rules and Batch.
 *
 * @example
 * const workflows = await loadWorkflows('./my-workflows.ts');
 * const orchestrator = new Orchestrator(stack, 'Orchestrator', { workflows });
 * orchestrator.grantDispatch(myRole);
 * orchestrator.grantCancel(myRole);
 */
export class Orchestrator extends Construct {
  /** Dispatch, node and cancel-request items. */
  readonly table: dynamodb.Table;
  /** Payloads, graphs and results under `dispatches/`. */
  readonly bucket: s3.Bucket;
  /** Server access logs of {@link bucket}. */
  readonly accessLogBucket: s3.Bucket;
  /** The cancel and status API (stage `prod`). */
  readonly api: apigw.RestApi;
  /** Runs every node (invoked by every state machine). */
  readonly stepHandler: lambda.IFunction;
  /** Serves `POST /dispatches/{id}/cancel` and `GET /dispatches/{id}`. */
  readonly cancelHandler: lambda.IFunction;
  /** Releases task tokens on Batch and Braket state changes. */
  readonly completionHandler: lambda.IFunction;
  /** Re-cancels jobs whose cancel was requested but which still run. */
  readonly sweeper: lambda.IFunction;
  /** One state machine per lattice, by lattice name. */
  readonly stateMachines: Readonly<Record<string, sfn.StateMachine>>;
  /** The generic state machine that runs sublattices. */
  readonly graphRunner: sfn.StateMachine;
  /** `arn:aws:states:{region}:{account}:stateMachine:{stackName}-`: a lattice's ARN is this plus its name. */
  readonly stateMachineArnPrefix: string;
  /** The Batch queue `BatchExecutor` submits to, if Batch is enabled. */
  readonly jobQueue?: batch.IJobQueue;
  /** The job definition that runs valence's job runner, if Batch is enabled. */
  readonly jobDefinition?: batch.IJobDefinition;
  /** The VPC the construct created for Fargate jobs, if it created one. */
  readonly vpc?: ec2.IVpc;

  private readonly stackName: string;

  constructor(scope: Construct, id: string, props: OrchestratorProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.stackName = stack.stackName;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const enableBatch = props.enableBatch ?? true;
    const payloadRetentionDays = props.payloadRetentionDays ?? 30;
    const sweepInterval = props.sweepInterval ?? Duration.minutes(1);
    const projectRoot = props.projectRoot ?? findProjectRoot(join(props.workflows.path, '..'));

    // ---- validation: fail at synth, naming what is wrong, never at deploy
    const invalid = (code: OrchestratorValidationCode, message: string): never => {
      throw new OrchestratorValidationError(code, message, this.node.path);
    };
    if (!Number.isInteger(payloadRetentionDays) || payloadRetentionDays < 1) {
      invalid(OrchestratorValidationCode.INVALID_PROP, `payloadRetentionDays must be a whole number of days ≥ 1, got ${payloadRetentionDays}`);
    }
    if (!sweepInterval.isUnresolved() && (sweepInterval.toSeconds() < 60 || sweepInterval.toSeconds() % 60 !== 0)) {
      invalid(OrchestratorValidationCode.INVALID_PROP, `sweepInterval must be a whole number of minutes ≥ 1 (EventBridge's schedule resolution), got ${sweepInterval.toHumanString()}`);
    }
    if (props.autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
      invalid(OrchestratorValidationCode.INVALID_PROP, 'autoDeleteObjects needs removalPolicy: RemovalPolicy.DESTROY (a retained bucket is never emptied)');
    }
    if (!enableBatch && (props.jobQueue || props.jobDefinition || props.vpc)) {
      invalid(OrchestratorValidationCode.INVALID_PROP, 'jobQueue, jobDefinition and vpc configure Batch; they cannot be given with enableBatch: false');
    }
    const lattices = latticesOf(props.workflows.exports);
    if (lattices.length === 0) {
      invalid(OrchestratorValidationCode.NO_LATTICES, `the workflows module ${props.workflows.path} exports no lattice; export each lattice to deploy it`);
    }
    const stateMachineName = (name: string, what: string): string => {
      const full = `${this.stackName}-${name}`;
      if (!/^[A-Za-z0-9_-]+$/.test(name)) {
        invalid(OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME, `${what} has characters Step Functions rejects in state machine names (allowed: A-Z a-z 0-9 _ -)`);
      }
      if (!Token.isUnresolved(this.stackName) && full.length > MAX_STATE_MACHINE_NAME) {
        invalid(
          OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME,
          `${what} makes the state machine name "${full}" ${full.length} characters long; Step Functions allows ${MAX_STATE_MACHINE_NAME}. Shorten the lattice name or the stack name.`,
        );
      }
      return full;
    };
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
      stateMachineName(lattice.name, `lattice "${lattice.name}" (export ${lattice.exportName})`);
    }

    // ---- names and ARN patterns, built from strings so nothing references a state machine
    this.stateMachineArnPrefix = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: `${this.stackName}-`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const stateMachinesPattern = `${this.stateMachineArnPrefix}*`;
    const executionsPattern = stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stackName}-*:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const graphRunnerArn = `${this.stateMachineArnPrefix}${GRAPH_RUNNER_NAME}`;

    // ---- storage
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'byJobHandle',
      partitionKey: { name: 'jobHandle', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'byList',
      partitionKey: { name: 'listKey', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'listSort', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const autoDeleteObjects = props.autoDeleteObjects ?? false;
    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Server access log delivery supports SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(Math.max(90, payloadRetentionDays)) }],
      removalPolicy,
      autoDeleteObjects,
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'payload-bucket/',
      lifecycleRules: [
        { id: 'expire-dispatches', prefix: 'dispatches/', expiration: Duration.days(payloadRetentionDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
      autoDeleteObjects,
    });

    // ---- Batch (before the handlers: their environment names the queue and definition)
    let jobRole: iam.Role | undefined;
    if (enableBatch) {
      if (props.jobQueue) {
        this.jobQueue = props.jobQueue;
      } else {
        const vpc = props.vpc ?? createJobVpc(this, { logRetention, removalPolicy });
        if (!props.vpc) this.vpc = vpc;
        const computeEnvironment = new batch.FargateComputeEnvironment(this, 'ComputeEnvironment', {
          vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          maxvCpus: props.maxvCpus ?? 256,
        });
        this.jobQueue = new batch.JobQueue(this, 'JobQueue', { computeEnvironments: [{ computeEnvironment, order: 1 }] });
      }
      if (props.jobDefinition) {
        this.jobDefinition = props.jobDefinition;
      } else {
        jobRole = new iam.Role(this, 'JobRole', {
          assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
          description: 'valence job runner: reads inputs and writes outputs of Batch-executor nodes',
        });
        this.jobDefinition = createJobDefinition(this, {
          projectRoot,
          dockerfile: join(VALENCE_ROOT, 'Dockerfile'),
          jobRunner: join(VALENCE_ROOT, 'sdk', 'runtime', 'job-runner.ts'),
          workflowsPath: props.workflows.path,
          environment: {
            VALENCE_TABLE: this.table.tableName,
            VALENCE_BUCKET: this.bucket.bucketName,
            VALENCE_STACK: this.stackName,
            VALENCE_STATE_MACHINE_PREFIX: this.stateMachineArnPrefix,
            VALENCE_GRAPH_RUNNER_ARN: graphRunnerArn,
          },
          jobRole,
          cpu: props.jobCpu ?? 1,
          memory: props.jobMemory ?? Size.gibibytes(2),
          architecture: props.jobArchitecture ?? ecs.CpuArchitecture.X86_64,
          logRetention,
          removalPolicy,
          assignPublicIp: false,
        });
        const executionRole = (this.jobDefinition as batch.EcsJobDefinition).container.executionRole;
        acknowledgeWildcardResources(executionRole, ['*'], 'ecr:GetAuthorizationToken (to pull the job image) supports only the * resource');
      }
    }

    // Queues and definitions that BatchExecutor nodes name themselves, besides this stack's own.
    const named = enableBatch ? batchTargetsOf(lattices) : { jobQueues: [], jobDefinitions: [] };
    const batchArn = (resource: string, nameOrArn: string): string =>
      nameOrArn.startsWith('arn:') ? nameOrArn : stack.formatArn({ service: 'batch', resource, resourceName: nameOrArn });
    const jobQueueArns = [...(this.jobQueue ? [this.jobQueue.jobQueueArn] : []), ...named.jobQueues.map((q) => batchArn('job-queue', q))];
    const jobDefinitionArns = [
      ...(this.jobDefinition ? [jobDefinitionRevisions(this.jobDefinition)] : []),
      ...named.jobDefinitions.map((d) => (d.startsWith('arn:') ? d : batchArn('job-definition', d.includes(':') ? d : `${d}:*`))),
    ];

    // The role Braket hybrid jobs run as: payload objects of this stack, nothing else.
    const braketJobRole = new iam.Role(this, 'BraketJobRole', {
      assumedBy: new iam.ServicePrincipal('braket.amazonaws.com'),
      description: 'valence: the role Braket hybrid jobs of this stack assume',
    });

    // ---- handlers
    const environment: Record<string, string> = {
      VALENCE_BRAKET_JOB_ROLE_ARN: braketJobRole.roleArn,
      VALENCE_TABLE: this.table.tableName,
      VALENCE_BUCKET: this.bucket.bucketName,
      VALENCE_STACK: this.stackName,
      VALENCE_GRAPH_RUNNER_ARN: graphRunnerArn,
      VALENCE_STATE_MACHINE_PREFIX: this.stateMachineArnPrefix,
      ...(this.jobQueue ? { VALENCE_JOB_QUEUE: this.jobQueue.jobQueueArn } : {}),
      ...(this.jobDefinition ? { VALENCE_JOB_DEFINITION: this.jobDefinition.jobDefinitionArn } : {}),
    };
    const handler = (name: string, entry: string, description: string, timeout: Duration, memorySize = 512): HandlerFunction =>
      new HandlerFunction(this, name, { entry, projectRoot, description, environment, timeout, memorySize, logRetention, removalPolicy });
    const stepEntry = writeStepHandlerEntry({
      projectRoot,
      workflowsPath: props.workflows.path,
      stepModulePath: join(VALENCE_ROOT, 'lambdas', 'step-handler.ts'),
    });
    const step = handler(
      'StepHandler',
      stepEntry,
      'valence step handler: runs, submits and awaits the nodes of every lattice',
      props.stepHandlerTimeout ?? Duration.minutes(15),
      props.stepHandlerMemorySize ?? 1024,
    );
    const withWorkflows = (name: string): string =>
      writeHandlerWithWorkflowsEntry({ projectRoot, workflowsPath: props.workflows.path, handlerModulePath: join(VALENCE_ROOT, 'lambdas', `${name}.ts`), name });
    const cancel = handler('CancelHandler', withWorkflows('cancel'), 'valence cancel handler: cancels dispatches and nodes, serves status', Duration.seconds(60));
    const completion = handler('CompletionHandler', join(VALENCE_ROOT, 'lambdas', 'completion.ts'), 'valence completion handler: releases task tokens on Batch and Braket state changes', Duration.seconds(60));
    const sweeperTimeout = Duration.seconds(Math.min(sweepInterval.isUnresolved() ? 60 : sweepInterval.toSeconds(), 300));
    const sweeper = handler('Sweeper', withWorkflows('sweeper'), 'valence sweeper: cancels again what a lost event or failed call left running', sweeperTimeout);
    this.stepHandler = step.function;
    this.cancelHandler = cancel.function;
    this.completionHandler = completion.function;
    this.sweeper = sweeper.function;

    // ---- permissions, each handler on its own role, every action named
    const tableResources = [this.table.tableArn, `${this.table.tableArn}/index/byJobHandle`, `${this.table.tableArn}/index/byList`];
    const payloadObjects = this.bucket.arnForObjects('dispatches/*');
    const stateMachines = { resources: [stateMachinesPattern], wildcardReason: `This stack's state machines only: their names all start with "${this.stackName}-"` };
    const executions = { resources: [executionsPattern], wildcardReason: `Executions of this stack's state machines only (execution names are dispatch ids, unknown at deploy time)` };
    const payloads = { wildcardReason: 'Payload objects of dispatches only (keys under dispatches/, named by dispatch ids unknown at deploy time)' };
    const braketTasks = stack.formatArn({ service: 'braket', resource: 'quantum-task', resourceName: '*' });
    const braketJobs = stack.formatArn({ service: 'braket', resource: 'job', resourceName: '*' });
    const batchJobs = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    const braketTaskReason = { resources: [braketTasks], wildcardReason: 'Quantum task ARNs are minted by Braket at submission; tasks of this account and region' };
    const dataAccess = (role: iam.Role, objects: 'read' | 'read-write'): void => {
      allow(role, { actions: TABLE_READ_WRITE, resources: tableResources });
      allow(role, { actions: objects === 'read' ? OBJECT_READ : [...OBJECT_READ, ...OBJECT_WRITE], resources: [payloadObjects], ...payloads });
      // Without ListBucket a missing payload reads as AccessDenied instead of NoSuchKey.
      allow(role, { actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': ['dispatches/*'] } } });
    };
    const batchRoles = (role: iam.Role, actions: string[]): void => {
      if (!this.jobQueue) return;
      allow(role, { actions, resources: [batchJobs], wildcardReason: 'Batch job ARNs are minted by Batch at submission; jobs of this account and region' });
    };
    const describeJobs = (role: iam.Role): void => {
      if (!this.jobQueue) return;
      allow(role, { actions: ['batch:DescribeJobs'], resources: ['*'], wildcardReason: 'batch:DescribeJobs supports no resource-level permissions' });
    };

    // Step handler: runs nodes, submits and stops jobs, starts child dispatches, releases waits.
    dataAccess(step.role, 'read-write');
    allow(step.role, { actions: ['states:StartExecution', 'states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], ...stateMachines });
    allow(step.role, { actions: ['states:StopExecution'], ...executions });
    if (this.jobQueue && this.jobDefinition) {
      allow(step.role, {
        actions: ['batch:SubmitJob'],
        resources: [...jobQueueArns, ...jobDefinitionArns],
        wildcardReason: 'The job queues of this stack and of its BatchExecutor nodes, and every revision of their job definitions',
      });
      // SubmitJob with tags is also authorized as TagResource on the new job.
      allow(step.role, {
        actions: ['batch:TagResource'],
        resources: [batchJobs],
        conditions: { StringEquals: { 'batch:CreateAction': 'SubmitJob' } },
        wildcardReason: 'Tags on jobs at submission only (batch:CreateAction = SubmitJob); job ARNs are minted by Batch',
      });
    }
    batchRoles(step.role, ['batch:CancelJob', 'batch:TerminateJob']);
    describeJobs(step.role);
    allow(step.role, {
      actions: ['braket:CreateQuantumTask'],
      resources: [stack.formatArn({ service: 'braket', resource: 'device', resourceName: '*', region: '*', account: '' }), braketTasks],
      wildcardReason: 'Electrons name their Braket device (QPUs are regional, simulators are not); the task ARN is minted at creation',
    });
    allow(step.role, { actions: ['braket:GetQuantumTask', 'braket:CancelQuantumTask'], ...braketTaskReason });
    // Hybrid jobs: created and (when cancelled mid-submit) stopped by the step handler, as the job role.
    allow(step.role, {
      actions: ['braket:CreateJob'],
      resources: [stack.formatArn({ service: 'braket', resource: 'device', resourceName: '*', region: '*', account: '' }), braketJobs],
      wildcardReason: 'Electrons name their Braket device; the hybrid job ARN is minted at creation',
    });
    allow(step.role, { actions: ['braket:CancelJob'], resources: [braketJobs], wildcardReason: 'Hybrid job ARNs are minted by Braket; jobs of this account and region' });
    allow(step.role, { actions: ['iam:PassRole'], resources: [braketJobRole.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'braket.amazonaws.com' } } });
    allow(braketJobRole, { actions: [...OBJECT_READ, ...OBJECT_WRITE], resources: [payloadObjects], ...payloads });

    // Cancel handler: flags nodes, stops executions and jobs, releases waits of cancelled nodes' dependents.
    allow(cancel.role, { actions: TABLE_READ_WRITE, resources: tableResources });
    allow(cancel.role, { actions: ['states:StopExecution'], ...executions });
    allow(cancel.role, { actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], ...stateMachines });
    batchRoles(cancel.role, ['batch:CancelJob', 'batch:TerminateJob']);
    describeJobs(cancel.role);
    allow(cancel.role, { actions: ['braket:CancelQuantumTask'], ...braketTaskReason });
    allow(cancel.role, { actions: ['braket:CancelJob'], resources: [braketJobs], wildcardReason: 'Hybrid job ARNs are minted by Braket; jobs of this account and region' });

    // Completion handler: records how a job ended (outputs included) and releases the node's task token.
    const braketJobsReason = { resources: [braketJobs], wildcardReason: 'Hybrid job ARNs are minted by Braket; jobs of this account and region' };
    dataAccess(completion.role, 'read-write');
    allow(completion.role, { actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], ...stateMachines });
    describeJobs(completion.role);
    allow(completion.role, { actions: ['braket:GetQuantumTask'], ...braketTaskReason });
    allow(completion.role, { actions: ['braket:GetJob'], ...braketJobsReason });

    // Sweeper: the cancel handler's powers, plus finishing what a lost event left waiting
    // (reading jobs, writing outputs, releasing and heartbeating waits).
    dataAccess(sweeper.role, 'read-write');
    allow(sweeper.role, { actions: ['states:StopExecution'], ...executions });
    allow(sweeper.role, { actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], ...stateMachines });
    batchRoles(sweeper.role, ['batch:CancelJob', 'batch:TerminateJob']);
    describeJobs(sweeper.role);
    allow(sweeper.role, { actions: ['braket:GetQuantumTask', 'braket:CancelQuantumTask'], ...braketTaskReason });
    allow(sweeper.role, { actions: ['braket:GetJob', 'braket:CancelJob'], ...braketJobsReason });

    if (jobRole) dataAccess(jobRole, 'read-write');

    // ---- state machines
    const stateMachineLogs = new logs.LogGroup(this, 'StateMachineLogs', {
      // The vended-logs prefix keeps Step Functions' log delivery inside the log resource policy's size limit.
      logGroupName: `/aws/vendedlogs/states/${this.stackName}`,
      retention: logRetention,
      removalPolicy,
    });
    const stateMachineRole = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'valence state machines: invoke the step handler',
    });
    allow(stateMachineRole, { actions: ['lambda:InvokeFunction'], resources: [this.stepHandler.functionArn] });
    // Step Functions' log delivery and X-Ray calls: CDK adds them, and neither supports resource-level permissions.
    acknowledgeWildcardResources(stateMachineRole, ['*'], 'CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, resource policies) and X-Ray actions support only the * resource');
    const stepHandlerArn = `\${${STEP_HANDLER_ARN_SUBSTITUTION}}`;
    const stateMachine = (constructId: string, name: string, definition: unknown, what: string): sfn.StateMachine => {
      const body = JSON.stringify(definition);
      if (Buffer.byteLength(body) > MAX_DEFINITION_BYTES) {
        invalid(
          OrchestratorValidationCode.DEFINITION_TOO_LARGE,
          `${what} compiles to a ${Buffer.byteLength(body)}-byte definition; Step Functions allows ${MAX_DEFINITION_BYTES}. Split it with sublattices.`,
        );
      }
      return new sfn.StateMachine(this, constructId, {
        stateMachineName: name,
        stateMachineType: sfn.StateMachineType.STANDARD,
        definitionBody: sfn.DefinitionBody.fromString(body),
        definitionSubstitutions: { [STEP_HANDLER_ARN_SUBSTITUTION]: this.stepHandler.functionArn },
        role: stateMachineRole,
        logs: { destination: stateMachineLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
        tracingEnabled: true,
        removalPolicy,
      });
    };
    const machines: Record<string, sfn.StateMachine> = {};
    for (const lattice of lattices) {
      const { definition, graphHash } = compileLattice(lattice.lattice, { stepHandlerArn });
      // The graph hash is also in the definition's Comment; the tag makes stale deploys visible in the console.
      const machine = stateMachine(`Lattice-${lattice.name}`, stateMachineName(lattice.name, `lattice "${lattice.name}"`), definition, `lattice "${lattice.name}"`);
      Tags.of(machine).add('valence:lattice', lattice.name);
      Tags.of(machine).add('valence:graph-hash', graphHash);
      machines[lattice.name] = machine;
    }
    this.stateMachines = machines;
    this.graphRunner = stateMachine('GraphRunner', stateMachineName(GRAPH_RUNNER_NAME, 'the graph runner'), compileGraphRunner({ stepHandlerArn }).definition, 'the graph runner');

    // ---- cancel and status API
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    this.api = new apigw.RestApi(this, 'Api', {
      restApiName: `${this.stackName}-api`,
      description: 'valence: cancel dispatches and read their status',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      cloudWatchRole: props.apiCloudWatchRole ?? true,
      cloudWatchRoleRemovalPolicy: removalPolicy,
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
      deployOptions: {
        stageName: API_STAGE,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        tracingEnabled: true,
      },
    });
    // RestApi adds an `Endpoint` output of its own; ApiUrl below is the one connect() reads.
    this.api.node.tryRemoveChild('Endpoint');
    const cancelModel = this.api.addModel('CancelRequest', {
      contentType: 'application/json',
      modelName: 'CancelRequest',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: 'CancelRequest',
        type: apigw.JsonSchemaType.OBJECT,
        additionalProperties: false,
        properties: {
          taskIds: {
            type: apigw.JsonSchemaType.ARRAY,
            // A node id, or a path into sublattices such as "5/2".
            items: {
              oneOf: [
                { type: apigw.JsonSchemaType.INTEGER, minimum: 0 },
                { type: apigw.JsonSchemaType.STRING, pattern: '^[0-9]+(/[0-9]+)*$' },
              ],
            },
          },
          reason: { type: apigw.JsonSchemaType.STRING, maxLength: 1024 },
        },
      },
    });
    const bodyValidator = this.api.addRequestValidator('CancelRequestValidator', { validateRequestBody: true, validateRequestParameters: true });
    const parameterValidator = this.api.addRequestValidator('StatusRequestValidator', { validateRequestBody: false, validateRequestParameters: true });
    const integration = new apigw.LambdaIntegration(this.cancelHandler);
    const dispatchResource = this.api.root.addResource('dispatches').addResource('{id}');
    dispatchResource.addMethod('GET', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: parameterValidator,
      requestParameters: { 'method.request.path.id': true },
    });
    dispatchResource.addResource('cancel').addMethod('POST', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: bodyValidator,
      requestModels: { 'application/json': cancelModel },
      requestParameters: { 'method.request.path.id': true },
    });

    acknowledge(this.api.deploymentStage, 'APIG3', 'Every method requires SigV4-signed IAM credentials; a WAF in front would add cost without closing an open door');
    for (const method of this.api.methods) {
      acknowledge(method, 'COG4', 'Callers are AWS principals (the SDK and CLI sign with SigV4): AWS_IAM authorization, not a Cognito user pool');
    }
    const apiLogsRole = this.api.node.tryFindChild('CloudWatchRole');
    if (apiLogsRole) {
      acknowledge(apiLogsRole, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]', "The account-level role API Gateway needs to write access logs; AWS's managed policy is the documented one");
    }

    // ---- events
    if (this.jobQueue) {
      new events.Rule(this, 'BatchJobStateChange', {
        description: "valence: state changes of jobs in this stack's Batch queues, to the completion handler",
        eventPattern: { source: ['aws.batch'], detailType: ['Batch Job State Change'], detail: { jobQueue: jobQueueArns } },
        targets: [new targets.LambdaFunction(this.completionHandler, { retryAttempts: 8, maxEventAge: Duration.hours(6) })],
      });
    }
    new events.Rule(this, 'BraketStateChange', {
      description: 'valence: Braket quantum task and hybrid job state changes, to the completion handler',
      eventPattern: { source: ['aws.braket'], detailType: ['Braket Task State Change', 'Braket Job State Change'] },
      targets: [new targets.LambdaFunction(this.completionHandler, { retryAttempts: 8, maxEventAge: Duration.hours(6) })],
    });
    new events.Rule(this, 'SweepSchedule', {
      description: 'valence: periodic sweep for cancelled nodes whose jobs still run',
      schedule: events.Schedule.rate(sweepInterval),
      targets: [new targets.LambdaFunction(this.sweeper, { retryAttempts: 0 })],
    });

    // ---- outputs that connect({ stackName }) reads through DescribeStacks
    const output = (key: string, value: string, description: string): void => {
      new CfnOutput(this, key, { value, description }).overrideLogicalId(key);
    };
    output('ApiUrl', this.api.url, 'Base URL of the cancel and status API (stage prod)');
    output('TableName', this.table.tableName, 'DynamoDB table of dispatches and nodes');
    output('BucketName', this.bucket.bucketName, 'S3 bucket of payloads and results');
    output('StateMachineArnPrefix', this.stateMachineArnPrefix, "A lattice's state machine ARN is this prefix plus the lattice name");
    output('GraphRunnerArn', graphRunnerArn, 'State machine that runs sublattices');
    if (this.jobQueue) output('JobQueueArn', this.jobQueue.jobQueueArn, 'Batch job queue of BatchExecutor nodes');

  }

  /**
   * Lets `grantee` dispatch runs and read their results: read/write the table and the
   * payloads, start and describe this stack's state machines and executions, and read the
   * stack's outputs (what `connect({ stackName })` does).
   */
  grantDispatch(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    const statement = (actions: string[], resourceArns: string[]): iam.Grant => iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
    return statement(TABLE_READ_WRITE, [this.table.tableArn, `${this.table.tableArn}/index/byJobHandle`, `${this.table.tableArn}/index/byList`])
      .combine(statement([...OBJECT_READ, ...OBJECT_WRITE], [this.bucket.arnForObjects('dispatches/*')]))
      .combine(statement(['s3:ListBucket'], [this.bucket.bucketArn]))
      .combine(statement(['states:StartExecution', 'states:DescribeStateMachine'], [`${this.stateMachineArnPrefix}*`]))
      .combine(
        statement(['states:DescribeExecution'], [stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${this.stackName}-*:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })]),
      )
      .combine(statement(['cloudformation:DescribeStacks'], [stack.formatArn({ service: 'cloudformation', resource: 'stack', resourceName: `${this.stackName}/*` })]));
  }

  /** Lets `grantee` call `POST /dispatches/{id}/cancel` (IAM-signed). */
  grantCancel(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns: [this.api.arnForExecuteApi('POST', '/dispatches/*/cancel', API_STAGE)] });
  }

  /** Lets `grantee` call `GET /dispatches/{id}` (IAM-signed): a dispatch's status as the cancel handler sees it. */
  grantReadStatus(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns: [this.api.arnForExecuteApi('GET', '/dispatches/*', API_STAGE)] });
  }
}

/** The ARN pattern that covers every revision of a job definition (SubmitJob may name any). */
function jobDefinitionRevisions(jobDefinition: batch.IJobDefinition): string {
  const stack = Stack.of(jobDefinition);
  return stack.formatArn({ service: 'batch', resource: 'job-definition', resourceName: `${jobDefinition.jobDefinitionName}:*` });
}
