// docs/clients.md stays true in a browser: its example page, served from the server's origin as
// an application would serve it, lets two people write together with names and carets.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { serverAndBrowser, until, watch } from './support.js';

const DOC = readFileSync(new URL('../../docs/clients.md', import.meta.url), 'utf8');
const match = /```html example-page\n([\s\S]*?)```/.exec(DOC);

const { server, browser } = await serverAndBrowser();

/**
 * Opens the example page as `name`: the browser asks the server's origin for `/notes.html`, and
 * gets the page from the docs (the rest, `/js/tandem.js` and the WebSocket, is the server's).
 * @param {string} name
 */
async function examplePage(name) {
  assert.ok(match, 'docs/clients.md has an ```html example-page block');
  const html = match[1];
  // A page answered by a route has no address, so Chromium takes it for a public one and asks
  // before it lets it reach 127.0.0.1: a person would click "allow", the test grants it.
  const context = await browser.newContext({ permissions: ['local-network-access'] });
  await context.route(`${server.url}/notes.html*`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }));
  const page = watch(await context.newPage());
  await page.goto(`${server.url}/notes.html?name=${encodeURIComponent(name)}`);
  await until(page, () => document.querySelector('#status')?.textContent === 'online', undefined, 'the example online');
  return page;
}

/** @param {import('playwright-core').Page} page */
const textOf = (page) => page.evaluate(() => /** @type {any} */ (window).client.text);

test('the example page of docs/clients.md lets two people write together', async () => {
  const ada = await examplePage('Ada');
  const grace = await examplePage('Grace');
  for (const [page, other] of [[ada, 'Grace'], [grace, 'Ada']]) {
    await until(page, (name) => document.querySelector('#users')?.textContent === name, other, `${other} in the list of people`);
  }

  await ada.locator('textarea').click();
  await ada.keyboard.type('Hello 👋 ');
  await until(grace, () => document.querySelector('textarea')?.value === 'Hello 👋 ', undefined, 'Ada\'s text in Grace\'s page');
  await grace.locator('textarea').click();
  await grace.keyboard.press('Control+End');
  await grace.keyboard.type('from both of us');

  const expected = 'Hello 👋 from both of us';
  for (const page of [ada, grace]) {
    await until(page, (text) => document.querySelector('textarea')?.value === text && /** @type {any} */ (window).client.isSynced, expected, 'both texts');
  }
  assert.equal(await textOf(ada), expected);
  assert.equal((await server.document('example')).text, expected);

  // Each sees the other's caret, labelled with their name, where they last typed.
  const adaId = await ada.evaluate(() => /** @type {any} */ (window).client.clientId);
  const graceId = await grace.evaluate(() => /** @type {any} */ (window).client.clientId);
  await until(ada, (id) => document.querySelector(`[data-tandem="caret"][data-client="${id}"]`)?.textContent === 'Grace', graceId, 'Grace\'s caret in Ada\'s page');
  await until(grace, (id) => document.querySelector(`[data-tandem="caret"][data-client="${id}"]`)?.textContent === 'Ada', adaId, 'Ada\'s caret in Grace\'s page');
  assert.deepEqual([ada.errors, grace.errors], [[], []]);
});
