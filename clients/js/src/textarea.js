// bindTextarea: a <textarea> that edits a Tandem document.
//
// Whatever changes the textarea's value (typing, paste, cut, drop, select-and-replace,
// autocorrect, an IME composition) becomes protocol edits: the binding compares the value with
// the text it last showed and sends the difference, on code point boundaries. Remote changes
// are written in place with setRangeText, so the local selection and scroll stay where they
// were; during an IME composition they wait, and the composed text is transformed past them
// when it ends. Undo and redo (Ctrl/Cmd+Z, Ctrl+Y, Ctrl/Cmd+Shift+Z, or the browser's menu)
// take back only one's own edits. Optionally, other users' carets are drawn over the textarea
// in their colours with their names.

import { transform } from './ot.js';
import { codePointLength, diff, toCodePoints, toUtf16 } from './text.js';
import { UndoHistory, invert } from './undo.js';

/** @typedef {import('./ot.js').Edit} Edit */
/** @typedef {import('./client.js').TandemClient} TandemClient */

/**
 * @typedef {object} BindOptions
 * @property {boolean} [carets] draw other users' carets over the textarea (default true)
 * @property {number} [undoDelay] edits less than this many ms apart undo together (default 600)
 */

/**
 * Binds `textarea` to `client`'s text; returns a function that unbinds it.
 * @param {TandemClient} client
 * @param {HTMLTextAreaElement} textarea
 * @param {BindOptions} [options]
 * @returns {() => void}
 */
export function bindTextarea(client, textarea, options = {}) {
  const history = new UndoHistory({ groupDelay: options.undoDelay ?? 600 });
  /** The text the textarea showed when it was last in step with the client. */
  let shown = client.text;
  let composing = false;
  /** Remote edits (code points) that arrived during a composition, in order. @type {Edit[]} */
  let deferred = [];
  /** Whether a sync() is due once the current message's changes are all in. */
  let syncQueued = false;
  const carets = options.carets === false ? null : new CaretLayer(client, textarea);

  const render = (/** @type {number} */ caret) => {
    const scroll = textarea.scrollTop;
    textarea.value = client.text;
    shown = client.text;
    textarea.setSelectionRange(caret, caret);
    textarea.scrollTop = scroll;
  };

  /** Sends whatever the user changed since `shown`, past the remote edits deferred meanwhile. */
  const sync = () => {
    if (!client.ready) return;
    const value = textarea.value;
    const change = diff(shown, value, textarea.selectionEnd);
    if (change === null && deferred.length === 0) return;
    /** @type {Edit[]} */
    const local = [];
    if (change) {
      const at = toCodePoints(shown, change.index);
      const deleted = [...shown.slice(change.index, change.index + change.deleted)].length;
      if (deleted > 0) local.push({ type: 'delete', index: at, length: deleted });
      if (change.inserted !== '') local.push({ type: 'insert', index: at, text: change.inserted });
    }
    const [edits] = transform(local, deferred);
    const hadDeferred = deferred.length > 0;
    const remote = deferred;
    deferred = [];
    const before = client.text;
    const inverse = invert(before, edits);
    client.applyEdits(edits);
    history.record(inverse, Date.now());
    const last = edits[edits.length - 1];
    if (hadDeferred || client.text !== value) {
      // The textarea lags behind remote edits, or held a lone surrogate: show the real text.
      render(last ? endOf(client.text, last) : caretAfter(remote, change === null));
    } else {
      shown = value;
    }
    reportCaret();
  };

  /**
   * Where the caret goes when the user's own change left nothing to apply: if they changed
   * nothing (`unchanged`, so the textarea still shows `shown`), where it was, moved along by
   * the remote edits applied meanwhile; else where it is, within the text.
   * @param {Edit[]} remote
   * @param {boolean} unchanged
   */
  const caretAfter = (remote, unchanged) => {
    if (!unchanged) return Math.min(textarea.selectionEnd, client.text.length);
    const at = toCodePoints(shown, Math.min(textarea.selectionEnd, shown.length));
    return toUtf16(client.text, Math.min(mapCaret(at, remote), codePointLength(client.text)));
  };

  const reportCaret = () => {
    if (client.ready && !composing && textarea.value === client.text) {
      client.moveCursor(textarea.selectionEnd);
    }
  };

  /** @param {'undo' | 'redo'} which */
  const undoOrRedo = (which) => {
    if (composing) return;
    sync();
    const edits = which === 'undo' ? history.takeUndo() : history.takeRedo();
    if (!edits) return;
    const inverse = invert(client.text, edits);
    client.applyEdits(edits);
    if (which === 'undo') history.undone(inverse);
    else history.redone(inverse);
    const last = edits[edits.length - 1];
    render(endOf(client.text, last));
    reportCaret();
  };

  /** @type {Array<() => void>} */
  const stops = [];
  /**
   * @param {EventTarget} target
   * @param {string} type
   * @param {(event: any) => void} listener
   */
  const listen = (target, type, listener) => {
    target.addEventListener(type, listener);
    stops.push(() => target.removeEventListener(type, listener));
  };

  listen(textarea, 'input', (/** @type {InputEvent} */ event) => {
    if (event.isComposing || composing) return;
    sync();
  });
  listen(textarea, 'compositionstart', () => {
    sync();
    composing = true;
  });
  listen(textarea, 'compositionend', () => {
    composing = false;
    sync();
  });
  listen(textarea, 'beforeinput', (/** @type {InputEvent} */ event) => {
    if (event.inputType === 'historyUndo' || event.inputType === 'historyRedo') {
      event.preventDefault();
      undoOrRedo(event.inputType === 'historyUndo' ? 'undo' : 'redo');
    }
  });
  listen(textarea, 'keydown', (/** @type {KeyboardEvent} */ event) => {
    const key = event.key.toLowerCase();
    const mod = event.ctrlKey || event.metaKey;
    if (mod && !event.altKey && (key === 'z' || key === 'y')) {
      event.preventDefault();
      undoOrRedo(key === 'y' || event.shiftKey ? 'redo' : 'undo');
    } else if (key.startsWith('arrow') || key === 'home' || key === 'end' || key === 'pageup' || key === 'pagedown' || key === 'enter') {
      history.breakGroup();
    }
  });
  listen(textarea, 'mousedown', () => history.breakGroup());
  for (const type of ['keyup', 'mouseup', 'focus', 'select']) listen(textarea, type, reportCaret);
  listen(textarea.ownerDocument, 'selectionchange', () => {
    if (textarea.ownerDocument.activeElement === textarea) reportCaret();
  });

  stops.push(
    client.on('reset', () => {
      deferred = [];
      composing = false;
      history.undoStack = [];
      history.redoStack = [];
      render(Math.min(textarea.selectionEnd, client.text.length));
      textarea.readOnly = false;
    }),
    client.on('change', (change) => {
      history.map([change.edit]);
      // One message can bring several changes (a remote delete cut in two by a local insert),
      // each against the text just before it, while `client.text` is already past them all.
      // So the textarea follows them one by one; and once any has to wait (a composition, or
      // typing not yet taken in), the rest wait too, and sync() takes them in together, after
      // the message, transforming what was typed past them all.
      if (composing || textarea.value !== shown || deferred.length > 0) {
        deferred.push(change.edit);
        if (!composing && !syncQueued) {
          syncQueued = true;
          queueMicrotask(() => {
            syncQueued = false;
            if (!composing) sync();
          });
        }
        return;
      }
      textarea.setRangeText(change.inserted, change.index, change.index + change.deleted, 'preserve');
      shown = shown.slice(0, change.index) + change.inserted + shown.slice(change.index + change.deleted);
    }),
  );

  textarea.readOnly = !client.ready;
  if (client.ready) render(0);
  return () => {
    for (const stop of stops) stop();
    carets?.destroy();
  };
}

/**
 * The UTF-16 index just after `edit` in `text` (the text after it).
 * @param {string} text
 * @param {Edit} edit
 */
function endOf(text, edit) {
  const start = toUtf16(text, edit.index);
  return edit.type === 'insert' ? toUtf16(text, [...edit.text].length, start) : start;
}

/** Styles a mirror copies from the textarea, so that its text wraps exactly the same way. */
const MIRRORED = [
  'fontFamily', 'fontSize', 'fontWeight', 'fontStyle', 'fontVariant', 'fontStretch',
  'fontFeatureSettings', 'fontKerning', 'lineHeight', 'letterSpacing', 'wordSpacing', 'textIndent',
  'textTransform', 'tabSize', 'direction', 'paddingTop', 'paddingRight', 'paddingBottom',
  'paddingLeft', 'borderTopWidth', 'borderRightWidth', 'borderBottomWidth', 'borderLeftWidth',
];

/**
 * Other users' carets, drawn in a layer over the textarea: a mirror of the text, laid out like
 * the textarea's, with each caret at its place in the text and the text itself transparent.
 */
class CaretLayer {
  /**
   * @param {TandemClient} client
   * @param {HTMLTextAreaElement} textarea
   */
  constructor(client, textarea) {
    this.client = client;
    this.textarea = textarea;
    const doc = textarea.ownerDocument;
    this.layer = doc.createElement('div');
    this.layer.className = 'tandem-carets';
    this.layer.setAttribute('aria-hidden', 'true');
    this.mirror = doc.createElement('div');
    this.layer.append(this.mirror);
    textarea.after(this.layer);
    Object.assign(this.layer.style, {
      position: 'absolute', boxSizing: 'border-box', pointerEvents: 'none', overflow: 'hidden', borderStyle: 'solid',
      borderColor: 'transparent', background: 'transparent', margin: '0',
    });
    Object.assign(this.mirror.style, {
      whiteSpace: 'pre-wrap', overflowWrap: 'break-word', wordBreak: 'normal', color: 'transparent',
    });
    this.frame = 0;
    const schedule = () => this.schedule();
    this.stops = [
      client.on('change', schedule),
      client.on('users', schedule),
      client.on('reset', schedule),
    ];
    for (const type of ['input', 'scroll']) textarea.addEventListener(type, schedule);
    this.resize = typeof ResizeObserver === 'function' ? new ResizeObserver(schedule) : null;
    this.resize?.observe(textarea);
    this.stops.push(() => {
      for (const type of ['input', 'scroll']) textarea.removeEventListener(type, schedule);
      this.resize?.disconnect();
    });
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    const raf = globalThis.requestAnimationFrame ?? ((/** @type {() => void} */ f) => setTimeout(f, 16));
    this.frame = raf(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const { textarea, layer, mirror, client } = this;
    const style = getComputedStyle(textarea);
    for (const name of MIRRORED) {
      // @ts-ignore: the same property names on both declarations
      layer.style[name] = style[name];
    }
    // The textarea's scroll bar takes room from its text: take the same from the mirror.
    const bar = textarea.offsetWidth - textarea.clientWidth - parseFloat(style.borderLeftWidth) - parseFloat(style.borderRightWidth);
    layer.style.paddingRight = `${parseFloat(style.paddingRight) + Math.max(0, bar)}px`;
    layer.style.left = `${textarea.offsetLeft}px`;
    layer.style.top = `${textarea.offsetTop}px`;
    layer.style.width = `${textarea.offsetWidth}px`;
    layer.style.height = `${textarea.offsetHeight}px`;
    mirror.style.transform = `translate(${-textarea.scrollLeft}px, ${-textarea.scrollTop}px)`;

    const text = textarea.value === client.text ? client.text : textarea.value;
    const users = client.users.filter((user) => user.index <= text.length).sort((a, b) => a.index - b.index);
    const doc = textarea.ownerDocument;
    /** @type {Node[]} */
    const nodes = [];
    let at = 0;
    for (const user of users) {
      nodes.push(doc.createTextNode(text.slice(at, user.index)));
      at = user.index;
      const caret = doc.createElement('span');
      caret.className = user.idle ? 'tandem-caret tandem-caret-idle' : 'tandem-caret';
      caret.dataset.tandem = 'caret';
      caret.dataset.client = user.clientId;
      const color = colorOf(user);
      caret.style.cssText = 'position:relative;margin:0 -1px';
      // Set as values, never as CSS text: a colour comes from another user.
      caret.style.setProperty('border-left', `2px solid ${color}`);
      caret.style.setProperty('--tandem-color', color);
      const label = doc.createElement('span');
      label.className = 'tandem-caret-label';
      label.textContent = user.name || 'Anonymous';
      label.style.cssText = 'position:absolute;left:-2px;bottom:100%;white-space:nowrap;color:#fff';
      label.style.setProperty('background', color);
      caret.append(label);
      nodes.push(caret);
    }
    // A zero-width space keeps a last empty line tall enough for a caret on it.
    nodes.push(doc.createTextNode(`${text.slice(at)}\u200b`));
    mirror.replaceChildren(...nodes);
  }

  destroy() {
    for (const stop of this.stops) stop();
    this.layer.remove();
  }
}

/**
 * A caret (a code point index) moved along by edits applied after it was placed: an insert
 * before it pushes it on (one right at it leaves it before the new text, as the server places
 * a caret), a delete before it pulls it back.
 * @param {number} caret
 * @param {Edit[]} edits
 */
function mapCaret(caret, edits) {
  let at = caret;
  for (const edit of edits) {
    if (edit.type === 'insert' && edit.index < at) at += codePointLength(edit.text);
    else if (edit.type === 'delete' && edit.index < at) at -= Math.min(edit.length, at - edit.index);
  }
  return at;
}

/** A colour as the protocol allows it: `#rgb` or `#rrggbb`. */
const HEX_COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

/**
 * The colour to draw a user in: theirs if it is a hex colour (anything else, which a server
 * that does not check colours could pass on, is never put into a style), else
 * {@link colorFor} their id.
 * @param {{color?: string | null, clientId: string}} user
 * @returns {string}
 */
export function colorOf(user) {
  return typeof user.color === 'string' && HEX_COLOR.test(user.color) ? user.color : colorFor(user.clientId);
}

/**
 * A stable colour for a user who has not chosen one.
 * @param {string} id
 */
export function colorFor(id) {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
  return `hsl(${hash % 360} 70% 45%)`;
}
