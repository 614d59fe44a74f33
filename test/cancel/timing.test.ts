// Cancels that land at chosen moments: while a Batch job waits in RUNNABLE, while a quantum
// task is QUEUED, between an executor's steps (made wide with injected latency), and a parent's
// cancel cut between flagging a child dispatch's quantum task and stopping it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand, ListJobsCommand } from '@aws-sdk/client-batch';
import { GetQuantumTaskCommand, type GetQuantumTaskCommandOutput } from '@aws-sdk/client-braket';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../sdk/aws.ts';
import { DEFAULTS } from '../../sdk/contract.ts';
import { openCancel, workOnCancel } from '../../sdk/runtime/cancel.ts';
import { runtimeConfigFromOutputs } from '../../sdk/runtime/config.ts';
import { runtimeContextFrom, withInvocationSignal } from '../../sdk/runtime/context.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { beats, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({ batchDelays: { submittedMs: 20, pendingMs: 20, runnableMs: 4_000, startingMs: 20 }, braketQueueDelayMs: QUEUE_MS, braketRunMs: RUN_MS }, FIXTURES);
  // Warm the step and cancel handlers, so the windows below are not eaten by cold starts.
  const warm = (await h.client.dispatch(wf.quick)(h.dir)).id;
  await h.client.getResult(warm, { wait: true });
  await h.client.cancel(warm);
}, 60_000);
afterAll(async () => h?.close());
afterEach(() => h.cloud.faults.clear());

const fresh = async (name: string) => {
  const dir = join(h.dir, name);
  (await import('node:fs')).mkdirSync(dir);
  return dir;
};
const QUEUE_MS = 4_000;
const RUN_MS = 6_000; // a wide RUNNING window: the cancel must land inside it on a loaded machine
const quantumTask = (arn: string) => h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: arn }));

/**
 * What a cancelled quantum task left behind, observed over the wire once the moment its result
 * would have been written (created + queue + run time) has passed: its status in the local
 * Braket, and the objects in its output directory in the local S3.
 */
async function afterItWouldHaveEnded(task: GetQuantumTaskCommandOutput) {
  const wouldEndAt = task.createdAt!.getTime() + QUEUE_MS + RUN_MS + 1_000;
  await new Promise((r) => setTimeout(r, Math.max(0, wouldEndAt - Date.now())));
  const after = await quantumTask(task.quantumTaskArn!);
  const key = `${after.outputS3Directory!}/results.json`;
  const head = await h.cloud.clients.s3.send(new HeadObjectCommand({ Bucket: after.outputS3Bucket!, Key: key })).then(
    () => 'found',
    (error: unknown) => (error as { name?: string }).name,
  );
  const listed = await h.cloud.clients.s3.send(new ListObjectsV2Command({ Bucket: after.outputS3Bucket!, Prefix: `${after.outputS3Directory!}/` }));
  return { status: after.status, head, keys: (listed.Contents ?? []).map((o) => o.Key) };
}

const jobStatus = async (handle: string) =>
  (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [handle.split('/').pop()!] }))).jobs![0]!;

describe('a queued Batch job (RUNNABLE)', () => {
  it('is cancelled with CancelJob and never starts', async () => {
    const dir = await fresh('runnable');
    const id = (await h.client.dispatch(wf.batchRunning)(dir)).id;
    const handle = await waitFor('job handle', async () => (await h.client.getResult(id)).nodes[0]!.jobHandle);
    await waitFor('RUNNABLE', async () => (await jobStatus(handle)).status === 'RUNNABLE');
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'queued too long' });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'CancelJob', status: 'CANCELLED' });
    const job = await jobStatus(handle);
    expect(job.status).toBe('FAILED');
    expect(job.startedAt).toBeUndefined();
    // Past the moment it would have started: it never ran.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(existsSync(join(dir, 'job.pids'))).toBe(false);
    expect(beats(join(dir, 'job.beat'))).toBe(0);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(result.nodes[0]!.cancelledBy).toBe('CancelJob');
  }, 60_000);
});

describe('a QUEUED quantum task', () => {
  it('is cancelled with CancelQuantumTask and produces no result', async () => {
    const dir = await fresh('queued-braket');
    const id = (await h.client.dispatch(wf.braketRunning)(dir)).id;
    const handle = await waitFor('task handle', async () => (await h.client.getResult(id)).nodes[0]!.jobHandle);
    const before = await quantumTask(handle);
    expect(before.status).toBe('QUEUED');
    const calls = h.cloud.requestCounters.get('braket', 'CancelQuantumTask');
    const report = await h.client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ method: 'CancelQuantumTask', status: 'CANCELLED' });
    expect(h.cloud.requestCounters.get('braket', 'CancelQuantumTask')).toBe(calls + 1);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    // Past the moment it would have run and written its result: it stayed CANCELLED, nothing in S3.
    expect(await afterItWouldHaveEnded(before)).toEqual({ status: 'CANCELLED', head: 'NotFound', keys: [] });
  }, 40_000);
});

describe('a RUNNING quantum task', () => {
  it('is cancelled with CancelQuantumTask while it runs', async () => {
    const dir = await fresh('running-braket');
    const id = (await h.client.dispatch(wf.braketRunning)(dir)).id;
    const handle = await waitFor('task handle', async () => (await h.client.getResult(id)).nodes[0]!.jobHandle);
    const running = await waitFor('RUNNING', async () => {
      const task = await quantumTask(handle);
      return task.status === 'RUNNING' ? task : undefined;
    }, 10_000);
    const calls = h.cloud.requestCounters.get('braket', 'CancelQuantumTask');
    const report = await h.client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ method: 'CancelQuantumTask', status: 'CANCELLED' });
    expect(h.cloud.requestCounters.get('braket', 'CancelQuantumTask')).toBe(calls + 1);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(result.nodes[0]!.cancelledBy).toBe('CancelQuantumTask');
    // Past the end of its run time: it stayed CANCELLED and wrote no results.json.
    expect(await afterItWouldHaveEnded(running)).toEqual({ status: 'CANCELLED', head: 'NotFound', keys: [] });
  }, 40_000);
});

describe('a cancel landing between executor steps', () => {
  it('after the upload and before the submit: stops there; no job is ever submitted', async () => {
    const dir = await fresh('between-upload');
    // Warm up so the window below is the upload, not a cold start.
    await h.client.getResult((await h.client.dispatch(wf.quick)(await fresh('warm1'))).id, { wait: true });
    const submitted = h.cloud.requestCounters.get('batch', 'SubmitJob');
    // The upload takes 4 s: the cancel below lands inside it even on a loaded machine.
    h.cloud.faults.add({ service: 's3', operation: 'PutObject', latencyMs: 4_000 });
    const id = (await h.client.dispatch(wf.batchRunning)(dir)).id;
    await waitFor('node 0 RUNNING', async () => (await h.client.getResult(id)).nodes[0]!.status === 'RUNNING');
    const report = await h.client.cancel(id, { taskIds: [0] });
    h.cloud.faults.clear();
    expect(report.cancelled[0]).toMatchObject({ id: 0, previousStatus: 'RUNNING' });
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'between-steps' });
    expect(result.nodes[0]!.jobHandle).toBeUndefined();
    expect(h.cloud.requestCounters.get('batch', 'SubmitJob')).toBe(submitted);
  }, 60_000);

  it('after the submit and before the job handle is stored: the job is stopped, nothing is left running', async () => {
    const dir = await fresh('between-submit');
    h.cloud.faults.add({ service: 'batch', operation: 'SubmitJob', latencyMs: 4_000 });
    const submitted = h.cloud.requestCounters.get('batch', 'SubmitJob');
    const id = (await h.client.dispatch(wf.batchRunning)(dir)).id;
    await waitFor('submit under way', () => h.cloud.requestCounters.get('batch', 'SubmitJob') > submitted);
    const report = await h.client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ id: 0, previousStatus: 'RUNNING' });
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes[0]!.status).toBe('CANCELLED');
    const job = await jobStatus(result.nodes[0]!.jobHandle!);
    expect(job.status).toBe('FAILED');
    await new Promise((r) => setTimeout(r, 4_500));
    expect(existsSync(join(dir, 'job.pids'))).toBe(false);
    const running = await h.cloud.clients.batch.send(new ListJobsCommand({ jobQueue: 'valence-queue', jobStatus: 'RUNNING' }));
    expect(running.jobSummaryList ?? []).toEqual([]);
  }, 60_000);
});

describe("a parent's whole-dispatch cancel cut inside its child dispatch", () => {
  // The cut the demo hit under load: the parent's request opened the child's request and
  // flagged the child's quantum task, then its invocation was cut (the endpoint's answer
  // budget, a deadline) before the task was stopped. Reproduced deterministically: the attempt
  // runs under a signal the test aborts once CancelQuantumTask has reached the local Braket,
  // which holds that call and answers it with a throttle, so the cut call stops nothing. The
  // next attempt is the deployed cancel handler's continuation. It must resume the child's
  // request under the same id (derivedChildRequestId in sdk/runtime/cancel.ts) and stop the
  // task. A second child request would find the task flagged by the first (merged, not its to
  // stop), and the task would run to its end.
  it('is resumed by the next attempt: the task is cancelled, both dispatches end CANCELLED with nothing running', async () => {
    const dir = await fresh('cut');
    const id = (await h.client.dispatch(wf.braketOuter)(dir)).id;
    const childId = await waitFor('child dispatch', async () => (await h.client.getResult(id)).nodes[0]!.childDispatchId, 30_000);
    const handle = await waitFor('task handle', async () => (await h.client.getResult(childId)).nodes[0]!.jobHandle, 30_000);
    const outputs = await h.client.outputs();
    const ctx = runtimeContextFrom(
      runtimeConfigFromOutputs(outputs, DEFAULTS.stackName),
      createAwsClients({ endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials }),
    );
    const cancels = () => h.cloud.requestCounters.get('braket', 'CancelQuantumTask');
    const before = cancels();
    h.cloud.faults.add({ service: 'braket', operation: 'CancelQuantumTask', latencyMs: 3_000, errorRate: 1 });
    const record = await openCancel(ctx, id, { requestedBy: 'cut-test', reason: 'cut' });
    const cut = new AbortController();
    const attempt = workOnCancel(withInvocationSignal(ctx, cut.signal), record);
    await waitFor("the child request's CancelQuantumTask", () => cancels() > before, 20_000);
    cut.abort(new Error('the invocation was cut'));
    await expect(attempt).rejects.toThrow();
    h.cloud.faults.clear();

    // What the cut left: the task flagged by the child's request and still not stopped.
    const flagged = (await h.client.getResult(childId)).nodes[0]!;
    expect(flagged).toMatchObject({ status: 'RUNNING', cancelRequested: true });
    const task = await quantumTask(handle);
    expect(['QUEUED', 'RUNNING']).toContain(task.status);

    const invoked = await h.cloud.clients.lambda.send(
      new InvokeCommand({ FunctionName: 'valence-cancel', Payload: Buffer.from(JSON.stringify({ valenceCancelContinuation: { dispatchId: id, requestId: record.requestId, hop: 39 } })) }),
    );
    expect(invoked.FunctionError).toBeUndefined();
    await waitFor('the task CANCELLED', async () => (await quantumTask(handle)).status === 'CANCELLED', 20_000);
    // The cut call and the resumed one: the stop was sent after the cut.
    expect(cancels()).toBeGreaterThanOrEqual(before + 2);
    const child = await h.client.getResult(childId, { wait: true, timeoutMs: 30_000 });
    expect(child.status).toBe('CANCELLED');
    expect(child.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(child.nodes[0]!.cancelledBy).toBe('CancelQuantumTask');
    const parent = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(parent.status).toBe('CANCELLED');
    expect(parent.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    const done = await h.client.getCancelReport(id, record.requestId);
    expect(done.state).toBe('DONE');
    expect(done.report!.cancelled.map((c) => [c.id, c.status])).toEqual([
      [0, 'CANCELLED'],
      [1, 'CANCELLED'],
    ]);
    // Past the moment it would have run and written its result: it stayed CANCELLED, nothing in S3.
    expect(await afterItWouldHaveEnded(task)).toEqual({ status: 'CANCELLED', head: 'NotFound', keys: [] });
  }, 90_000);
});
