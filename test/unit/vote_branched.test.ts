// vote() and semanticEntropy() on branched results: inclusion weights by default, the weighting named in the result,
// the numbers equal to the estimators' (estimators.ts), and the old weightings still available and labelled.
import { describe, expect, it } from 'vitest';
import {
  branchedPrefixSet,
  branchedSet,
  classProbabilities,
  entropyOfClasses,
  semanticEntropy,
  unitWeights,
  vote,
  type WeightedSample,
} from '../../src/analysis/index.js';
import { randomModel, simulateEab, type SimSample } from '../ref/branching_sim.js';

const model = randomModel(5, 7, 4);
const params = { max_new_tokens: 3, entropy_threshold: 0.2, branch_factor: 3, max_paths: 6, prune_policy: 'none' as const };
// Samples as EAB returns them: text, probabilities and the inclusion weight of the full-horizon design.
type Sample = SimSample & WeightedSample;
function run(seed: number, prune: 'none' | 'keep_most_probable' = 'none', maxPaths = 6) {
  const r = simulateEab(model, { ...params, prune_policy: prune, max_paths: maxPaths, seed });
  const w = unitWeights(branchedSet(r).design, r.samples.length);
  const samples: Sample[] = r.samples.map((s, i) => ({
    ...s,
    text: `answer ${s.tokens[0]}`,
    probability: Math.exp(s.log_probability),
    log_inclusion_weight: Math.log(w[i]),
  }));
  return { ...r, samples };
}

describe('vote and semanticEntropy on branched results', () => {
  it('default to inclusion weights, equal to classProbabilities, and say so', () => {
    for (let seed = 0; seed < 20; seed++) {
      const r = run(seed);
      const v = vote(r);
      expect(v.weighting).toBe('inclusion');
      expect(v.unbiased).toBe(true);
      const cp = classProbabilities(r, (s) => `answer ${s.tokens[0]}`);
      expect(v.tallies.map((t) => [t.answer, t.probability, t.se])).toEqual(cp.classes.map((c) => [c.key, c.probability, c.se]));
      expect(v.winner).toBe(cp.classes[0].key);
      // The samples alone carry the same weights: same shares, no standard error, and a note saying what is missing.
      const a = vote(r.samples);
      expect(a.weighting).toBe('inclusion');
      for (const t of a.tallies) expect(t.share).toBeCloseTo(v.tallies.find((x) => x.answer === t.answer)!.share, 12);
      expect(a.notes[0]).toMatch(/whole branched result/);
    }
  });

  it('the old weightings stay available, labelled as what they are', () => {
    const r = run(3);
    const p = vote(r, { weight: 'probability' });
    expect(p.weighting).toBe('probability');
    expect(p.unbiased).toBe(false);
    expect(p.notes[0]).toMatch(/not an estimate/);
    expect(vote(r, { weight: 'uniform' }).tallies.reduce((a, t) => a + t.count, 0)).toBe(r.samples.length);
  });

  it('a pruned run: vote marks whole-sample estimates biased; a prefix set keyed on the first token does not', () => {
    let seen = 0;
    for (let seed = 0; seed < 200; seed++) {
      const r = run(seed, 'keep_most_probable', 4);
      if (!r.tree.some((n) => n.finish === 'pruned')) continue;
      seen++;
      const v = vote(r);
      expect(v.unbiased).toBe(false);
      expect(v.notes.join('\n')).toMatch(/BIASED.*horizon: \d/s);
      const p = vote(branchedPrefixSet(r, 1), { key: (u) => String(u.tokens[0]) });
      expect(p.unbiased).toBe(true);
      expect(() => vote(branchedPrefixSet(r, 1))).toThrow(/has no text; pass key/);
    }
    expect(seen).toBeGreaterThan(5);
  });

  it('semantic entropy of a branched result is the entropy of the inclusion-weighted cluster probabilities', async () => {
    const r = run(5);
    const e = await semanticEntropy(r);
    expect(e.weighting).toBe('inclusion');
    const ref = entropyOfClasses(r, (s) => `answer ${s.tokens[0]}`);
    expect(e.entropy).toBeCloseTo(ref.entropy, 14);
    expect(e.se).toBeCloseTo(ref.se, 14);
    expect(e.clusters.reduce((a, c) => a + c.share, 0)).toBeCloseTo(1, 14);
    for (const c of e.clusters) for (const m of c.members) expect(`answer ${m.tokens[0]}`).toBe(c.representative);
  });
});
