// Takes a screenshot of the editor with two people writing in it: starts a server, opens two
// pages with names, writes a few lines, a title and likes, and saves the first page's view.
//
//   node screenshot.js [path]     (default: ../docs/screenshot.png, relative to this folder)
//
// Not a test; it uses the tests' helpers (TANDEM_BIN and CHROMIUM apply the same way).

import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

import { Server, converged, editor, launch, openEditor, until } from './test/support.js';

const out = process.argv[2] ? resolve(process.argv[2]) : fileURLToPath(new URL('../docs/screenshot.png', import.meta.url));
const doc = 'field-notes';
const viewport = { width: 1280, height: 800 };

const server = await Server.start();
const browser = await launch();
try {
  const ada = await openEditor(browser, server.url, doc, { name: 'Ada', color: '#2563eb', viewport });
  const grace = await openEditor(browser, server.url, doc, { name: 'Grace', color: '#e11d48', viewport });

  await ada.locator('[data-tandem="title"]').fill('Field notes: the heron colony');
  await ada.locator('[data-tandem="title"]').press('Enter');
  await editor(ada).click();
  await ada.keyboard.type('Monday, early light. Eleven nests along the north bank, three with chicks.\n\n');
  await ada.keyboard.type('Two adults fishing the shallows near the weir 🐟, one very patient.\n\n');
  await converged(server, doc, [ada, grace]);

  await editor(grace).click();
  await grace.keyboard.press('Control+End');
  await grace.keyboard.type('Tuesday: counted again from the bridge, the same eleven, plus one half-built');
  await ada.keyboard.press('Control+Home');
  await ada.keyboard.press('End');
  await ada.keyboard.type(' Wind from the west.');

  await ada.locator('[data-tandem="counter"]').click();
  await grace.locator('[data-tandem="counter"]').click();
  await converged(server, doc, [ada, grace]);
  await until(ada, () => document.querySelectorAll('[data-tandem="caret"]').length === 1, undefined, 'Grace\'s caret');
  await until(ada, () => document.querySelector('[data-tandem="counter"] .like-count')?.textContent === '2', undefined, 'two likes');
  // Leave the caret where Ada typed, without the focus ring of the likes button.
  await editor(ada).focus();
  await ada.screenshot({ path: out });
  console.log(`saved ${out}`);
} finally {
  await browser.close();
  await server.close();
}
