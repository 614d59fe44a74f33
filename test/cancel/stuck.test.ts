// "Stuck forever" (issue 13), reproduced deterministically: the cancel handler's flag writes are
// throttled past the SDK's retries right after StopExecution. Before, the handler answered 500,
// the execution was ABORTED and the dispatch stayed RUNNING with its electron beating forever.
// Now the request is recorded open, the endpoint answers 202, and the sweeper finishes it: the
// dispatch ends CANCELLED, the electron stops, its child never runs, and the report is DONE.
import { existsSync, readFileSync } from 'node:fs';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultKind } from '../../localstack/core/faults.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { beats, heartbeatStopped, stopsBeating, waitFor } from './observe.ts';
import { join } from 'node:path';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

describe('a cancel whose flag writes are throttled after StopExecution', () => {
  it('is accepted (202) and the sweeper ends the dispatch CANCELLED', async () => {
    const dir = h.dir;
    const id = (await h.client.dispatch(wf.lambdaRunning)(dir)).id;
    const beat = join(dir, 'polite.beat');
    await waitFor('polite beats', () => beats(beat) > 3, 30_000);
    // StopExecution is slowed; once it is under way, every DynamoDB UpdateItem (the flag writes) is throttled.
    h.cloud.faults.add({ service: 'states', operation: 'StopExecution', latencyMs: 1_500 });
    const answer = h.client.cancel(id, { wait: false, reason: 'throttled' });
    await new Promise((resolve) => setTimeout(resolve, 700));
    h.cloud.faults.add({ service: 'dynamodb', operation: 'UpdateItem', errorRate: 1, error: FaultKind.Throttling });
    const accepted = await answer;
    h.cloud.faults.clear();
    expect(accepted).toMatchObject({ dispatchId: id, accepted: true });
    const { requestId } = accepted as { requestId: string };
    // What used to stay so forever: the dispatch is not terminal and the electron still beats.
    expect((await h.client.getResult(id)).status).toBe('RUNNING');
    expect(await heartbeatStopped(beat)).toBe(false);
    const open = await h.client.getCancelReport(id, requestId);
    expect(open.state).toBe('OPEN');

    const swept = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from(JSON.stringify({ staleCancelSeconds: 0 })) }));
    const sweep = JSON.parse(Buffer.from(swept.Payload!).toString()) as { cancels: { open: number; finished: number }; errors: string[] };
    expect(sweep.cancels.finished).toBeGreaterThanOrEqual(1);

    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.every((n) => n.status === 'CANCELLED')).toBe(true);
    await stopsBeating(beat);
    // The child of the stopped electron never ran.
    expect(existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8') : '').not.toMatch(/after/);
    const done = await h.client.getCancelReport(id, requestId);
    expect(done.state).toBe('DONE');
    expect(done.report!.requestId).toBe(requestId);
    expect(done.report!.cancelled.map((c) => c.id).sort()).toEqual(result.nodes.map((n) => n.id).sort());
  }, 120_000);
});
