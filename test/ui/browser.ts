// Debian's headless Chromium, as the dashboard's browser tests launch it.
import type { Locator, Page } from 'playwright-core';

/** The flags Debian's chromium needs on this kind of machine (shared/DEPENDENCIES.md). */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
};

/**
 * What a page reported while a test drove it: console errors and warnings, uncaught
 * exceptions, failed requests, worker errors, a renderer crash. A browser test that times out
 * on CI otherwise says only "Timeout exceeded"; with this it says what the page saw.
 */
export function pageLog(page: Page): string[] {
  const log: string[] = [];
  const note = (line: string): void => {
    log.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (log.length > 200) log.shift();
  };
  page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && note(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => note(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => note(`requestfailed: ${r.method()} ${new URL(r.url()).pathname} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => r.status() >= 400 && note(`response ${r.status()}: ${r.request().method()} ${new URL(r.url()).pathname}`));
  page.on('worker', (w) => note(`worker started: ${new URL(w.url()).pathname}`));
  page.on('crash', () => note('renderer crashed'));
  return log;
}

/**
 * Waits for `locator` to be visible; on a timeout the error carries the page's text and its
 * log, so that a failure on a loaded CI machine can be explained rather than only re-run.
 */
export async function waitVisible(page: Page, locator: Locator, log: readonly string[], timeout: number): Promise<void> {
  try {
    await locator.waitFor({ timeout });
  } catch (error) {
    const text = await page.locator('body').innerText({ timeout: 5_000 }).catch((e: unknown) => `(body unreadable: ${String(e)})`);
    throw new Error(`${(error as Error).message}\n--- page text ---\n${text.slice(0, 2_000)}\n--- page log ---\n${log.join('\n') || '(nothing logged)'}`, { cause: error });
  }
}
