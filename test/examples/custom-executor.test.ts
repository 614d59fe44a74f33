// The custom executor example: the runtime calls its run(task), stores the job handle it
// records, and on cancel calls its cancel(taskMetadata, jobHandle) with that handle.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { beats, heartbeatStopped, waitFor } from '../cancel/observe.ts';
import { shellJob } from '../../examples/custom-executor.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, fileURLToPath(new URL('../../examples/custom-executor.ts', import.meta.url)));
}, 60_000);
afterAll(async () => h?.close());

describe('a custom executor', () => {
  it('runs to completion and reports its job handle', async () => {
    const file = join(h.dir, 'short.beat');
    const id = (await h.client.dispatch(shellJob)(file, 1)).id;
    const result = await h.client.getResult<{ exitCode: number }>(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toEqual({ exitCode: 0 });
    expect(result.nodes[0]!.jobHandle).toMatch(/^pid:\d+$/);
    expect(beats(file)).toBeGreaterThan(0);
  });

  it('is cancelled through its cancel(taskMetadata, jobHandle) with the stored handle', async () => {
    const file = join(h.dir, 'long.beat');
    const id = (await h.client.dispatch(shellJob)(file, 60)).id;
    await waitFor('beats', () => beats(file) > 3, 30_000);
    const report = await h.client.cancel(id, { reason: 'custom stop' });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'executor.cancel' });
    expect(await heartbeatStopped(file)).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'executor.cancel' });
  }, 60_000);
});
