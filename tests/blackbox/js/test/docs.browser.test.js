// Swagger UI at /docs rendered by a real headless Chromium: every operation of /openapi.json
// is on the page, the page names the scopes, and nothing is fetched from anywhere but the
// server (the assets are bundled into the binary). The screenshot is kept for a reader at
// $TESSERA_ARTIFACTS/docs.png when that is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BASE } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const NO_BROWSER = !existsSync(CHROMIUM) && `no browser at ${CHROMIUM}`;

test('issue 11: Swagger UI renders every operation from bundled assets', { skip: NO_BROWSER }, async () => {
  const doc = await (await fetch(`${BASE}/openapi.json`)).json();
  const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item)).length;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const elsewhere = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(BASE) && !req.url().startsWith('data:')) elsewhere.push(req.url());
    });
    await page.goto(`${BASE}/docs`);
    await page.waitForSelector('.opblock', { timeout: 15000 });
    const shown = await page.locator('.opblock').count();
    assert.equal(shown, operations, 'one block per operation');
    const text = await page.locator('.information-container').innerText();
    assert.match(text, /Tessera/);
    // An operation opened: its description names the scope it needs.
    await page.locator('#operations-apps-apps_create .opblock-summary').click();
    await page.waitForSelector('#operations-apps-apps_create .opblock-description-wrapper');
    const described = await page.locator('#operations-apps-apps_create').innerText();
    assert.match(described, /write_app/);
    assert.deepEqual(elsewhere, [], 'nothing fetched from elsewhere');
    const shot = await page.screenshot({ fullPage: false });
    assert.ok(shot.length > 10000, 'a screenshot with something on it');
    if (process.env.TESSERA_ARTIFACTS) {
      await page.screenshot({ path: join(process.env.TESSERA_ARTIFACTS, 'docs.png') });
    }
  } finally {
    await browser.close();
  }
});
