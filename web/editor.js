// The editor page: one document, its text in a textarea, other people's carets, the title, a
// likes counter, who is here, the connection status, one's own name, a link to share, and the
// history panel (history.js).
//
// Everything goes through the Tandem client served by this same server (/js/tandem.js). For
// tests and the console the client is exposed as `window.tandem`.

import { TandemClient, bindTextarea, colorOf } from '/js/tandem.js';

import { historyPanel } from '/app/history.js';

const PALETTE = ['#e11d48', '#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#db2777', '#65a30d', '#dc2626', '#4f46e5'];
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Puffin', 'Badger', 'Falcon', 'Gecko', 'Ibex', 'Koala', 'Marten', 'Narwhal', 'Quokka', 'Wren', 'Yak'];
const STATUS = {
  connecting: 'Connecting…',
  online: 'Online',
  offline: 'Offline, edits kept',
  resyncing: 'Catching up…',
};

/**
 * @param {string} selector
 * @returns {any}
 */
const $ = (selector) => document.querySelector(selector);

/** @param {string} key @param {() => string} make */
function remembered(key, make) {
  try {
    const value = localStorage.getItem(key);
    if (value) return value;
    const made = make();
    localStorage.setItem(key, made);
    return made;
  } catch {
    return make();
  }
}

/** @param {string} key @param {string} value */
function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private windows may refuse storage; the name still applies to this visit.
  }
}

/** @param {readonly string[]} items */
const pick = (items) => items[Math.floor(Math.random() * items.length)];

const doc = decodeURIComponent(location.pathname.replace(/^\/d\//, '')).replace(/\/+$/, '');
const editor = /** @type {HTMLTextAreaElement} */ ($('[data-tandem="editor"]'));
const titleInput = /** @type {HTMLInputElement} */ ($('[data-tandem="title"]'));
const nameInput = /** @type {HTMLInputElement} */ ($('[data-tandem="name"]'));
const counter = $('[data-tandem="counter"]');
const usersList = $('[data-tandem="users"]');
const statusBadge = $('[data-tandem="status"]');

const name = remembered('tandem.name', () => `Anonymous ${pick(ANIMALS)}`);
const color = remembered('tandem.color', () => pick(PALETTE));
nameInput.value = name;
$('.you-dot').style.background = color;
$('.doc-id').textContent = doc;

// A server with a secret needs a token; the page takes it from its own address (?token=...),
// so a shared link carries it.
const token = new URLSearchParams(location.search).get('token') ?? undefined;
const client = new TandemClient({ doc, name, color, token });
bindTextarea(client, editor);

// ---- Title: sent as one types (debounced), and at once on Enter or on leaving the field ----

/** @type {ReturnType<typeof setTimeout> | undefined} */
let titleTimer;
const sendTitle = () => {
  clearTimeout(titleTimer);
  titleTimer = undefined;
  if (client.ready && titleInput.value !== client.title) client.setTitle(titleInput.value);
};
// Throttled rather than debounced: while one types, the title goes out every 250 ms.
titleInput.addEventListener('input', () => {
  titleTimer ??= setTimeout(sendTitle, 250);
});
titleInput.addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    sendTitle();
    editor.focus();
  }
});
titleInput.addEventListener('blur', sendTitle);
client.on('title', (title) => {
  // Never overwrite what the user is typing and has not sent yet.
  if (titleTimer === undefined && titleInput.value !== title) titleInput.value = title;
  document.title = `${title || 'Untitled document'} · Tandem`;
});

// ---- Likes ----

const showLikes = () => {
  const likes = client.counter('likes');
  counter.querySelector('.like-count').textContent = String(likes);
  counter.querySelector('.like-word').textContent = likes === 1 ? 'like' : 'likes';
};
counter.addEventListener('click', () => {
  if (!client.ready) return;
  client.increment('likes', 1);
  counter.classList.remove('pop');
  void counter.offsetWidth;
  counter.classList.add('pop');
});
client.on('counter', ({ name: which }) => {
  if (which === 'likes') showLikes();
});
client.on('reset', showLikes);

// ---- Name ----

nameInput.addEventListener('change', () => {
  const value = nameInput.value.trim() || name;
  nameInput.value = value;
  remember('tandem.name', value);
  client.setPresence({ name: value });
  showUsers();
});
nameInput.addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
  if (event.key === 'Enter') nameInput.blur();
});

// ---- People ----

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
/** The first grapheme of `word` (a whole emoji sequence, or a letter with its marks). @param {string} word */
const firstGrapheme = (word) => graphemes.segment(word)[Symbol.iterator]().next().value?.segment ?? '';
/** A letter: the initials of a name are letters; an emoji, if the name starts with one, stands alone. */
const LETTER = /^\p{L}/u;

/** @param {string} text */
const initials = (text) => {
  const firsts = text.split(/\s+/).filter(Boolean).map(firstGrapheme);
  if (firsts.length === 0) return '?';
  if (!LETTER.test(firsts[0])) return firsts[0];
  return firsts.filter((first) => LETTER.test(first)).slice(0, 2).join('').toUpperCase();
};

function showUsers() {
  const me = { clientId: client.clientId ?? '', name: nameInput.value, color, idle: false, self: true };
  const others = client.users.map((user) => ({ ...user, self: false }));
  const items = [me, ...others].map((user) => {
    const li = document.createElement('li');
    li.dataset.client = user.clientId;
    li.className = user.idle ? 'user idle' : 'user';
    const shown = user.name || 'Anonymous';
    li.title = `${shown}${user.self ? ' (you)' : ''}${user.idle ? ', idle' : ''}`;
    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.style.setProperty('background', colorOf(user));
    avatar.textContent = initials(shown);
    const label = document.createElement('span');
    label.className = 'user-name';
    label.textContent = user.self ? `${shown} (you)` : shown;
    li.append(avatar, label);
    if (user.idle) {
      const mark = document.createElement('span');
      mark.className = 'idle-mark';
      mark.textContent = 'idle';
      li.append(mark);
    }
    return li;
  });
  usersList.replaceChildren(...items);
}
client.on('users', showUsers);
client.on('reset', showUsers);

// ---- Status and revision ----

client.on('status', (status) => {
  statusBadge.dataset.status = status;
  statusBadge.querySelector('span').textContent = STATUS[status];
});
const showRevision = () => {
  $('.doc-revision').textContent = `revision ${client.revision}`;
};
for (const type of /** @type {const} */ (['revision', 'reset', 'status'])) client.on(type, showRevision);

// ---- Lost changes ----

// The version that could not be merged is kept in localStorage until dismissed, so that a
// reload does not lose it.
const lostKey = `tandem.lost.${doc}`;
/** @param {string} text @param {number} edits */
const showLost = (text, edits) => {
  $('.lost-count').textContent = edits === 1 ? 'one change' : `${edits} changes`;
  $('.copy-lost').textContent = 'Copy my version';
  $('.banner').hidden = false;
  lostText = text;
};
let lostText = '';
try {
  const kept = JSON.parse(localStorage.getItem(lostKey) ?? 'null');
  if (kept && typeof kept.text === 'string') showLost(kept.text, Number(kept.edits) || 1);
} catch {
  // Nothing usable was kept.
}
client.on('lost', ({ changes, text }) => {
  showLost(text, changes.length);
  try {
    localStorage.setItem(lostKey, JSON.stringify({ text, edits: changes.length }));
  } catch {
    // Storage full or refused: the banner still holds it until the page closes.
  }
});
$('.copy-lost').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(lostText);
    $('.copy-lost').textContent = 'Copied';
  } catch {
    $('.copy-lost').textContent = 'Copy failed';
  }
});
$('.dismiss').addEventListener('click', () => {
  $('.banner').hidden = true;
  lostText = '';
  localStorage.removeItem(lostKey);
});

// ---- History: versions saved, viewed and restored ----

historyPanel({ client, doc, token });

// ---- Share ----

const sharePop = $('.share-pop');
const shareLink = /** @type {HTMLInputElement} */ ($('.share-link'));
shareLink.value = location.href;
$('.share').addEventListener('click', (/** @type {MouseEvent} */ event) => {
  event.stopPropagation();
  sharePop.hidden = !sharePop.hidden;
  if (!sharePop.hidden) {
    // Below the button, wherever the bar has wrapped it to.
    sharePop.style.top = `${$('.share').getBoundingClientRect().bottom + 8}px`;
    $('.copy').textContent = 'Copy';
    shareLink.select();
  }
});
document.addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
  if (event.key === 'Escape' && !sharePop.hidden) sharePop.hidden = true;
});
$('.copy').addEventListener('click', async () => {
  shareLink.select();
  try {
    await navigator.clipboard.writeText(shareLink.value);
    $('.copy').textContent = 'Copied';
  } catch {
    $('.copy').textContent = 'Press Ctrl+C';
  }
});
document.addEventListener('click', (event) => {
  if (!sharePop.hidden && !sharePop.contains(/** @type {Node} */ (event.target))) sharePop.hidden = true;
});

// ---- Go ----

client.on('reset', () => {
  if (document.activeElement === document.body) editor.focus();
});
try {
  const recent = JSON.parse(localStorage.getItem('tandem.recent') ?? '[]').filter((/** @type {string} */ d) => d !== doc);
  remember('tandem.recent', JSON.stringify([doc, ...recent].slice(0, 8)));
} catch {
  // A damaged list of recent documents is simply started again.
  remember('tandem.recent', JSON.stringify([doc]));
}

/** The page's client, for tests and the console. */
// @ts-ignore: a property of our own on window
window.tandem = {
  client,
  text: () => client.text,
  revision: () => client.revision,
  status: () => client.status,
  clientId: () => client.clientId,
  title: () => client.title,
  counter: (/** @type {string} */ which = 'likes') => client.counter(which),
  isSynced: () => client.isSynced,
};
// The title and the likes can be changed once the document is here (as the text can), so that
// nothing typed or clicked before it arrives is thrown away.
titleInput.disabled = true;
counter.disabled = true;
client.whenReady().then(() => {
  titleInput.disabled = false;
  counter.disabled = false;
});
client.connect();
