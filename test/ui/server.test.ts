// The dashboard server is not a new hole: loopback only, Host checked, the per-start token
// required, cross-origin writes refused, bad input refused with a 4xx naming the problem and
// nothing written. And its one poll loop reads a dispatch once per tick however many pages watch.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CancelOptions, DispatchRef } from '../../sdk/index.ts';
import { startDashboard, MAX_BODY_BYTES, type Dashboard, type DashboardClient } from '../../ui/server/index.ts';
import { TOKEN_HEADER } from '../../ui/server/security.ts';
import type { RedispatchPlanView } from '../../ui/shared/api.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { waitFor } from '../cancel/observe.ts';
import { fileURLToPath } from 'node:url';
import * as wf from './fixtures/workflows.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));
let h: RuntimeHarness;
let ui: Dashboard;
let dispatchId: string;

beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
  ui = await startDashboard({ client: h.client, poll: { minIntervalMs: 100, maxIntervalMs: 400 } });
  dispatchId = (await h.client.dispatch(wf.features)(h.dir)).id;
  await h.client.getResult(dispatchId, { wait: true, timeoutMs: 30_000 });
}, 120_000);
afterAll(async () => {
  await ui?.close();
  await h?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, so tests can send any Host / Origin a browser or an attacker would. */
function send(path: string, options: { method?: string; headers?: Record<string, string>; body?: string; host?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: options.host ?? '127.0.0.1', port: ui.port, path, method: options.method ?? 'GET', headers: { host: `127.0.0.1:${ui.port}`, ...options.headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const cookie = (): string => `valence_ui_${ui.port}=${ui.token}`;
const origin = (): string => `http://127.0.0.1:${ui.port}`;
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  send(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { cookie: cookie(), origin: origin(), 'content-type': 'application/json', ...headers } });

describe('access', () => {
  it('listens on 127.0.0.1 only', async () => {
    expect(new URL(ui.url).hostname).toBe('127.0.0.1');
    const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external) await expect(send('/', { host: external.address })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('needs the token; the first load trades it for an HttpOnly, SameSite=Strict cookie', async () => {
    expect((await send('/')).status).toBe(401);
    expect((await send('/api/capabilities')).status).toBe(401);
    expect((await send('/?token=wrong')).status).toBe(401);
    const first = await send(`/?token=${ui.token}`);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/');
    expect(String(first.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
    expect(first.headers['referrer-policy']).toBe('no-referrer');
    const page = await send('/', { headers: { cookie: cookie() } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('/assets/app.js');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    // The token in a query string opens only the page, never the API.
    expect((await send(`/api/capabilities?token=${ui.token}`)).status).toBe(401);
    expect(JSON.parse((await send('/api/capabilities', { headers: { cookie: cookie() } })).body)).toEqual({ cancelProgress: true, redispatch: true, force: true });
  });

  it('refuses a foreign Host even with the token (DNS rebinding)', async () => {
    const answer = await send('/api/capabilities', { headers: { host: `evil.example:${ui.port}`, cookie: cookie() } });
    expect(answer.status).toBe(421);
    expect((JSON.parse(answer.body) as { code: string }).code).toBe('BAD_HOST');
  });

  it('refuses cross-origin and form-shaped cancels; nothing is written', async () => {
    const url = `/api/dispatches/${dispatchId}/cancel`;
    const body = { reason: 'csrf' };
    expect((await post(url, body, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await send(url, { method: 'POST', body: JSON.stringify(body), headers: { cookie: cookie(), 'content-type': 'application/json' } })).status).toBe(403);
    expect((await post(url, body, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post(url, 'reason=csrf', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await h.client.getResult(dispatchId)).cancelRequests).toHaveLength(0);
  });
});

describe('bad input', () => {
  it('answers 4xx naming the problem, and writes nothing', async () => {
    const url = `/api/dispatches/${dispatchId}/cancel`;
    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /reason is required/],
      [{ reason: '   ' }, 400, /reason is required/],
      [{ reason: 'x', taskIds: [] }, 400, /non-empty list/],
      [{ reason: 'x', taskIds: ['1; drop'] }, 400, /not a node id/],
      [{ reason: 'x', force: 'yes' }, 400, /force must be/],
      [{ reason: 'x', extra: 1 }, 400, /Unknown field/],
      ['not json', 400, /not JSON/],
      [{ reason: 'x'.repeat(MAX_BODY_BYTES) }, 413, /bytes/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await post(url, body);
      expect([answer.status, (JSON.parse(answer.body) as { message: string }).message]).toEqual([status, expect.stringMatching(message)]);
    }
    expect((await post('/api/dispatches/no-such-dispatch/cancel', { reason: 'x' })).status).toBe(404);
    expect((await post('/api/dispatches/%ZZ/cancel', { reason: 'x' })).status).toBe(400);
    expect((await post('/api/cancel-many', { dispatchIds: [], reason: 'x' })).status).toBe(400);
    expect((await h.client.getResult(dispatchId)).cancelRequests).toHaveLength(0);
  });

  it('a script with the token header may cancel without a browser origin; the request’s report is then at GET …/cancels/{requestId}, read once', async () => {
    const answer = await send(`/api/dispatches/${dispatchId}/cancel`, { method: 'POST', body: JSON.stringify({ reason: 'scripted' }), headers: { [TOKEN_HEADER]: ui.token, 'content-type': 'application/json' } });
    // Under load even a cancel with nothing to stop may miss the endpoint's answer budget: 202, then its report.
    expect([200, 202]).toContain(answer.status);
    const report = JSON.parse(answer.body) as { requestId: string };
    expect(report).toMatchObject({ dispatchId });
    expect((await h.client.getResult(dispatchId)).cancelRequests.map((r) => r.reason)).toEqual(['scripted']);
    const get = (requestId: string) => send(`/api/dispatches/${dispatchId}/cancels/${requestId}`, { headers: { cookie: cookie() } });
    await waitFor('the request to be done', async () => (JSON.parse((await get(report.requestId)).body) as { state?: string }).state === 'DONE', 30_000);
    const reads = ui.hub.readCounts.getCancelReport;
    const first = await get(report.requestId);
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ dispatchId, requestId: report.requestId, state: 'DONE', report: { requestId: report.requestId, cancelled: [] } });
    // A final report never changes: it is kept, and asking again reads nothing.
    expect((await get(report.requestId)).body).toBe(first.body);
    expect(ui.hub.readCounts.getCancelReport).toBe(reads);
    const bad = await get('abc');
    expect([bad.status, (JSON.parse(bad.body) as { message: string }).message]).toEqual([400, expect.stringMatching(/not a cancel request id/)]);
    expect((await get('00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('passes force on to the SDK’s cancel (and never waits there), and refuses a force that is not a boolean', async () => {
    const seen: unknown[] = [];
    const cancel = (id: DispatchRef, options: CancelOptions = {}) => {
      seen.push(options);
      return h.client.cancel(id, { ...options, wait: false });
    };
    const client: DashboardClient = {
      getResult: (id, o) => h.client.getResult(id, o),
      listDispatches: (o) => h.client.listDispatches(o),
      getNodeOutput: (id, n) => h.client.getNodeOutput(id, n),
      cancel: cancel as DashboardClient['cancel'],
    };
    const recording = await startDashboard({ client });
    try {
      const at = (path: string, body: unknown) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: recording.port, path, method: 'POST', headers: { host: `127.0.0.1:${recording.port}`, [TOKEN_HEADER]: recording.token, 'content-type': 'application/json' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(JSON.stringify(body));
        });
      expect(await at(`/api/dispatches/${dispatchId}/cancel`, { reason: 'forced', force: true })).toBe(200);
      expect(await at(`/api/dispatches/${dispatchId}/cancel`, { reason: 'forced', force: 1 })).toBe(400);
      expect(await at('/api/cancel-many', { dispatchIds: [dispatchId], reason: 'forced', force: 'true' })).toBe(400);
      expect(seen).toEqual([{ reason: 'forced', force: true, wait: false }]);
    } finally {
      await recording.close();
    }
  });
});

describe('redispatch', () => {
  const dispatchCount = async (): Promise<number> => (await h.client.listDispatches({ limit: 1000 })).length;
  const ranLoad = (): number => (readFileSync(join(h.dir, 'ran.log'), 'utf8').match(/^load$/gm) ?? []).length;

  it('a dry run answers the plan (every completed node reused, from where) and starts nothing', async () => {
    const before = await dispatchCount();
    const loads = ranLoad();
    const answer = await post(`/api/dispatches/${dispatchId}/redispatch`, { dryRun: true });
    expect(answer.status).toBe(200);
    const plan = JSON.parse(answer.body) as RedispatchPlanView;
    expect(plan).toMatchObject({ redispatchOf: dispatchId, lattice: 'features', dryRun: true, newNodes: [] });
    expect(plan.nodes.map((n) => [n.nodeId, n.action, n.from])).toEqual([0, 1, 2].map((i) => [i, 'reuse', { dispatchId, nodeId: i }]));
    expect(plan.dispatchId).not.toBe(dispatchId);
    // Nothing started: no new dispatch in the list, and no electron ran again.
    expect(await dispatchCount()).toBe(before);
    expect(ranLoad()).toBe(loads);
  }, 120_000);

  it('refuses a bad body or a cross-origin request with a 4xx naming the problem, and starts nothing', async () => {
    const before = await dispatchCount();
    const url = `/api/dispatches/${dispatchId}/redispatch`;
    const cases: [unknown, number, RegExp][] = [
      [{ dryRun: 'yes' }, 400, /dryRun must be true or false/],
      [{ reuse: 1 }, 400, /reuse must be true or false/],
      [{ dryRun: false, args: [1] }, 400, /Unknown field\(s\): args/],
      [[true], 400, /JSON object/],
      ['not json', 400, /not JSON/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await post(url, body);
      expect([answer.status, (JSON.parse(answer.body) as { message: string }).message]).toEqual([status, expect.stringMatching(message)]);
    }
    expect((await post(url, {}, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await send(url, { method: 'POST', body: '{}', headers: { cookie: cookie(), 'content-type': 'application/json' } })).status).toBe(403);
    expect((await post(url, '{}', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await send(url, { method: 'POST', body: '{}', headers: { origin: origin(), 'content-type': 'application/json' } })).status).toBe(401);
    expect((await post('/api/dispatches/no-such-dispatch/redispatch', { dryRun: true })).status).toBe(404);
    expect(await dispatchCount()).toBe(before);
  });
});

describe('cancel many', () => {
  it('cancels every listed running dispatch with the reason, and skips one that already ended', async () => {
    const running = [(await h.client.dispatch(wf.uiResearch)(h.dir)).id, (await h.client.dispatch(wf.uiResearch)(h.dir)).id];
    const answer = await post('/api/cancel-many', { dispatchIds: [...running, dispatchId], reason: 'wrong input data' });
    expect(answer.status).toBe(200);
    const { results } = JSON.parse(answer.body) as { results: { dispatchId: string; report?: { dispatchId: string }; accepted?: { requestId: string }; skipped?: string }[] };
    // Each running one answers its report, or (a cancel not finished within the endpoint's answer budget) its acceptance.
    expect(results.map((r) => [r.dispatchId, r.report ? 'stopped' : r.accepted ? 'stopped' : r.skipped])).toEqual([
      [running[0], 'stopped'],
      [running[1], 'stopped'],
      [dispatchId, 'already COMPLETED'],
    ]);
    for (const id of running) {
      const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
      expect(result.status).toBe('CANCELLED');
      expect(result.cancelRequests.map((r) => r.reason)).toEqual(['wrong input data']);
    }
  }, 90_000);
});

describe('the shared poll loop', () => {
  it('reads a dispatch once per tick however many pages watch it, and not at all once it is terminal', async () => {
    const running = (await h.client.dispatch(wf.uiResearch)(h.dir)).id;
    const watch = (id: string): Promise<{ close: () => void; events: number }> =>
      new Promise((resolve) => {
        const state = { events: 0, close: () => req.destroy() };
        const req = request({ host: '127.0.0.1', port: ui.port, path: `/api/events/dispatch/${id}`, headers: { host: `127.0.0.1:${ui.port}`, cookie: cookie() } }, (res) => {
          res.on('data', (c: Buffer) => (state.events += (c.toString().match(/^event: /gm) ?? []).length));
          resolve(state);
        });
        req.end();
      });
    const window = async (ms: number): Promise<number> => {
      const before = ui.hub.readCounts.getResult;
      await new Promise((r) => setTimeout(r, ms));
      return ui.hub.readCounts.getResult - before;
    };
    const one = await watch(running);
    await window(500);
    const alone = await window(2_000);
    const pages = [await watch(running), await watch(running), await watch(running)];
    const four = await window(2_000);
    expect(alone).toBeGreaterThan(0);
    // Four pages cost what one does (±1 tick, and a sublattice child read while it runs).
    expect(four).toBeLessThanOrEqual(alone * 2 + 2);
    expect(pages.every((p) => p.events >= 1)).toBe(true);
    // A terminal dispatch is read once for its snapshot and then never again.
    const done = await watch(dispatchId);
    await window(300);
    for (const p of [one, ...pages]) p.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(await window(1_500)).toBe(0);
    done.close();
    await h.client.cancel(running, { reason: 'test over' });
    await h.client.getResult(running, { wait: true, timeoutMs: 30_000 });
  });
});
