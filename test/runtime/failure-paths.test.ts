// Failure and recovery paths no other test reaches, on the local cloud with real AWS SDK
// clients: a job that fails (Batch, LocalExecutor, Braket) fails its node and never lets its
// descendants run; a job stopped from outside valence; a completion event that was lost and
// the sweeper that repairs it; a hybrid job whose output reaches its child.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand, TerminateJobCommand } from '@aws-sdk/client-batch';
import { CancelQuantumTaskCommand, GetJobCommand, GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { DisableRuleCommand, EnableRuleCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { alive, beats, heartbeatStopped, waitFor } from '../cancel/observe.ts';
import { startHarness, type RuntimeHarness } from './harness.ts';
import * as wf from './fixtures/paths.ts';

const PATHS = new URL('./fixtures/paths.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  // Quantum tasks stay QUEUED for 1.5 s, long enough to cancel one from outside.
  h = await startHarness({ braketQueueDelayMs: 1_500, braketRunMs: 50 }, PATHS);
}, 60_000);
afterAll(async () => h?.close());

let n = 0;
/** A fresh directory per test, so one test's files never satisfy another's check. */
function scratch(): string {
  const dir = join(h.dir, `t${n++}`);
  mkdirSync(dir);
  return dir;
}
const ran = (dir: string): string[] => (existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n') : []);
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);
const nodeOf = async (id: string, nodeId: number) => (await h.client.getResult(id)).nodes[nodeId]!;

describe('a job that fails', () => {
  // Both descendants end `upstream-failed`: the grandchild's parent is CANCELLED, but its root
  // cause is the failure, and it travels down. The node reports the electron's own error (the
  // job runner stores it; Batch and LocalExecutor read it).
  it.each([
    ['Batch', wf.batchFails, 'batch-fail.log', { name: 'RangeError', message: 'batch electron failed on purpose' }],
    ['LocalExecutor', wf.localFails, 'local-fail.log', { name: 'RangeError', message: 'local electron failed on purpose' }],
  ] as const)('%s: its node ends FAILED with the error; child and grandchild end CANCELLED upstream and never ran', async (_what, lattice, log, error) => {
    const dir = scratch();
    const id = (await h.client.dispatch(lattice)(dir)).id;
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 40_000 });
    // The electron really ran once (its process wrote its pid) and really failed.
    expect(lines(join(dir, log))).toHaveLength(1);
    expect(result.nodes[0]).toMatchObject({ status: 'FAILED' });
    expect(result.nodes[0]!.error).toMatchObject(error);
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed', cancelReason: 'upstream-failed: node 0 FAILED' });
    // The grandchild's parent is CANCELLED, yet its root cause is the failure.
    expect(result.nodes[2]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed', cancelReason: 'upstream-failed: node 1 CANCELLED' });
    for (const descendant of [1, 2]) expect(result.nodes[descendant]!.startedAt).toBeUndefined();
    expect(ran(dir)).toEqual([]);
    expect(result.status).toBe('FAILED');
  }, 60_000);

  it('LocalExecutor: a process that exits without storing an error reports its exit code', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.localExits)(dir)).id;
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 40_000 });
    expect(lines(join(dir, 'local-exit.log'))).toHaveLength(1);
    expect(result.nodes[0]).toMatchObject({ status: 'FAILED', error: { name: 'ProcessExited', message: 'Local job for node 0 exited with code 3' } });
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed' });
    expect(ran(dir)).toEqual([]);
  }, 60_000);

  it('Braket: a program the simulator rejects fails the task and the node; descendants never ran', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.braketFails)(dir)).id;
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 40_000 });
    const taskArn = result.nodes[0]!.jobHandle!;
    const task = await h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: taskArn }));
    expect(task.status).toBe('FAILED');
    expect(result.nodes[0]).toMatchObject({ status: 'FAILED' });
    expect(result.nodes[0]!.error?.message).toBe(task.failureReason);
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed' });
    expect(result.nodes[2]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed' });
    expect(ran(dir)).toEqual([]);
  }, 60_000);
});

describe('a job cancelled by a request', () => {
  // A requested cancel flags the node's descendants itself (`not-started`, with the request's
  // reason); where one ends through its parent instead it is `upstream-cancelled`. Never
  // `upstream-failed`: nothing failed.
  it('Batch: its child and grandchild end CANCELLED by the request, not upstream-failed, and never ran', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.batchGatedChain)(dir)).id;
    await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 1, 30_000);
    const pid = Number(lines(join(dir, 'job.pids'))[0]);
    await h.client.cancel(id, { taskIds: [0], reason: 'not needed' });
    await waitFor('job process gone', () => !alive(pid), 20_000);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED' });
    expect(result.nodes[0]!.cancelledBy).not.toMatch(/^upstream-/);
    for (const descendant of [1, 2]) {
      expect(result.nodes[descendant]).toMatchObject({ status: 'CANCELLED' });
      expect(result.nodes[descendant]!.cancelledBy).toMatch(/^(not-started|upstream-cancelled)$/);
    }
    for (const descendant of [1, 2]) expect(result.nodes[descendant]!.startedAt).toBeUndefined();
    expect(ran(dir)).toEqual([]);
  }, 60_000);
});

describe('a job stopped from outside valence', () => {
  it('Batch TerminateJob by a plain client: the process group is gone, the node FAILED with that reason, the child never ran', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.batchGated)(dir)).id;
    await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 3, 30_000);
    const pid = Number(lines(join(dir, 'job.pids'))[0]);
    expect(alive(pid)).toBe(true);
    const handle = (await nodeOf(id, 0)).jobHandle!;
    await h.cloud.clients.batch.send(new TerminateJobCommand({ jobId: handle.slice(handle.lastIndexOf('/') + 1), reason: 'operator stopped it' }));
    await waitFor('job process gone', () => !alive(pid), 10_000);
    expect(await heartbeatStopped(join(dir, 'job.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    // Batch reports a terminated job as FAILED with the caller's reason; valence did not ask
    // for a cancel, so the node failed (it is not presented as a valence cancellation).
    expect(result.nodes[0]).toMatchObject({ status: 'FAILED' });
    expect(result.nodes[0]!.error?.message).toMatch(/operator stopped it/);
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed' });
    expect(existsSync(join(dir, 'received.json'))).toBe(false);
    expect(lines(join(dir, 'job.pids'))).toHaveLength(1);
  }, 60_000);

  it('Braket CancelQuantumTask by a plain client: the task is CANCELLED, no result was written, the node CANCELLED, the child never ran', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.braketBell)(dir)).id;
    const taskArn = await waitFor('task created', async () => (await nodeOf(id, 0)).jobHandle, 20_000);
    const queued = await h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: taskArn }));
    expect(['CREATED', 'QUEUED']).toContain(queued.status);
    await h.cloud.clients.braket.send(new CancelQuantumTaskCommand({ quantumTaskArn: taskArn, clientToken: 'outside-valence' }));
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    const task = await h.cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: taskArn }));
    expect(task.status).toBe('CANCELLED');
    await expect(
      h.cloud.clients.s3.send(new HeadObjectCommand({ Bucket: task.outputS3Bucket, Key: `${task.outputS3Directory!.replace(/\/$/, '')}/results.json` })),
    ).rejects.toMatchObject({ name: 'NotFound' });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'CancelQuantumTask' });
    expect(result.nodes[1]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-cancelled' });
    expect(existsSync(join(dir, 'received.json'))).toBe(false);
  }, 60_000);
});

describe('a completion event that was lost', () => {
  // The harness's local cloud runs no scheduled sweep (startLocalCloud's default), so only
  // this test's own invocation of the sweeper can repair the node: `completed: 1` is its work.
  it('leaves the node RUNNING after its job SUCCEEDED; an explicit sweep completes it and the child gets its output', async () => {
    const dir = scratch();
    const events = h.cloud.clients.eventbridge;
    await events.send(new DisableRuleCommand({ Name: 'valence-batch-events' }));
    try {
      const id = (await h.client.dispatch(wf.batchGated)(dir)).id;
      await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 1, 30_000);
      const handle = (await nodeOf(id, 0)).jobHandle!;
      const jobId = handle.slice(handle.lastIndexOf('/') + 1);
      writeFileSync(join(dir, 'job.go'), '');
      await waitFor('job SUCCEEDED', async () => (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs?.[0]?.status === 'SUCCEEDED', 20_000);
      // The event went nowhere: the node waits on, its child has not run.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await nodeOf(id, 0)).status).toBe('RUNNING');
      expect(existsSync(join(dir, 'received.json'))).toBe(false);
      const invoked = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from('{}') }));
      expect(invoked.FunctionError).toBeUndefined();
      const report = JSON.parse(Buffer.from(invoked.Payload!).toString('utf8')) as { completed: number; errors: string[] };
      expect(report.errors).toEqual([]);
      expect(report.completed).toBe(1);
      const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
      expect(result.status).toBe('COMPLETED');
      expect(result.nodes.map((node) => node.status)).toEqual(['COMPLETED', 'COMPLETED']);
      expect(JSON.parse(readFileSync(join(dir, 'received.json'), 'utf8'))).toBe('job done');
      expect(lines(join(dir, 'job.pids'))).toHaveLength(1);
    } finally {
      await events.send(new EnableRuleCommand({ Name: 'valence-batch-events' }));
    }
  }, 60_000);
});

describe('a hybrid job that succeeds', () => {
  it('runs its script once and hands its job ARN and status to the child', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.hybridSucceeds)(dir)).id;
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 40_000 });
    expect(result.status).toBe('COMPLETED');
    const jobArn = result.nodes[0]!.jobHandle!;
    const job = await h.cloud.clients.braket.send(new GetJobCommand({ jobArn }));
    expect(job.status).toBe('COMPLETED');
    expect(lines(join(dir, 'hybrid.log'))).toEqual(['ran']);
    expect(JSON.parse(readFileSync(join(dir, 'received.json'), 'utf8'))).toEqual({ jobArn, status: 'COMPLETED' });
  }, 60_000);
});
