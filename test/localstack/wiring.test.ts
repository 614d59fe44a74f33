import { fileURLToPath } from 'node:url';
import { DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { SearchQuantumTasksCommand } from '@aws-sdk/client-braket';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { CreateStateMachineCommand, DescribeExecutionCommand, ListStateMachinesCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud } from '../../localstack/index.ts';
import type { LocalCloud } from '../../localstack/index.ts';
import { ENV } from '../../sdk/contract.ts';

// The core wires every service in; these tests check the wiring (routing, shared counters and
// faults, Lambda's environment, Step Functions calling Lambda), not each service's behaviour.
let cloud: LocalCloud;
const entry = fileURLToPath(new URL('./fixtures/record-handler.ts', import.meta.url));
const decode = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8')) as Record<string, unknown>;

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, environment: { [ENV.table]: 'wiring' } });
  await cloud.clients.dynamodb.send(
    new CreateTableCommand({
      TableName: 'wiring',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  cloud.services.lambda.register({ functionName: 'record', entry, timeoutSeconds: 30 });
});
afterAll(async () => {
  await cloud?.stop();
});

describe('local cloud wiring', () => {
  it('routes every hosted service by its signing name and counts each', async () => {
    cloud.resetCounters();
    await cloud.clients.sfn.send(new ListStateMachinesCommand({}));
    await cloud.clients.lambda.send(new ListFunctionsCommand({}));
    await cloud.clients.batch.send(new DescribeJobQueuesCommand({}));
    await cloud.clients.braket.send(new SearchQuantumTasksCommand({ filters: [] }));
    await cloud.clients.eventbridge.send(new ListRulesCommand({}));
    expect(cloud.counters()).toMatchObject({
      states: { ListStateMachines: 1 },
      lambda: { ListFunctions: 1 },
      batch: { DescribeJobQueues: 1 },
      braket: { SearchQuantumTasks: 1 },
      events: { ListRules: 1 },
    });
  });

  it('gives a Lambda function an environment that leads back to the local cloud', async () => {
    const result = await cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'record', Payload: JSON.stringify({ table: 'wiring', id: 'from-invoke' }) }));
    expect(result.FunctionError).toBeUndefined();
    expect(decode(result.Payload)).toMatchObject({ endpoint: cloud.endpoint, region: 'us-east-1', table: 'wiring' });
    const item = await cloud.clients.dynamodb.send(new GetItemCommand({ TableName: 'wiring', Key: { pk: { S: 'from-invoke' } } }));
    expect(item.Item?.from).toEqual({ S: 'lambda' });
  });

  it('lets Step Functions invoke the local Lambda, counting both sides', async () => {
    const { stateMachineArn } = await cloud.clients.sfn.send(
      new CreateStateMachineCommand({
        name: 'wiring',
        roleArn: 'arn:aws:iam::000000000000:role/local',
        definition: JSON.stringify({
          StartAt: 'Record',
          States: {
            Record: {
              Type: 'Task',
              Resource: 'arn:aws:states:::lambda:invoke',
              Parameters: { FunctionName: 'record', 'Payload.$': '$' },
              OutputPath: '$.Payload',
              End: true,
            },
          },
        }),
      }),
    );
    cloud.resetCounters();
    const { executionArn } = await cloud.clients.sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'run-1', input: JSON.stringify({ table: 'wiring', id: 'from-sfn' }) }));
    let status = 'RUNNING';
    let output: string | undefined;
    for (let i = 0; i < 200 && status === 'RUNNING'; i++) {
      const described = await cloud.clients.sfn.send(new DescribeExecutionCommand({ executionArn }));
      status = described.status ?? 'UNKNOWN';
      output = described.output;
      if (status === 'RUNNING') await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('SUCCEEDED');
    expect(JSON.parse(output ?? '{}')).toMatchObject({ endpoint: cloud.endpoint, event: { id: 'from-sfn' } });
    expect(cloud.requestCounters.get('states', 'StartExecution')).toBe(1);
    expect(cloud.requestCounters.get('lambda', 'Invoke')).toBe(1);
    expect(cloud.requestCounters.get('dynamodb', 'PutItem')).toBe(1);
  });

  it('crashes the Nth Lambda invocation when fault injection says so', async () => {
    cloud.faults.crashNthInvocation(2, 'record');
    const invoke = () => cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'record', Payload: '{}' }));
    expect((await invoke()).FunctionError).toBeUndefined();
    expect((await invoke()).FunctionError).toBe('Unhandled');
    expect((await invoke()).FunctionError).toBeUndefined();
  });

  it('applies HTTP-configured throttling to Lambda Invoke', async () => {
    await fetch(`${cloud.endpoint}/_valence/faults`, { headers: { 'x-valence-admin-token': cloud.adminToken }, method: 'PUT', body: JSON.stringify({ rules: [{ service: 'lambda', operation: 'Invoke', errorRate: 1 }] }) });
    const lambda = new LambdaClient({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials, maxAttempts: 1 });
    try {
      await expect(lambda.send(new InvokeCommand({ FunctionName: 'record', Payload: '{}' }))).rejects.toMatchObject({ name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });
    } finally {
      lambda.destroy();
      await fetch(`${cloud.endpoint}/_valence/faults`, { headers: { 'x-valence-admin-token': cloud.adminToken }, method: 'DELETE' });
    }
  });
});
