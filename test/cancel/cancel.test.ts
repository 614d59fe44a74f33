// Cancellation on the local cloud, proven by observation: heartbeat files stop growing,
// processes are gone, no job is left, nothing was uploaded or submitted for a node that never
// started — and the statuses and the report say what really happened.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand, ListJobsCommand } from '@aws-sdk/client-batch';
import { GetJobCommand } from '@aws-sdk/client-braket';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { alive, beats, heartbeatStopped, lastBeat, stopsBeating, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

const nodeOf = async (dispatchId: string, id: number) => (await h.client.getResult(dispatchId)).nodes[id]!;
const running = (dispatchId: string, id: number) => waitFor(`node ${id} RUNNING`, async () => (await nodeOf(dispatchId, id)).status === 'RUNNING');
const sub = (name: string) => join(h.dir, name);

describe('cancelling a running Lambda electron', () => {
  it('aborts its signal; it stops, the child never runs, the node ends CANCELLED', async () => {
    const id = (await h.client.dispatch(wf.lambdaRunning)(h.dir)).id;
    await waitFor('beats', () => beats(sub('polite.beat')) > 3);
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'not needed' });
    expect(await heartbeatStopped(sub('polite.beat'))).toBe(true);
    expect(report.cancelled.map((c) => [c.id, c.previousStatus, c.status])).toEqual([
      [0, 'RUNNING', 'CANCELLED'],
      [1, 'NEW_OBJECT', 'CANCELLED'],
    ]);
    expect(report.cancelled[0]!.method).toBe('signal');
    // Node 1 is marked after the running electron was told to stop (running work first): by this
    // request (not-started), or by its own state once its stopped parent released it
    // (upstream-cancelled, which the report counts as this request's). It never ran either way.
    expect(['not-started', 'upstream-cancelled']).toContain(report.cancelled[1]!.method);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(result.nodes[0]!.cancelledBy).toBe('signal');
    expect(existsSync(sub('ran.log'))).toBe(false);
    expect(result.cancelRequests).toHaveLength(1);
    expect(result.cancelRequests[0]).toMatchObject({ reason: 'not needed', targets: [0] });
    expect(result.cancelRequests[0]!.requestedBy).toMatch(/^arn:aws:iam::\d{12}:user\//);
  });

  it('terminates an electron that ignores its signal once its grace period ends', async () => {
    const id = (await h.client.dispatch(wf.lambdaStubborn)(h.dir)).id;
    await waitFor('beats', () => beats(sub('stubborn.beat')) > 3);
    const report = await h.client.cancel(id, { taskIds: [0] });
    await stopsBeating(sub('stubborn.beat'));
    expect(report.cancelled[0]).toMatchObject({ id: 0, status: 'CANCELLED', method: 'terminated' });
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.status).toBe('CANCELLED');
    // graceSeconds is 1: terminated after the grace period, not before. The kill time is the
    // last beat the thread wrote (every ~50 ms until it dies), measured from the moment it saw
    // its signal abort; a loaded machine can stretch a beat, hence the slack below 1 s.
    const abortedAt = Number(readFileSync(sub('stubborn.aborted'), 'utf8'));
    const killedAfter = lastBeat(sub('stubborn.beat'))! - abortedAt;
    // The 1 s grace, less the beat interval and a scheduling margin for a loaded 2-core machine.
    expect(killedAfter).toBeGreaterThanOrEqual(1_000 - 250);
    expect(killedAfter).toBeLessThan(5_000);
  });
});

describe('cancelling a running Batch job', () => {
  it('terminates the whole process group; the job ends FAILED with the reason; the node CANCELLED', async () => {
    const id = (await h.client.dispatch(wf.batchRunning)(h.dir)).id;
    await waitFor('job beats', () => beats(sub('job.beat')) > 3, 30_000);
    const [pid, grandchild] = readFileSync(sub('job.pids'), 'utf8').split(' ').map(Number) as [number, number];
    expect(alive(pid) && alive(grandchild)).toBe(true);
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'budget exhausted' });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'TerminateJob' });
    await waitFor('process group gone', () => !alive(pid) && !alive(grandchild), 10_000);
    expect(await heartbeatStopped(sub('job.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'TerminateJob' });
    const jobId = result.nodes[0]!.jobHandle!.split('/').pop()!;
    const job = (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs![0]!;
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe('budget exhausted');
    expect(existsSync(sub('ran.log'))).toBe(false);
  }, 60_000);
});

describe('cancelling a LocalExecutor process', () => {
  it('signals its process group and the process is gone', async () => {
    const dir = join(h.dir, 'local');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.localRunning)(dir)).id;
    await waitFor('local beats', () => beats(join(dir, 'local.beat')) > 3, 30_000);
    const pid = Number(readFileSync(join(dir, 'local.pid'), 'utf8'));
    const report = await h.client.cancel(id, { taskIds: [0] });
    expect(report.cancelled.find((c) => c.id === 0)).toMatchObject({ previousStatus: 'RUNNING', status: 'CANCELLED' });
    await waitFor('local process gone', () => !alive(pid), 10_000);
    expect(await heartbeatStopped(join(dir, 'local.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(['signal', 'terminated']).toContain(result.nodes[0]!.cancelledBy);
  }, 60_000);
});

describe('cancelling a node that has not started', () => {
  it('never starts it: nothing uploaded, no job submitted, and its descendants are cancelled too', async () => {
    const submittedBefore = h.cloud.requestCounters.get('batch', 'SubmitJob');
    const id = (await h.client.dispatch(wf.notStarted)(h.dir)).id;
    await running(id, 0);
    const report = await h.client.cancel(id, { taskIds: [1] });
    expect(report.cancelled.map((c) => [c.id, c.previousStatus, c.method])).toEqual([
      [1, 'NEW_OBJECT', 'not-started'],
      [2, 'NEW_OBJECT', 'not-started'],
    ]);
    // Let node 0 finish so that node 1's state runs and finds its cancel.
    await h.client.cancel(id, { taskIds: [0] });
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED']);
    expect(result.nodes[1]!.cancelledBy).toBe('not-started');
    expect(result.nodes[1]!.startedAt).toBeUndefined();
    expect(h.cloud.requestCounters.get('batch', 'SubmitJob')).toBe(submittedBefore);
    const outputs = await h.client.outputs();
    await expect(
      h.cloud.clients.s3.send(new HeadObjectCommand({ Bucket: outputs.bucketName, Key: `dispatches/${id}/nodes/1/inputs` })),
    ).rejects.toMatchObject({ name: 'NotFound' });
    expect(existsSync(sub('second.beat'))).toBe(false);
  });
});

// The waits for the first beats are ceilings against hangs only: on a loaded 2-core machine the
// eight nodes' cold starts alone can take over 20 s (CI saw it).
describe('cancelling tasks 1, 3 and 5', () => {
  it('cancels them and all their descendants; every other node completes; the dispatch ends CANCELLED', async () => {
    const id = (await h.client.dispatch(wf.eight)(h.dir)).id;
    await Promise.all([1, 3, 5].map((n) => waitFor(`n${n} beats`, () => beats(sub(`n${n}.beat`)) > 1, 45_000)));
    const report = await h.client.cancel(id, { taskIds: [1, 3, 5] });
    expect(report.cancelled.map((c) => c.id).sort((a, b) => Number(a) - Number(b))).toEqual([1, 3, 4, 5, 6]);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('CANCELLED');
    const status = Object.fromEntries(result.nodes.map((n) => [n.id, n.status]));
    expect(status).toEqual({ 0: 'COMPLETED', 1: 'CANCELLED', 2: 'COMPLETED', 3: 'CANCELLED', 4: 'CANCELLED', 5: 'CANCELLED', 6: 'CANCELLED', 7: 'COMPLETED' });
    for (const n of [1, 3, 5]) expect(await heartbeatStopped(sub(`n${n}.beat`), 200)).toBe(true);
    const ran = readFileSync(sub('ran.log'), 'utf8').trim().split('\n').sort();
    expect(ran).toEqual(['n0', 'n2', 'n7']);
  }, 120_000);
});

describe('cancelling a whole dispatch', () => {
  it('aborts the execution, stops every process and job, and getResult returns promptly', async () => {
    const id = (await h.client.dispatch(wf.eight)(h.dir + '/whole')).id;
    await import('node:fs').then((fs) => fs.mkdirSync(h.dir + '/whole', { recursive: true }));
    const w = (n: string) => join(h.dir, 'whole', n);
    await Promise.all([1, 3, 5].map((n) => waitFor(`n${n} beats`, () => beats(w(`n${n}.beat`)) > 1, 45_000)));
    const asked = Date.now();
    const report = await h.client.cancel(id, { reason: 'stop everything' });
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(report.executionStopped).toBe(true);
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.every((n) => n.status === 'COMPLETED' || n.status === 'CANCELLED')).toBe(true);
    for (const n of [1, 3, 5]) expect(await heartbeatStopped(w(`n${n}.beat`), 200)).toBe(true);
    const exec = await h.cloud.clients.sfn.send(
      new DescribeExecutionCommand({ executionArn: (await h.client.outputs()).stateMachineArnPrefix.replace(':stateMachine:', ':execution:') + `eight:${id}` }),
    );
    expect(exec.status).toBe('ABORTED');
  }, 120_000);
});

describe('cancelling a sublattice', () => {
  it('cancels one node inside the child ("1/2") while the rest of the child completes', async () => {
    const dir = join(h.dir, 'sub1');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.outer)(dir)).id;
    await waitFor('inner slow beats', () => beats(join(dir, 'inner-slow.beat')) > 1);
    const report = await h.client.cancel(id, { taskIds: ['1/2'] });
    expect(report.cancelled.map((c) => [c.id, c.method])).toEqual([['1/2', 'signal']]);
    // The inner electron really stopped: its heartbeat ends, long before the child would finish.
    await stopsBeating(join(dir, 'inner-slow.beat'));
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    const child = await h.client.getResult(result.nodes[1]!.childDispatchId!);
    expect(child.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'CANCELLED', 'COMPLETED']);
    expect(child.status).toBe('CANCELLED');
    expect(result.nodes[1]!.status).toBe('CANCELLED');
  }, 60_000);

  it('cancelling the sublattice node cancels its child dispatch recursively', async () => {
    const dir = join(h.dir, 'sub2');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.outer)(dir)).id;
    await waitFor('inner slow beats', () => beats(join(dir, 'inner-slow.beat')) > 1);
    const report = await h.client.cancel(id, { taskIds: [1] });
    expect(report.cancelled.find((c) => c.id === 1)).toMatchObject({ method: 'child-dispatch' });
    expect(await heartbeatStopped(join(dir, 'inner-slow.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'CANCELLED', 'CANCELLED']);
    const child = await h.client.getResult(result.nodes[1]!.childDispatchId!);
    expect(child.status).toBe('CANCELLED');
    expect(child.nodes.every((n) => n.status === 'COMPLETED' || n.status === 'CANCELLED')).toBe(true);
  }, 60_000);
});

describe('cancelling what already ended', () => {
  it('reports terminal nodes in alreadyTerminal and changes nothing; twice is harmless', async () => {
    const dir = join(h.dir, 'done');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.quick)(dir)).id;
    const before = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(before.status).toBe('COMPLETED');
    for (let i = 0; i < 2; i++) {
      const report = await h.client.cancel(id);
      expect(report.cancelled).toEqual([]);
      expect(report.executionStopped).toBe(false);
      expect(report.alreadyTerminal).toEqual([0, 1, 2, 3].map((n) => ({ id: n, status: 'COMPLETED' })));
    }
    const report = await h.client.cancel(id, { taskIds: [2, 9] });
    // Node 3 is 2's descendant: part of the target set, and terminal too.
    expect(report.alreadyTerminal).toEqual([
      { id: 2, status: 'COMPLETED' },
      { id: 3, status: 'COMPLETED' },
    ]);
    expect(report.notFound).toEqual([9]);
    const after = await h.client.getResult(id);
    expect(after.status).toBe('COMPLETED');
    expect(after.nodes.map((n) => [n.status, n.endedAt])).toEqual(before.nodes.map((n) => [n.status, n.endedAt]));
    expect(after.cancelRequests).toHaveLength(3);
  });
});

describe('a Braket hybrid job', () => {
  it('is cancelled with the hybrid-job CancelJob; its process stops', async () => {
    const dir = join(h.dir, 'hybrid');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.hybridJob)(dir)).id;
    await waitFor('hybrid beats', () => beats(join(dir, 'hybrid.beat')) > 3, 30_000);
    const pid = Number(readFileSync(join(dir, 'hybrid.pid'), 'utf8'));
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'enough' });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'CancelHybridJob' });
    await waitFor('hybrid process gone', () => !alive(pid), 10_000);
    expect(await heartbeatStopped(join(dir, 'hybrid.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'CancelHybridJob' });
    expect(result.nodes[0]!.jobHandle).toMatch(/:job\//);
    const job = await h.cloud.clients.braket.send(new GetJobCommand({ jobArn: result.nodes[0]!.jobHandle! }));
    expect(job.status).toBe('CANCELLED');
    expect(existsSync(join(dir, 'ran.log'))).toBe(false);
  }, 60_000);
});

describe('task packing', () => {
  it('runs a fan-out of one Batch electron as one array job; cancelling one node stops only its child, cancelling all terminates the parent', async () => {
    const dir = join(h.dir, 'packed');
    (await import('node:fs')).mkdirSync(dir);
    const submitted = h.cloud.requestCounters.get('batch', 'SubmitJob');
    const id = (await h.client.dispatch(wf.packed)(dir)).id;
    const names = ['p0', 'p1', 'p2', 'p3'];
    await Promise.all(names.map((n) => waitFor(`${n} beats`, () => beats(join(dir, `${n}.beat`)) > 3, 30_000)));
    expect(h.cloud.requestCounters.get('batch', 'SubmitJob') - submitted).toBe(1);
    const handles = await waitFor('every member records its handle', async () => {
      const hs = (await h.client.getResult(id)).nodes.map((n) => n.jobHandle);
      return hs.every(Boolean) ? (hs as string[]) : undefined;
    });
    const parent = handles[0]!.replace(/:0$/, '');
    expect(handles).toEqual([0, 1, 2, 3].map((i) => `${parent}:${i}`));
    const pids = names.map((n) => Number(readFileSync(join(dir, `${n}.pids`), 'utf8').split(' ')[0]));

    const one = await h.client.cancel(id, { taskIds: [2] });
    expect(one.cancelled).toEqual([expect.objectContaining({ id: 2, method: 'TerminateJob' })]);
    await waitFor('child 2 gone', () => !alive(pids[2]!), 10_000);
    expect(await heartbeatStopped(join(dir, 'p2.beat'))).toBe(true);
    for (const i of [0, 1, 3]) expect(alive(pids[i]!)).toBe(true);

    const all = await h.client.cancel(id);
    expect(all.cancelled.map((c) => c.id).sort(), JSON.stringify(all)).toEqual([0, 1, 3]);
    await waitFor('all children gone', () => pids.every((pid) => !alive(pid)), 10_000);
    const parentJob = (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [parent.split('/').pop()!] }))).jobs![0]!;
    expect(parentJob.status).toBe('FAILED');
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.every((n) => n.status === 'CANCELLED' && n.cancelledBy === 'TerminateJob')).toBe(true);
  }, 60_000);
});

describe('running work first', () => {
  // Issue 13: only running targets need an active stop; the not-started nodes behind them can
  // never start (their parent never completes) and are marked CANCELLED in bulk after the
  // stops are sent. The stop call is held 1.5 s by the local Batch, so the order is visible:
  // while it is held, the four children are still NEW_OBJECT; each is marked after it.
  it('sends the running job its stop before it marks the not-started nodes behind it', async () => {
    const dir = join(h.dir, 'fan');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.batchFan)(dir)).id;
    await waitFor('fan job beats', () => beats(join(dir, 'fan-job.beat')) > 3, 45_000);
    const stops = () => h.cloud.requestCounters.get('batch', 'TerminateJob');
    const before = stops();
    h.cloud.faults.add({ service: 'batch', operation: 'TerminateJob', latencyMs: 1_500 });
    try {
      const answer = h.client.cancel(id, { reason: 'fan' });
      await waitFor('TerminateJob sent', () => stops() > before, 20_000);
      const stopSent = Date.now();
      const atStop = await h.client.getResult(id);
      expect(atStop.nodes.slice(1).map((n) => n.status)).toEqual(['NEW_OBJECT', 'NEW_OBJECT', 'NEW_OBJECT', 'NEW_OBJECT']);
      const report = await answer;
      expect(report.cancelled.map((c) => [c.id, c.method])).toEqual([
        [0, 'TerminateJob'],
        [1, 'not-started'],
        [2, 'not-started'],
        [3, 'not-started'],
        [4, 'not-started'],
      ]);
      const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
      expect(result.status).toBe('CANCELLED');
      expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED', 'CANCELLED', 'CANCELLED']);
      for (const node of result.nodes.slice(1)) expect(Date.parse(node.endedAt!)).toBeGreaterThanOrEqual(stopSent);
      await stopsBeating(join(dir, 'fan-job.beat'));
      expect(existsSync(join(dir, 'ran.log'))).toBe(false);
    } finally {
      h.cloud.faults.clear();
    }
  }, 120_000);
});

describe('leaves nothing running', () => {
  it('no Batch job of this cloud is left RUNNING', async () => {
    const jobs = await h.cloud.clients.batch.send(new ListJobsCommand({ jobQueue: 'valence-queue', jobStatus: 'RUNNING' }));
    expect(jobs.jobSummaryList ?? []).toEqual([]);
  });
});
