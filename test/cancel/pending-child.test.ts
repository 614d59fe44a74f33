// Cancelling a path into a sublattice ("1/2") before the sublattice node started, so before
// its child dispatch exists (issue 19). The request is recorded on the parent dispatch; when
// the child dispatch is created, node 2 and its descendants begin CANCELLED and never run —
// observed by their side-effect files, not only their statuses.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/pending-child.ts';
import { waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/pending-child.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

describe('cancelling a path into a sublattice that has not started', () => {
  it('reports it pending-child; the child node and its descendants are created CANCELLED and never run', async () => {
    // GIVEN the sublattice node 1 held back behind the gate (node 0): no child dispatch yet
    const dir = join(h.dir, 'pending');
    mkdirSync(dir);
    const id = (await h.client.dispatch(wf.pendingOuter)(dir)).id;
    await waitFor('gate running', () => existsSync(join(dir, 'gate.ran')), 30_000);
    const before = await h.client.getResult(id);
    expect(before.nodes[1]).toMatchObject({ status: 'NEW_OBJECT' });
    expect(before.nodes[1]!.childDispatchId).toBeUndefined();

    // WHEN "1/2" is cancelled
    const report = await h.client.cancel(id, { taskIds: ['1/2'], reason: 'not this one' });

    // THEN the report says it is recorded for the child, and nothing is "not found"
    expect(report.notFound).toEqual([]);
    expect(report.cancelled).toEqual([{ id: '1/2', name: 'pendingInner/2', previousStatus: 'NEW_OBJECT', status: 'CANCELLED', method: 'pending-child' }]);

    // WHEN the gate opens and the sublattice runs its child dispatch to the end
    writeFileSync(join(dir, 'open'), '');
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    const childId = result.nodes[1]!.childDispatchId!;
    expect(childId).toBeDefined();
    const child = await h.client.getResult(childId, { wait: true, timeoutMs: 30_000 });

    // THEN node 2 and its descendant 3 never ran; the others did
    expect(existsSync(join(dir, 'inner-2.ran'))).toBe(false);
    expect(existsSync(join(dir, 'inner-3.ran'))).toBe(false);
    for (const ran of ['inner-0', 'inner-1', 'inner-4']) expect(existsSync(join(dir, `${ran}.ran`))).toBe(true);
    expect(child.nodes.map((n) => [n.status, n.cancelledBy ?? null])).toEqual([
      ['COMPLETED', null],
      ['COMPLETED', null],
      ['CANCELLED', 'pending-child'],
      ['CANCELLED', 'pending-child'],
      ['COMPLETED', null],
    ]);
    expect(child.nodes[2]!.startedAt).toBeUndefined();
    expect(child.status).toBe('CANCELLED');
    expect(result.nodes[1]!.status).toBe('CANCELLED');
  }, 120_000);

  it('still reports a path into a sublattice node that ended without a child as not found', async () => {
    // GIVEN a finished dispatch whose sublattice node was cancelled before it started
    const dir = join(h.dir, 'ended');
    mkdirSync(dir);
    const id = (await h.client.dispatch(wf.pendingOuter)(dir)).id;
    await waitFor('gate running', () => existsSync(join(dir, 'gate.ran')), 30_000);
    await h.client.cancel(id, { taskIds: [1] });
    writeFileSync(join(dir, 'open'), '');
    await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    // WHEN a path into it is cancelled
    const report = await h.client.cancel(id, { taskIds: ['1/2'] });
    // THEN nothing is claimed: no child will ever exist
    expect(report.cancelled).toEqual([]);
    expect(report.notFound).toEqual(['1/2']);
    expect(existsSync(join(dir, 'inner-0.ran'))).toBe(false);
  }, 120_000);
});
