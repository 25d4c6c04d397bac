// Typing in two editor pages at once: at the same place, with emoji, undo of one's own typing,
// and an IME composition while the other page types.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { badCharacters, converged, count, docName, editor, openEditor, serverAndBrowser, state, until } from './support.js';

const { server, browser } = await serverAndBrowser();

/**
 * Opens two pages of a new document, A with `initial` typed and both converged.
 * @param {string} prefix
 * @param {string} initial
 */
async function twoPages(prefix, initial) {
  const doc = docName(prefix);
  const a = await openEditor(browser, server.url, doc);
  const b = await openEditor(browser, server.url, doc);
  await editor(a).click();
  await a.keyboard.type(initial);
  await converged(server, doc, [a, b]);
  return { doc, a, b };
}

/**
 * Puts the caret of the page's textarea at the start of the text, then `right` characters on,
 * with the keyboard.
 * @param {import('playwright-core').Page} page
 * @param {number} right
 */
async function caretAt(page, right) {
  await editor(page).focus();
  await page.keyboard.press('Control+Home');
  for (let i = 0; i < right; i++) await page.keyboard.press('ArrowRight');
}

/**
 * Whether `sub` is a subsequence of `s`.
 * @param {string} s
 * @param {string} sub
 */
function isSubsequence(s, sub) {
  let at = 0;
  for (const char of s) if (char === sub[at]) at++;
  return at === sub.length;
}

test('two pages typing at the same place at once converge and equal the server', async () => {
  const { doc, a, b } = await twoPages('same-place', '<>');
  await Promise.all([caretAt(a, 1), caretAt(b, 1)]);
  const typedA = 'abcdefghijklmnopqrstuvwxyz';
  const typedB = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  // A short delay per key keeps both pages' edits crossing on the wire for the whole run.
  await Promise.all([a.keyboard.type(typedA, { delay: 15 }), b.keyboard.type(typedB, { delay: 15 })]);

  const { text } = await converged(server, doc, [a, b]);
  assert.equal(text.length, 2 + typedA.length + typedB.length, `nothing lost or doubled: ${JSON.stringify(text)}`);
  assert.ok(text.startsWith('<') && text.endsWith('>'), `both typed between < and >: ${JSON.stringify(text)}`);
  const middle = text.slice(1, -1);
  // Each page's characters are all there, once, in the order typed (however they interleave).
  assert.equal(middle.replace(/[^a-z]/g, ''), typedA);
  assert.equal(middle.replace(/[^A-Z]/g, ''), typedB);
  assert.ok(isSubsequence(middle, typedA) && isSubsequence(middle, typedB));
  // A caret right at a remote insert stays before it, so each page keeps typing at the end of
  // its own run: the two runs do not interleave, whichever came first.
  assert.ok(middle === typedA + typedB || middle === typedB + typedA, `one run, then the other: ${JSON.stringify(middle)}`);
});

/**
 * @typedef {{type: string} | {press: string, times?: number}} Action
 */

/**
 * Performs keyboard actions in the focused element of a page, checking after each that neither
 * the page's client text nor its textarea holds U+FFFD or a lone surrogate.
 * @param {import('playwright-core').Page} page
 * @param {Action[]} actions
 * @param {boolean} [editorPage] whether the page is an editor page (else a plain textarea)
 */
async function perform(page, actions, editorPage = true) {
  for (const action of actions) {
    if ('type' in action) {
      await page.keyboard.type(action.type);
    } else {
      for (let i = 0; i < (action.times ?? 1); i++) await page.keyboard.press(action.press);
    }
    if (editorPage) {
      const { text, value } = await state(page);
      assert.equal(badCharacters(text), null, `after ${JSON.stringify(action)}, the client's text ${JSON.stringify(text)}`);
      assert.equal(badCharacters(value), null, `after ${JSON.stringify(action)}, the textarea's text ${JSON.stringify(value)}`);
    }
  }
}

/**
 * What the same actions do to a plain textarea in this same browser, starting from `initial`
 * with the caret at `caret`: the oracle for how Backspace and the arrows treat each character.
 * @param {Action[]} actions
 * @param {string} initial
 * @param {number} caret
 */
async function plainTextarea(actions, initial, caret) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.setContent('<textarea></textarea>');
    await page.evaluate(([value, at]) => {
      const textarea = /** @type {HTMLTextAreaElement} */ (document.querySelector('textarea'));
      textarea.value = /** @type {string} */ (value);
      textarea.focus();
      textarea.setSelectionRange(/** @type {number} */ (at), /** @type {number} */ (at));
    }, [initial, caret]);
    await perform(page, actions, false);
    return await page.evaluate(() => /** @type {HTMLTextAreaElement} */ (document.querySelector('textarea')).value);
  } finally {
    await context.close();
  }
}

test('emoji typed and deleted in both pages leave no broken characters and equal the server', async () => {
  const separator = '|';
  const { doc, a, b } = await twoPages('emoji', separator);
  /** @type {Action[]} */
  const actionsA = [
    { type: '😀👩‍👩‍👧 中文 é' },
    { press: 'Backspace', times: 3 },
    { press: 'ArrowLeft', times: 2 },
    { press: 'Backspace', times: 2 },
    { type: '🎉' },
    { press: 'End' },
    { type: ' 👍🏽𝄞' },
    { press: 'Backspace' },
    { press: 'ArrowLeft' },
    { press: 'Delete' },
  ];
  /** @type {Action[]} */
  const actionsB = [
    { type: 'e\u0301 🇫🇷 😀😀 漢字' },
    { press: 'Backspace', times: 4 },
    { press: 'ArrowLeft', times: 3 },
    { press: 'Backspace' },
    { type: '👩‍👩‍👧' },
    { press: 'Backspace', times: 2 },
  ];
  // A writes after the separator, B before it, both at once.
  await Promise.all([caretAt(a, 1), caretAt(b, 0)]);
  const [afterA, afterB] = await Promise.all([
    plainTextarea(actionsA, separator, 1),
    plainTextarea(actionsB, separator, 0),
  ]);
  await Promise.all([perform(a, actionsA), perform(b, actionsB)]);

  const { text } = await converged(server, doc, [a, b]);
  assert.equal(badCharacters(text), null, `the server's text ${JSON.stringify(text)}`);
  // Each page's keys did to the shared text exactly what they do to a plain textarea.
  assert.ok(afterA.startsWith(separator) && afterB.endsWith(separator));
  assert.equal(text, afterB.slice(0, -separator.length) + afterA);
  assert.ok(text.includes('😀'), `some emoji survive the deletes: ${JSON.stringify(text)}`);
});

test('undo takes back only one\'s own typing, on both pages', async () => {
  const { doc, a, b } = await twoPages('undo', 'middle');
  await editor(a).focus();
  await a.keyboard.press('Control+End');
  await a.keyboard.type(' alpha');
  await converged(server, doc, [a, b]);
  // B types before A's text, so that A's undo has to find its text where it moved to.
  await editor(b).focus();
  await b.keyboard.press('Control+Home');
  await b.keyboard.type('BETA ');
  let { text } = await converged(server, doc, [a, b]);
  assert.equal(text, 'BETA middle alpha');

  await a.keyboard.press('Control+z');
  // A's own first typing (the "middle" it typed when the document was empty) is a separate
  // step of its undo history; one Ctrl+Z takes back only " alpha".
  await until(a, () => /** @type {any} */ (window).tandem.text() === 'BETA middle', undefined, 'the undo in A');
  ({ text } = await converged(server, doc, [a, b]));
  assert.equal(text, 'BETA middle', 'A\'s " alpha" is gone, B\'s "BETA " stays');

  await a.keyboard.press('Control+Shift+z');
  ({ text } = await converged(server, doc, [a, b]));
  assert.equal(text, 'BETA middle alpha', 'redo brings " alpha" back');
});

test('an IME composition in one page while the other types lands exactly once', async () => {
  const { doc, a, b } = await twoPages('ime', 'one two');
  await caretAt(a, 3);
  await a.evaluate(() => {
    const events = /** @type {string[]} */ ([]);
    /** @type {any} */ (window).compositionEvents = events;
    const textarea = /** @type {HTMLTextAreaElement} */ (document.querySelector('[data-tandem="editor"]'));
    for (const type of ['compositionstart', 'compositionend']) textarea.addEventListener(type, () => events.push(type));
  });
  const cdp = await a.context().newCDPSession(a);
  for (const text of ['n', 'に', 'にほ', 'にほん']) {
    await cdp.send('Input.imeSetComposition', { text, selectionStart: text.length, selectionEnd: text.length });
  }
  assert.deepEqual(await a.evaluate(() => /** @type {any} */ (window).compositionEvents), ['compositionstart'],
    'CDP composition raises a real compositionstart');

  // B types before and after A's composition while it is open.
  await editor(b).focus();
  await b.keyboard.press('Control+Home');
  await b.keyboard.type('B1 ');
  await b.keyboard.press('Control+End');
  await b.keyboard.type(' B2');
  // A's client takes B's edits in while A's textarea holds the composition.
  await until(a, () => /** @type {any} */ (window).tandem.text() === 'B1 one two B2', undefined, 'B\'s typing in A\'s client');
  assert.equal(await editor(a).inputValue(), 'oneにほん two', 'the composition is left alone meanwhile');

  await cdp.send('Input.imeSetComposition', { text: 'にほんご', selectionStart: 4, selectionEnd: 4 });
  await cdp.send('Input.insertText', { text: '日本語' });
  assert.deepEqual(await a.evaluate(() => /** @type {any} */ (window).compositionEvents), ['compositionstart', 'compositionend']);

  const { text } = await converged(server, doc, [a, b]);
  assert.equal(text, 'B1 one日本語 two B2');
  assert.equal(count(text, '日本語'), 1);
  const focused = await a.evaluate(() => {
    const textarea = /** @type {HTMLTextAreaElement} */ (document.querySelector('[data-tandem="editor"]'));
    return [textarea.selectionStart, textarea.selectionEnd];
  });
  assert.deepEqual(focused, ['B1 one日本語'.length, 'B1 one日本語'.length], 'A\'s caret is after the composed text');
});

test('a remote delete cut in two by an unacknowledged insert shows and lands as meant', async () => {
  const { doc, a, b } = await twoPages('split-delete', 'ab😀def');
  // A's messages are held back, so that its insert stays in flight while B's delete arrives.
  await a.evaluate(() => {
    const client = /** @type {any} */ (window).tandem.client;
    const socket = client.socket;
    const send = socket.send.bind(socket);
    const held = /** @type {string[]} */ ([]);
    socket.send = (/** @type {string} */ data) => held.push(data);
    /** @type {any} */ (window).release = () => {
      socket.send = send;
      for (const data of held) send(data);
    };
  });
  await caretAt(a, 3);
  await a.keyboard.type('X');
  assert.equal(await editor(a).inputValue(), 'ab😀Xdef');
  // B deletes "b😀de" around where A typed: for A, a delete in two pieces around its X.
  await caretAt(b, 1);
  for (let i = 0; i < 4; i++) await b.keyboard.press('Shift+ArrowRight');
  await b.keyboard.press('Backspace');
  await until(b, () => /** @type {any} */ (window).tandem.isSynced(), undefined, 'B\'s delete acknowledged');
  await until(a, () => /** @type {any} */ (window).tandem.text() === 'aXf', undefined, 'the delete in A\'s client');
  assert.equal(await editor(a).inputValue(), 'aXf', 'the textarea took both pieces, and nothing came back');
  await a.evaluate(() => /** @type {any} */ (window).release());
  const { text } = await converged(server, doc, [a, b]);
  assert.equal(text, 'aXf');
});
