// Transient AWS errors never fail a user's node: with DynamoDB throttling and S3 answering
// 500 InternalError on a fifth of all calls, a fan-out of 100 electrons with `retries: 0`
// completes with the right sum. With the SDK's default of 3 attempts, 0.2^3 = 0.8 % of the
// runtime's calls failed for good and some node ended FAILED with `InternalError`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from '../runtime/fixtures/workflows.ts';
import { DEFAULT_MAX_ATTEMPTS, isTransientAwsError } from '../../sdk/aws.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness();
}, 60_000);
afterAll(async () => h?.close());

describe('the runtime under injected throttles and 500s', () => {
  it('classifies the local cloud injected faults as transient, as the SDK does', () => {
    expect(DEFAULT_MAX_ATTEMPTS).toBeGreaterThanOrEqual(8);
    expect(isTransientAwsError({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBe(true);
    expect(isTransientAwsError({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })).toBe(true);
    expect(isTransientAwsError({ name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400 } })).toBe(false);
    expect(isTransientAwsError(new Error('electron bug'))).toBe(false);
  });

  it('completes 101 nodes with retries 0, each result recorded once', async () => {
    // Deploy and warm the sandboxes first, so the faults hit the run, not a cold start.
    const warm = await h.client.getResult((await h.client.dispatch(wf.chain)(1)).id, { wait: true, timeoutMs: 60_000 });
    expect(warm.status).toBe('COMPLETED');
    h.cloud.faults.set({
      rules: [
        { service: 'dynamodb', errorRate: 0.2, error: 'throttling' },
        { service: 's3', errorRate: 0.2, error: 'server-error' },
      ],
      lambdaCrashes: [],
    });
    const before = h.cloud.counters();
    // The client's own calls retry too: the dispatch itself goes through under the faults.
    const dispatchId = (await h.client.dispatch(wf.fanout)()).id;
    const result = await h.client.getResult<number>(dispatchId, { wait: true, timeoutMs: 240_000 });
    h.cloud.faults.clear();
    const after = h.cloud.counters();
    // The faults really were injected: far more calls than a clean run's, many of them retries.
    expect((after.dynamodb?.UpdateItem ?? 0) - (before.dynamodb?.UpdateItem ?? 0)).toBeGreaterThan(200);
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(Array.from({ length: 100 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
    expect(result.nodes).toHaveLength(101);
    for (const node of result.nodes) {
      expect(node.status, `${node.id} ${JSON.stringify(node.error)}`).toBe('COMPLETED');
      // Recorded once: one attempt, no electron retry spent on the runtime's own failures.
      expect(node.attempts).toBe(1);
    }
  }, 300_000);
});
