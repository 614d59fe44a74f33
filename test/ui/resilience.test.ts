// The dashboard page when things go wrong in the browser, in a real Chromium: a hash that
// changes before the page listens for it, a layout worker that cannot load or never answers, a
// server that does not answer. Each used to leave the page showing the wrong thing, or "Laying out…" and
// "Connecting…" for ever, with nothing said.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../ui/server/index.ts';
import { CHROMIUM, pageLog, waitVisible } from './browser.ts';
import { layered, syntheticReader } from './fixtures/synthetic.ts';

const reader = syntheticReader(new Map([['three', layered('three', 1, 3)]]));

let ui: Dashboard;
let browser: Browser;
beforeAll(async () => {
  ui = await startDashboard({ client: reader });
  browser = await chromium.launch(CHROMIUM);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

/** A fresh page (its own context: its own cookie and layout worker) and what it logs. */
async function freshPage(): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  return { page, log: pageLog(page) };
}

// Concurrent: each test has its own page, and the slow-layout one mostly waits.
describe.concurrent('the dashboard page under faults', () => {
  it('opens the dispatch a hash names even when the hash changes before the page listens for it', async () => {
    const { page, log } = await freshPage();
    try {
      // Change the hash the moment the app first renders: a microtask, before Preact runs the
      // effect that subscribes to hashchange (effects wait for the next frame).
      // (A string: this project's types have no DOM.)
      await page.addInitScript({
        content: `new MutationObserver((_, observer) => {
          if (!document.getElementById('app')?.firstChild) return;
          observer.disconnect();
          location.hash = '#/dispatch/three';
        }).observe(document, { childList: true, subtree: true });`,
      });
      await page.goto(ui.url);
      await waitVisible(page, page.locator('svg.graph[data-mode="full"] g.node[data-node-id="2"]'), log, 30_000);
      expect(new URL(page.url()).hash).toBe('#/dispatch/three');
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('three');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('says so when the layout worker cannot load, and lays out on retry once it can', async () => {
    const { page, log } = await freshPage();
    try {
      const refused: string[] = [];
      await page.route('**/assets/elk-worker.js', (route) => {
        refused.push(new URL(route.request().url()).pathname);
        return route.fulfill({ status: 503, body: 'unavailable' });
      });
      await page.goto(ui.url);
      await page.goto(`${new URL(ui.url).origin}/#/dispatch/three`);
      const alert = page.getByRole('alert').filter({ hasText: 'The layout failed' });
      await waitVisible(page, alert, log, 30_000);
      expect(await alert.textContent()).toContain('the layout worker failed');
      expect(refused).toContain('/assets/elk-worker.js');
      expect(await page.locator('svg.graph').count()).toBe(0);
      await page.unroute('**/assets/elk-worker.js');
      await alert.getByRole('button', { name: 'Retry layout' }).click();
      await waitVisible(page, page.locator('svg.graph[data-mode="full"] g.node[data-node-id="2"]'), log, 30_000);
      expect(await page.getByRole('alert').filter({ hasText: 'The layout failed' }).count()).toBe(0);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('says so when a layout goes unanswered for 15 s, and restarts it', async () => {
    const { page, log } = await freshPage();
    try {
      // A worker that loads but never answers: a wedged layout engine.
      await page.route('**/assets/elk-worker.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: 'self.onmessage = () => {};' }));
      await page.goto(ui.url);
      await page.goto(`${new URL(ui.url).origin}/#/dispatch/three`);
      const asked = Date.now();
      const alert = page.getByRole('alert').filter({ hasText: 'Still laying out 3 nodes after 15 s' });
      await waitVisible(page, alert, log, 60_000);
      expect(Date.now() - asked).toBeGreaterThanOrEqual(14_000);
      expect(await page.locator('svg.graph').count()).toBe(0);
      await page.unroute('**/assets/elk-worker.js');
      await alert.getByRole('button', { name: 'Restart layout' }).click();
      await waitVisible(page, page.locator('svg.graph[data-mode="full"] g.node[data-node-id="2"]'), log, 30_000);
      expect(await page.getByRole('alert').count()).toBe(0);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('says the server did not answer, and connects once it does', async () => {
    const { page, log } = await freshPage();
    try {
      let refusals = 0;
      await page.route('**/api/capabilities', (route) => {
        refusals++;
        return route.abort('connectionrefused');
      });
      await page.goto(ui.url);
      const alert = page.getByRole('alert').filter({ hasText: 'The dashboard server did not answer' });
      await waitVisible(page, alert, log, 30_000);
      await page.unroute('**/api/capabilities');
      // The page asks again by itself: no reload.
      await waitVisible(page, page.getByRole('heading', { name: 'Dispatches' }), log, 30_000);
      expect(refusals).toBeGreaterThan(0);
      expect(await alert.count()).toBe(0);
    } finally {
      await page.close();
    }
  }, 60_000);
});
