// The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core):
// open a running dispatch on the local cloud, see its nodes, cancel the running Batch task
// with a reason from the UI, and observe that the job's processes are gone, the node and its
// descendants show CANCELLED, the reason is in the audit timeline, and the rest completes.
// Then redispatch a cancelled run from its page: the dry-run plan first, then the new dispatch.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../ui/server/index.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { alive, waitFor } from '../cancel/observe.ts';
import { CHROMIUM } from './browser.ts';
import * as wf from './fixtures/workflows.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));
// The README's picture is rewritten only when asked (`VALENCE_UPDATE_SCREENSHOT=1`): a test run
// leaves the working tree as it found it.
const SCREENSHOT = process.env.VALENCE_UPDATE_SCREENSHOT === '1'
  ? fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url))
  : join(mkdtempSync(join(tmpdir(), 'valence-dashboard-')), 'dashboard.png');

let h: RuntimeHarness;
let dashboard: Dashboard;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
  dashboard = await startDashboard({ client: h.client, poll: { minIntervalMs: 200, maxIntervalMs: 1000 } });
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await h?.close();
  if (process.env.VALENCE_UPDATE_SCREENSHOT !== '1') rmSync(dirname(SCREENSHOT), { recursive: true, force: true });
});

const node = (path: string) => page.locator(`svg.graph [data-node-id="${path}"]`);

describe('the dashboard on the local cloud', () => {
  it('shows a running dispatch, cancels its running Batch task with a reason, and the rest completes', async () => {
    const dispatchId = (await h.client.dispatch(wf.uiResearch)(h.dir)).id;
    const pidsFile = `${h.dir}/train.pids`;
    await waitFor('the Batch job to start', () => existsSync(pidsFile), 60_000);
    const pids = readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number);
    expect(pids.every(alive)).toBe(true);

    // The list page: the dispatch is there, live, with its short id; clicking opens it.
    await page.goto(dashboard.url);
    const row = page.locator(`tr[data-dispatch-id="${dispatchId}"]`);
    await row.waitFor({ timeout: 20_000 });
    expect(await row.getAttribute('data-status')).toBe('RUNNING');
    await row.getByRole('link', { name: dispatchId.slice(0, 8) }).click();

    // The graph: every node, with its status; the Batch node is RUNNING.
    await node('4').and(page.locator('[data-status="RUNNING"]')).waitFor({ timeout: 20_000 });
    expect(await page.locator('svg.graph g.node[data-node-id]').count()).toBe(10);
    expect(await node('0').getAttribute('data-status')).toBe('COMPLETED');
    expect(await node('5').getAttribute('data-status')).toBe('NEW_OBJECT');

    // The sublattice expands into its child graph.
    await node('7').click();
    await page.getByRole('button', { name: 'Expand sublattice', exact: true }).click();
    await node('7/2').waitFor({ timeout: 20_000 });

    // Cancel the running Batch task from its panel, with a reason.
    await node('4').click();
    await page.getByRole('button', { name: 'Cancel task', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.locator('[data-testid="cancel-summary"]').textContent()).toContain('stops 1 running and 2 not-started tasks');
    await dialog.getByRole('button', { name: 'Confirm cancel' }).click();
    // The reason is required: nothing is sent without it.
    expect(await dialog.isVisible()).toBe(true);
    expect((await h.client.getResult(dispatchId)).cancelRequests).toHaveLength(0);
    await dialog.getByLabel('Reason').fill('loss diverged at step 40');
    // force is offered, labelled; left off, the job gets its grace period (3 s, which it ignores).
    expect(await dialog.getByLabel(/^Force/).isChecked()).toBe(false);
    await dialog.getByRole('button', { name: 'Confirm cancel' }).click();

    // The request's progress, live: OPEN while the job has its grace period, with targets done
    // out of all; then DONE with its final report, which lists the Batch task and what it held.
    const request = page.locator('.cancel-request');
    await request.and(page.locator('[data-state="OPEN"]')).waitFor({ timeout: 60_000 }); // the cancel API's answer: slow under load
    await request.and(page.locator('[data-state="DONE"]')).locator('.report').waitFor({ timeout: 60_000 }); // slow under load
    expect(await request.locator('[data-testid="cancel-progress"]').textContent()).toMatch(/^(\d+)\/\1 targets · \w+/);
    const cancelledRow = request.getByRole('table', { name: 'Cancelled tasks' }).locator('tr[data-node-id="4"]');
    // Its status in the report is as the report was written (CANCELLED, or RUNNING while the job was still stopping).
    expect(await cancelledRow.textContent()).toMatch(/train\s*RUNNING\s*(RUNNING|CANCELLED)\s*TerminateJob\s*ran .+, 2 vCPU, 1024 MiB/);
    expect(await request.getAttribute('data-request-id')).toBe((await h.client.getResult(dispatchId)).cancelRequests[0]!.requestId);

    // The job's process group is really gone.
    await waitFor('the Batch processes to exit', () => pids.every((pid) => !alive(pid)), 20_000);

    // The node and its descendants show CANCELLED; the reason is in the audit timeline.
    for (const path of ['4', '5', '6']) await node(path).and(page.locator('[data-status="CANCELLED"]')).waitFor({ timeout: 20_000 });
    const timeline = page.getByRole('region', { name: 'Audit timeline' });
    await timeline.getByText('loss diverged at step 40').waitFor({ timeout: 20_000 });
    expect(await timeline.locator('li.cancel').textContent()).toMatch(/arn:aws:iam::\d{12}:user\/.*cancelled task 4/);

    // The rest of the run completes, and the page shows it.
    for (const path of ['8', '9', '7', '7/2']) await node(path).and(page.locator('[data-status="COMPLETED"]')).waitFor({ timeout: 30_000 });
    const result = await h.client.getResult(dispatchId, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'CANCELLED', 'CANCELLED', 'CANCELLED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(readFileSync(`${h.dir}/ran.log`, 'utf8')).not.toMatch(/evaluate|report/);
    await page.locator('.bar .pill[data-status="CANCELLED"]').waitFor({ timeout: 20_000 });

    // A completed node's panel previews its output.
    await node('9').click();
    await expect.poll(() => page.getByLabel('Output preview').textContent(), { timeout: 10_000 }).toContain("name: 'summary'");

    // The picture the README shows: the cancelled node selected.
    await node('4').click();
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(readFileSync(SCREENSHOT).subarray(1, 4).toString()).toBe('PNG');

    // The redispatch plan breaks the sublattice out into its child graph's nodes (nothing runs).
    await page.getByRole('button', { name: 'Redispatch…', exact: true }).click();
    const plan = page.getByRole('dialog').getByRole('table', { name: 'Redispatch plan' });
    await plan.waitFor({ timeout: 30_000 });
    expect(await plan.locator('tr[data-node-id="7"]').getAttribute('data-action')).toBe('run');
    for (const [path, name] of [['7/0', 'load'], ['7/1', 'encode'], ['7/2', 'normalize']]) {
      expect(await plan.locator(`tr[data-node-id="${path}"]`).textContent()).toMatch(new RegExp(`${name}.*run.*inside sublattice 7.*was completed`));
    }
    expect(await page.locator('[data-testid="redispatch-summary"]').textContent()).toContain('and 3 inside sublattices');
    await page.keyboard.press('Escape');
  }, 240_000);

  it('redispatches a cancelled run: shows the dry-run plan, runs it, opens the new dispatch, and reused electrons do not run again', async () => {
    const dir = join(h.dir, 'redo');
    mkdirSync(dir);
    const log = (): string[] => (existsSync(join(dir, 'redo.log')) ? readFileSync(join(dir, 'redo.log'), 'utf8').trim().split('\n') : []);
    const otherDir = join(h.dir, 'redo-other');
    mkdirSync(otherDir);
    const old = (await h.client.dispatch(wf.uiRedo)(dir)).id;
    const other = (await h.client.dispatch(wf.uiRedo)(otherDir)).id;
    const holding = async (id: string): Promise<boolean> => {
      const nodes = (await h.client.getResult(id)).nodes;
      return nodes.slice(0, 2).every((n) => n.status === 'COMPLETED') && nodes[2]!.status === 'RUNNING';
    };
    await waitFor('both runs hold, their parts completed', async () => (await holding(old)) && (await holding(other)), 30_000);

    // Cancel everything matching a filter, over several dispatches, from the list page.
    await page.goto(`${new URL(dashboard.url).origin}/#/`);
    await page.getByLabel('Lattice').selectOption('ui-redo');
    await page.getByLabel('Status').selectOption('RUNNING');
    const rows = page.locator('table.list tbody tr');
    await expect.poll(() => rows.evaluateAll((trs: readonly { getAttribute(name: string): string | null }[]) => trs.map((tr) => tr.getAttribute('data-dispatch-id')).sort()), { timeout: 20_000 }).toEqual([old, other].sort());
    const bulk = page.getByRole('button', { name: 'Cancel matching dispatches (2)' });
    // The confirmation names what stops, as last read: each run holds one task and has one not started.
    await bulk.click();
    await expect.poll(() => page.getByRole('dialog').locator('[data-testid="cancel-summary"]').textContent(), { timeout: 20_000 }).toContain('Matching lattice ui-redo, status RUNNING: 2 running dispatches. This stops 2 running and 2 not-started tasks');
    await page.getByRole('dialog').getByLabel('Reason').fill('wrong threshold');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm cancel' }).click();
    const results = page.getByRole('region', { name: 'Cancel results' });
    for (const id of [old, other]) await results.locator(`[data-dispatch-id="${id}"]`).waitFor({ timeout: 60_000 });
    for (const id of [old, other]) {
      const ended = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
      expect([ended.status, ended.nodes.map((n) => n.status), ended.cancelRequests.map((r) => r.reason)]).toEqual(['CANCELLED', ['COMPLETED', 'COMPLETED', 'CANCELLED', 'CANCELLED'], ['wrong threshold']]);
    }
    // The status filter is live: the cancelled runs leave the RUNNING view.
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(0);

    await page.goto(`${new URL(dashboard.url).origin}/#/dispatch/${old}`);
    await page.locator('.bar .pill[data-status="CANCELLED"]').waitFor({ timeout: 20_000 });
    const open = page.getByRole('button', { name: 'Redispatch…', exact: true });
    const dialog = page.getByRole('dialog');
    // Keyboard: the button opens the dialog, Escape closes it.
    await open.focus();
    await page.keyboard.press('Enter');
    await dialog.waitFor({ timeout: 5_000 });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden', timeout: 5_000 });

    // The dry-run plan: both parts reused from the old dispatch, hold and sum run, and why.
    await open.click();
    const plan = dialog.getByRole('table', { name: 'Redispatch plan' });
    await plan.waitFor({ timeout: 30_000 });
    expect(await dialog.locator('[data-testid="redispatch-summary"]').textContent()).toContain('2 reused, 2 to run');
    for (const id of ['0', '1']) {
      const row = plan.locator(`tr[data-node-id="${id}"]`);
      expect(await row.getAttribute('data-action')).toBe('reuse');
      expect(await row.textContent()).toContain(`from ${old.slice(0, 8)} node ${id}`);
    }
    expect(await plan.locator('tr[data-node-id="2"]').textContent()).toContain('ended CANCELLED');
    expect(await plan.locator('tr[data-node-id="3"]').textContent()).toContain('ended CANCELLED');
    expect(await plan.locator('tr[data-node-id="3"]').getAttribute('data-action')).toBe('run');
    expect(log().filter((l) => l === 'hold')).toHaveLength(1); // the dry run ran nothing

    // Run it: the page moves to the new dispatch, which completes.
    writeFileSync(join(dir, 'release'), '');
    await dialog.getByRole('button', { name: 'Run redispatch', exact: true }).click();
    const shownId = (): string => decodeURIComponent(new URL(page.url()).hash.slice('#/dispatch/'.length));
    await expect.poll(shownId, { timeout: 20_000 }).not.toBe(old);
    const fresh = shownId();
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    await page.locator('.bar .pill[data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
    for (const path of ['0', '1', '2', '3']) expect(await node(path).getAttribute('data-status')).toBe('COMPLETED');
    const result = await h.client.getResult(fresh, { wait: true, timeoutMs: 30_000 });
    expect([result.status, result.result]).toEqual(['COMPLETED', 105]);
    // The reused electrons did not run again; the cancelled one and its child did.
    expect([...log()].sort()).toEqual(['hold', 'hold', 'part 1', 'part 2', 'sum']);

    // Rerun everything: its dry-run plan first (every node runs, reuse off), then every electron runs again.
    const rerun = page.getByRole('button', { name: 'Rerun everything…', exact: true });
    await rerun.click();
    await plan.waitFor({ timeout: 30_000 });
    expect(await dialog.locator('[data-testid="redispatch-summary"]').textContent()).toContain('0 reused, 4 to run');
    expect(await plan.locator('tr[data-action="run"]').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('reuse is off')]));
    expect(await plan.locator('tr[data-action="reuse"]').count()).toBe(0);
    expect(log()).toHaveLength(5); // the dry run ran nothing
    await dialog.getByRole('button', { name: 'Rerun everything', exact: true }).click();
    await expect.poll(shownId, { timeout: 20_000 }).not.toBe(fresh);
    const again = shownId();
    const rerunResult = await h.client.getResult(again, { wait: true, timeoutMs: 30_000 });
    expect([rerunResult.status, rerunResult.result]).toEqual(['COMPLETED', 105]);
    expect([...log()].sort()).toEqual(['hold', 'hold', 'hold', 'part 1', 'part 1', 'part 2', 'part 2', 'sum', 'sum']);
  }, 240_000);
});
