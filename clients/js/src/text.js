// Positions in text: JavaScript strings count UTF-16 units, the wire counts code points.
//
// The client converts once, at its edge, with these functions, and never lets an index fall
// between the two halves of a surrogate pair (an emoji, a rare CJK character, a musical symbol).
// Grapheme clusters (a family emoji, a letter with combining marks) are several code points,
// and the wire may edit inside them like anywhere else.

/** @param {number} unit */
function isHigh(unit) {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** @param {number} unit */
function isLow(unit) {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * The number of code points in `s`.
 * @param {string} s
 */
export function codePointLength(s) {
  let pairs = 0;
  for (let i = 0; i < s.length - 1; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) {
      pairs++;
      i++;
    }
  }
  return s.length - pairs;
}

/**
 * Whether UTF-16 index `index` of `s` lies between two code points (not inside a pair).
 * @param {string} s
 * @param {number} index
 */
export function isBoundary(s, index) {
  if (index <= 0 || index >= s.length) return index === 0 || index === s.length;
  return !(isHigh(s.charCodeAt(index - 1)) && isLow(s.charCodeAt(index)));
}

/**
 * The UTF-16 index of code point `index` of `s`.
 * @param {string} s
 * @param {number} index a code point index, at most the text's length in code points
 * @param {number} [from] a UTF-16 index of `s` to start counting at (a boundary)
 * @returns {number}
 */
export function toUtf16(s, index, from = 0) {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`${index} is not a code point index`);
  let unit = from;
  for (let left = index; left > 0; left--) {
    if (unit >= s.length) throw new RangeError(`code point ${index} is past the text`);
    unit += isHigh(s.charCodeAt(unit)) && isLow(s.charCodeAt(unit + 1)) ? 2 : 1;
  }
  return unit;
}

/**
 * The code point index of UTF-16 index `index` of `s`, which must be a boundary.
 * @param {string} s
 * @param {number} index
 * @returns {number}
 */
export function toCodePoints(s, index) {
  if (!Number.isInteger(index) || index < 0 || index > s.length) {
    throw new RangeError(`${index} is outside the text (length ${s.length})`);
  }
  if (!isBoundary(s, index)) {
    throw new RangeError(`${index} falls inside a surrogate pair`);
  }
  return codePointLength(s.slice(0, index));
}

/**
 * `s` with every lone surrogate replaced by U+FFFD, so that it can be sent as JSON the server
 * accepts (a lone surrogate is not a character).
 * @param {string} s
 */
export function wellFormed(s) {
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (isHigh(unit) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
      i++;
    } else if (isHigh(unit) || isLow(unit)) {
      out += s.slice(start, i) + '\ufffd';
      start = i + 1;
    }
  }
  return start === 0 ? s : out + s.slice(start);
}

/**
 * A code point edit applied to `s`, and where it fell in UTF-16 units.
 * @param {string} s
 * @param {import('./ot.js').Edit} edit
 * @returns {{text: string, index: number, deleted: number, inserted: string}}
 */
export function applyEdit(s, edit) {
  const index = toUtf16(s, edit.index);
  if (edit.type === 'insert') {
    return { text: s.slice(0, index) + edit.text + s.slice(index), index, deleted: 0, inserted: edit.text };
  }
  const end = toUtf16(s, edit.length, index);
  return { text: s.slice(0, index) + s.slice(end), index, deleted: end - index, inserted: '' };
}

/**
 * The line (split on `\n`) and column, in code points, of code point index `index` of `s`.
 * @param {string} s
 * @param {number} index
 * @returns {{line: number, column: number}}
 */
export function lineColumn(s, index) {
  const unit = toUtf16(s, index);
  const before = s.slice(0, unit);
  const start = before.lastIndexOf('\n') + 1;
  let line = 0;
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line++;
  return { line, column: codePointLength(before.slice(start)) };
}

/**
 * The UTF-16 index of a line and column (code points) in `s`, clamped to the text: a line past
 * the end means the end, a column past the line's end the line's end.
 * @param {string} s
 * @param {number} line
 * @param {number} column
 */
export function fromLineColumn(s, line, column) {
  let start = 0;
  for (let l = 0; l < line; l++) {
    const next = s.indexOf('\n', start);
    if (next === -1) return s.length;
    start = next + 1;
  }
  let end = s.indexOf('\n', start);
  if (end === -1) end = s.length;
  let unit = start;
  for (let left = column; left > 0 && unit < end; left--) {
    unit += isHigh(s.charCodeAt(unit)) && isLow(s.charCodeAt(unit + 1)) ? 2 : 1;
  }
  return Math.min(unit, end);
}

/**
 * The one replacement that turns `before` into `after`, in UTF-16 units, on code point
 * boundaries of both. `caret`, where the caret is in `after` (as an editor reports it after an
 * input), places an ambiguous insert ("aa" to "aaa") where it was typed.
 * @param {string} before
 * @param {string} after
 * @param {number} [caret]
 * @returns {{index: number, deleted: number, inserted: string} | null} null if they are equal
 */
export function diff(before, after, caret) {
  if (before === after) return null;
  const shortest = Math.min(before.length, after.length);
  // The text after the caret was not typed, so the common suffix may take all of it.
  let suffix = 0;
  const suffixLimit = caret === undefined ? shortest : Math.min(shortest, after.length - caret);
  while (
    suffix < suffixLimit &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  let prefix = 0;
  while (prefix < shortest - suffix && before.charCodeAt(prefix) === after.charCodeAt(prefix)) {
    prefix++;
  }
  // Never cut a surrogate pair: move the cuts outwards to code point boundaries.
  if (!isBoundary(before, prefix) || !isBoundary(after, prefix)) prefix--;
  if (!isBoundary(before, before.length - suffix) || !isBoundary(after, after.length - suffix)) {
    suffix--;
  }
  return {
    index: prefix,
    deleted: before.length - suffix - prefix,
    inserted: after.slice(prefix, after.length - suffix),
  };
}
