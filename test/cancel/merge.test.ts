// Concurrent cancels merge (issue 13): ten clients cancel the same dispatch at once, some the
// whole dispatch, some overlapping task sets. Each node records the request that flagged it
// first; only that request stops its work and lists it under `cancelled`, the others list it
// under `merged` with that request's id. Observed: the execution is stopped once, every
// running electron stops, no node is in two lists of one report or in two requests'
// `cancelled`, each whole-dispatch report accounts for all eight nodes, and every report is
// final (read back through GET …/cancels/{requestId}).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { beats, stopsBeating, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

describe('ten concurrent cancels of one dispatch', () => {
  it('merge: no target stopped twice or counted twice, none missed, every report true', async () => {
    const dir = join(h.dir, 'merge');
    mkdirSync(dir);
    const id = await h.client.dispatch(wf.eight)(dir);
    await Promise.all([1, 3, 5].map((n) => waitFor(`n${n} beats`, () => beats(join(dir, `n${n}.beat`)) > 1, 60_000)));
    // Warm ten cancel-handler workers (GET of an unknown request: a 404 from the handler), so ten
    // cold starts at once on a loaded machine do not push an answer past API Gateway's 29 s.
    await Promise.all(Array.from({ length: 10 }, () => h.client.getCancelReport(id, '00000000-0000-0000-0000-000000000000').catch(() => undefined)));
    const stopsBefore = h.cloud.requestCounters.get('states', 'StopExecution');
    const asks: ({ taskIds: number[] } | Record<string, never>)[] = [{}, { taskIds: [1] }, { taskIds: [1, 3] }, {}, { taskIds: [3, 5] }, { taskIds: [5] }, {}, { taskIds: [0, 1] }, { taskIds: [6] }, { taskIds: [1, 5] }];
    const reports = await Promise.all(asks.map((ask) => h.client.cancel(id, { ...ask, reason: 'merge' })));

    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('CANCELLED');
    await Promise.all([1, 3, 5].map((n) => stopsBeating(join(dir, `n${n}.beat`))));
    const ended = await waitFor('every node terminal', async () => {
      const now = await h.client.getResult(id);
      return now.nodes.every((n) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(n.status)) ? now : undefined;
    }, 30_000);
    const status = new Map(ended.nodes.map((n) => [n.id, n.status]));
    // The execution was stopped by exactly one of the whole-dispatch requests.
    expect(h.cloud.requestCounters.get('states', 'StopExecution') - stopsBefore).toBe(1);
    expect(reports.filter((r) => r.executionStopped)).toHaveLength(1);

    const byRequest = new Map(reports.map((r) => [r.requestId, r]));
    const cancelledBy = new Map<number | string, string[]>();
    for (const [i, report] of reports.entries()) {
      const listed = [...report.cancelled, ...report.alreadyTerminal, ...report.merged].map((e) => e.id);
      expect(new Set(listed).size, `request ${i} lists a node twice`).toBe(listed.length);
      if (!('taskIds' in asks[i]!)) expect([...listed].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      for (const c of report.cancelled) {
        cancelledBy.set(c.id, [...(cancelledBy.get(c.id) ?? []), report.requestId]);
        // Never overcounts: what it lists as cancelled did end CANCELLED.
        expect(status.get(Number(c.id))).toBe('CANCELLED');
      }
      // A merged node is in the `cancelled` of the request it names.
      for (const m of report.merged) expect(byRequest.get(m.requestId)?.cancelled.map((c) => c.id)).toContain(m.id);
      const readBack = await h.client.getCancelReport(id, report.requestId);
      expect(readBack.state).toBe('DONE');
    }
    for (const [node, requests] of cancelledBy) expect(requests, `node ${node} cancelled by two requests`).toHaveLength(1);
    // None missed: every node that ended CANCELLED is some request's.
    for (const [node, s] of status) if (s === 'CANCELLED') expect(cancelledBy.has(node), `node ${node}`).toBe(true);
  }, 150_000);
});
