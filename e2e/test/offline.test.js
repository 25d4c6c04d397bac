// Edits made offline, or while the connection drops under the page, land exactly once.
//
// Chromium's offline mode (`context.setOffline`) holds an open WebSocket's messages rather than
// closing it, so it is tested both briefly (the socket survives) and long enough for the
// client's pings to give the connection up; real drops are tested by closing the socket under
// the client and by cutting the TCP connection in a proxy between the browser and the server.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Proxy, converged, count, docName, editor, openEditor, serverAndBrowser, until } from './support.js';

const { server, browser } = await serverAndBrowser();

const SEPARATOR = '|';

/**
 * Opens A (through `urlA`) and B (directly) on a new document holding the separator, with A's
 * caret after it and B's before it, and starts counting the times A's client goes offline.
 * @param {string} prefix
 * @param {string} [urlA]
 */
async function twoPages(prefix, urlA = server.url) {
  const doc = docName(prefix);
  const a = await openEditor(browser, urlA, doc);
  const b = await openEditor(browser, server.url, doc);
  await editor(a).click();
  await a.keyboard.type(SEPARATOR);
  await converged(server, doc, [a, b]);
  await editor(b).focus();
  await b.keyboard.press('Control+Home');
  await a.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.wentOffline = 0;
    w.tandem.client.on('status', (/** @type {string} */ status) => {
      if (status === 'offline') w.wentOffline++;
    });
  });
  return { doc, a, b };
}

/**
 * Types `n` unique markers (`<A1>`, `<A2>`…) one after another, calling `between(i)` after
 * each; returns what was typed.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 * @param {number} n
 * @param {(i: number) => unknown} [between]
 */
async function typeMarkers(page, who, n, between = () => {}) {
  let typed = '';
  for (let i = 1; i <= n; i++) {
    const marker = `<${who}${i}>`;
    await page.keyboard.type(marker);
    typed += marker;
    await between(i);
  }
  return typed;
}

/**
 * Checks that every marker of `typed` is in `text` exactly once, and that the text is B's
 * typing, the separator, then A's, each whole and in order.
 * @param {string} text
 * @param {string} typedA
 * @param {string} typedB
 */
function exactlyOnce(text, typedA, typedB) {
  for (const marker of `${typedA}${typedB}`.match(/<[^>]+>/g) ?? []) {
    assert.equal(count(text, marker), 1, `${marker} is in ${JSON.stringify(text)} once`);
  }
  assert.equal(text, typedB + SEPARATOR + typedA);
}

/** How many times A's client went offline since twoPages(). @param {import('playwright-core').Page} page */
const wentOffline = (page) => page.evaluate(() => /** @type {number} */ (/** @type {any} */ (window).wentOffline));

test('edits made while the browser is briefly offline land exactly once', async () => {
  const { doc, a, b } = await twoPages('offline-brief');
  const first = await typeMarkers(a, 'A', 2);
  await converged(server, doc, [a, b]);

  await a.context().setOffline(true);
  const offline = await typeMarkers(a, 'O', 4);
  const typedB = await typeMarkers(b, 'B', 5);
  // B's edits reach the server, A's are held by the browser.
  await until(b, () => /** @type {any} */ (window).tandem.isSynced(), undefined, 'B synced');
  const meanwhile = (await server.document(doc)).text;
  assert.ok(meanwhile.includes(typedB) && !meanwhile.includes('<O1>'), `A's offline edits wait: ${JSON.stringify(meanwhile)}`);
  await a.context().setOffline(false);

  const { text } = await converged(server, doc, [a, b]);
  exactlyOnce(text, first + offline, typedB);
});

test('edits made offline long enough for the client to give the connection up land exactly once', async () => {
  const { doc, a, b } = await twoPages('offline-long');
  // Short pings, so that the dead connection is noticed in a fraction of a second rather than
  // in the default 15 s.
  await a.evaluate(() => {
    const client = /** @type {any} */ (window).tandem.client;
    client.options.pingInterval = 300;
    client.options.pingTimeout = 150;
    client.startPings();
  });
  const before = await typeMarkers(a, 'A', 2);
  await a.context().setOffline(true);
  let typedA = before + (await typeMarkers(a, 'a', 3));
  await until(a, () => /** @type {any} */ (window).tandem.status() === 'offline', undefined, 'A offline');
  typedA += await typeMarkers(a, 'x', 3);
  const typedB = await typeMarkers(b, 'B', 3);
  await a.context().setOffline(false);

  const { text } = await converged(server, doc, [a, b]);
  assert.ok((await wentOffline(a)) >= 1);
  exactlyOnce(text, typedA, typedB);
});

/** Waits until A's client is online again. @param {import('playwright-core').Page} page */
const backOnline = (page) => until(page, () => /** @type {any} */ (window).tandem.status() === 'online', undefined, 'online again');

test('edits typed while the socket is closed under the client land exactly once', async () => {
  const { doc, a, b } = await twoPages('socket-close');
  let closed = 0;
  const [typedA, typedB] = await Promise.all([
    typeMarkers(a, 'A', 24, async (i) => {
      if (i % 3 !== 0) return;
      // Every third marker, close the client's socket: every sixth once it is back online,
      // the others whatever state it is in (open, still connecting, or none yet).
      if (i % 6 === 0) await backOnline(a);
      const state = await a.evaluate(() => {
        const socket = /** @type {any} */ (window).tandem.client.socket;
        const was = socket?.readyState ?? -1;
        socket?.close();
        return was;
      });
      if (state === 0 || state === 1) closed++;
    }),
    typeMarkers(b, 'B', 12),
  ]);
  const { text } = await converged(server, doc, [a, b]);
  assert.ok(closed >= 4, `closed ${closed} sockets under the client`);
  assert.ok((await wentOffline(a)) >= 4, 'the client lost its connection each time');
  exactlyOnce(text, typedA, typedB);
});

test('edits typed while a proxy cuts the TCP connection, or refuses it, land exactly once', async () => {
  const proxy = await Proxy.start(server.port);
  try {
    const { doc, a, b } = await twoPages('tcp-drop', proxy.url);
    const [cut, typedB] = await Promise.all([
      typeMarkers(a, 'A', 24, async (i) => {
        if (i % 3 !== 0) return;
        // Cut A's connection mid-stream, in-flight edits and acks included: every sixth
        // marker a live one, the others whatever is there.
        if (i % 6 === 0) await backOnline(a);
        proxy.drop();
      }),
      typeMarkers(b, 'B', 12),
    ]);
    assert.ok(proxy.dropped >= 4, `the proxy cut ${proxy.dropped} connections`);
    // The client notices each cut of a live connection (the last one perhaps only now).
    await until(a, () => /** @type {any} */ (window).wentOffline >= 4, undefined, 'the client seeing its connections cut');

    // Then a while with the server out of reach: reconnects are refused.
    await backOnline(a);
    const dropsBefore = await wentOffline(a);
    proxy.setOffline(true);
    const refused = await typeMarkers(a, 'R', 5);
    // Offline once for the cut, and once more for a reconnect refused.
    await until(a, (n) => /** @type {any} */ (window).wentOffline >= n + 2, dropsBefore, 'a refused reconnect');
    // Likes and a title given meanwhile count too, once.
    await a.locator('[data-tandem="counter"]').click();
    await a.locator('[data-tandem="counter"]').click();
    await a.locator('[data-tandem="title"]').fill('Written offline');
    await a.locator('[data-tandem="title"]').press('Enter');
    proxy.setOffline(false);

    const document = await converged(server, doc, [a, b]);
    exactlyOnce(document.text, cut + refused, typedB);
    assert.equal(document.counters.likes, 2);
    assert.equal(document.title, 'Written offline');
    await until(b, () => document.querySelector('[data-tandem="counter"] .like-count')?.textContent === '2', undefined, 'two likes in B');
    assert.equal(await b.locator('[data-tandem="title"]').inputValue(), 'Written offline');
  } finally {
    await proxy.close();
  }
});
