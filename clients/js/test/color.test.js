// A remote user's colour is drawn into styles only when it is a plain hex colour.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { colorFor, colorOf } from '../src/tandem.js';

test('colorOf keeps hex colours and replaces anything else with the id\'s colour', () => {
  assert.equal(colorOf({ clientId: 'c1', color: '#e11d48' }), '#e11d48');
  assert.equal(colorOf({ clientId: 'c1', color: '#ABC' }), '#ABC');
  for (const color of [null, undefined, '', 'red', '#12345', '#abcdeg', 'red;background:url(http://x/)', 'url(http://x/)', '#fff;top:0']) {
    assert.equal(colorOf({ clientId: 'c1', color }), colorFor('c1'), String(color));
  }
  assert.match(colorFor('c1'), /^hsl\(\d+ 70% 45%\)$/, 'the fallback is made here, from the id alone');
});
