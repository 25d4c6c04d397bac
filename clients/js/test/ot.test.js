// The transform is the same function as the server's: every case of the shared vectors, which
// the Rust tests write (crates/protocol/test_data/transform.json), gives the same result here.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { transform } from '../src/ot.js';
import { applyEdit } from '../src/text.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../../crates/protocol/test_data/transform.json', import.meta.url), 'utf8'),
);

/** @param {Array<['i', number, string] | ['d', number, number]>} list */
function edits(list) {
  return list.map(([kind, index, value]) =>
    kind === 'i'
      ? { type: 'insert', index, text: /** @type {string} */ (value) }
      : { type: 'delete', index, length: /** @type {number} */ (value) },
  );
}

/** @param {string} text @param {import('../src/ot.js').Edit[]} list */
function apply(text, list) {
  return list.reduce((current, edit) => applyEdit(current, edit).text, text);
}

test('every shared transform vector gives the Rust result', () => {
  assert.ok(vectors.cases.length >= 2000, `only ${vectors.cases.length} cases`);
  for (const [n, c] of vectors.cases.entries()) {
    const [oursAfter, theirsAfter] = transform(edits(c.ours), edits(c.theirs));
    assert.deepEqual(
      [oursAfter, theirsAfter],
      [edits(c.ours_after), edits(c.theirs_after)],
      `case ${n}: ${JSON.stringify(c)}`,
    );
    // And the results commute on the case's text, counted in code points.
    assert.equal(
      apply(apply(c.text, edits(c.ours)), theirsAfter),
      apply(apply(c.text, edits(c.theirs)), oursAfter),
      `case ${n} converges`,
    );
  }
});

test('the ABCD case: insert X at 3 while B is deleted gives ACXD both ways', () => {
  const ours = [{ type: 'insert', index: 3, text: 'X' }];
  const theirs = [{ type: 'delete', index: 1, length: 1 }];
  const [oursAfter, theirsAfter] = transform(ours, theirs);
  assert.equal(apply(apply('ABCD', theirs), oursAfter), 'ACXD');
  assert.equal(apply(apply('ABCD', ours), theirsAfter), 'ACXD');
});

test('the transform does not change its arguments', () => {
  const ours = [{ type: 'delete', index: 1, length: 4 }];
  const theirs = [{ type: 'insert', index: 3, text: 'X' }];
  const copy = structuredClone([ours, theirs]);
  const [oursAfter] = transform(ours, theirs);
  assert.deepEqual([ours, theirs], copy);
  assert.deepEqual(oursAfter, [
    { type: 'delete', index: 1, length: 2 },
    { type: 'delete', index: 2, length: 2 },
  ]);
});
