/**
 * The Batch side of an orchestrator when the user brings no job queue or job definition: a
 * Fargate compute environment in private subnets, a queue, and a job definition whose image
 * is built from valence's Dockerfile around the job runner.
 *
 * The image is a Docker asset: synth only stages and hashes the build context, and the image
 * is built at deploy time, so `cdk synth` needs no Docker engine.
 */
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { IgnoreMode } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { posix, relative, sep } from 'node:path';
import { ENV } from '../../sdk/contract.ts';

/** Files never sent to the image build, whatever the project's `.dockerignore` says. */
export const JOB_IMAGE_EXCLUDES: readonly string[] = ['node_modules', 'cdk.out', '.valence', '.git', 'coverage', '**/*.log'];

/** Inputs of {@link createVpc}. */
export interface JobVpcProps {
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A VPC for Fargate jobs: private subnets with one NAT gateway (jobs pull their image and call
 * AWS APIs), free gateway endpoints for S3 and DynamoDB, and flow logs.
 */
export function createJobVpc(scope: Construct, props: JobVpcProps): ec2.Vpc {
  const flowLogs = new logs.LogGroup(scope, 'VpcFlowLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
  return new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      { name: 'jobs', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
    ],
    gatewayEndpoints: {
      S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
    },
    flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL } },
  });
}

/** Inputs of {@link createJobDefinition}. */
export interface JobDefinitionProps {
  /** Build context of the image: the project that holds the workflows module. */
  readonly projectRoot: string;
  /** Absolute path of the Dockerfile (may live outside the project, e.g. in node_modules/valence). */
  readonly dockerfile: string;
  /** Absolute path of the job runner module. */
  readonly jobRunner: string;
  /** Absolute path of the workflows module. */
  readonly workflowsPath: string;
  readonly environment: Record<string, string>;
  readonly jobRole: iam.IRole;
  readonly cpu: number;
  readonly memory: Size;
  readonly architecture: ecs.CpuArchitecture;
  /** Batch's own time limit on a job attempt; electrons' timeouts are enforced by the runtime. */
  readonly timeout?: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Jobs in public subnets need a public IP to pull their image. */
  readonly assignPublicIp: boolean;
}

/** Where the job image copies the project (the Dockerfile's WORKDIR). */
export const JOB_IMAGE_WORKDIR = '/app';

/** A Fargate job definition that runs `node --import tsx <job runner>` in the image built from the Dockerfile. */
export function createJobDefinition(scope: Construct, props: JobDefinitionProps): batch.EcsJobDefinition {
  const inImage = (file: string): string => posix.join(JOB_IMAGE_WORKDIR, relative(props.projectRoot, file).split(sep).join('/'));
  const image = ecs.ContainerImage.fromAsset(props.projectRoot, {
    file: relative(props.projectRoot, props.dockerfile),
    platform: props.architecture === ecs.CpuArchitecture.ARM64 ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
    ignoreMode: IgnoreMode.DOCKER,
    exclude: [...JOB_IMAGE_EXCLUDES],
  });
  const logGroup = new logs.LogGroup(scope, 'JobLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
  const container = new batch.EcsFargateContainerDefinition(scope, 'JobContainer', {
    image,
    cpu: props.cpu,
    memory: props.memory,
    jobRole: props.jobRole,
    command: ['node', '--import', 'tsx', inImage(props.jobRunner)],
    environment: { ...props.environment, [ENV.workflows]: inImage(props.workflowsPath), NODE_OPTIONS: '--enable-source-maps' },
    fargateCpuArchitecture: props.architecture,
    fargateOperatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
    assignPublicIp: props.assignPublicIp,
    logging: ecs.LogDriver.awsLogs({ logGroup, streamPrefix: 'job' }),
  });
  return new batch.EcsJobDefinition(scope, 'JobDefinition', {
    container,
    ...(props.timeout ? { timeout: props.timeout } : {}),
    propagateTags: true,
  });
}
