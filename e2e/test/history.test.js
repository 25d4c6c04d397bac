// The history panel: a version saved under a name, listed, viewed and restored, with the
// other page seeing the restore as an ordinary change and the later text kept in the history.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { converged, docName, editor, openEditor, serverAndBrowser, until } from './support.js';

const { server, browser } = await serverAndBrowser();

test('a version is saved, listed, viewed and restored from the history panel', async () => {
  const doc = docName('history');
  const a = await openEditor(browser, server.url, doc);
  const b = await openEditor(browser, server.url, doc);
  await editor(a).click();
  await a.keyboard.type('First draft 🌱');
  await converged(server, doc, [a, b]);

  await a.locator('.history').click();
  await a.locator('[data-tandem="version-label"]').fill('first-draft');
  await a.locator('.save-version button').click();
  await until(a, () => document.querySelector('.versions .version[data-label="first-draft"]') !== null, undefined, 'the saved version listed');
  assert.match(await a.locator('.history-note').textContent() ?? '', /Saved “first-draft” at revision \d+/);

  // Both write on.
  await editor(b).click();
  await b.keyboard.press('End');
  await b.keyboard.type(', then more from B 🌳');
  await editor(a).click();
  await a.keyboard.press('Home');
  await a.keyboard.type('Title: ');
  const later = await converged(server, doc, [a, b]);
  assert.equal(later.text, 'Title: First draft 🌱, then more from B 🌳');

  // Saving the same name again is refused, and said so.
  await a.locator('[data-tandem="version-label"]').fill('first-draft');
  await a.locator('.save-version button').click();
  await until(a, () => /already a version/.test(document.querySelector('.history-note')?.textContent ?? ''), undefined, 'the conflict said');

  // View it: its text as it was.
  await a.locator('.versions .version[data-label="first-draft"]').click();
  await until(a, () => document.querySelector('[data-tandem="version-text"]')?.textContent === 'First draft 🌱', undefined, 'the version text shown');

  // Restore it: both pages show the old text again, as an ordinary change.
  await a.locator('[data-tandem="restore"]').click();
  await until(b, () => /** @type {HTMLTextAreaElement} */ (document.querySelector('[data-tandem="editor"]')).value === 'First draft 🌱', undefined, 'the restore in B');
  const restored = await converged(server, doc, [a, b]);
  assert.equal(restored.text, 'First draft 🌱');
  assert.match(await a.locator('.history-note').textContent() ?? '', /Restored “first-draft” as revision \d+/);

  // Nothing later was lost: the text before the restore is still in the history.
  const response = await fetch(`${server.url}/api/docs/${doc}/text?revision=${later.revision}`);
  assert.equal((await response.json()).text, later.text);
});
