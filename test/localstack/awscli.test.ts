import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateComputeEnvironmentCommand, CreateJobQueueCommand, DescribeJobsCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateStateMachineCommand, DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud } from '../../localstack/index.ts';
import type { LocalCloud } from '../../localstack/index.ts';

// The real AWS CLI (Debian's awscli; .ci/run installs it) checks the wire protocols from a
// client that shares no code with the JavaScript SDK.
const run = promisify(execFile);
let cloud: LocalCloud;
let dir: string;

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'valence-awscli-'));
});
afterAll(async () => {
  await cloud?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function aws(...args: string[]): Promise<string> {
  const { stdout } = await run('aws', ['--endpoint-url', cloud.endpoint, '--output', 'json', ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_PAGER: '',
    },
    timeout: 60_000,
  });
  return stdout;
}

async function waitFor(done: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the AWS CLI against the local cloud', () => {
  it('lists DynamoDB tables', async () => {
    await cloud.clients.dynamodb.send(
      new CreateTableCommand({
        TableName: 'cli-table',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
    expect(JSON.parse(await aws('dynamodb', 'list-tables'))).toEqual({ TableNames: ['cli-table'] });
  });

  it('puts and gets an S3 object byte for byte', async () => {
    const source = join(dir, 'payload.bin');
    const target = join(dir, 'downloaded.bin');
    const data = randomBytes(2 * 1024 * 1024 + 17);
    writeFileSync(source, data);
    await aws('s3api', 'create-bucket', '--bucket', 'cli-bucket');
    const put = JSON.parse(await aws('s3api', 'put-object', '--bucket', 'cli-bucket', '--key', 'dir/payload.bin', '--body', source)) as { ETag: string };
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const got = JSON.parse(await aws('s3api', 'get-object', '--bucket', 'cli-bucket', '--key', 'dir/payload.bin', target)) as { ContentLength: number };
    expect(got.ContentLength).toBe(data.length);
    expect(readFileSync(target).equals(data)).toBe(true);
    expect(cloud.requestCounters.get('s3', 'PutObject')).toBe(1);
  });

  it('starts and describes a Step Functions execution', async () => {
    const { stateMachineArn } = await cloud.clients.sfn.send(
      new CreateStateMachineCommand({
        name: 'cli-machine',
        roleArn: 'arn:aws:iam::000000000000:role/local',
        definition: JSON.stringify({ StartAt: 'Echo', States: { Echo: { Type: 'Pass', Parameters: { 'greeting.$': '$.name' }, End: true } } }),
      }),
    );
    const started = JSON.parse(await aws('stepfunctions', 'start-execution', '--state-machine-arn', stateMachineArn!, '--name', 'cli-run', '--input', '{"name":"hi"}')) as {
      executionArn: string;
    };
    expect(started.executionArn).toContain(':execution:cli-machine:cli-run');
    await waitFor(async () => (await cloud.clients.sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }))).status !== 'RUNNING');
    const described = JSON.parse(await aws('stepfunctions', 'describe-execution', '--execution-arn', started.executionArn)) as { status: string; output: string };
    expect(described.status).toBe('SUCCEEDED');
    expect(JSON.parse(described.output)).toEqual({ greeting: 'hi' });
  });

  it('submits and describes a Batch job', async () => {
    await cloud.clients.batch.send(new CreateComputeEnvironmentCommand({ computeEnvironmentName: 'cli-ce', type: 'MANAGED' }));
    await cloud.clients.batch.send(
      new CreateJobQueueCommand({ jobQueueName: 'cli-queue', priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'cli-ce' }] }),
    );
    await cloud.clients.batch.send(
      new RegisterJobDefinitionCommand({ jobDefinitionName: 'cli-def', type: 'container', containerProperties: { image: 'local', command: ['sh', '-c', 'exit 0'] } }),
    );
    const submitted = JSON.parse(await aws('batch', 'submit-job', '--job-name', 'cli-job', '--job-queue', 'cli-queue', '--job-definition', 'cli-def')) as { jobId: string; jobName: string };
    expect(submitted.jobName).toBe('cli-job');
    await waitFor(async () => {
      const status = (await cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [submitted.jobId] }))).jobs?.[0]?.status;
      return status === 'SUCCEEDED' || status === 'FAILED';
    });
    const described = JSON.parse(await aws('batch', 'describe-jobs', '--jobs', submitted.jobId)) as { jobs: { status: string; jobName: string }[] };
    expect(described.jobs).toMatchObject([{ jobName: 'cli-job', status: 'SUCCEEDED' }]);
  });

  it('reports a service the local cloud does not host as an error', async () => {
    await expect(aws('sts', 'get-caller-identity')).rejects.toMatchObject({ stderr: expect.stringContaining('NotImplemented') as unknown });
  });
});
