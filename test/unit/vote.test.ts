import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { vote, normalizeAnswer, extractFinalAnswer, finalAnswerKey, logSumExp, type WeightedSample } from '../../src/analysis/index.js';
import { InvalidArgumentError } from '../../src/errors.js';

function s(text: string, logp: number, logIw?: number): WeightedSample {
  return { text, log_probability: logp, probability: Math.exp(logp), ...(logIw === undefined ? {} : { log_importance_weight: logIw }) };
}

describe('normalizeAnswer', () => {
  it('trims, lowercases, collapses whitespace and strips trailing punctuation', () => {
    expect(normalizeAnswer('  The  Eiffel\tTower!\n')).toBe('the eiffel tower');
    expect(normalizeAnswer('Paris...')).toBe('paris');
    expect(normalizeAnswer('3.14.')).toBe('3.14');
    expect(normalizeAnswer('Yes?!')).toBe('yes');
    // Leading and inner punctuation is meaning, not decoration.
    expect(normalizeAnswer('-3, or 4')).toBe('-3, or 4');
    // NFKC: full-width digits are the digits.
    expect(normalizeAnswer('\uff14\uff12')).toBe('42');
  });
});

describe('extractFinalAnswer', () => {
  it('takes the sentence after the last answer marker', () => {
    expect(extractFinalAnswer('First I thought the answer is 4. But no: the answer is 5. Done.')).toBe('5');
    expect(extractFinalAnswer('Reasoning...\nAnswer: Paris\nThanks')).toBe('Paris');
    expect(extractFinalAnswer('So the answer is: 3.5.')).toBe('3.5');
    expect(extractFinalAnswer('FINAL ANSWER IS New York City!')).toBe('New York City');
  });
  it('falls back to the last number, without thousands separators', () => {
    expect(extractFinalAnswer('3 + 4 = 7, so we get 7, right')).toBe('7');
    expect(extractFinalAnswer('It costs 1,234.50 in total')).toBe('1234.50');
    expect(extractFinalAnswer('the temperature was -12 degrees')).toBe('-12');
    // A marker with nothing after it (a cut-off text) falls through to the number.
    expect(extractFinalAnswer('we have 12 apples, so the answer is')).toBe('12');
  });
  it('returns null when there is neither', () => {
    expect(extractFinalAnswer('no idea')).toBeNull();
    expect(finalAnswerKey('no idea')).toBeNull();
    expect(finalAnswerKey('The answer is PARIS. ok')).toBe('paris');
  });
});

describe('vote', () => {
  it('weights by probability by default, exact on a hand-computed case', () => {
    const r = vote([s('Paris', Math.log(0.5)), s('Lyon', Math.log(0.3)), s('paris.', Math.log(0.2))]);
    expect(r.winner).toBe('paris');
    expect(r.tallies.map((t) => t.answer)).toEqual(['paris', 'lyon']);
    expect(r.tallies.map((t) => t.count)).toEqual([2, 1]);
    // Shares over total mass 1.0: 0.7 and 0.3, up to the rounding of log/exp (1e-15 relative).
    expect(r.tallies[0].share).toBeCloseTo(0.7, 14);
    expect(r.tallies[1].share).toBeCloseTo(0.3, 14);
    expect(r.tallies[0].weight).toBeCloseTo(0.7, 14);
    expect(r.abstained).toBe(0);
  });

  it('uniform weighting is a plain majority, even against probability', () => {
    const samples = [s('A', -0.1), s('B', -5), s('B', -6)];
    expect(vote(samples).winner).toBe('a');
    const u = vote(samples, { weight: 'uniform' });
    expect(u.winner).toBe('b');
    expect(u.tallies.map((t) => [t.answer, t.weight, t.share])).toEqual([
      ['b', 2, 2 / 3],
      ['a', 1, 1 / 3],
    ]);
  });

  it('importance weighting reads log_importance_weight and requires it', () => {
    const r = vote([s('x', -1, Math.log(3)), s('y', -0.5, Math.log(1))], { weight: 'importance' });
    expect(r.winner).toBe('x');
    expect(r.tallies[0].share).toBeCloseTo(0.75, 14);
    expect(() => vote([s('x', -1, 0), s('y', -1)], { weight: 'importance' })).toThrow(/Sample 1 has no log_importance_weight/);
  });

  it('does not underflow on probabilities like exp(-800)', () => {
    expect(Math.exp(-800)).toBe(0); // the trap this guards against
    const r = vote([s('A', -800), s('B', -800 - Math.log(3)), s('B', -800 - Math.log(3))]);
    // A has mass e^-800, B 2/3 e^-800: shares 3/5 and 2/5.
    expect(r.winner).toBe('a');
    expect(r.tallies[0].share).toBeCloseTo(0.6, 13);
    expect(r.tallies[1].share).toBeCloseTo(0.4, 13);
    expect(r.tallies[0].logWeight).toBeCloseTo(-800, 10);
    expect(r.tallies[0].weight).toBe(0); // the raw weight does underflow; that is why logWeight exists
  });

  it('orders losers by log weight even when their shares underflow to 0', () => {
    const r = vote([s('win', 0), s('far', -900), s('farther', -1000)]);
    expect(r.tallies.map((t) => t.answer)).toEqual(['win', 'far', 'farther']);
    expect(r.tallies[1].share).toBe(0);
    expect(r.tallies[2].share).toBe(0);
  });

  it('breaks exact ties by count, then alphabetically', () => {
    expect(vote([s('b', Math.log(0.5)), s('a', Math.log(0.25)), s('a', Math.log(0.25))]).winner).toBe('a');
    expect(vote([s('b', -1), s('a', -1)]).winner).toBe('a');
    expect(vote([s('a', -1), s('b', -1)]).winner).toBe('a');
  });

  it('uses a custom key, with null abstaining', () => {
    const samples = [
      s('I think the answer is 42.', -3),
      s('Computing... 40 + 2 = 42', -4),
      s('hmm, the answer is 41', -1),
      s('I cannot tell', -0.01),
    ];
    const r = vote(samples, { key: (x) => finalAnswerKey(x.text), weight: 'uniform' });
    expect(r.winner).toBe('42');
    expect(r.abstained).toBe(1);
    expect(r.tallies.reduce((a, t) => a + t.share, 0)).toBeCloseTo(1, 15);
  });

  it('rejects empty input, all-abstained input, zero total weight and NaN', () => {
    expect(() => vote([])).toThrow(InvalidArgumentError);
    expect(() => vote([s('a', -1)], { key: () => null })).toThrow(/abstained/);
    expect(() => vote([s('a', -Infinity), s('b', -Infinity)])).toThrow(/weight zero/);
    expect(() => vote([s('a', Number.NaN)])).toThrow(/Sample 0 has log_probability=NaN/);
  });

  it('a sample with log probability -Infinity votes with weight 0', () => {
    const r = vote([s('a', -Infinity), s('b', -2)]);
    expect(r.winner).toBe('b');
    expect(r.tallies.map((t) => t.share)).toEqual([1, 0]);
  });

  const answers = ['yes', 'no', 'maybe', 'Yes.', 'NO'];
  const arbSamples = fc.array(
    fc.record({ a: fc.constantFrom(...answers), lp: fc.double({ min: -2000, max: 0, noNaN: true }) }),
    { minLength: 1, maxLength: 12 },
  );

  it('does not depend on the order of the samples', () => {
    fc.assert(
      fc.property(arbSamples, fc.integer(), (raw, seed) => {
        const samples = raw.map((r) => s(r.a, r.lp));
        const shuffled = samples.map((x, i) => ({ x, k: (i * 2654435761 + seed) % 1000003 })).sort((p, q) => p.k - q.k).map((p) => p.x);
        // logSumExp sums in sorted order, so the results are identical, not just close.
        expect(vote(shuffled)).toEqual(vote(samples));
        expect(vote(shuffled, { weight: 'uniform' })).toEqual(vote(samples, { weight: 'uniform' }));
      }),
      { numRuns: 200 },
    );
  });

  it('duplicating every sample does not change probability-weighted shares', () => {
    fc.assert(
      fc.property(arbSamples, (raw) => {
        const samples = raw.map((r) => s(r.a, r.lp));
        const once = vote(samples);
        const twice = vote([...samples, ...samples]);
        const byAnswer = new Map(twice.tallies.map((t) => [t.answer, t]));
        expect(byAnswer.size).toBe(once.tallies.length);
        for (const t of once.tallies) {
          const d = byAnswer.get(t.answer)!;
          // Both sides add ln 2 to a log weight and to the normaliser; that rounds differently by a few ulps.
          expect(d.share).toBeCloseTo(t.share, 12);
          expect(d.count).toBe(2 * t.count);
          expect(d.logWeight).toBeCloseTo(t.logWeight + Math.LN2, 9);
        }
        // The winner is the same unless the top two were within rounding of a tie (then the tie-break decides).
        if (once.tallies.length === 1 || once.tallies[0].logWeight - once.tallies[1].logWeight > 1e-9) {
          expect(twice.winner).toBe(once.winner);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('logSumExp', () => {
  it('is exact where exp underflows and handles the edges', () => {
    expect(logSumExp([-1000, -1000])).toBeCloseTo(-1000 + Math.LN2, 12);
    expect(logSumExp([Math.log(0.25), Math.log(0.75)])).toBeCloseTo(0, 15);
    expect(logSumExp([])).toBe(-Infinity);
    expect(logSumExp([-Infinity, -Infinity])).toBe(-Infinity);
    expect(logSumExp([-Infinity, 3])).toBe(3);
    // log(1 + 1e-20): 1 + 1e-20 is 1 in doubles, log1p keeps the tiny term (to 1e-12 relative).
    expect(logSumExp([0, Math.log(1e-20)]) / 1e-20).toBeCloseTo(1, 12);
  });
});
