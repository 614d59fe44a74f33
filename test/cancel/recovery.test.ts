// Cancellation's recovery and error branches, on the local cloud with real AWS SDK clients:
// a redelivered callback event for a submitted job, a lease holder that dies with a cancel
// pending, a cancel that lands while Batch re-queues a failed attempt, Braket's
// ConflictException and Step Functions' ExecutionDoesNotExist, and a packed member cancelled
// before its array job is submitted. Each proves its effect by observation.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DisableRuleCommand, EnableRuleCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deserialize } from '../../sdk/runtime/serialization.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from '../runtime/fixtures/paths.ts';
import { beats, heartbeatStopped, waitFor } from './observe.ts';

const PATHS = new URL('../runtime/fixtures/paths.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness(
    {
      // A failed Batch attempt waits 2 s in RUNNABLE before the next: the window a cancel
      // lands in. The lease is long enough that a crashed holder's lease outlives the
      // test's reaction to the crash.
      batchDelays: { submittedMs: 20, pendingMs: 20, runnableMs: 2_000, startingMs: 20 },
      braketQueueDelayMs: 50,
      braketRunMs: 50,
      environment: { VALENCE_LEASE_MS: '8000' },
    },
    PATHS,
  );
}, 150_000);
afterAll(async () => h?.close());
afterEach(() => h?.cloud.faults.clear());

let n = 0;
function scratch(): string {
  const dir = join(h.dir, `t${n++}`);
  mkdirSync(dir);
  return dir;
}
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);
const ran = (dir: string): string[] => lines(join(dir, 'ran.log'));
const nodeOf = async (id: string, nodeId: number) => (await h.client.getResult(id)).nodes[nodeId]!;
const jobIdOf = (handle: string): string => handle.slice(handle.lastIndexOf('/') + 1);
/**
 * The dispatch once it ended, within a generous ceiling (a loaded 2-core machine); past the
 * ceiling, the dispatch as it stands, so the status assertions that follow say what hung.
 */
async function settled(id: string, timeoutMs = 90_000) {
  try {
    return await h.client.getResult(id, { wait: true, timeoutMs });
  } catch (error) {
    if ((error as { code?: string }).code !== 'RESULT_TIMEOUT') throw error;
    return h.client.getResult(id);
  }
}

describe('a retried callback state whose job was already submitted', () => {
  // A crash between recording the job handle and returning cannot be timed from outside, so
  // the retry is delivered as Step Functions delivers one: the deployed step function is
  // invoked again with the node's run event and its task token.
  it('records the token, submits nothing, and the one job completes the node', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.batchGated)(dir)).id;
    await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 1, 30_000);
    const outputs = await h.client.outputs();
    const item = await h.cloud.clients.dynamodb.send(new GetItemCommand({ TableName: outputs.tableName, Key: { pk: { S: `D#${id}` }, sk: { S: 'N#000000' } } }));
    const taskToken = item.Item?.['taskToken']?.S;
    expect(taskToken).toBeTruthy();
    const submitted = h.cloud.requestCounters.get('batch', 'SubmitJob');
    const invoked = await h.cloud.clients.lambda.send(
      new InvokeCommand({ FunctionName: 'valence-step', Payload: Buffer.from(JSON.stringify({ action: 'run', dispatchId: id, nodeId: 0, taskToken })) }),
    );
    expect(invoked.FunctionError).toBeUndefined();
    expect(JSON.parse(Buffer.from(invoked.Payload!).toString('utf8'))).toEqual({ nodeId: 0, status: 'RUNNING' });
    expect(h.cloud.requestCounters.get('batch', 'SubmitJob')).toBe(submitted);
    writeFileSync(join(dir, 'job.go'), '');
    const result = await settled(id);
    expect(result.nodes.map((node) => node.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(lines(join(dir, 'job.pids'))).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(dir, 'received.json'), 'utf8'))).toBe('job done');
  }, 150_000);
});

describe('a lease holder that dies while a cancel is pending', () => {
  it('ends the node CANCELLED; the electron never runs again and its child never runs', async () => {
    const dir = scratch();
    // The first step invocation from now on (node 0's) is killed 1.5 s into its run.
    h.cloud.faults.crashNthInvocation(1, 'valence-step', 1_500);
    const id = (await h.client.dispatch(wf.lambdaGated)(dir)).id;
    await waitFor('holder beats', () => beats(join(dir, 'holder.beat')) > 3, 20_000);
    await waitFor('holder crashed', () => heartbeatStopped(join(dir, 'holder.beat'), 300), 20_000);
    expect((await nodeOf(id, 0)).status).toBe('RUNNING');
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'holder gone' });
    expect(report.cancelled.map((c) => [c.id, c.previousStatus])).toEqual([
      [0, 'RUNNING'],
      [1, 'NEW_OBJECT'],
    ]);
    const result = await settled(id);
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED' });
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED' });
    // Nothing ran on: the heartbeat never resumed and the electron started once.
    expect(await heartbeatStopped(join(dir, 'holder.beat'), 1_000)).toBe(true);
    expect(lines(join(dir, 'holder.pid'))).toHaveLength(1);
    expect(ran(dir)).toEqual([]);
  }, 150_000);
});

describe('a cancel during retry backoff', () => {
  it('cancels the re-queued job; the second attempt never runs and the child never runs', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.batchRetrying)(dir)).id;
    await waitFor('first attempt ran', () => lines(join(dir, 'flaky.runs')).length === 1, 30_000);
    const jobId = jobIdOf(await waitFor('job handle', async () => (await nodeOf(id, 0)).jobHandle, 10_000));
    const describeJob = async () => (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs![0]!;
    await waitFor('re-queued after the failed attempt', async () => {
      const job = await describeJob();
      return job.status === 'RUNNABLE' && job.attempts?.length === 1;
    }, 10_000);
    const report = await h.client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ id: 0, previousStatus: 'RUNNING', method: 'CancelJob' });
    const result = await settled(id);
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'CancelJob' });
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED' });
    // Longer than the re-queue delay: a second attempt would have started by now.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const job = await describeJob();
    expect(job.status).toBe('FAILED');
    expect(job.attempts).toHaveLength(1);
    expect(lines(join(dir, 'flaky.runs'))).toHaveLength(1);
    expect(ran(dir)).toEqual([]);
  }, 150_000);
});

describe("cancel's error branches", () => {
  it('Braket ConflictException (the task already ended): no error, the node ends COMPLETED with its counts', async () => {
    const dir = scratch();
    const events = h.cloud.clients.eventbridge;
    // The task's completion event is held back, so the node still waits when the cancel lands.
    await events.send(new DisableRuleCommand({ Name: 'valence-braket-events' }));
    try {
      const id = (await h.client.dispatch(wf.braketBell)(dir)).id;
      const taskArn = await waitFor('task created', async () => (await nodeOf(id, 0)).jobHandle, 20_000);
      await waitFor('task COMPLETED', async () => (await h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: taskArn }))).status === 'COMPLETED', 20_000);
      expect((await nodeOf(id, 0)).status).toBe('RUNNING');
      const cancels = h.cloud.requestCounters.get('braket', 'CancelQuantumTask');
      const report = await h.client.cancel(id, { taskIds: [0] });
      expect(h.cloud.requestCounters.get('braket', 'CancelQuantumTask')).toBe(cancels + 1);
      // The task had already ended: the report lists the node as already terminal, not as cancelled.
      expect(report.cancelled.find((c) => c.id === 0)).toBeUndefined();
      expect(report.alreadyTerminal).toContainEqual({ id: 0, status: 'COMPLETED' });
      const result = await settled(id);
      expect(result.nodes[0]).toMatchObject({ status: 'COMPLETED' });
      // The output is the simulator's real counts, read back from the node's payload in S3.
      const outputs = await h.client.outputs();
      const object = await h.cloud.clients.s3.send(new GetObjectCommand({ Bucket: outputs.bucketName, Key: `dispatches/${id}/nodes/0/output` }));
      const counts = deserialize<Record<string, number>>(await object.Body!.transformToString('utf8'));
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(100);
      expect(Object.keys(counts).every((bits) => bits === '00' || bits === '11')).toBe(true);
      expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'not-started' });
      expect(existsSync(join(dir, 'received.json'))).toBe(false);
    } finally {
      await events.send(new EnableRuleCommand({ Name: 'valence-braket-events' }));
    }
  }, 150_000);

  it('Step Functions ExecutionDoesNotExist: the whole-dispatch cancel reports the execution not stopped and still stops every node', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.lambdaGated)(dir)).id;
    await waitFor('holder beats', () => beats(join(dir, 'holder.beat')) > 3, 20_000);
    h.cloud.faults.add({ service: 'states', operation: 'StopExecution', errorRate: 1, maxErrors: 1, error: { status: 400, code: 'ExecutionDoesNotExist' } });
    const stops = h.cloud.requestCounters.get('states', 'StopExecution');
    const report = await h.client.cancel(id, { reason: 'everything' });
    expect(h.cloud.requestCounters.get('states', 'StopExecution')).toBe(stops + 1);
    expect(report.executionStopped).toBe(false);
    expect(report.cancelled.map((c) => [c.id, c.status])).toEqual([
      [0, 'CANCELLED'],
      [1, 'CANCELLED'],
    ]);
    expect(await heartbeatStopped(join(dir, 'holder.beat'))).toBe(true);
    const result = await settled(id);
    expect(result.status).toBe('CANCELLED');
    expect(ran(dir)).toEqual([]);
  }, 150_000);
});


