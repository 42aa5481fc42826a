import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { semanticEntropy, clusterSamples, bidirectional, extractFinalAnswer, type WeightedSample } from '../../src/analysis/index.js';
import { InvalidArgumentError } from '../../src/errors.js';

function s(text: string, logp: number, logIw?: number): WeightedSample {
  return { text, log_probability: logp, probability: Math.exp(logp), ...(logIw === undefined ? {} : { log_importance_weight: logIw }) };
}
const H = (ps: number[]): number => -ps.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);

describe('semanticEntropy', () => {
  it('probability-weighted: hand-computed clusters and entropy', async () => {
    const r = await semanticEntropy([s('Paris', Math.log(0.4)), s('Lyon', Math.log(0.1)), s(' paris.', Math.log(0.2)), s('Nice', Math.log(0.3))]);
    expect(r.clusters.map((c) => c.representative)).toEqual(['Paris', 'Nice', 'Lyon']);
    expect(r.clusters[0].indices).toEqual([0, 2]);
    expect(r.clusters[0].members.map((m) => m.text)).toEqual(['Paris', ' paris.']);
    // Total mass 1.0, so the shares are the masses: 0.6, 0.3, 0.1 (to the rounding of log/exp).
    expect(r.clusters.map((c) => c.share).map((x) => +x.toFixed(14))).toEqual([0.6, 0.3, 0.1]);
    expect(r.clusters[0].logMass).toBeCloseTo(Math.log(0.6), 14);
    expect(r.entropy).toBeCloseTo(H([0.6, 0.3, 0.1]), 14);
  });

  it('renormalises: masses that sum to less than 1 give the same entropy as their scaled-up shares', async () => {
    const r = await semanticEntropy([s('a', Math.log(0.02)), s('b', Math.log(0.06))]);
    expect(r.clusters.map((c) => c.share)).toEqual([expect.closeTo(0.75, 14), expect.closeTo(0.25, 14)]);
    expect(r.entropy).toBeCloseTo(H([0.75, 0.25]), 14);
  });

  it('uniform weighting is the discrete (count-based) semantic entropy, exactly', async () => {
    const r = await semanticEntropy([s('A', -1), s('B', -50), s('a', -2), s('C', -3)], { weight: 'uniform' });
    expect(r.clusters.map((c) => [c.representative, c.share])).toEqual([
      ['A', 0.5],
      ['B', 0.25],
      ['C', 0.25],
    ]);
    expect(r.clusters[0].logMass).toBe(Math.log(2));
    expect(r.entropy).toBeCloseTo(1.5 * Math.LN2, 15); // -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2
  });

  it('importance weighting uses log_importance_weight', async () => {
    const r = await semanticEntropy([s('x', -1, Math.log(1)), s('y', -0.1, Math.log(4)), s('x', -9, Math.log(3))], { weight: 'importance' });
    expect(r.clusters.map((c) => [c.representative, +c.share.toFixed(14)])).toEqual([
      ['x', 0.5],
      ['y', 0.5],
    ]);
    expect(r.entropy).toBeCloseTo(Math.LN2, 14);
    await expect(semanticEntropy([s('x', -1)], { weight: 'importance' })).rejects.toThrow(/log_importance_weight/);
  });

  it('is 0 for one meaning and ln k for k equally likely meanings', async () => {
    expect((await semanticEntropy([s('Yes', -3), s('yes!', -40), s('YES', -7)])).entropy).toBe(0);
    const k = 5;
    const r = await semanticEntropy(Array.from({ length: k }, (_, i) => s(`answer ${i}`, -12.5)));
    expect(r.entropy).toBeCloseTo(Math.log(k), 14);
  });

  it('does not underflow on masses like exp(-800)', async () => {
    const r = await semanticEntropy([s('A', -800), s('B', -800 - Math.log(3)), s('A', -900)]);
    // A: e^-800 (1 + e^-100), B: e^-800 / 3 -> shares 3/4 and 1/4 (e^-100 is far below double precision of 1).
    expect(r.clusters[0].share).toBeCloseTo(0.75, 13);
    expect(r.entropy).toBeCloseTo(H([0.75, 0.25]), 13);
    expect(Number.isFinite(r.entropy)).toBe(true);
    // A cluster whose share underflows contributes 0 (not NaN from 0 * -Infinity).
    const far = await semanticEntropy([s('A', 0), s('B', -2000)]);
    expect(far.entropy).toBe(0);
    expect(far.clusters[1].share).toBe(0);
  });

  it('custom equivalence: greedy clusters against the first member, as in Kuhn et al.', async () => {
    // "Same first letter" is an equivalence; record the calls to check the greedy order.
    const calls: string[] = [];
    const sameInitial = (a: string, b: string): boolean => {
      calls.push(`${a}|${b}`);
      return a[0] === b[0];
    };
    const ids = await clusterSamples([s('apple', -1), s('banana', -1), s('avocado', -1), s('blueberry', -1), s('cherry', -1)], {
      equivalent: sameInitial,
    });
    expect(ids).toEqual([0, 1, 0, 1, 2]);
    expect(calls).toEqual(['apple|banana', 'apple|avocado', 'apple|blueberry', 'banana|blueberry', 'apple|cherry', 'banana|cherry']);
  });

  it('custom async equivalence, and bidirectional entailment', async () => {
    // A toy "entailment": a entails b when b's words are a subset of a's words.
    const entails = async (a: string, b: string): Promise<boolean> => {
      await new Promise((r) => setTimeout(r, 0));
      const wa = new Set(a.toLowerCase().split(/\W+/));
      return b.toLowerCase().split(/\W+/).every((w) => wa.has(w));
    };
    const samples = [s('Paris is the capital', Math.log(0.5)), s('the capital is Paris', Math.log(0.25)), s('Paris', Math.log(0.25))];
    const one = await semanticEntropy(samples, { equivalent: entails });
    // One-way: "Paris is the capital" entails "Paris", so everything lands in one cluster.
    expect(one.clusters.length).toBe(1);
    expect(one.entropy).toBe(0);
    const two = await semanticEntropy(samples, { equivalent: bidirectional(entails) });
    expect(two.clusters.map((c) => c.indices)).toEqual([[0, 1], [2]]);
    expect(two.entropy).toBeCloseTo(H([0.75, 0.25]), 14);
  });

  it('compares a chosen text, e.g. the extracted final answer', async () => {
    const samples = [s('so the answer is 12.', -1), s('6*2 = 12', -1), s('the answer is 13', -1)];
    const r = await semanticEntropy(samples, { weight: 'uniform', text: (x) => extractFinalAnswer(x.text) ?? x.text });
    expect(r.clusters.map((c) => c.representative)).toEqual(['12', '13']);
    expect(r.entropy).toBeCloseTo(H([2 / 3, 1 / 3]), 15);
  });

  it('rejects empty input, non-boolean equivalence results and all-zero weights', async () => {
    await expect(semanticEntropy([])).rejects.toThrow(InvalidArgumentError);
    const score = (() => 0.9) as unknown as (a: string, b: string) => boolean;
    await expect(semanticEntropy([s('a', -1), s('b', -1)], { equivalent: score })).rejects.toThrow(/must return a boolean/);
    await expect(semanticEntropy([s('a', -Infinity)])).rejects.toThrow(/weight zero/);
  });

  const arbSamples = fc.array(
    fc.record({ a: fc.constantFrom('yes', 'no', 'Yes.', 'maybe', ' NO '), lp: fc.double({ min: -1500, max: 0, noNaN: true }) }),
    { minLength: 1, maxLength: 12 },
  );

  it('does not depend on the order of the samples (equivalence relation)', async () => {
    await fc.assert(
      fc.asyncProperty(arbSamples, fc.integer({ min: 0, max: 1e6 }), async (raw, seed) => {
        const samples = raw.map((r) => s(r.a, r.lp));
        const shuffled = samples.map((x, i) => ({ x, k: (i * 7919 + seed) % 104729 })).sort((p, q) => p.k - q.k).map((p) => p.x);
        const a = await semanticEntropy(samples);
        const b = await semanticEntropy(shuffled);
        // Sums run in sorted order, so the entropy is bit-identical, not just close.
        expect(b.entropy).toBe(a.entropy);
        const shares = (r: typeof a): Map<string, number> => new Map(r.clusters.map((c) => [c.representative.trim().toLowerCase().replace(/\.$/, ''), c.share]));
        expect(shares(b)).toEqual(shares(a));
      }),
      { numRuns: 150 },
    );
  });

  it('duplicating every sample does not change probability-weighted shares or the entropy', async () => {
    await fc.assert(
      fc.asyncProperty(arbSamples, async (raw) => {
        const samples = raw.map((r) => s(r.a, r.lp));
        const once = await semanticEntropy(samples);
        const twice = await semanticEntropy([...samples, ...samples]);
        expect(twice.clusters.length).toBe(once.clusters.length);
        // ln 2 is added to each log mass and to the normaliser: a few ulps of rounding.
        expect(twice.entropy).toBeCloseTo(once.entropy, 12);
        const shares = new Map(twice.clusters.map((c) => [c.representative, c.share]));
        for (const c of once.clusters) expect(shares.get(c.representative)).toBeCloseTo(c.share, 12);
      }),
      { numRuns: 150 },
    );
  });
});
