// What one page shows of the other: its caret with its name and colour, following its typing;
// the title; the likes counter.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { converged, docName, editor, openEditor, serverAndBrowser, state, until } from './support.js';

const { server, browser } = await serverAndBrowser();

/**
 * How `page` shows the caret of client `id`: its label, colour, where it is, and the text laid
 * out before it in the caret layer (the other carets' labels left out).
 * @param {import('playwright-core').Page} page
 * @param {string} id
 */
function caretOf(page, id) {
  return page.evaluate((client) => {
    const carets = [...document.querySelectorAll(`[data-tandem="caret"][data-client="${client}"]`)];
    if (carets.length !== 1) return { found: carets.length, before: '', name: '', color: '', border: '', label: '', left: 0, top: 0, inside: false };
    const caret = /** @type {HTMLElement} */ (carets[0]);
    let before = '';
    for (let node = caret.previousSibling; node; node = node.previousSibling) {
      if (node.nodeType === Node.TEXT_NODE) before = node.textContent + before;
    }
    const box = caret.getBoundingClientRect();
    const area = /** @type {HTMLElement} */ (document.querySelector('[data-tandem="editor"]')).getBoundingClientRect();
    const label = /** @type {HTMLElement} */ (caret.querySelector('.tandem-caret-label'));
    return {
      found: 1,
      before,
      name: caret.textContent ?? '',
      color: caret.style.getPropertyValue('--tandem-color'),
      border: getComputedStyle(caret).borderLeftColor,
      label: getComputedStyle(label).backgroundColor,
      left: box.left,
      top: box.top,
      inside: box.left >= area.left && box.right <= area.right && box.top >= area.top && box.bottom <= area.bottom,
    };
  }, id);
}

test('a remote caret shows the other\'s name and colour and follows their typing', async () => {
  const doc = docName('caret');
  const a = await openEditor(browser, server.url, doc, { color: '#16a34a' });
  const b = await openEditor(browser, server.url, doc);
  const { clientId: idA } = await state(a);

  // A names themself through the name field, as a person would.
  const nameField = a.locator('[data-tandem="name"]');
  await nameField.fill('Ada Lovelace');
  await nameField.press('Enter');
  await until(b, (id) => document.querySelector(`[data-tandem="caret"][data-client="${id}"]`)?.textContent === 'Ada Lovelace', idA, 'A\'s caret with A\'s name in B');
  await until(b, (id) => document.querySelector(`[data-tandem="users"] li[data-client="${id}"] .user-name`)?.textContent === 'Ada Lovelace', idA, 'A in B\'s list of people');
  let caret = await caretOf(b, idA);
  assert.equal(caret.found, 1);
  assert.equal(caret.color, '#16a34a', 'the caret carries A\'s colour');
  assert.equal(caret.border, 'rgb(22, 163, 74)', 'the caret is drawn in A\'s colour');
  assert.equal(caret.label, 'rgb(22, 163, 74)', 'the name label is in A\'s colour');
  assert.equal(await a.evaluate(() => localStorage.getItem('tandem.name')), 'Ada Lovelace', 'the name is remembered');

  /**
   * Waits until B shows A's caret right after `text` (the layer's text before the caret), and
   * returns how B shows it.
   * @param {string} text
   */
  const caretAfter = async (text) => {
    await until(b, ([id, expected]) => {
      const found = document.querySelector(`[data-tandem="caret"][data-client="${id}"]`);
      let before = '';
      for (let node = found?.previousSibling; node; node = node.previousSibling) {
        if (node.nodeType === Node.TEXT_NODE) before = node.textContent + before;
      }
      return found !== null && before === expected;
    }, [idA, text], `A's caret after ${JSON.stringify(text)} in B`);
    const shown = await caretOf(b, idA);
    assert.ok(shown.inside, `the caret is drawn over the textarea: ${JSON.stringify(shown)}`);
    return shown;
  };

  await editor(a).click();
  await a.keyboard.type('Hello');
  const first = await caretAfter('Hello');
  await a.keyboard.type(' world, how are you');
  const second = await caretAfter('Hello world, how are you');
  assert.ok(second.left > first.left + 20, `the caret moved right with the typing: ${first.left} -> ${second.left}`);
  assert.equal(second.top, first.top, 'on the same line');

  // Moving the caret without typing moves it too.
  await a.keyboard.press('Home');
  const home = await caretAfter('');
  assert.ok(home.left < first.left, `Home took the caret back left: ${home.left} < ${first.left}`);

  await a.keyboard.press('End');
  await a.keyboard.press('Enter');
  await a.keyboard.type('ok');
  const next = await caretAfter('Hello world, how are you\nok');
  assert.ok(next.top > second.top + 5, `Enter took the caret a line down: ${second.top} -> ${next.top}`);
  assert.ok(next.left < second.left, 'and back to the left');

  // B typing before A's caret pushes it along, in B's own view.
  await editor(b).focus();
  await b.keyboard.press('Control+Home');
  await b.keyboard.type('>> ');
  caret = await caretAfter('>> Hello world, how are you\nok');
  assert.equal(caret.name, 'Ada Lovelace');
  assert.equal(await a.locator(`[data-tandem="caret"][data-client="${idA}"]`).count(), 0, 'A is not shown its own caret');
  await converged(server, doc, [a, b]);
});

test('the title and the likes counter sync between pages', async () => {
  const doc = docName('title');
  const a = await openEditor(browser, server.url, doc);
  const b = await openEditor(browser, server.url, doc);
  const titleA = a.locator('[data-tandem="title"]');
  const titleB = b.locator('[data-tandem="title"]');

  // Typed, and sent as one types (no Enter).
  await titleA.click();
  await a.keyboard.type('Plans for spring');
  await until(b, () => /** @type {HTMLInputElement} */ (document.querySelector('[data-tandem="title"]')).value === 'Plans for spring', undefined, 'the title in B');
  assert.equal(await b.title(), 'Plans for spring · Tandem');

  // Sent while one types, not only once one stops: B sees the title grow.
  await b.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.titlesSeen = [];
    w.tandem.client.on('title', (/** @type {string} */ title) => w.titlesSeen.push(title));
  });
  await a.keyboard.type(', and summer', { delay: 100 });
  await until(b, () => /** @type {any} */ (window).tandem.title() === 'Plans for spring, and summer', undefined, 'the longer title in B');
  const seen = await b.evaluate(() => /** @type {string[]} */ (/** @type {any} */ (window).titlesSeen));
  assert.ok(seen.length >= 3, `B saw the title as it was typed: ${JSON.stringify(seen)}`);

  // Replaced in the other page and sent with Enter.
  await titleB.click();
  await b.keyboard.press('Control+a');
  await b.keyboard.type('Spring plans 🌷');
  await b.keyboard.press('Enter');
  await until(a, () => /** @type {HTMLInputElement} */ (document.querySelector('[data-tandem="title"]')).value === 'Spring plans 🌷', undefined, 'the new title in A');
  assert.equal(await titleB.inputValue(), 'Spring plans 🌷');

  // Both like it at once.
  await Promise.all([a.locator('[data-tandem="counter"]').click(), b.locator('[data-tandem="counter"]').click()]);
  for (const page of [a, b]) {
    await until(page, () => document.querySelector('[data-tandem="counter"] .like-count')?.textContent === '2', undefined, 'two likes shown');
    assert.equal(await page.locator('[data-tandem="counter"] .like-word').textContent(), 'likes');
  }
  const document = await converged(server, doc, [a, b]);
  assert.equal(document.title, 'Spring plans 🌷');
  assert.equal(document.counters.likes, 2);
  for (const page of [a, b]) {
    const shown = await state(page);
    assert.equal(shown.likes, 2);
    assert.equal(shown.title, 'Spring plans 🌷');
  }
});
