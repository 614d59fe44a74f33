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
import { createAwsClients } from '../../sdk/aws.ts';
import { DEFAULTS } from '../../sdk/contract.ts';
import { CancelMethod } from '../../sdk/status.ts';
import { openCancel, workOnCancel } from '../../sdk/runtime/cancel.ts';
import { runtimeConfigFromOutputs } from '../../sdk/runtime/config.ts';
import { runtimeContextFrom } from '../../sdk/runtime/context.ts';
import { upstreamEnd } from '../../sdk/runtime/settle.ts';
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

  it('lists a consequence once: the request that cancelled its parent reports it, the other names that request', async () => {
    // A node that a handler ended upstream-cancelled (an `await`, or the step handler, got there
    // before the request's own mark) carries no request. Both requests below arrived before it
    // ended; only the one that cancelled its parent may list it under `cancelled` (100 fault
    // races of bench/cancel-scale.ts found it in both). The states are set up by the runtime's
    // own writes, in the order the race had them: node 1 marked by the task request, node 2
    // ended below it by a handler, then both requests finish.
    const dir = join(h.dir, 'consequence');
    mkdirSync(dir);
    const id = (await h.client.dispatch(wf.notStarted)(dir)).id;
    await waitFor('node 0 beats', () => beats(join(dir, 'first.beat')) > 1, 60_000);
    const ctx = runtimeContextFrom(
      runtimeConfigFromOutputs(await h.client.outputs(), DEFAULTS.stackName),
      createAwsClients({ endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials }),
    );
    const task = await openCancel(ctx, id, { taskIds: [1], requestedBy: 'merge-test', reason: 'consequence' });
    const whole = await openCancel(ctx, id, { requestedBy: 'merge-test', reason: 'consequence' });
    const marked = await ctx.store.cancelNotStartedMany(id, [1], { requestId: task.requestId, reason: 'consequence', requestedAt: task.requestedAt, endedAt: new Date().toISOString(), cancelledBy: CancelMethod.NotStarted });
    expect(marked.ended).toEqual([1]);
    const [parent] = await ctx.store.getNodes(id, [1]);
    const below = await ctx.store.finishNode(id, 2, upstreamEnd([parent!], new Date())!);
    expect(below).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-cancelled' });
    expect(below?.cancelRequestId).toBeUndefined();

    const [taskOutcome, wholeOutcome] = await Promise.all([workOnCancel(ctx, task), workOnCancel(ctx, whole)]);
    if (!taskOutcome.done || !wholeOutcome.done) throw new Error('both requests finish in one attempt');
    const taskReport = taskOutcome.report;
    const wholeReport = wholeOutcome.report;
    expect(taskReport.cancelled.map((c) => c.id)).toEqual([1, 2]);
    expect(wholeReport.cancelled.map((c) => c.id)).toEqual([0]);
    expect(wholeReport.merged).toEqual(
      expect.arrayContaining([
        { id: 1, requestId: task.requestId, status: 'CANCELLED' },
        { id: 2, requestId: task.requestId, status: 'CANCELLED' },
      ]),
    );
    expect((await h.client.getResult(id, { wait: true, timeoutMs: 30_000 })).status).toBe('CANCELLED');
    await stopsBeating(join(dir, 'first.beat'));
  }, 90_000);
});
