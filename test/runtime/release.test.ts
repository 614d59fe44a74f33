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
