// The landing page: open a named document, start a new one, or go back to a recent one.

import { isDocumentId } from '/js/tandem.js';

const ADJECTIVES = ['brisk', 'calm', 'bright', 'quiet', 'bold', 'swift', 'merry', 'lucid', 'keen', 'sunny', 'amber', 'misty'];
const NOUNS = ['otter', 'heron', 'maple', 'harbor', 'comet', 'meadow', 'lantern', 'river', 'pebble', 'summit', 'willow', 'falcon'];

/** @param {readonly string[]} items */
const pick = (items) => items[Math.floor(Math.random() * items.length)];

/** @param {string} doc */
const openDoc = (doc) => {
  location.href = `/d/${encodeURIComponent(doc)}`;
};

const form = /** @type {HTMLFormElement} */ (document.querySelector('form.open'));
const input = /** @type {HTMLInputElement} */ (form.querySelector('input'));
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const doc = input.value.trim().replace(/\s+/g, '-');
  if (isDocumentId(doc)) openDoc(doc);
  else input.reportValidity();
});
input.addEventListener('input', () => {
  input.setCustomValidity(/^[A-Za-z0-9._\-\s]*$/.test(input.value) ? '' : 'Letters, digits, dots, dashes and underscores only');
});

/** @type {HTMLButtonElement} */ (document.querySelector('button.new')).addEventListener('click', () => {
  // Readable words, and 60 random bits so that nobody finds the document by guessing its name.
  const bits = crypto.getRandomValues(new Uint8Array(12));
  const suffix = Array.from(bits, (byte) => 'abcdefghijkmnpqrstuvwxyz23456789'[byte % 32]).join('');
  openDoc(`${pick(ADJECTIVES)}-${pick(NOUNS)}-${suffix}`);
});

try {
  const recent = JSON.parse(localStorage.getItem('tandem.recent') ?? '[]');
  if (Array.isArray(recent) && recent.length > 0) {
    const section = /** @type {HTMLElement} */ (document.querySelector('.recent'));
    const list = /** @type {HTMLUListElement} */ (section.querySelector('ul'));
    for (const doc of recent.filter((d) => isDocumentId(d))) {
      const item = document.createElement('li');
      const link = document.createElement('a');
      link.href = `/d/${encodeURIComponent(doc)}`;
      link.textContent = doc;
      item.append(link);
      list.append(item);
    }
    section.hidden = list.children.length === 0;
  }
} catch {
  // No storage, or a damaged list: show no recent documents.
}
