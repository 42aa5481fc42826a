// Stop strings over streamed text: whatever the split of the text into pieces, the emitted text never runs ahead of
// the final answer, and the final answer ends exactly before the first stop string to complete.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/api/stop.js';

/**
 * The reference: the text grown one character at a time stops at the first stop string that is complete, cut before
 * it; of two completing at the same character, before the longer one. (Counterexample that fixed this rule: text " éa",
 * stops ["é", " éa"]: "é" completes first, so the answer is " ", in whatever pieces the text arrives.)
 */
function cutAt(text: string, stops: string[]): { text: string; stopped: boolean } {
  for (let end = 1; end <= text.length; end++) {
    const done = stops.filter((s) => text.slice(0, end).endsWith(s)).sort((a, b) => b.length - a.length);
    if (done.length > 0) return { text: text.slice(0, end - done[0].length), stopped: true };
  }
  return { text, stopped: false };
}

describe('StopMatcher', () => {
  it('emits a prefix of the cut text at every point and the cut text in the end, for any split', () => {
    // A small alphabet makes partial matches and overlapping stop strings common.
    const text = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', '\u00e9'), maxLength: 60 });
    const stop = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', '\u00e9'), minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(text, fc.array(stop, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(8), { maxLength: 30 }), (t, stops, cuts) => {
        const want = cutAt(t, stops);
        const m = new StopMatcher(stops);
        let out = '';
        let at = 0;
        for (const c of cuts) {
          if (at >= t.length) break;
          out += m.push(t.slice(at, at + c));
          at += c;
          expect(want.text.startsWith(out)).toBe(true);
        }
        out += m.push(t.slice(at));
        if (!m.stopped) out += m.flush();
        expect(out).toBe(want.text);
        expect(m.stopped).toBe(want.stopped);
      }),
      // The counterexample that a CI run found (seed 1450747768) is checked on every run.
      { numRuns: 2000, examples: [[' \u00e9a', ['\u00e9', ' \u00e9a'], [1, 1]]] },
    );
  });

  it('holds back exactly what may begin a stop string', () => {
    const m = new StopMatcher(['\n\nUser:', 'END']);
    expect(m.push('Hello\n')).toBe('Hello');
    expect(m.push('\nUs')).toBe('');
    expect(m.push('ually')).toBe('\n\nUsually');
    expect(m.push(' EN')).toBe(' ');
    expect(m.push('Dless')).toBe('');
    expect(m.stopped).toBe(true);
    expect(m.push('more')).toBe('');
  });
});
