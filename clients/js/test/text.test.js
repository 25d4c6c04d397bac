// UTF-16 and code points: conversions at the client's edge, with emoji, family sequences, CJK
// and combining marks, and never an index inside a surrogate pair.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  codePointLength,
  diff,
  fromLineColumn,
  isBoundary,
  lineColumn,
  toCodePoints,
  toUtf16,
  wellFormed,
} from '../src/text.js';
import { rng, word } from './support/random.js';

const FAMILY = '👩‍👩‍👧‍👦'; // four people joined by three zero-width joiners

test('code points are counted as the server counts them', () => {
  assert.equal(codePointLength(''), 0);
  assert.equal(codePointLength('abc'), 3);
  assert.equal(codePointLength('😀'), 1);
  assert.equal('😀'.length, 2);
  assert.equal(codePointLength(FAMILY), 7);
  assert.equal(FAMILY.length, 11);
  assert.equal(codePointLength('中文'), 2);
  assert.equal(codePointLength('e\u0301'), 2, 'a combining mark is a code point of its own');
  assert.equal(codePointLength('🇫🇷'), 2);
  assert.equal(codePointLength('\ud83d'), 1, 'a lone surrogate counts as one');
});

test('indexes convert both ways and agree with the string iterator', () => {
  const text = `a😀b${FAMILY}中e\u0301𝄞`;
  const points = [...text];
  let unit = 0;
  for (let cp = 0; cp <= points.length; cp++) {
    assert.equal(toUtf16(text, cp), unit, `code point ${cp}`);
    assert.equal(toCodePoints(text, unit), cp, `unit ${unit}`);
    unit += points[cp]?.length ?? 0;
  }
  assert.throws(() => toUtf16(text, points.length + 1), RangeError);
});

test('an index inside a surrogate pair is refused', () => {
  assert.equal(isBoundary('a😀b', 1), true);
  assert.equal(isBoundary('a😀b', 2), false);
  assert.equal(isBoundary('a😀b', 3), true);
  assert.throws(() => toCodePoints('a😀b', 2), /surrogate/);
  assert.throws(() => toCodePoints('ab', 3), RangeError);
});

test('lines and columns are in code points and clamp to the text', () => {
  const text = `ab\n😀x\n${FAMILY}`;
  assert.deepEqual(lineColumn(text, 0), { line: 0, column: 0 });
  assert.deepEqual(lineColumn(text, 4), { line: 1, column: 1 }, 'after the emoji');
  assert.deepEqual(lineColumn(text, 6), { line: 2, column: 0 });
  assert.deepEqual(lineColumn(text, 13), { line: 2, column: 7 }, 'the family is 7 code points');
  assert.equal(fromLineColumn(text, 1, 1), 5, 'UTF-16 index after the emoji');
  assert.equal(fromLineColumn(text, 1, 99), 6, 'a column past the end is the line end');
  assert.equal(fromLineColumn(text, 9, 0), text.length, 'a line past the end is the end');
  for (let cp = 0; cp <= codePointLength(text); cp++) {
    const { line, column } = lineColumn(text, cp);
    assert.equal(fromLineColumn(text, line, column), toUtf16(text, cp));
  }
});

test('lone surrogates become U+FFFD; pairs stay', () => {
  assert.equal(wellFormed('a😀b'), 'a😀b');
  assert.equal(wellFormed('a\ud83d'), 'a\ufffd');
  assert.equal(wellFormed('\ude00x\ud83d\ude00'), '\ufffdx😀');
  assert.equal(JSON.stringify(wellFormed('\ud83d')), '"\ufffd"');
});

test('diff places an ambiguous insert at the caret', () => {
  assert.deepEqual(diff('aa', 'aaa', 1), { index: 0, deleted: 0, inserted: 'a' });
  assert.deepEqual(diff('aa', 'aaa', 3), { index: 2, deleted: 0, inserted: 'a' });
  assert.deepEqual(diff('abc', 'abc'), null);
  assert.deepEqual(diff('hello world', 'hello there world', 12), { index: 6, deleted: 0, inserted: 'there ' });
});

test('diff never cuts a surrogate pair', () => {
  // 😀 (d83d de00) to 😁 (d83d de01) share their first unit.
  assert.deepEqual(diff('x😀y', 'x😁y'), { index: 1, deleted: 2, inserted: '😁' });
  // 👩 and 👨 share their high surrogate, and the family sequence shares its tail.
  const change = diff(FAMILY, FAMILY.replace('👩', '👨'));
  assert.ok(change && isBoundary(FAMILY, change.index) && isBoundary(FAMILY, change.index + change.deleted));
});

test('random diffs are on code point boundaries and turn one text into the other', () => {
  const seed = 9;
  const random = rng(seed);
  for (let round = 0; round < 3000; round++) {
    const before = word(random, 8);
    const cut = toUtf16(before, random.below(codePointLength(before) + 1));
    const end = toUtf16(before, random.below(codePointLength(before) - codePointLength(before.slice(0, cut)) + 1), cut);
    const inserted = random.below(3) === 0 ? '' : word(random, 3);
    const after = before.slice(0, cut) + inserted + before.slice(end);
    const caret = cut + inserted.length;
    const change = diff(before, after, random.below(2) ? caret : undefined);
    const message = `seed ${seed} round ${round}: ${JSON.stringify({ before, after })}`;
    if (before === after) {
      assert.equal(change, null, message);
      continue;
    }
    assert.ok(change, message);
    const { index, deleted, inserted: put } = change;
    assert.equal(before.slice(0, index) + put + before.slice(index + deleted), after, message);
    assert.ok(isBoundary(before, index) && isBoundary(before, index + deleted), message);
    assert.ok(isBoundary(after, index) && isBoundary(after, index + put.length), message);
  }
});
