// Five pages editing one document at random, at once, for a few seconds: typing (emoji, CJK,
// combining marks, newlines), Backspace and Delete, the arrows, Home and End, selecting with
// Shift and typing over it, pasting and undoing. Then all must converge on the server's text.
//
// The edits come from a seeded PRNG: E2E_SEED=n repeats a run's choices (the timing, and so
// the interleaving, is the browser's).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { badCharacters, converged, docName, editor, openEditor, prng, serverAndBrowser } from './support.js';

const { server, browser } = await serverAndBrowser();

const PAGES = 5;
const SECONDS = 3;
/** Each page goes on past the time until it has done this many actions (on a loaded machine). */
const LEAST = 15;
const PIECES = ['a', 'b', 'c', 'x', 'y', 'z', ' ', ' ', '\n', 'é', 'e\u0301', '中', '文', '😀', '👍🏽', '👩‍👩‍👧', '🇫🇷', '𝄞'];
const MOVES = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'Control+Home', 'Control+End'];

/**
 * Some text made of PIECES.
 * @param {() => number} random
 * @param {number} most
 */
function someText(random, most) {
  let text = '';
  const n = 1 + Math.floor(random() * most);
  for (let i = 0; i < n; i++) text += PIECES[Math.floor(random() * PIECES.length)];
  return text;
}

/**
 * Edits in `page` at random until `deadline`, and at least LEAST times; returns how many
 * actions it took.
 * @param {import('playwright-core').Page} page
 * @param {() => number} random
 * @param {number} deadline
 */
async function editAtRandom(page, random, deadline) {
  const { keyboard } = page;
  let actions = 0;
  while (Date.now() < deadline || actions < LEAST) {
    const roll = random();
    const times = 1 + Math.floor(random() * 3);
    if (roll < 0.35) {
      await keyboard.type(someText(random, 4));
    } else if (roll < 0.5) {
      for (let i = 0; i < times; i++) await keyboard.press('Backspace');
    } else if (roll < 0.55) {
      await keyboard.press('Delete');
    } else if (roll < 0.75) {
      for (let i = 0; i < times; i++) await keyboard.press(MOVES[Math.floor(random() * MOVES.length)]);
    } else if (roll < 0.87) {
      // Select a few characters backwards or forwards, and type over them.
      const direction = random() < 0.5 ? 'Shift+ArrowLeft' : 'Shift+ArrowRight';
      for (let i = 0; i < times + 1; i++) await keyboard.press(direction);
      await keyboard.type(someText(random, 2));
    } else if (roll < 0.97) {
      // A paste: a whole chunk inserted at once.
      await keyboard.insertText(someText(random, 12));
    } else {
      await keyboard.press('Control+z');
    }
    actions++;
  }
  return actions;
}

test('five pages editing at random converge on the server\'s text', async (t) => {
  const seed = Number(process.env.E2E_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed} (E2E_SEED=${seed} repeats these edits)`);
  const doc = docName('random');
  const pages = await Promise.all(
    Array.from({ length: PAGES }, (_, i) => openEditor(browser, server.url, doc, { name: `Writer ${i + 1}` })),
  );
  await editor(pages[0]).click();
  await pages[0].keyboard.type('Five writers\nshare\nthis page.');
  await converged(server, doc, pages);
  for (const page of pages) await editor(page).focus();

  const deadline = Date.now() + SECONDS * 1000;
  const actions = await Promise.all(pages.map((page, i) => editAtRandom(page, prng(seed + i), deadline)));
  t.diagnostic(`actions per page: ${actions.join(', ')}`);

  const { text, revision } = await converged(server, doc, pages);
  t.diagnostic(`converged ${Date.now() - deadline} ms after the edits`);
  t.diagnostic(`revision ${revision}, ${text.length} UTF-16 units`);
  assert.equal(badCharacters(text), null, JSON.stringify(text));
  assert.ok(revision > 20, `the pages made many changes: revision ${revision}`);
});
