// A node that ends last before several `await` states releases them side by side
// (sdk/runtime/settle.ts); each released child then runs with both parents' outputs.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileLattice } from '../../sdk/compiler/index.ts';
import { startHarness, type RuntimeHarness } from './harness.ts';
import { twoWaiting } from './fixtures/release.ts';

const WORKFLOWS = fileURLToPath(new URL('./fixtures/release.ts', import.meta.url));
let h: RuntimeHarness;

beforeAll(async () => {
  h = await startHarness({}, WORKFLOWS);
});
afterAll(async () => h?.close());

describe('releasing await states', () => {
  it('releases every await state that waits for the node that ended', async () => {
    // Prepare: the shape really has two await states, both waiting for node 0
    const compiled = compileLattice(twoWaiting.template(), { stepHandlerArn: 'arn:aws:lambda:us-east-1:000000000000:function:step', partition: false });
    expect([...compiled.awaitingNodes].sort()).toEqual([4, 5]);

    // Act
    const run = await h.client.dispatch(twoWaiting)(4);
    const result = await h.client.getResult<number[]>(run.id, { wait: true, timeoutMs: 60_000 });

    // Assess
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toEqual([4, 4 + 5, 4 * 6]);
    expect(result.nodes.every((n) => n.status === 'COMPLETED' && n.attempts === 1)).toBe(true);
  });
});

describe('what a release carries', () => {
  it('carries ended parents’ views in order while they fit in 8 KiB, and always a list', async () => {
    const { awaitReleased, RELEASE_VIEWS_MAX_BYTES } = await import('../../sdk/runtime/settle.ts');
    const node = (nodeId: number, status: string, outputBytes: number) =>
      ({ dispatchId: 'd', nodeId, status, hasOutput: true, output: 'x'.repeat(outputBytes), parents: [], children: [], attempts: 1, cancelRequested: false, name: 'n', kind: 'electron', electron: 'e', executor: 'lambda' }) as never;
    // Two 3 KiB outputs fit; a third would pass 8 KiB and is left to be read; a small one after it still fits.
    const released = awaitReleased(9, [node(0, 'COMPLETED', 3000), node(1, 'COMPLETED', 3000), node(2, 'COMPLETED', 3000), node(3, 'RUNNING', 10), node(4, 'COMPLETED', 10)]);
    expect(released.nodeId).toBe(9);
    expect(released.released).toBe(true);
    expect(released.parents.map((p) => p.nodeId)).toEqual([0, 1, 4]);
    expect(Buffer.byteLength(JSON.stringify(released.parents))).toBeLessThanOrEqual(RELEASE_VIEWS_MAX_BYTES + 10);
    // Only view fields travel: nothing of the item beyond what a child reads.
    expect(Object.keys(released.parents[0]!).sort()).toEqual(['dispatchId', 'hasOutput', 'nodeId', 'output', 'status']);
    expect(awaitReleased(1, []).parents).toEqual([]);
  });
});
