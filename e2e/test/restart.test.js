// The server restarted under two pages, killed (SIGKILL) and then shut down gracefully
// (SIGTERM), each time while they type: they reconnect, resume, and every edit is kept once,
// those typed while the server was down included.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { converged, count, docName, editor, openEditor, serverAndBrowser, until } from './support.js';

const { server, browser } = await serverAndBrowser({ persistent: true });

/**
 * Types markers `<{who}1>`, `<{who}2>`…; returns what was typed.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 * @param {number} n
 */
async function typeMarkers(page, who, n) {
  let typed = '';
  for (let i = 1; i <= n; i++) {
    const marker = `<${who}${i}>`;
    await page.keyboard.type(marker);
    typed += marker;
  }
  return typed;
}

/** @param {import('playwright-core').Page} page */
const notOnline = (page) => until(page, () => /** @type {any} */ (window).tandem.status() !== 'online', undefined, 'the page noticing the server is gone');

test('pages keep their edits across a killed and a gracefully stopped server', async () => {
  const doc = docName('restart');
  const a = await openEditor(browser, server.url, doc);
  const b = await openEditor(browser, server.url, doc);
  await editor(a).click();
  await a.keyboard.type('|');
  await converged(server, doc, [a, b]);
  await editor(b).focus();
  await b.keyboard.press('Control+Home');
  let typedA = '';
  let typedB = '';

  for (const [round, kill] of /** @type {const} */ ([['K', true], ['T', false]])) {
    /**
     * Both pages type `n` markers at once (and `alongside`, if given, runs meanwhile).
     * @param {string} phase
     * @param {number} n
     * @param {Promise<unknown>} [alongside]
     */
    const bothType = async (phase, n, alongside) => {
      const [moreA, moreB] = await Promise.all([
        typeMarkers(a, `${round}${phase}a`, n),
        typeMarkers(b, `${round}${phase}b`, n),
        alongside,
      ]);
      typedA += moreA;
      typedB += moreB;
    };
    await bothType('up', 3);
    // The server goes away while both type; they carry on while it is down; it comes back on
    // the same port and data while they still type.
    await bothType('stopping', 3, server.stop({ kill }));
    await Promise.all([notOnline(a), notOnline(b)]);
    await bothType('down', 3);
    await bothType('starting', 3, server.startAgain());

    const { text } = await converged(server, doc, [a, b]);
    for (const marker of `${typedA}${typedB}`.match(/<[^>]+>/g) ?? []) {
      assert.equal(count(text, marker), 1, `${marker} once in ${JSON.stringify(text)} (after the ${kill ? 'SIGKILL' : 'SIGTERM'})`);
    }
    assert.equal(text, `${typedB}|${typedA}`);
  }

  // What the server kept is on disk: a third start, with no page connected, still has it all.
  const expected = `${typedB}|${typedA}`;
  await Promise.all([a.context().close(), b.context().close()]);
  await server.restart({ kill: true });
  assert.equal((await server.document(doc)).text, expected);
});
