// Index edits and their transformation: how two concurrent edits are made to commute.
//
// The same function as the server's (crates/protocol/src/ot.rs), checked against the vectors
// that the Rust tests write (crates/protocol/test_data/transform.json). Positions here count
// code points, as on the wire; the client converts from JavaScript's UTF-16 at its edge.
//
// transform(ours, theirs) takes two edit lists made on the same text and returns
// [ours', theirs'] such that applying theirs then ours' gives the same text as applying ours
// then theirs'. Where both insert at the same index, ours goes first. Text inserted inside a
// concurrently deleted range survives; text deleted by both is deleted once.

import { codePointLength } from './text.js';

/**
 * One edit of a text, in code points.
 * @typedef {{type: 'insert', index: number, text: string}
 *   | {type: 'delete', index: number, length: number}} Edit
 */

/**
 * @param {number} index
 * @param {string} text
 * @returns {Edit}
 */
export function insert(index, text) {
  return { type: 'insert', index, text };
}

/**
 * @param {number} index
 * @param {number} length
 * @returns {Edit}
 */
export function del(index, length) {
  return { type: 'delete', index, length };
}

/**
 * How many code points the edit adds (negative: removes).
 * @param {Edit} edit
 */
export function delta(edit) {
  return edit.type === 'insert' ? codePointLength(edit.text) : -edit.length;
}

/**
 * Whether the edit fits a text of `length` code points.
 * @param {Edit} edit
 * @param {number} length
 */
export function fits(edit, length) {
  return edit.type === 'insert' ? edit.index <= length : edit.index + edit.length <= length;
}

/**
 * Transforms two concurrent edit lists against each other (see the top of this file).
 * Iterative: `theirs` is taken one edit at a time and carried past every edit of `ours`.
 * @param {readonly Edit[]} ours
 * @param {readonly Edit[]} theirs
 * @returns {[Edit[], Edit[]]}
 */
export function transform(ours, theirs) {
  let current = ours.slice();
  /** @type {Edit[]} */
  const theirsAfter = [];
  for (const edit of theirs) {
    const [next, pieces] = pastOne(current, edit);
    current = next;
    theirsAfter.push(...pieces);
  }
  return [current, theirsAfter];
}

/**
 * `ours` carried past the single edit `theirs`, and `theirs` carried past all of `ours`.
 * `theirs` is held as pieces: one insert (inserts never split) or deletes (a delete is cut only
 * by an insert, and only into deletes), so every step transforms single edits.
 * @param {readonly Edit[]} ours
 * @param {Edit} theirs
 * @returns {[Edit[], Edit[]]}
 */
function pastOne(ours, theirs) {
  /** @type {Edit[]} */
  const oursAfter = [];
  let pieces = [theirs];
  for (const edit of ours) {
    /** @type {Edit[]} */
    const next = [];
    if (edit.type === 'insert') {
      // The insert stays one edit while it goes past each piece in turn.
      /** @type {Edit} */
      let moved = edit;
      for (const piece of pieces) {
        const [after, pieceAfter] = transformOne(moved, piece);
        moved = after[0] ?? moved;
        next.push(...pieceAfter);
      }
      oursAfter.push(moved);
    } else {
      // Against an insert the delete may split; against deletes it only shrinks.
      /** @type {Edit[]} */
      let parts = [edit];
      for (const piece of pieces) {
        if (parts.length === 0) {
          next.push(piece);
        } else if (parts.length === 1) {
          const [after, pieceAfter] = transformOne(parts[0], piece);
          parts = after;
          next.push(...pieceAfter);
        } else {
          // The parts are deletes, so the piece carried past them stays at most one edit.
          /** @type {Edit[]} */
          const partsAfter = [];
          /** @type {Edit | undefined} */
          let carried = piece;
          for (const part of parts) {
            if (carried === undefined) {
              partsAfter.push(part);
            } else {
              const [after, moved] = transformOne(part, carried);
              partsAfter.push(...after);
              carried = moved[0];
            }
          }
          parts = partsAfter;
          if (carried !== undefined) next.push(carried);
        }
      }
      oursAfter.push(...parts);
    }
    pieces = next;
  }
  return [oursAfter, pieces];
}

/**
 * @param {Edit} ours
 * @param {Edit} theirs
 * @returns {[Edit[], Edit[]]}
 */
function transformOne(ours, theirs) {
  if (ours.type === 'insert' && theirs.type === 'insert') {
    if (ours.index <= theirs.index) {
      return [[ours], [insert(theirs.index + codePointLength(ours.text), theirs.text)]];
    }
    return [[insert(ours.index + codePointLength(theirs.text), ours.text)], [theirs]];
  }
  if (ours.type === 'insert' && theirs.type === 'delete') {
    const [moved, pieces] = insertVsDelete(ours.index, ours.text, theirs.index, theirs.length);
    return [[moved], pieces];
  }
  if (ours.type === 'delete' && theirs.type === 'insert') {
    const [moved, pieces] = insertVsDelete(theirs.index, theirs.text, ours.index, ours.length);
    return [pieces, [moved]];
  }
  if (ours.type === 'delete' && theirs.type === 'delete') {
    return [
      deleteAfter(ours.index, ours.length, theirs.index, theirs.length),
      deleteAfter(theirs.index, theirs.length, ours.index, ours.length),
    ];
  }
  throw new TypeError('not an edit');
}

/**
 * An insert of `s` at `a` and a concurrent delete of `k` at `b`: the insert to apply after the
 * delete, and the delete (possibly in two parts) to apply after the insert.
 * @param {number} a
 * @param {string} s
 * @param {number} b
 * @param {number} k
 * @returns {[Edit, Edit[]]}
 */
function insertVsDelete(a, s, b, k) {
  const n = codePointLength(s);
  if (a <= b) return [insert(a, s), [del(b + n, k)]];
  if (a >= b + k) return [insert(a - k, s), [del(b, k)]];
  // The insert lands inside the deleted range and survives; the delete goes around it.
  const before = a - b;
  return [insert(b, s), [del(b, before), del(b + n, k - before)]];
}

/**
 * The delete of `length` at `index`, to apply after a concurrent delete of `otherLength` at
 * `other`: what the other did not already delete, shifted. Empty if nothing is left.
 * @param {number} index
 * @param {number} length
 * @param {number} other
 * @param {number} otherLength
 * @returns {Edit[]}
 */
function deleteAfter(index, length, other, otherLength) {
  const overlap = Math.max(
    0,
    Math.min(index + length, other + otherLength) - Math.max(index, other),
  );
  const removedBefore = Math.min(otherLength, Math.max(0, index - other));
  const left = length - overlap;
  return left === 0 ? [] : [del(index - removedBefore, left)];
}
