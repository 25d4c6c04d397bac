// Shared helpers for the browser tests: the real `tandem` binary on a free port (restartable on
// the same port and data), a TCP proxy that can cut connections, Debian's Chromium through
// playwright-core, editor pages, and waiting for every page to converge with the server.
//
// Every wait here is for a condition, bounded by PATIENCE, which only guards against hangs.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';

import { chromium } from 'playwright-core';

import { Server } from '../../clients/js/test/support/binary.js';

/** Every wait ends well within this; it guards against hangs and synchronises nothing. */
export const PATIENCE = 20_000;

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// ---- The server (shared with the client's tests) ----

export { Server };

/** The server's `/status`: connections, and per document its clients, revision and length. */
export async function serverStatus(/** @type {Server} */ server) {
  const response = await fetch(`${server.url}/status`);
  return /** @type {Promise<{connections: number, documents: {id: string, clients: number, revision: number, length: number}[]}>} */ (
    response.json()
  );
}

/**
 * Starts the server (with `options`) and a browser for one test file, and closes both once the
 * file's tests are done.
 * @param {{persistent?: boolean, args?: string[]}} [options]
 */
export async function serverAndBrowser(options) {
  const [server, browser] = await Promise.all([Server.start(options), launch()]);
  after(async () => {
    await browser.close();
    await server.close();
  });
  return { server, browser };
}

// ---- A TCP proxy (shared with the client's tests) ----

export { Proxy } from '../../clients/js/test/support/proxy.js';

// ---- The browser and editor pages ----

/** Debian's Chromium (or $CHROMIUM), headless, each launch with a fresh profile. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * @typedef {import('playwright-core').Page & {errors: string[]}} EditorPage
 * A page with the errors it raised (uncaught exceptions and console errors), so that a test can
 * check that nothing went wrong behind a converged text.
 */

/**
 * Opens `/d/{doc}` in a new browser context (one user: its own localStorage, so its own name
 * and colour) and waits until the editor is online.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url the server (or a proxy)
 * @param {string} doc
 * @param {{name?: string, color?: string, viewport?: {width: number, height: number}}} [user]
 *   a name and colour stored before the page loads, as if chosen on an earlier visit
 * @returns {Promise<EditorPage>}
 */
export async function openEditor(browser, url, doc, user = {}) {
  const context = await browser.newContext({ viewport: user.viewport ?? { width: 1000, height: 700 } });
  if (user.name !== undefined || user.color !== undefined) {
    await context.addInitScript((stored) => {
      if (stored.name !== undefined) localStorage.setItem('tandem.name', stored.name);
      if (stored.color !== undefined) localStorage.setItem('tandem.color', stored.color);
    }, { name: user.name, color: user.color });
  }
  const page = /** @type {EditorPage} */ (await context.newPage());
  watch(page);
  await page.goto(`${url}/d/${doc}`);
  await waitOnline(page);
  return page;
}

/**
 * Collects a page's uncaught errors and console errors in `page.errors`.
 * @param {import('playwright-core').Page} page
 */
export function watch(page) {
  const watched = /** @type {EditorPage} */ (page);
  watched.errors = [];
  page.on('pageerror', (error) => watched.errors.push(`uncaught: ${error.stack ?? error.message}`));
  page.on('console', (message) => {
    // A refused WebSocket while the server is down is the browser's console noise, not the page's.
    if (message.type() === 'error' && !/WebSocket connection to .* failed/.test(message.text())) {
      watched.errors.push(`console: ${message.text()}`);
    }
  });
  return watched;
}

/** The editor's textarea. @param {import('playwright-core').Page} page */
export const editor = (page) => page.locator('[data-tandem="editor"]');

/**
 * Waits until `predicate(arg)` holds in the page (polled, so that hidden pages are no slower).
 * @template T
 * @param {import('playwright-core').Page} page
 * @param {(arg: T) => unknown} predicate
 * @param {T} [arg]
 * @param {string} [what] said when it times out
 */
export async function until(page, predicate, arg, what = String(predicate)) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: PATIENCE, polling: 20 });
  } catch (error) {
    throw new Error(`timed out waiting for ${what} in ${page.url()}: ${/** @type {Error} */ (error).message.split('\n')[0]}`);
  }
}

/** Waits until the page's client is online. @param {import('playwright-core').Page} page */
export function waitOnline(page) {
  // @ts-ignore: window.tandem is the page's own
  return until(page, () => window.tandem?.status() === 'online', undefined, 'status online');
}

/**
 * The state of a page's editor: the client's text, what the textarea shows, and so on.
 * @param {import('playwright-core').Page} page
 */
export function state(page) {
  return page.evaluate(() => {
    // @ts-ignore: window.tandem is the page's own
    const t = window.tandem;
    const textarea = /** @type {HTMLTextAreaElement} */ (document.querySelector('[data-tandem="editor"]'));
    return {
      text: /** @type {string} */ (t.text()),
      value: textarea.value,
      revision: /** @type {number} */ (t.revision()),
      status: /** @type {string} */ (t.status()),
      synced: /** @type {boolean} */ (t.isSynced()),
      clientId: /** @type {string} */ (t.clientId()),
      title: /** @type {string} */ (t.title()),
      likes: /** @type {number} */ (t.counter('likes')),
      lost: !(/** @type {HTMLElement} */ (document.querySelector('.banner')).hidden),
      shownRevision: document.querySelector('.doc-revision')?.textContent ?? '',
    };
  });
}

/**
 * Waits until every page is online with all its changes acknowledged and at the server's
 * revision, then checks that each shows exactly the server's text (in its client and in its
 * textarea), that none reported lost edits and that none raised an error. Returns the server's
 * document.
 * @param {Server} server
 * @param {string} doc
 * @param {EditorPage[]} pages
 */
export async function converged(server, doc, pages) {
  const deadline = Date.now() + PATIENCE;
  for (;;) {
    await Promise.all(
      pages.map((page) =>
        // @ts-ignore: window.tandem is the page's own
        until(page, () => window.tandem.status() === 'online' && window.tandem.isSynced(), undefined, 'online and synced'),
      ),
    );
    const document = await server.document(doc);
    const states = await Promise.all(pages.map(state));
    if (states.every((s) => s.revision === document.revision && s.status === 'online' && s.synced)) {
      states.forEach((s, i) => {
        assert.equal(s.text, document.text, `page ${i}'s client has the server's text`);
        assert.equal(s.value, document.text, `page ${i}'s textarea shows the server's text`);
        assert.equal(s.lost, false, `page ${i} reported no lost edits`);
        assert.equal(s.shownRevision, `revision ${document.revision}`, `page ${i} shows its revision`);
      });
      pages.forEach((page, i) => assert.deepEqual(page.errors, [], `page ${i} raised no errors`));
      return document;
    }
    if (Date.now() > deadline) {
      throw new Error(`the pages did not converge at revision ${document.revision}: ${JSON.stringify(states.map((s) => s.revision))}`);
    }
    // Some page has not heard the latest change yet: wait for it.
    await Promise.all(
      // @ts-ignore: window.tandem is the page's own
      pages.map((page) => until(page, (revision) => window.tandem.revision() >= revision, document.revision, `revision ${document.revision}`)),
    );
  }
}

// ---- Text ----

/** How many times `needle` occurs in `haystack` (without overlaps). */
export function count(/** @type {string} */ haystack, /** @type {string} */ needle) {
  return haystack.split(needle).length - 1;
}

/** What is wrong with a text: U+FFFD or a lone surrogate, or null if nothing. */
export function badCharacters(/** @type {string} */ text) {
  if (text.includes('\ufffd')) return `U+FFFD at ${text.indexOf('\ufffd')}`;
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.exec(text);
  return lone ? `a lone surrogate ${lone[0].charCodeAt(0).toString(16)} at ${lone.index}` : null;
}

/**
 * A small seeded PRNG (mulberry32), numbers in [0, 1).
 * @param {number} seed
 */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A document id no other test uses. @param {string} prefix */
export function docName(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
