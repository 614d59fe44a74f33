// `force: true` (issue 13): the grace period is skipped. Each electron here ignores its signal
// and has a 60 s grace period (and the local Batch waits 60 s between SIGTERM and SIGKILL), so a
// graceful cancel would leave it running for a minute; a forced one must stop it at once. Proven
// by observation: the heartbeat stops and the process is gone, well inside the grace period.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { alive, beats, stopsBeating, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
/** The fixtures' grace period; a forced stop must come well before it. */
const GRACE_MS = 60_000;
/** A hang ceiling for a loaded 2-core machine, far below the grace period. */
const FORCED_WITHIN_MS = 20_000;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({ environment: { VALENCE_TERMINATE_GRACE_MS: String(GRACE_MS) } }, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

const file = (name: string): string => join(h.dir, name);

async function forcedCancel(lattice: typeof wf.forceLambda, beat: string, method: string): Promise<{ id: string; stoppedMs: number }> {
  const id = (await h.client.dispatch(lattice)(h.dir)).id;
  await waitFor(`${beat} beats`, () => beats(file(beat)) > 3, 45_000);
  const sent = Date.now();
  const report = await h.client.cancel(id, { force: true, reason: 'forced' });
  await stopsBeating(file(beat), FORCED_WITHIN_MS);
  const stoppedMs = Date.now() - sent;
  // Both nodes are this request's; the running one may still be stopping when the report is written (truthfully RUNNING).
  expect(report.cancelled.map((c) => c.id)).toEqual([0, 1]);
  expect(report.cancelled[1]!.status).toBe('CANCELLED');
  expect((await h.client.getResult(id, { wait: true, timeoutMs: 30_000 })).status).toBe('CANCELLED');
  // The dispatch ends once the stops are sent and waited for (bounded); the running node when its work has ended.
  const result = await waitFor('every node terminal', async () => {
    const now = await h.client.getResult(id);
    return now.nodes.every((n) => n.status !== 'RUNNING') ? now : undefined;
  }, 30_000).catch(async (error: unknown) => {
    const node = (await h.client.getResult(id)).nodes[0]!;
    const job = node.jobHandle ? (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [node.jobHandle.slice(node.jobHandle.lastIndexOf('/') + 1)] }))).jobs?.[0] : undefined;
    throw new Error(`${(error as Error).message}; node 0 ${node.status}, job ${job?.status} ${job?.statusReason}`);
  });
  expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
  expect(result.nodes[0]!.cancelledBy).toBe(method);
  expect(result.cancelRequests[0]).toMatchObject({ force: true });
  expect(existsSync(file('ran.log'))).toBe(false);
  expect(stoppedMs).toBeLessThan(GRACE_MS / 2);
  return { id, stoppedMs };
}

describe('a forced cancel skips the grace period', () => {
  it('terminates a Lambda electron that ignores its signal at once', async () => {
    await forcedCancel(wf.forceLambda, 'force-lambda.beat', 'terminated');
  }, 120_000);

  it('SIGKILLs a local process that ignores SIGTERM at once', async () => {
    await forcedCancel(wf.forceLocal, 'force-local.beat', 'terminated');
    const pid = Number(readFileSync(file('force-local.pid'), 'utf8'));
    await waitFor('the local process gone', () => !alive(pid), FORCED_WITHIN_MS);
  }, 120_000);

  it('ends a Batch job process at once instead of after SIGTERM and the grace period', async () => {
    const { stoppedMs } = await forcedCancel(wf.forceBatch, 'force-batch.beat', 'TerminateJob');
    const pid = Number(readFileSync(file('force-batch.pid'), 'utf8'));
    await waitFor('the job process gone', () => !alive(pid), FORCED_WITHIN_MS);
    expect(stoppedMs).toBeLessThan(FORCED_WITHIN_MS);
  }, 120_000);
});
