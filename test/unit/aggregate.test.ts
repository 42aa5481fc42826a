import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { aggregate, sampleLogWeights, type WeightedSample } from '../../src/analysis/index.js';

function s(text: string, logp: number, logIw?: number): WeightedSample {
  return { text, log_probability: logp, probability: Math.exp(logp), ...(logIw === undefined ? {} : { log_importance_weight: logIw }) };
}
const len = (x: WeightedSample): number => x.text.length;

describe('aggregate', () => {
  it('probability-weighted mean and variance, hand-computed', () => {
    // Weights 0.2, 0.3, 0.5 (sum 1) on values 1, 2, 4: mean 0.2 + 0.6 + 2 = 2.8,
    // variance 0.2*3.24 + 0.3*0.64 + 0.5*1.44 = 0.648 + 0.192 + 0.72 = 1.56.
    const r = aggregate([s('a', Math.log(0.2)), s('bb', Math.log(0.3)), s('cccc', Math.log(0.5))], len);
    expect(r.mean).toBeCloseTo(2.8, 14);
    expect(r.variance).toBeCloseTo(1.56, 14);
    expect(r.std).toBeCloseTo(Math.sqrt(1.56), 14);
    expect(r.weights.map((w) => +w.toFixed(14))).toEqual([0.2, 0.3, 0.5]);
    expect(r.effectiveSampleSize).toBeCloseTo(1 / (0.04 + 0.09 + 0.25), 12);
    expect(r.n).toBe(3);
  });

  it('renormalises weights that do not sum to 1, and underflowing ones', () => {
    const r = aggregate([s('a', -1000), s('bbb', -1000 + Math.log(3))], len);
    // Weights 1/4, 3/4 on 1 and 3: mean 2.5, variance 1/4*2.25 + 3/4*0.25 = 0.75.
    expect(r.mean).toBeCloseTo(2.5, 12);
    expect(r.variance).toBeCloseTo(0.75, 12);
  });

  it('uniform is the plain mean and population variance; importance reads its own field', () => {
    const samples = [s('a', -0.1, Math.log(2)), s('bbb', -9, Math.log(1)), s('bbbbb', -9, Math.log(1))];
    const u = aggregate(samples, len, { weight: 'uniform' });
    expect(u.mean).toBe(3);
    expect(u.variance).toBeCloseTo(8 / 3, 14);
    expect(u.effectiveSampleSize).toBeCloseTo(3, 14);
    const imp = aggregate(samples, len, { weight: 'importance' });
    expect(imp.mean).toBeCloseTo((2 * 1 + 3 + 5) / 4, 14);
  });

  it('ignores the metric of zero-weight samples and rejects a non-finite metric otherwise', () => {
    const r = aggregate([s('a', -Infinity), s('bb', -1)], (x) => (x.text === 'a' ? Number.NaN : 2));
    expect(r.mean).toBe(2);
    expect(r.variance).toBe(0);
    expect(() => aggregate([s('a', -1), s('bb', -1)], (x) => (x.text === 'a' ? Infinity : 2))).toThrow(/metric of sample 0 is Infinity/);
    expect(() => aggregate([], len)).toThrow(/at least one sample/);
  });

  it('is invariant to sample order (bit for bit) and to duplicating every sample', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ v: fc.double({ min: -1e3, max: 1e3, noNaN: true }), lp: fc.double({ min: -1000, max: 0, noNaN: true }) }), {
          minLength: 1,
          maxLength: 10,
        }),
        (raw) => {
          const samples = raw.map((r) => ({ ...s('x', r.lp), v: r.v }));
          const metric = (x: (typeof samples)[number]): number => x.v;
          const a = aggregate(samples, metric);
          const b = aggregate([...samples].reverse(), metric);
          expect(b.mean).toBe(a.mean);
          expect(b.variance).toBe(a.variance);
          const d = aggregate([...samples, ...samples], metric);
          // Weights w/2 each, so the same mean and variance up to the rounding of the sums (values up to 1e3).
          expect(d.mean).toBeCloseTo(a.mean, 9);
          expect(d.variance).toBeCloseTo(a.variance, 6);
          expect(d.effectiveSampleSize).toBeCloseTo(2 * a.effectiveSampleSize, 9);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('sampleLogWeights', () => {
  it('reads the field for the mode and names the offending sample', () => {
    const samples = [s('a', -1, -2), s('b', -3, -4)];
    expect(Array.from(sampleLogWeights(samples, 'probability'))).toEqual([-1, -3]);
    expect(Array.from(sampleLogWeights(samples, 'importance'))).toEqual([-2, -4]);
    expect(Array.from(sampleLogWeights(samples, 'uniform'))).toEqual([0, 0]);
    expect(() => sampleLogWeights([s('a', Infinity)], 'probability')).toThrow(/Sample 0 has log_probability=Infinity/);
    expect(() => sampleLogWeights(samples, 'bogus' as 'uniform')).toThrow(/not a weighting/);
  });
});
