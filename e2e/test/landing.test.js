// The landing page: "New document" opens a fresh document, and a typed name opens that one.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { serverAndBrowser, until, waitOnline, watch } from './support.js';

const { server, browser } = await serverAndBrowser();

test('the landing page opens a new document, or one by name', async () => {
  const context = await browser.newContext();
  const page = watch(await context.newPage());
  await page.goto(`${server.url}/`);

  await page.locator('[data-tandem="new"]').click();
  await page.waitForURL(/\/d\/[A-Za-z0-9._-]+$/);
  const fresh = decodeURIComponent(new URL(page.url()).pathname.slice('/d/'.length));
  await waitOnline(page);
  assert.equal(await page.locator('.doc-id').textContent(), fresh);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).tandem.text()), '', 'a new document is empty');
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).tandem.client.doc), fresh);
  // It is writable: what is typed reaches the server.
  await page.locator('[data-tandem="editor"]').click();
  await page.keyboard.type('first words');
  await until(page, () => /** @type {any} */ (window).tandem.isSynced(), undefined, 'the typing acknowledged');
  assert.equal((await server.document(fresh)).text, 'first words');

  await page.goto(`${server.url}/`);
  // The document just made is among the recent ones.
  assert.deepEqual(await page.locator('.recent a').allTextContents(), [fresh]);
  await page.locator('[data-tandem="doc"]').fill('meeting-notes');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.waitForURL(`${server.url}/d/meeting-notes`);
  await waitOnline(page);
  assert.equal(await page.locator('.doc-id').textContent(), 'meeting-notes');
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).tandem.client.doc), 'meeting-notes');
  assert.deepEqual(page.errors, []);
  await context.close();
});
