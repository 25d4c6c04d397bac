// Undo and redo of one's own edits in a shared text.
//
// Each stack entry is a group of edits that, applied in order to the current text, undo (or
// redo) one burst of typing. When someone else changes the text, every entry is transformed
// past that change (the same transform as the protocol's), so undo takes back only one's own
// typing, where it now is, and never someone else's. Positions count code points.

import { transform } from './ot.js';
import { applyEdit, codePointLength, toUtf16 } from './text.js';

/** @typedef {import('./ot.js').Edit} Edit */

/**
 * The edits that undo `edits` (applied in order to `text`), in the order to apply them.
 * @param {string} text the text before `edits`
 * @param {readonly Edit[]} edits
 * @returns {Edit[]}
 */
export function invert(text, edits) {
  /** @type {Edit[]} */
  const inverse = [];
  let current = text;
  for (const edit of edits) {
    if (edit.type === 'insert') {
      inverse.unshift({ type: 'delete', index: edit.index, length: codePointLength(edit.text) });
    } else {
      const start = toUtf16(current, edit.index);
      const removed = current.slice(start, toUtf16(current, edit.length, start));
      inverse.unshift({ type: 'insert', index: edit.index, text: removed });
    }
    current = applyEdit(current, edit).text;
  }
  return inverse;
}

export class UndoHistory {
  /**
   * @param {{limit?: number, groupDelay?: number}} [options] `limit` groups are kept; edits
   *   less than `groupDelay` ms apart join one group
   */
  constructor(options = {}) {
    this.limit = options.limit ?? 200;
    this.groupDelay = options.groupDelay ?? 600;
    /** @type {Edit[][]} */
    this.undoStack = [];
    /** @type {Edit[][]} */
    this.redoStack = [];
    this.lastTime = -Infinity;
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  /**
   * Records a local edit by its inverse (edits that undo it, from the text after it).
   * @param {Edit[]} inverse
   * @param {number} time in ms
   */
  record(inverse, time) {
    if (inverse.length === 0) return;
    this.redoStack = [];
    const top = this.undoStack[this.undoStack.length - 1];
    if (top && time - this.lastTime < this.groupDelay) {
      top.unshift(...inverse);
    } else {
      this.undoStack.push(inverse);
      if (this.undoStack.length > this.limit) this.undoStack.shift();
    }
    this.lastTime = time;
  }

  /** Ends the current group: the next edit starts a new one (after a caret jump, say). */
  breakGroup() {
    this.lastTime = -Infinity;
  }

  /**
   * Moves every entry past someone else's change, made on the current text.
   * @param {readonly Edit[]} change
   */
  map(change) {
    for (const stack of [this.undoStack, this.redoStack]) {
      // The top entry applies to the current text; each one below applies after those above
      // it, so the change is carried down past each in turn.
      let theirs = change.slice();
      for (let i = stack.length - 1; i >= 0 && theirs.length > 0; i--) {
        const [ours, after] = transform(stack[i], theirs);
        stack[i] = ours;
        theirs = after;
      }
      // Entries that concurrent edits emptied have nothing left to undo.
      for (let i = stack.length - 1; i >= 0; i--) if (stack[i].length === 0) stack.splice(i, 1);
    }
  }

  /**
   * Takes the edits that undo the last group; apply them, then pass their inverse to
   * `undone`.
   * @returns {Edit[] | null}
   */
  takeUndo() {
    this.breakGroup();
    return this.undoStack.pop() ?? null;
  }

  /** @param {Edit[]} inverse the edits that redo what the last takeUndo() undid */
  undone(inverse) {
    if (inverse.length > 0) this.redoStack.push(inverse);
  }

  /** @returns {Edit[] | null} */
  takeRedo() {
    this.breakGroup();
    return this.redoStack.pop() ?? null;
  }

  /** @param {Edit[]} inverse the edits that undo again what the last takeRedo() redid */
  redone(inverse) {
    if (inverse.length > 0) this.undoStack.push(inverse);
  }
}
