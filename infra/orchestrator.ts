/**
 * The `Orchestrator` construct: everything one valence deployment needs, in one stack.
 *
 * One Standard state machine per lattice of the workflows module (compiled by the SDK
 * compiler) and the graph runner for sublattices; the step, cancel, completion and sweeper
 * handlers; the table and the payload bucket; the IAM-authorized cancel API; the EventBridge
 * rules that bring Batch and Braket state changes back; and, unless the user brings their
 * own, a Fargate job queue whose image runs valence's job runner.
 *
 * Each of these is one part under `private/` (settings, ARNs, storage, jobs, handlers,
 * permissions, state machines, API, events) that builds its resources and grants its own
 * permissions. The parts build into this construct's scope, so every resource keeps the
 * logical id it had when the constructor did everything itself, and a deployed stack is
 * updated in place. The names the parts share with the runtime and the local deploy come
 * from the deployment contract (`sdk/contract.ts`).
 *
 * @module
 */
import { CfnOutput, type Duration, type RemovalPolicy, type Size, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as batch from 'aws-cdk-lib/aws-batch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { API, OUTPUT } from '../sdk/contract.ts';
import { CancelApi } from './private/api.ts';
import { StackArns } from './private/arns.ts';
import { addEventRules } from './private/events.ts';
import { Handlers } from './private/handlers.ts';
import { Jobs } from './private/jobs.ts';
import { Monitoring, type MonitoringProps } from './private/monitoring.ts';
import { grantHandlerPermissions } from './private/permissions.ts';
import { DEFAULT_API_THROTTLING as SETTINGS_DEFAULT_API_THROTTLING, resolveSettings } from './private/settings.ts';
import { StateMachines } from './private/state-machines.ts';
import { Storage } from './private/storage.ts';
import { loadWorkflowsSync, type WorkflowsModule } from './private/workflows.ts';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';

export { loadWorkflows, loadWorkflowsSync, type WorkflowsModule } from './private/workflows.ts';
export { OrchestratorValidationCode, OrchestratorValidationError } from './private/errors.ts';
/** Name of the generic state machine that runs sublattices (and so, no lattice may use it). */
export { GRAPH_RUNNER_NAME } from '../sdk/contract.ts';
export { Monitoring, VALENCE_NAMESPACE, ValenceMetric, type AlarmThreshold, type MonitoringProps } from './private/monitoring.ts';
/** API stage that the cancel endpoint lives in. */
export const API_STAGE = API.stage;

/** Props of {@link Orchestrator}. */
export interface OrchestratorProps {
  /**
   * The workflows module: each exported lattice becomes a state machine, and the step handler
   * (which runs Lambda-executor electrons inline) and the Batch job image bundle the module.
   *
   * Its path (`'src/workflows.ts'`, resolved against the app's working directory, where
   * `cdk synth` runs the app) is loaded synchronously, so building the props needs no
   * top-level await. A module with top-level await of its own can be loaded first with
   * {@link loadWorkflows} and passed as the result.
   */
  readonly workflows: string | WorkflowsModule;

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
   * @default a Fargate job definition whose image holds the job runner bundled with the workflows module
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

  /**
   * Throttling of every method of the API's stage (API Gateway's token bucket: a steady rate
   * in requests per second and a burst). Requests past it are answered 429 before the handler
   * runs, so a runaway client cannot run up the cancel handler's bill or starve other callers.
   * The account's own limit (10,000 requests per second) still applies above it.
   * @default {@link DEFAULT_API_THROTTLING}: 100 requests per second, bursts of 200
   */
  readonly apiThrottling?: ApiThrottling;

  /**
   * When a lattice is split into partitions, each a child execution of a Distributed Map (the
   * compiler's `partition` option): above `above` nodes, in chunks of `chunkSize` consecutive
   * node ids; `false` never splits (a lattice past Step Functions' limits then fails to
   * synthesize). Also how the graph runner splits large child and argument-shaped graphs. The
   * local cloud's `deployWorkflows` takes the same option. Lower it to exercise split lattices
   * on small test graphs.
   * @default the compiler's: above 1,500 nodes, or whenever a lattice exceeds a limit unsplit
   */
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
  /**
   * The CloudWatch dashboard and alarms (unfinished cancels, sweeper re-cancels, failed
   * dispatches, step handler errors and throttles), each with a default threshold; pass
   * thresholds, `alarmActions` or `dashboardName` here, `false` for an alarm to drop it, or
   * `false` for no monitoring at all.
   * @default every alarm with its default threshold, and a dashboard
   */
  readonly monitoring?: OrchestratorMonitoringProps | false;
}

/** Method throttling of the API's stage; see {@link OrchestratorProps.apiThrottling}. */
export interface ApiThrottling {
  /** Steady-state requests per second, for all methods together on one stage (above 0). */
  readonly rateLimit: number;
  /** Requests that may arrive at once above the steady rate (a whole number, at least 1). */
  readonly burstLimit: number;
}

/**
 * The API's default throttling: far above what the SDK, the CLI and the dashboard send (one
 * cancel, a poll a second per open cancel or dashboard), far below the account's limit that
 * every API of the account shares.
 */
export const DEFAULT_API_THROTTLING: ApiThrottling = SETTINGS_DEFAULT_API_THROTTLING;

/** What of {@link MonitoringProps} the Orchestrator leaves to the user: it supplies the handlers and state machines itself. */
export type OrchestratorMonitoringProps = Omit<MonitoringProps, 'stepHandler' | 'otherHandlers' | 'stateMachines'>;

/**
 * Everything one valence deployment needs: state machines, handlers, storage, the cancel API,
 * event rules and Batch.
 *
 * @example
 * const orchestrator = new Orchestrator(stack, 'Valence', { workflows: 'src/workflows.ts' });
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
  /** `arn:aws:states:{region}:{account}:stateMachine:{stackName}_`: a lattice's ARN is this plus its name. */
  readonly stateMachineArnPrefix: string;
  /** The Batch queue `BatchExecutor` submits to, if Batch is enabled. */
  readonly jobQueue?: batch.IJobQueue;
  /** The job definition that runs valence's job runner, if Batch is enabled. */
  readonly jobDefinition?: batch.IJobDefinition;
  /** The VPC the construct created for Fargate jobs, if it created one. */
  readonly vpc?: ec2.IVpc;

  /** The dashboard and alarms, unless `monitoring: false`. */
  readonly monitoring?: Monitoring;
  private readonly arns: StackArns;
  private readonly storage: Storage;

  constructor(scope: Construct, id: string, props: OrchestratorProps) {
    super(scope, id);
    // Server access logs are delivered under a bucket policy (what AWS recommends, and what
    // BUCKET_OWNER_ENFORCED requires), whatever feature flags the app's cdk.json sets: without
    // this, an app made by `cdk init` gets a log-delivery ACL and fails synth.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);
    const stack = Stack.of(this);
    const workflows = typeof props.workflows === 'string' ? loadWorkflowsSync(props.workflows) : props.workflows;
    // Validation first: fail at synth, naming what is wrong, never at deploy.
    const settings = resolveSettings({ ...props, workflows }, stack.stackName, this.node.path);
    this.arns = new StackArns(stack);
    this.stateMachineArnPrefix = this.arns.stateMachineArnPrefix;

    const storage = new Storage(this, settings);
    this.storage = storage;
    this.table = storage.table;
    this.bucket = storage.bucket;
    this.accessLogBucket = storage.accessLogBucket;

    const deployment = {
      table: this.table.tableName,
      bucket: this.bucket.bucketName,
      stackName: settings.stackName,
      stateMachinePrefix: this.stateMachineArnPrefix,
      graphRunnerArn: this.arns.graphRunnerArn,
    };
    // Batch before the handlers: their environment names the queue and definition.
    const jobs = new Jobs(this, { ...batchProps(props), settings, workflowsPath: workflows.path, deployment });
    if (jobs.jobQueue) this.jobQueue = jobs.jobQueue;
    if (jobs.jobDefinition) this.jobDefinition = jobs.jobDefinition;
    if (jobs.vpc) this.vpc = jobs.vpc;

    const handlers = new Handlers(this, {
      settings,
      workflowsPath: workflows.path,
      deployment: {
        ...deployment,
        ...(jobs.jobQueue ? { jobQueue: jobs.jobQueue.jobQueueArn } : {}),
        ...(jobs.jobDefinition ? { jobDefinition: jobs.jobDefinition.jobDefinitionArn } : {}),
      },
      ...(props.stepHandlerMemorySize === undefined ? {} : { stepHandlerMemorySize: props.stepHandlerMemorySize }),
      ...(props.stepHandlerTimeout === undefined ? {} : { stepHandlerTimeout: props.stepHandlerTimeout }),
    });
    this.stepHandler = handlers.step.function;
    this.cancelHandler = handlers.cancel.function;
    this.completionHandler = handlers.completion.function;
    this.sweeper = handlers.sweeper.function;
    grantHandlerPermissions({ handlers, storage, jobs, arns: this.arns });

    const machines = new StateMachines(this, settings, this.stepHandler);
    this.stateMachines = machines.lattices;
    this.graphRunner = machines.graphRunner;

    this.api = new CancelApi(this, {
      stackName: settings.stackName,
      handler: this.cancelHandler,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
      throttling: settings.apiThrottling,
      ...(props.apiCloudWatchRole === undefined ? {} : { cloudWatchRole: props.apiCloudWatchRole }),
    }).api;

    addEventRules(this, {
      completionHandler: this.completionHandler,
      sweeper: this.sweeper,
      sweepInterval: settings.sweepInterval,
      jobQueueArns: jobs.jobQueueArns,
      hasBatch: jobs.jobQueue !== undefined,
    });
    if (props.monitoring !== false) {
      this.monitoring = new Monitoring(this, 'Monitoring', {
        ...props.monitoring,
        stepHandler: this.stepHandler,
        otherHandlers: { cancel: this.cancelHandler, completion: this.completionHandler, sweeper: this.sweeper },
        stateMachines: [...Object.values(this.stateMachines), this.graphRunner],
        metricsStackName: props.monitoring?.metricsStackName ?? settings.stackName,
      });
    }
    this.addOutputs();
  }

  /** The outputs that `connect({ stackName })` reads through `DescribeStacks`, under the contract's keys. */
  private addOutputs(): void {
    const output = (key: string, value: string, description: string): void => {
      new CfnOutput(this, key, { value, description }).overrideLogicalId(key);
    };
    output(OUTPUT.apiUrl, this.api.url, `Base URL of the cancel and status API (stage ${API.stage})`);
    output(OUTPUT.tableName, this.table.tableName, 'DynamoDB table of dispatches and nodes');
    output(OUTPUT.bucketName, this.bucket.bucketName, 'S3 bucket of payloads and results');
    output(OUTPUT.stateMachineArnPrefix, this.stateMachineArnPrefix, "A lattice's state machine ARN is this prefix plus the lattice name");
    output(OUTPUT.graphRunnerArn, this.arns.graphRunnerArn, 'State machine that runs sublattices');
    if (this.jobQueue) output(OUTPUT.jobQueueArn, this.jobQueue.jobQueueArn, 'Batch job queue of BatchExecutor nodes');
  }

  /**
   * Lets `grantee` dispatch runs and read their results: `execute-api:Invoke` on
   * `POST /dispatches`, `POST /uploads` (a presigned upload for large arguments) and
   * `GET /dispatches/{id}` (status and result), and nothing else. No table, bucket or state
   * machine access: the API handler records the dispatch, so a dispatcher cannot forge a node
   * item or a job handle (issue 14). Connect with `connect({ apiUrl })` (the stack's `ApiUrl`
   * output): without `cloudformation:DescribeStacks` the client cannot look the stack up.
   */
  grantDispatch(grantee: iam.IGrantable): iam.Grant {
    return this.grantInvoke(grantee, [
      ['POST', API.dispatchPath],
      ['POST', API.uploadPath],
      ['GET', API.statusPath],
    ]);
  }

  /**
   * Lets `grantee` cancel: `execute-api:Invoke` on `POST /dispatches/{id}/cancel`, and on
   * `GET /dispatches/{id}/cancels/{requestId}`, which the SDK polls when a cancel is answered
   * 202 (it finishes outside its request). Nothing else: no table, no state machine.
   */
  grantCancel(grantee: iam.IGrantable): iam.Grant {
    return this.grantInvoke(grantee, [
      ['POST', API.cancelPath],
      ['GET', API.cancelReportPath],
    ]);
  }

  /**
   * Lets `grantee` read a dispatch's status: `execute-api:Invoke` on `GET /dispatches/{id}`,
   * and nothing else. An execute-api `*` also matches `/`, so the pattern covers the other
   * GETs below a dispatch too (its cancel reports): reads, never a cancel.
   */
  grantReadStatus(grantee: iam.IGrantable): iam.Grant {
    return this.grantInvoke(grantee, [['GET', API.statusPath]]);
  }

  /** `execute-api:Invoke` on each method and route (path parameters as `*`) of the API's stage, and nothing else. */
  private grantInvoke(grantee: iam.IGrantable, methods: readonly (readonly [method: string, route: string])[]): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: methods.map(([method, route]) => this.api.arnForExecuteApi(method, apiPath(route), API.stage)),
    });
  }
}

/** An API route as an execute-api resource pattern: path parameters become `*`. */
function apiPath(route: string): string {
  return route.replace(/\{[^}]+\}/g, '*');
}

/** The Batch props, without the ones left unset (exact optional properties). */
function batchProps(props: OrchestratorProps): Omit<ConstructorParameters<typeof Jobs>[1], 'settings' | 'workflowsPath' | 'deployment'> {
  const { jobQueue, jobDefinition, vpc, maxvCpus, jobCpu, jobMemory, jobArchitecture } = props;
  return {
    ...(jobQueue ? { jobQueue } : {}),
    ...(jobDefinition ? { jobDefinition } : {}),
    ...(vpc ? { vpc } : {}),
    ...(maxvCpus === undefined ? {} : { maxvCpus }),
    ...(jobCpu === undefined ? {} : { jobCpu }),
    ...(jobMemory ? { jobMemory } : {}),
    ...(jobArchitecture ? { jobArchitecture } : {}),
  };
}
