// Step Functions inside the whole local cloud: requests routed by SigV4 scope, Task states
// invoking handlers registered with the local Lambda service (worker-thread sandboxes).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../../localstack/index.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const ROLE = 'arn:aws:iam::000000000000:role/valence-local';

let cloud: LocalCloud;
let tmp: string;

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
  tmp = await mkdtemp(join(tmpdir(), 'valence-sfn-cloud-'));
  const lambda = cloud.services.lambda;
  if (!lambda) throw new Error('the local cloud has no Lambda service');
  lambda.register({ functionName: 'slow-writer', entry: fixture('slow-writer.ts'), timeoutSeconds: 30 });
  lambda.register({ functionName: 'callback-completer', entry: fixture('callback-completer.ts'), timeoutSeconds: 30 });
});

afterAll(async () => {
  await cloud?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function waitForFile(path: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await stat(path).then(() => true, () => false);
    if (found) return readFile(path, 'utf8');
    if (Date.now() > deadline) throw new Error(`no file ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function finished(executionArn: string) {
  for (let i = 0; i < 500; i++) {
    const out = await cloud.clients.sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (out.status !== 'RUNNING') return out;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('execution did not finish');
}

describe('Step Functions in the local cloud', () => {
  it('stops an execution without killing the Lambda sandbox invocation, and runs no later state', async () => {
    const sfn = cloud.clients.sfn;
    const first = { ms: 600, file: join(tmp, 'first-done'), startedFile: join(tmp, 'first-started') };
    const second = { ms: 0, file: join(tmp, 'second-done') };
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({
        name: 'stop-in-cloud',
        roleArn: ROLE,
        definition: JSON.stringify({
          StartAt: 'First',
          States: {
            First: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', Parameters: { FunctionName: 'slow-writer', Payload: first }, Next: 'Second' },
            Second: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', Parameters: { FunctionName: 'slow-writer', Payload: second }, End: true },
          },
        }),
      }),
    );
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'dispatch-stop' }));
    await waitForFile(first.startedFile);

    const { stopDate } = await sfn.send(new StopExecutionCommand({ executionArn, cause: 'cancel requested' }));
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn }))).status).toBe('ABORTED');

    const finishedAt = Number(await waitForFile(first.file));
    expect(finishedAt).toBeGreaterThan(stopDate!.getTime());
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await stat(second.file).then(() => true, () => false)).toBe(false);
    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1 }));
    expect(history.events?.[0]?.type).toBe('ExecutionAborted');
  });

  it('releases a callback task when the handler calls SendTaskSuccess through AWS_ENDPOINT_URL', async () => {
    const sfn = cloud.clients.sfn;
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({
        name: 'callback-in-cloud',
        roleArn: ROLE,
        definition: JSON.stringify({
          StartAt: 'Await',
          States: {
            Await: {
              Type: 'Task',
              Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
              Parameters: { FunctionName: 'callback-completer', Payload: { 'dispatchId.$': '$$.Execution.Name', 'taskToken.$': '$$.Task.Token' } },
              HeartbeatSeconds: 30,
              End: true,
            },
          },
        }),
      }),
    );
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'dispatch-callback' }));
    const done = await finished(executionArn!);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({ releasedFor: 'dispatch-callback' });
  });

  it('starts and describes an execution with the AWS CLI', async () => {
    const { stateMachineArn } = await cloud.clients.sfn.send(
      new CreateStateMachineCommand({
        name: 'cli-machine',
        roleArn: ROLE,
        definition: JSON.stringify({ StartAt: 'Shape', States: { Shape: { Type: 'Pass', Parameters: { 'got.$': '$.n' }, End: true } } }),
      }),
    );
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_DEFAULT_REGION: cloud.region, AWS_PAGER: '' };
    const aws = (...args: string[]) => promisify(execFile)('aws', ['--endpoint-url', cloud.endpoint, '--output', 'json', ...args], { env, timeout: 30_000 });
    const started = JSON.parse((await aws('stepfunctions', 'start-execution', '--state-machine-arn', stateMachineArn!, '--name', 'cli-run', '--input', '{"n":7}')).stdout) as {
      executionArn: string;
    };
    expect(started.executionArn).toMatch(/:execution:cli-machine:cli-run$/u);
    await finished(started.executionArn);
    const described = JSON.parse((await aws('stepfunctions', 'describe-execution', '--execution-arn', started.executionArn)).stdout) as {
      status: string;
      output: string;
    };
    expect(described.status).toBe('SUCCEEDED');
    expect(JSON.parse(described.output)).toEqual({ got: 7 });
  });
});
