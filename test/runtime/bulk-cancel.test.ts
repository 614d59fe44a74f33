/**
 * Store.cancelNotStartedMany (issue 13: not-started targets are marked in bulk) on the local
 * cloud's DynamoDB over HTTP: one TransactWriteItems per 100 nodes, the single write's
 * condition kept per node, refusals reported with the node as it was and never overwritten.
 */
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultKind } from '../../localstack/core/faults.ts';
import { runtimeContextFromEnv, type RuntimeContext } from '../../sdk/runtime/context.ts';
import type { NodeItem } from '../../sdk/runtime/store.ts';
import { CancelMethod, NodeStatus } from '../../sdk/status.ts';
import { startHarness, type RuntimeHarness } from './harness.ts';

let h: RuntimeHarness;
let ctx: RuntimeContext;

beforeAll(async () => {
  h = await startHarness();
  const cancel = await h.cloud.clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'valence-cancel' }));
  ctx = runtimeContextFromEnv({ aws: { endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials, maxAttempts: 2 }, env: { ...cancel.Environment?.Variables } });
}, 60_000);
afterAll(async () => {
  ctx?.aws.destroy();
  await h?.close();
});

function node(dispatchId: string, nodeId: number): NodeItem {
  return {
    dispatchId,
    nodeId,
    name: `n${nodeId}`,
    kind: 'electron',
    executor: 'lambda',
    status: NodeStatus.NEW_OBJECT,
    electron: 'n',
    executorJson: { kind: 'lambda', name: 'lambda', options: {} },
    retries: 0,
    graceSeconds: 0,
    parents: [],
    children: [],
    awaitingChildren: [],
    attempts: 0,
    cancelRequested: false,
  };
}

const cancel = (requestId: string) => ({ requestId, reason: 'bulk test', requestedAt: new Date().toISOString(), endedAt: new Date().toISOString(), cancelledBy: CancelMethod.NotStarted });

describe('ending not-started nodes in bulk', () => {
  it('ends the not-started ones and refuses, unchanged, those claimed or flagged by another request', async () => {
    const id = `bulk-${Date.now()}`;
    await ctx.store.createNodes(Array.from({ length: 250 }, (_, i) => node(id, i)));
    const claimed = [3, 57, 140, 201, 249];
    for (const n of claimed) expect(await ctx.store.claimNode(id, n, `run-${n}`, Date.now() + 60_000, new Date().toISOString())).toHaveProperty('item');
    const otherFlagged = [10, 120, 230];
    for (const n of otherFlagged) await ctx.store.requestNodeCancel(id, n, 'other', new Date().toISOString(), undefined, 'other-request');
    h.cloud.resetCounters();
    const ended: number[] = [];
    const refused = new Map<number, NodeItem | undefined>();
    for (let i = 0; i < 250; i += 100) {
      const out = await ctx.store.cancelNotStartedMany(id, Array.from({ length: Math.min(100, 250 - i) }, (_, k) => i + k), cancel('mine'));
      ended.push(...out.ended);
      for (const [k, v] of out.refused) refused.set(k, v);
    }
    expect([...refused.keys()].sort((a, b) => a - b)).toEqual([...claimed, ...otherFlagged].sort((a, b) => a - b));
    for (const n of claimed) expect(refused.get(n)).toMatchObject({ status: NodeStatus.RUNNING, runId: `run-${n}` });
    for (const n of otherFlagged) expect(refused.get(n)).toMatchObject({ status: NodeStatus.NEW_OBJECT, cancelRequestId: 'other-request' });
    expect(ended.length).toBe(250 - claimed.length - otherFlagged.length);
    // Three chunks, each sent again once without its refused nodes: six transactions, not 250 writes.
    expect(h.cloud.requestCounters.get('dynamodb', 'TransactWriteItems')).toBe(6);
    expect(h.cloud.requestCounters.get('dynamodb', 'UpdateItem') ?? 0).toBe(0);
    const after = await ctx.store.listNodes(id);
    for (const n of after) {
      if (claimed.includes(n.nodeId)) expect(n).toMatchObject({ status: NodeStatus.RUNNING, runId: `run-${n.nodeId}` });
      else if (otherFlagged.includes(n.nodeId)) expect(n).toMatchObject({ status: NodeStatus.NEW_OBJECT, cancelRequestId: 'other-request' });
      else expect(n).toMatchObject({ status: NodeStatus.CANCELLED, cancelRequestId: 'mine', cancelledBy: CancelMethod.NotStarted, cancelRequested: true });
    }
    // Again, under the same request: nothing is left to end and nothing changes.
    const again = await ctx.store.cancelNotStartedMany(id, [0, 1, 2], cancel('mine'));
    expect(again.ended).toEqual([]);
    expect([...again.refused.values()].every((n) => n?.status === NodeStatus.CANCELLED)).toBe(true);
  });

  it('takes at most 100 nodes, and when DynamoDB throttles past the retries, fails without writing', async () => {
    const id = `bulk-throttled-${Date.now()}`;
    await ctx.store.createNodes(Array.from({ length: 5 }, (_, i) => node(id, i)));
    await expect(ctx.store.cancelNotStartedMany(id, Array.from({ length: 101 }, (_, i) => i), cancel('r'))).rejects.toBeInstanceOf(RangeError);
    h.cloud.faults.add({ service: 'dynamodb', operation: 'TransactWriteItems', errorRate: 1, error: FaultKind.Throttling });
    try {
      await expect(ctx.store.cancelNotStartedMany(id, [0, 1, 2, 3, 4], cancel('r'))).rejects.toMatchObject({ name: 'ThrottlingException' });
    } finally {
      h.cloud.faults.clear();
    }
    expect((await ctx.store.listNodes(id)).map((n) => n.status)).toEqual(Array(5).fill(NodeStatus.NEW_OBJECT));
  });
});
