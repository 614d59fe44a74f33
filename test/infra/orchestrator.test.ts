// The Orchestrator's template: every resource and permission the deploy relies on.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { readGraphHash } from '../../sdk/index.ts';
import { ENV, GRAPH_RUNNER_NAME, OUTPUT, PAYLOAD_PREFIX, TABLE, UPLOAD_PREFIX } from '../../sdk/contract.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { permissionMap, removeTestOutdirs, render, statementsOf, STACK_NAME, synthesize, type Synthesized } from './support.ts';

afterAll(removeTestOutdirs);

/** The parts of a synthesized CloudFormation template these tests read. */
type Resource = { Type: string; Properties: Record<string, unknown> };
type Output = { Value: unknown };
type TemplateJSON = { Resources: Record<string, Resource>; Outputs: Record<string, Output> & { StateMachineArnPrefix: Output; ApiUrl: Output } };
const templateJSON = (template: { toJSON(): unknown }): TemplateJSON => template.toJSON() as TemplateJSON;
type Rule = {
  EventPattern: { source?: string[]; 'detail-type': string[]; detail: { jobQueue: unknown[] } };
  Targets: [{ Arn: unknown }];
  ScheduleExpression?: string;
};

let base: Synthesized;
beforeAll(async () => {
  // GIVEN the orchestrator with default props over the fixture workflows
  base = await synthesize();
});

const resolved = (value: unknown): string => render(base.stack.resolve(value));
const functionRole = (fn: unknown): iam.IRole => (fn as { role: iam.IRole }).role;

describe('state machines', () => {
  it('creates one Standard state machine per exported lattice, named {stackName}_{latticeName}, plus the graph runner', () => {
    // THEN exactly three machines exist (the default export repeats `pipeline`, `version` is no lattice)
    base.template.resourceCountIs('AWS::StepFunctions::StateMachine', 3);
    for (const name of ['infra-fixture-pipeline', 'infra-fixture-single', GRAPH_RUNNER_NAME]) {
      base.template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
        StateMachineName: `${STACK_NAME}_${name}`,
        StateMachineType: 'STANDARD',
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [Match.objectLike({})] },
      });
    }
  });

  it('compiles each definition with the step handler ARN substituted at deploy time', () => {
    const machines = Object.values(base.template.findResources('AWS::StepFunctions::StateMachine'));
    for (const machine of machines) {
      const properties = machine.Properties as { DefinitionString: string; DefinitionSubstitutions: Record<string, unknown> };
      // THEN the definition names the handler only through ${StepHandlerArn}, resolved to the function's ARN
      expect(typeof properties.DefinitionString).toBe('string');
      expect(properties.DefinitionString).toContain('"FunctionName":"${StepHandlerArn}"');
      expect(render(properties.DefinitionSubstitutions.StepHandlerArn)).toBe(resolved(base.orchestrator.stepHandler.functionArn));
    }
  });

  it('records the graph hash of each lattice (definition Comment and tag), so a stale deploy is detectable', () => {
    const pipeline = Object.values(base.template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: `${STACK_NAME}_infra-fixture-pipeline` } }))[0];
    const properties = pipeline!.Properties as { DefinitionString: string; Tags: { Key: string; Value: string }[] };
    const hash = readGraphHash(properties.DefinitionString);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(properties.Tags).toContainEqual({ Key: 'valence:graph-hash', Value: hash });
  });

  it('lets the state machines invoke the step handler, and the graph runner run its own partitions, and nothing else', () => {
    const machine = base.orchestrator.stateMachines['infra-fixture-pipeline']!;
    const permissions = permissionMap(statementsOf(base.template, base.stack, machine.role));
    expect(permissions['lambda:InvokeFunction']).toEqual([resolved(base.orchestrator.stepHandler.functionArn)]);
    // The graph runner splits large graphs into a Distributed Map: its child executions are its own.
    const runnerName = (base.orchestrator.graphRunner.node.defaultChild as CfnStateMachine).stateMachineName!;
    const runner = `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${runnerName}`;
    expect(permissions['states:StartExecution']).toEqual([runner]);
    expect(permissions['states:DescribeExecution']).toEqual([`${runner.replace(':stateMachine:', ':execution:')}/*`]);
    expect(permissions['states:StopExecution']).toEqual([`${runner.replace(':stateMachine:', ':execution:')}/*`]);
    expect(Object.keys(permissions).filter((action) => !/^(logs|xray):/.test(action)).sort()).toEqual(['lambda:InvokeFunction', 'states:DescribeExecution', 'states:StartExecution', 'states:StopExecution']);
  });
});

describe('handlers', () => {
  const handlers = () => [base.orchestrator.stepHandler, base.orchestrator.cancelHandler, base.orchestrator.completionHandler, base.orchestrator.sweeper];

  it('runs the four handlers on nodejs22.x, ARM64, with source maps', () => {
    base.template.resourcePropertiesCountIs('AWS::Lambda::Function', { Runtime: 'nodejs22.x', Architectures: ['arm64'] }, 4);
  });

  it('gives every handler the stack environment the runtime reads', () => {
    for (const fn of handlers()) {
      const logicalId = base.stack.getLogicalId(fn.node.defaultChild as never);
      const properties = templateJSON(base.template).Resources[logicalId]!.Properties as { Environment: { Variables?: Record<string, unknown> } };
      const variables = properties.Environment.Variables ?? {};
      expect(Object.keys(variables).sort()).toEqual(
        ['NODE_OPTIONS', ENV.braketJobRoleArn, ENV.bucket, ENV.graphRunnerArn, ENV.jobDefinition, ENV.jobQueue, ENV.stackName, ENV.stateMachinePrefix, ENV.table].sort(),
      );
      expect(variables.NODE_OPTIONS).toBe('--enable-source-maps');
      expect(variables[ENV.stackName]).toBe(STACK_NAME);
      expect(render(variables[ENV.stateMachinePrefix])).toBe(`arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${STACK_NAME}_`);
      expect(render(variables[ENV.graphRunnerArn])).toBe(`arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${STACK_NAME}_${GRAPH_RUNNER_NAME}`);
      expect(render(variables[ENV.table])).toBe(resolved(base.orchestrator.table.tableName));
      expect(render(variables[ENV.bucket])).toBe(resolved(base.orchestrator.bucket.bucketName));
      expect(render(variables[ENV.jobQueue])).toBe(resolved(base.orchestrator.jobQueue!.jobQueueArn));
    }
  });

  it('writes each handler log to its own log group, and lets each role write only there', () => {
    for (const fn of handlers()) {
      const statements = statementsOf(base.template, base.stack, functionRole(fn));
      const logs = statements.filter((s) => s.actions.some((a) => a.startsWith('logs:')));
      expect(logs).toHaveLength(1);
      expect(logs[0]!.actions).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    }
    // No handler role carries AWSLambdaBasicExecutionRole (logs:* on every group).
    const roles = base.template.toJSON().Resources as Record<string, { Properties: { ManagedPolicyArns?: unknown } }>;
    for (const fn of handlers()) {
      const roleId = base.stack.getLogicalId(functionRole(fn).node.defaultChild as never);
      expect(roles[roleId]!.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('storage', () => {
  it('creates the table: on-demand, PITR, pk/sk, and the byJobHandle and byList indexes', () => {
    base.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          { IndexName: TABLE.indexes.byJobHandle.name, KeySchema: [{ AttributeName: TABLE.indexes.byJobHandle.partitionKey, KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } },
          {
            IndexName: TABLE.indexes.byList.name,
            KeySchema: [
              { AttributeName: TABLE.indexes.byList.partitionKey, KeyType: 'HASH' },
              { AttributeName: TABLE.indexes.byList.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      },
    });
  });

  it('creates the payload bucket: private, SSL only, encrypted, logged, dispatches/ expiring after 30 days', () => {
    const bucketId = base.stack.getLogicalId(base.orchestrator.bucket.node.defaultChild as never);
    base.template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        LoggingConfiguration: { DestinationBucketName: { Ref: base.stack.getLogicalId(base.orchestrator.accessLogBucket.node.defaultChild as never) } },
        LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: PAYLOAD_PREFIX, ExpirationInDays: 30, Status: 'Enabled' })]) },
      },
    });
    base.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
    // No custom resource empties buckets unless asked.
    base.template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('honours removalPolicy, autoDeleteObjects and payloadRetentionDays', async () => {
    // WHEN the user asks for a disposable stack with 7-day payloads
    const { template } = await synthesize({ removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true, payloadRetentionDays: 7 });
    // THEN
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: PAYLOAD_PREFIX, ExpirationInDays: 7 })]) },
    });
  });
});

describe('cancel and status API', () => {
  it('serves POST /dispatches, POST /uploads, POST /dispatches/{id}/cancel, GET /dispatches/{id} and GET /dispatches/{id}/cancels/{requestId} from the API handler, IAM-authorized', () => {
    base.template.resourceCountIs('AWS::ApiGateway::Method', 5);
    const cancelFn = resolved(base.orchestrator.cancelHandler.functionArn);
    for (const method of Object.values(base.template.findResources('AWS::ApiGateway::Method'))) {
      const properties = method.Properties as { AuthorizationType: string; HttpMethod: string; Integration: { Type: string; Uri: unknown } };
      expect(properties.AuthorizationType).toBe('AWS_IAM');
      expect(properties.Integration.Type).toBe('AWS_PROXY');
      expect(render(properties.Integration.Uri)).toContain(cancelFn);
    }
    base.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'cancel' });
    base.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{id}' });
    base.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'cancels' });
    base.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{requestId}' });
    base.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'uploads' });
  });

  it('validates the cancel body against a JSON schema model', () => {
    base.template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      RequestModels: { 'application/json': Match.anyValue() },
      RequestValidatorId: Match.anyValue(),
      RequestParameters: { 'method.request.path.id': true },
    });
    base.template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true, ValidateRequestParameters: true });
    const model = Object.values(base.template.findResources('AWS::ApiGateway::Model'))[0]!.Properties as {
      Schema: { type: string; additionalProperties: boolean; properties: { reason: { type: string }; taskIds: { type: string; items: { oneOf: Array<{ type: string }> } } } };
    };
    expect(model.Schema.type).toBe('object');
    expect(model.Schema.additionalProperties).toBe(false);
    expect(model.Schema.properties.reason.type).toBe('string');
    expect(model.Schema.properties.taskIds.type).toBe('array');
    expect(model.Schema.properties.taskIds.items.oneOf.map((s: { type: string }) => s.type)).toEqual(['integer', 'string']);
  });

  it('writes access logs from stage prod', () => {
    base.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [Match.objectLike({ LoggingLevel: 'ERROR' })],
    });
  });
});

describe('events', () => {
  it('routes Batch job state changes of the stack queue and of the queues nodes name to the completion handler', () => {
    const completion = resolved(base.orchestrator.completionHandler.functionArn);
    const rules = Object.values(base.template.findResources('AWS::Events::Rule')).map((r) => r.Properties as Rule);
    const batchRule = rules.find((r) => r.EventPattern?.source?.[0] === 'aws.batch')!;
    expect(batchRule.EventPattern['detail-type']).toEqual(['Batch Job State Change']);
    expect(batchRule.EventPattern.detail.jobQueue.map(render)).toEqual([
      resolved(base.orchestrator.jobQueue!.jobQueueArn),
      `arn:\${AWS::Partition}:batch:\${AWS::Region}:\${AWS::AccountId}:job-queue/research-queue`,
    ]);
    expect(render(batchRule.Targets[0].Arn)).toBe(completion);
    const braketRule = rules.find((r) => r.EventPattern?.source?.[0] === 'aws.braket')!;
    expect(braketRule.EventPattern['detail-type']).toEqual(['Braket Task State Change', 'Braket Job State Change']);
    expect(render(braketRule.Targets[0].Arn)).toBe(completion);
  });

  it('runs the sweeper every minute, or at the configured interval', async () => {
    const sweeper = resolved(base.orchestrator.sweeper.functionArn);
    const schedule = Object.values(base.template.findResources('AWS::Events::Rule')).map((r) => r.Properties as Rule).find((r) => r.ScheduleExpression)!;
    expect(schedule.ScheduleExpression).toBe('rate(1 minute)');
    expect(render(schedule.Targets[0].Arn)).toBe(sweeper);
    // WHEN the interval is five minutes
    const { template } = await synthesize({ sweepInterval: Duration.minutes(5) });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  });
});

describe('Batch', () => {
  it('creates a Fargate compute environment in private subnets, a queue and a job definition whose image runs the bundled job runner', () => {
    base.template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      Type: 'managed',
      ComputeResources: Match.objectLike({ Type: 'FARGATE', Subnets: Match.anyValue() }),
    });
    base.template.resourceCountIs('AWS::Batch::JobQueue', 1);
    base.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    base.template.resourceCountIs('AWS::EC2::FlowLog', 1);
    const definition = Object.values(base.template.findResources('AWS::Batch::JobDefinition'))[0]!.Properties as {
      PlatformCapabilities: string[];
      ContainerProperties: { Command: string[]; Environment: Array<{ Name: string; Value: unknown }>; Image: unknown };
    };
    expect(definition.PlatformCapabilities).toEqual(['FARGATE']);
    const container = definition.ContainerProperties;
    // The workflows module is bundled into the image with the job runner: no path, no tsx.
    expect(container.Command).toEqual(['node', '/app/job.mjs']);
    const environment = Object.fromEntries(container.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, render(e.Value)]));
    expect(environment[ENV.workflows]).toBeUndefined();
    expect(environment[ENV.table]).toBe(resolved(base.orchestrator.table.tableName));
    expect(environment[ENV.bucket]).toBe(resolved(base.orchestrator.bucket.bucketName));
    // The image is a Docker asset built at deploy time (an ECR image URI with the asset hash).
    expect(render(container.Image)).toMatch(/dkr\.ecr\..*container-assets.*:[0-9a-f]{64}$/);
    // The job role reads and writes the table and the payloads.
    const jobRoleNode = base.orchestrator.node.findChild('JobRole') as iam.Role;
    const jobRole = permissionMap(statementsOf(base.template, base.stack, jobRoleNode));
    const table = resolved(base.orchestrator.table.tableArn);
    // Scoped to the table and its indexes, nothing wider.
    expect(jobRole['dynamodb:UpdateItem']).toEqual([table, `${table}/index/byJobHandle`, `${table}/index/byList`]);
    expect(jobRole['s3:PutObject']).toEqual([`${resolved(base.orchestrator.bucket.bucketArn)}/${PAYLOAD_PREFIX}*`]);
  });

  it('uses the job queue and job definition the user brings, and creates none', async () => {
    // GIVEN an imported queue and job definition
    const { template, orchestrator, stack } = await synthesize({}, (s: Stack) => ({
      jobQueue: batch.JobQueue.fromJobQueueArn(s, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/mine'),
      jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(s, 'Definition', 'arn:aws:batch:eu-west-1:123456789012:job-definition/runner:3'),
    }));
    // THEN
    template.resourceCountIs('AWS::Batch::ComputeEnvironment', 0);
    template.resourceCountIs('AWS::Batch::JobQueue', 0);
    template.resourceCountIs('AWS::Batch::JobDefinition', 0);
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.hasOutput(OUTPUT.jobQueueArn, { Value: 'arn:aws:batch:eu-west-1:123456789012:job-queue/mine' });
    const step = permissionMap(statementsOf(template, stack, (orchestrator.stepHandler as unknown as { role: iam.IRole }).role));
    expect(step['batch:SubmitJob']).toContain('arn:aws:batch:eu-west-1:123456789012:job-queue/mine');
  });

  it('leaves Batch out entirely with enableBatch: false', async () => {
    const { template } = await synthesize({ enableBatch: false });
    template.resourceCountIs('AWS::Batch::ComputeEnvironment', 0);
    template.resourceCountIs('AWS::EC2::VPC', 0);
    expect(JSON.stringify(template.toJSON())).not.toMatch(new RegExp(`${ENV.jobQueue}|batch:SubmitJob|aws\\.batch`));
    expect(templateJSON(template).Outputs[OUTPUT.jobQueueArn]).toBeUndefined();
  });
});

describe('IAM', () => {
  const prefix = `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}`;
  const account = `\${AWS::Region}:\${AWS::AccountId}`;
  const tableResources = () => {
    const table = resolved(base.orchestrator.table.tableArn);
    return [table, `${table}/index/${TABLE.indexes.byJobHandle.name}`, `${table}/index/${TABLE.indexes.byList.name}`].sort();
  };
  const tableActions = ['BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem'].map((a) => `dynamodb:${a}`);

  it('gives the cancel handler exactly the actions it needs, on the resources of this stack only', () => {
    // WHEN reading every Allow statement attached to the cancel handler's role
    const permissions = permissionMap(statementsOf(base.template, base.stack, functionRole(base.orchestrator.cancelHandler)));
    const logGroup = resolved((base.orchestrator.cancelHandler as unknown as { logGroup: { logGroupArn: string } }).logGroup.logGroupArn);
    // A large cancel carries on in an asynchronous invocation of itself: this function only,
    // named by its fixed name (a grant on its ARN attribute would be a dependency cycle).
    const cancelFunction = Object.values(base.template.findResources('AWS::Lambda::Function')).find((r) => String((r as { Properties: { Description?: string } }).Properties.Description).startsWith('valence cancel handler')) as { Properties: { FunctionName: string } };
    expect(cancelFunction.Properties.FunctionName).toMatch(/^teststack-Orchestrator-CancelHandler-[0-9A-F]{8}$/);
    expect(permissions['lambda:InvokeFunction']).toEqual([`arn:\${AWS::Partition}:lambda:${account}:function:${cancelFunction.Properties.FunctionName}`]);
    delete permissions['lambda:InvokeFunction'];
    // THEN nothing more, nothing broader
    expect(permissions).toEqual({
      ...Object.fromEntries(tableActions.map((action) => [action, tableResources()])),
      'batch:CancelJob': [`arn:\${AWS::Partition}:batch:${account}:job/*`],
      'batch:DescribeJobs': ['*'],
      'batch:TerminateJob': [`arn:\${AWS::Partition}:batch:${account}:job/*`],
      'braket:CancelJob': [`arn:\${AWS::Partition}:braket:${account}:job/*`],
      'braket:CancelQuantumTask': [`arn:\${AWS::Partition}:braket:${account}:quantum-task/*`],
      // The ownership check reads tags before it stops (found by the assembly-mode IAM test).
      'braket:GetJob': [`arn:\${AWS::Partition}:braket:${account}:job/*`],
      'braket:GetQuantumTask': [`arn:\${AWS::Partition}:braket:${account}:quantum-task/*`],
      'logs:CreateLogStream': [logGroup],
      'logs:PutLogEvents': [logGroup],
      // Reports too large for their item are payload objects; a task that ended first has its
      // result read. POST /dispatches writes a dispatch's graph and arguments, and reads (then
      // deletes) the arguments' presigned upload under uploads/.
      's3:DeleteObject': [`${resolved(base.orchestrator.bucket.bucketArn)}/${UPLOAD_PREFIX}*`],
      's3:GetObject': [`${resolved(base.orchestrator.bucket.bucketArn)}/${PAYLOAD_PREFIX}*`, `${resolved(base.orchestrator.bucket.bucketArn)}/${UPLOAD_PREFIX}*`].sort(),
      's3:PutObject': [`${resolved(base.orchestrator.bucket.bucketArn)}/${PAYLOAD_PREFIX}*`, `${resolved(base.orchestrator.bucket.bucketArn)}/${UPLOAD_PREFIX}*`].sort(),
      'states:SendTaskFailure': [`${prefix}:stateMachine:${STACK_NAME}_*`],
      'states:SendTaskSuccess': [`${prefix}:stateMachine:${STACK_NAME}_*`],
      // POST /dispatches: the deployed definition is read (stale-deploy check) and the execution started.
      'states:DescribeStateMachine': [`${prefix}:stateMachine:${STACK_NAME}_*`],
      'states:StartExecution': [`${prefix}:stateMachine:${STACK_NAME}_*`],
      'states:StopExecution': [`${prefix}:execution:${STACK_NAME}_*:*`],
    });
    // and no Scan, no delete of a dispatch's payloads, no "*" action
    expect(Object.keys(permissions).some((a) => a.includes('*'))).toBe(false);
  });

  it('lets the step handler run nodes: table, payloads, its state machines, the queues and Braket', () => {
    const permissions = permissionMap(statementsOf(base.template, base.stack, functionRole(base.orchestrator.stepHandler)));
    const objects = `${resolved(base.orchestrator.bucket.bucketArn)}/${PAYLOAD_PREFIX}*`;
    for (const action of tableActions) expect(permissions[action]).toEqual(tableResources());
    expect(permissions['dynamodb:Scan']).toBeUndefined();
    expect(permissions['s3:GetObject']).toEqual([objects]);
    expect(permissions['s3:PutObject']).toEqual([objects]);
    expect(permissions['s3:ListBucket']).toEqual([resolved(base.orchestrator.bucket.bucketArn)]);
    for (const action of ['states:StartExecution', 'states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']) {
      expect(permissions[action]).toEqual([`${prefix}:stateMachine:${STACK_NAME}_*`]);
    }
    expect(permissions['states:StopExecution']).toEqual([`${prefix}:execution:${STACK_NAME}_*:*`]);
    expect(permissions['batch:SubmitJob']).toEqual(
      [
        resolved(base.orchestrator.jobQueue!.jobQueueArn),
        `arn:\${AWS::Partition}:batch:${account}:job-queue/research-queue`,
        `arn:\${AWS::Partition}:batch:${account}:job-definition/${resolved(base.orchestrator.jobDefinition!.jobDefinitionName)}:*`,
      ].sort(),
    );
    expect(permissions['batch:DescribeJobs']).toEqual(['*']);
    expect(permissions['braket:CreateQuantumTask']).toEqual(
      [`arn:\${AWS::Partition}:braket:*::device/*`, `arn:\${AWS::Partition}:braket:${account}:quantum-task/*`].sort(),
    );
    expect(permissions['braket:GetQuantumTask']).toEqual([`arn:\${AWS::Partition}:braket:${account}:quantum-task/*`]);
    expect(permissions['braket:CancelQuantumTask']).toEqual([`arn:\${AWS::Partition}:braket:${account}:quantum-task/*`]);
    // Hybrid jobs: created as the stack's Braket job role, and stopped when cancelled mid-submit.
    expect(permissions['braket:CreateJob']).toEqual([`arn:\${AWS::Partition}:braket:*::device/*`, `arn:\${AWS::Partition}:braket:${account}:job/*`].sort());
    expect(permissions['braket:CancelJob']).toEqual([`arn:\${AWS::Partition}:braket:${account}:job/*`]);
    expect(permissions['iam:PassRole']).toHaveLength(1);
  });

  it('lets the completion handler and the sweeper release waits and read jobs, but not start executions', () => {
    for (const fn of [base.orchestrator.completionHandler, base.orchestrator.sweeper]) {
      const permissions = permissionMap(statementsOf(base.template, base.stack, functionRole(fn)));
      expect(permissions['states:SendTaskSuccess']).toEqual([`${prefix}:stateMachine:${STACK_NAME}_*`]);
      expect(permissions['states:SendTaskHeartbeat']).toEqual([`${prefix}:stateMachine:${STACK_NAME}_*`]);
      expect(permissions['braket:GetQuantumTask']).toEqual([`arn:\${AWS::Partition}:braket:${account}:quantum-task/*`]);
      expect(permissions['s3:GetObject']).toEqual([`${resolved(base.orchestrator.bucket.bucketArn)}/${PAYLOAD_PREFIX}*`]);
      expect(permissions['states:StartExecution']).toBeUndefined();
      expect(permissions['batch:SubmitJob']).toBeUndefined();
    }
    const sweeper = permissionMap(statementsOf(base.template, base.stack, functionRole(base.orchestrator.sweeper)));
    expect(sweeper['batch:TerminateJob']).toEqual([`arn:\${AWS::Partition}:batch:${account}:job/*`]);
    expect(sweeper['states:StopExecution']).toEqual([`${prefix}:execution:${STACK_NAME}_*:*`]);
  });

  it('grantDispatch and grantCancel give a caller the API methods dispatch(), getResult() and cancel() use, and no table, bucket or state machine', async () => {
    // GIVEN a caller role in the orchestrator's stack
    let caller: iam.Role | undefined;
    const { template, stack } = await synthesize({}, (s: Stack) => {
      caller = new iam.Role(s, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
      return {};
    }, (o) => {
      // WHEN
      o.grantDispatch(caller!);
      o.grantCancel(caller!);
    });
    // THEN: execute-api:Invoke alone (a caller that may write the table could forge a job handle, issue 14)
    const permissions = permissionMap(statementsOf(template, stack, caller!));
    expect(Object.keys(permissions)).toEqual(['execute-api:Invoke']);
    const methods = permissions['execute-api:Invoke']!.map((arn) => arn.replace(/^.*\/prod\//, '')).sort();
    expect(methods).toEqual(['GET/dispatches/*', 'GET/dispatches/*/cancels/*', 'POST/dispatches', 'POST/dispatches/*/cancel', 'POST/uploads']);
  });

});

describe('outputs', () => {
  it('exports exactly the keys connect({ stackName }) reads', () => {
    expect(Object.keys(templateJSON(base.template).Outputs).sort()).toEqual(Object.values(OUTPUT).sort());
    base.template.hasOutput(OUTPUT.tableName, { Value: base.stack.resolve(base.orchestrator.table.tableName) as unknown });
    base.template.hasOutput(OUTPUT.bucketName, { Value: base.stack.resolve(base.orchestrator.bucket.bucketName) as unknown });
    expect(render(templateJSON(base.template).Outputs.StateMachineArnPrefix.Value)).toBe(`arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${STACK_NAME}_`);
    expect(render(templateJSON(base.template).Outputs.ApiUrl.Value)).toMatch(/^https:\/\/\$\{OrchestratorApi\w+\}\.execute-api\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}\/\$\{OrchestratorApiDeploymentStageprod\w+\}\/$/);
  });
});
