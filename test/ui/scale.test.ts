// The graph at 1,000 and 20,000 nodes in a real browser. A 20,000-node dispatch takes over
// ten minutes to run on the local cloud (README, benchmark 7), so this test serves the dashboard
// synthetic dispatch reads of the SDK's own shape (`DispatchResult`) instead; the end-to-end
// path on the local cloud is dashboard.test.ts.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DispatchResult, NodeResult } from '../../sdk/index.ts';
import { startDashboard, type Dashboard, type DashboardClient } from '../../ui/server/index.ts';
import { CHROMIUM } from './browser.ts';

/** `layers` layers of `width` nodes; each node takes the two nodes above it as parents. */
function layered(dispatchId: string, layers: number, width: number): DispatchResult {
  const nodes: NodeResult[] = [];
  const statuses = ['COMPLETED', 'RUNNING', 'NEW_OBJECT'] as const;
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const id = l * width + i;
      nodes.push({
        id,
        name: `task-${id}`,
        kind: 'electron',
        status: statuses[Math.min(2, Math.floor((l * 3) / layers))]!,
        executor: 'lambda',
        parents: l === 0 ? [] : [(l - 1) * width + i, (l - 1) * width + ((i + 1) % width)],
        attempts: 1,
        cancelRequested: false,
      });
    }
  }
  return { dispatchId, lattice: 'scale', status: 'RUNNING', result: undefined, error: undefined, startedAt: new Date().toISOString(), endedAt: undefined, cancelRequests: [], nodes };
}

const dispatches = new Map([
  ['scale-1k', layered('scale-1k', 10, 100)],
  ['scale-20k', layered('scale-20k', 20, 1000)],
]);
const reader: DashboardClient = {
  getResult: <R>(id: string) => Promise.resolve(dispatches.get(id) as DispatchResult<R>),
  listDispatches: () => Promise.resolve([]),
  cancel: () => Promise.reject(new Error('not in this test')),
  getNodeOutput: () => Promise.resolve(undefined),
};

let ui: Dashboard;
let browser: Browser;
let page: Page;
beforeAll(async () => {
  ui = await startDashboard({ client: reader });
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(ui.url);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

/** How long the page takes to answer a trivial script: a frozen tab does not answer. */
async function responsiveness(p: Page): Promise<number> {
  const asked = Date.now();
  await p.evaluate(() => 1);
  return Date.now() - asked;
}

describe('the graph at scale', () => {
  it('lays out all 1,000 nodes, and search by name finds and opens one', async () => {
    await page.goto(`${new URL(ui.url).origin}/#/dispatch/scale-1k`);
    await page.locator('svg.graph[data-mode="full"]').waitFor({ timeout: 90_000 });
    expect(await page.locator('svg.graph g.node[data-node-id]').count()).toBe(1000);
    // The layout time, for the record (it depends on the machine's load).
    process.stdout.write(`1,000 nodes: ${await page.locator('.toolbar .small').textContent()}\n`);
    expect(await page.locator('svg.graph [data-status="RUNNING"]').count()).toBe(300);
    await page.getByLabel('Search nodes').fill('task-777');
    await page.getByLabel('Search nodes').press('Enter');
    await page.locator('.node-panel[data-node-id="777"]').waitFor();
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await page.locator('svg.graph').press('0');
    expect(await responsiveness(page)).toBeLessThan(2_000);
  }, 120_000);

  it('shows 20,000 nodes as a summary of clusters, stays responsive, and lists a cluster’s nodes', async () => {
    await page.goto(`${new URL(ui.url).origin}/#/dispatch/scale-20k`);
    await page.locator('svg.graph[data-mode="summary"]').waitFor({ timeout: 90_000 });
    const clusters = await page.locator('svg.graph [data-cluster-id]').count();
    expect(clusters).toBe(80); // 20 levels × 4 clusters of ≤ 250
    process.stdout.write(`20,000 nodes: ${await page.locator('.toolbar .small').textContent()}\n`);
    expect(await page.locator('svg.graph g.node').count()).toBe(0);
    expect(await responsiveness(page)).toBeLessThan(2_000);
    await page.locator('svg.graph [data-cluster-id="cluster:19:3"]').click();
    await page.getByRole('button', { name: /^19999 · task-19999$/ }).click();
    await page.locator('.node-panel[data-node-id="19999"][data-status="NEW_OBJECT"]').waitFor();
  }, 120_000);
});
