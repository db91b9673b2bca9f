// What the browser tests share: Debian's Chromium launched headless by playwright-core,
// a screenshot per step, and every error the page reports collected (a test fails on any).
import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export async function launch({ shots }) {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  // Pages the test means to be answered with an error status (a form sent wrong on
  // purpose): the browser logs their status, which is not a fault of the page.
  const refusals = [];
  let step = 0;
  const watch = (page, name) => {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = m.location()?.url || '';
      if (m.text().startsWith('Failed to load resource') && refusals.some((r) => url.endsWith(r))) return;
      errors.push(`${name}: console: ${m.text()} (${url})`);
    });
    page.on('pageerror', (e) => errors.push(`${name}: page error: ${e.message}`));
  };
  return {
    browser,
    errors,
    /** Collect the errors of a page opened otherwise. */
    watchPage(page, name) {
      watch(page, name);
    },
    /** The page at a path ending in `path` may be answered with an error status. */
    refusedOn(path) {
      refusals.push(path);
    },
    /** A new page in its own context (its own cookies) at a viewport. */
    async page(name, viewport = { width: 1280, height: 800 }) {
      const context = await browser.newContext({ viewport });
      // Every wait is for an event; this only bounds a test that would otherwise hang.
      context.setDefaultTimeout(120_000);
      const page = await context.newPage();
      watch(page, name);
      return page;
    },
    /** Save a screenshot of the step, numbered in order. */
    async shot(page, name) {
      step += 1;
      const file = join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(JSON.stringify({ step, name, screenshot: file }));
    },
  };
}

export function check(ok, what) {
  if (!ok) throw new Error(`failed: ${what}`);
}
