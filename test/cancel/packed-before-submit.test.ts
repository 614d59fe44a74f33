// Split from recovery.test.ts: this case hung past its 90 s ceiling under load, two packed
// siblings left RUNNING. The cause: a member's array child runs as soon as the leader submits
// the array job, and on a loaded machine it ended before the member's own invocation recorded
// its handle; its state-change event found no node and was dropped. A member now looks at its
// child once after recording the handle (drivers/batch.ts, endedBeforeRecorded). The second
// case below widens that window on purpose (slow reads delay the members' handles).
// Cancellation's recovery and error branches, on the local cloud with real AWS SDK clients:
// a redelivered callback event for a submitted job, a lease holder that dies with a cancel
// pending, a cancel that lands while Batch re-queues a failed attempt, Braket's
// ConflictException and Step Functions' ExecutionDoesNotExist, and a packed member cancelled
// before its array job is submitted. Each proves its effect by observation.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from '../runtime/fixtures/paths.ts';
import { alive, beats, waitFor } from './observe.ts';

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

describe('a packed member cancelled before its array job is submitted', () => {
  it('gets no inputs and never runs; its siblings run in the one array job', async () => {
    const dir = scratch();
    const submitted = h.cloud.requestCounters.get('batch', 'SubmitJob');
    const id = (await h.client.dispatch(wf.packedBehindGate)(dir)).id;
    await waitFor('gate beats', () => beats(join(dir, 'first.beat')) > 1, 20_000);
    const before = await h.client.getResult(id);
    expect(before.nodes.slice(1).map((node) => node.status)).toEqual(['NEW_OBJECT', 'NEW_OBJECT', 'NEW_OBJECT', 'NEW_OBJECT']);
    const report = await h.client.cancel(id, { taskIds: [2] });
    expect(report.cancelled.map((c) => [c.id, c.method])).toEqual([[2, 'not-started']]);
    writeFileSync(join(dir, 'first.go'), '');
    const result = await settled(id);
    expect(result.nodes.map((node) => node.status)).toEqual(['COMPLETED', 'COMPLETED', 'CANCELLED', 'COMPLETED', 'COMPLETED']);
    expect(result.nodes[2]).toMatchObject({ cancelledBy: 'not-started' });
    expect(result.nodes[2]!.jobHandle).toBeUndefined();
    expect(['p0', 'p1', 'p2', 'p3'].filter((name) => existsSync(join(dir, `${name}.ran`)))).toEqual(['p0', 'p2', 'p3']);
    // One array job for the pack, whose handles all point into it.
    expect(h.cloud.requestCounters.get('batch', 'SubmitJob')).toBe(submitted + 1);
    const parents = new Set([1, 3, 4].map((i) => /job\/(.+):\d+$/.exec(result.nodes[i]!.jobHandle!)![1]));
    expect(parents.size).toBe(1);
    for (const pid of ['p0', 'p2', 'p3'].map((name) => Number(readFileSync(join(dir, `${name}.ran`), 'utf8')))) expect(alive(pid)).toBe(false);
  }, 150_000);
});

describe('pack members whose array children end before their handles are recorded', () => {
  it('still end COMPLETED with their outputs, without waiting for a sweep', async () => {
    const dir = scratch();
    const id = (await h.client.dispatch(wf.packedBehindGate)(dir)).id;
    await waitFor('gate beats', () => beats(join(dir, 'first.beat')) > 1, 20_000);
    // Every GetItem (a member's cancel check, its poll for the array job's ARN) is slowed, so
    // the members record their handles seconds after the leader submitted the array job:
    // by then the children, which only write a file, have ended and their events are gone.
    h.cloud.faults.add({ service: 'dynamodb', operation: 'GetItem', latencyMs: 2_500 });
    writeFileSync(join(dir, 'first.go'), '');
    await waitFor('every member ran', () => ['p0', 'p1', 'p2', 'p3'].every((name) => existsSync(join(dir, `${name}.ran`))), 60_000);
    const result = await settled(id);
    h.cloud.faults.clear();
    expect(result.nodes.map((node) => node.status), JSON.stringify(result.nodes.map((n) => [n.status, n.error]))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
    for (const [i, name] of ['p0', 'p1', 'p2', 'p3'].entries()) expect(await h.client.getNodeOutput(id, i + 1)).toBe(name);
  }, 150_000);
});
