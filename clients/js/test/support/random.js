// A seeded random number generator for the tests (mulberry32), so that a failure can be
// replayed from the seed it prints.

/** @param {number} seed */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** @param {number} n a whole number in [0, n) */
    below: (n) => Math.floor(next() * n),
    /** @template T @param {readonly T[]} items */
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}

/** Pieces of text that trip UTF-16 code: astral emoji, a family (ZWJ) sequence, a flag, a
 * skin tone, CJK, combining marks, a musical symbol, and plain ASCII. */
export const PIECES = ['a', 'b', ' ', '\n', 'é', 'e\u0301', '中文', '😀', '👩‍👩‍👧‍👦', '🇫🇷', '👍🏽', '𝄞', 'Z̤͔ͅ'];

/** @param {ReturnType<typeof rng>} random @param {number} max */
export function word(random, max) {
  let out = '';
  for (let i = 1 + random.below(max); i > 0; i--) out += random.pick(PIECES);
  return out;
}
