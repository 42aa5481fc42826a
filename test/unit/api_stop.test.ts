// Stop strings over streamed text: whatever the split of the text into pieces, the emitted text never runs ahead of
// the final answer, and the final answer ends exactly before the first occurrence of any stop string.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/api/stop.js';

/** The reference: the full text cut before the earliest occurrence of any stop string. */
function cutAt(text: string, stops: string[]): { text: string; stopped: boolean } {
  let first = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  return first < 0 ? { text, stopped: false } : { text: text.slice(0, first), stopped: true };
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
      { numRuns: 2000 },
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
