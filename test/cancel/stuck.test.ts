// "Stuck forever" (issue 13), reproduced deterministically: the cancel handler's flag writes are
// throttled past the SDK's retries right after StopExecution. Before, the handler answered 500
// (later 504 or a timeout under load: it kept retrying the throttled writes inside the request),
// the execution was ABORTED and the dispatch stayed RUNNING with its electron beating forever.
// Now the request is recorded first, the endpoint answers 202 within its answer budget, and the
// handler's own continuation (an asynchronous self-invocation), or the caller's polls of the
// report (no sweeper: this harness runs none), resume the request once the throttling passes: the dispatch ends CANCELLED, the
// electron stops, its child never runs, and the report is DONE and lists every node.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultKind } from '../../localstack/core/faults.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { beats, stopsBeating, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

describe('a cancel whose flag writes are throttled after StopExecution', () => {
  it('is accepted (202) at once, and its continuation ends the dispatch CANCELLED', async () => {
    const dir = h.dir;
    const id = (await h.client.dispatch(wf.lambdaRunning)(dir)).id;
    const beat = join(dir, 'polite.beat');
    // A hang ceiling for the setup: a loaded 2-core machine took over 30 s to start the electron.
    await waitFor('polite beats', () => beats(beat) > 3, 45_000);
    // StopExecution is slowed; once it is under way, every flag write is throttled: UpdateItem
    // (running targets, single nodes) and TransactWriteItems (not-started targets, in bulk).
    h.cloud.faults.add({ service: 'states', operation: 'StopExecution', latencyMs: 1_500 });
    const sent = Date.now();
    const answer = h.client.cancel(id, { wait: false, reason: 'throttled' });
    await new Promise((resolve) => setTimeout(resolve, 700));
    h.cloud.faults.add({ service: 'dynamodb', operation: 'UpdateItem', errorRate: 1, error: FaultKind.Throttling });
    h.cloud.faults.add({ service: 'dynamodb', operation: 'TransactWriteItems', errorRate: 1, error: FaultKind.Throttling });
    const accepted = await answer;
    const answeredMs = Date.now() - sent;
    expect(accepted).toMatchObject({ dispatchId: id, accepted: true });
    // Not a 504 after API Gateway's 29 s: the answer does not wait for the throttled writes
    // (1 s budget; the ceiling is generous for a loaded 2-core machine).
    // A run at load 28 answered in 12.4 s (a cold cancel worker); API Gateway's 504 comes at 29 s.
    expect(answeredMs).toBeLessThan(20_000);
    const { requestId } = accepted as { requestId: string };
    // The throttling outlasts the first continuation's attempt; then it passes.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    h.cloud.faults.clear();

    // Waiting as the client's cancel() does: its polls of the report also advance an open request
    // nobody works on (a continuation lost to a worker that died in init, on a loaded machine).
    await waitFor('the report', async () => (await h.client.getCancelReport(id, requestId)).state === 'DONE', 90_000);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('CANCELLED');
    // The dispatch ends once its stops were sent and waited for (bounded); the running node ends when its electron has stopped.
    const ended = await waitFor('every node terminal', async () => {
      const now = await h.client.getResult(id);
      return now.nodes.every((n) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(n.status)) ? now : undefined;
    }, 30_000);
    expect(ended.nodes.map((n) => n.status)).toEqual(result.nodes.map(() => 'CANCELLED'));
    await stopsBeating(beat);
    // The child of the stopped electron never ran.
    expect(existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8') : '').not.toMatch(/after/);
    const done = await h.client.getCancelReport(id, requestId);
    expect(done.report!.requestId).toBe(requestId);
    expect(done.report!.cancelled.map((c) => c.id).sort()).toEqual(result.nodes.map((n) => n.id).sort());
    // The running electron is reported with what it held and for how long it ran.
    expect(done.report!.cancelled.find((c) => c.previousStatus === 'RUNNING')?.stopped).toMatchObject({ executor: 'lambda' });
  }, 150_000);
});
