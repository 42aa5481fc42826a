// The estimators on whole EAB-shaped runs (host simulation of EAB's rules on synthetic models, vocab 5, depth 3):
// over many seeded runs, their mean lands on the exact expectation (enumerated over every sequence), the old
// weightings do not, and the rules that break the assumptions are reported and fallen back from.
import { describe, expect, it } from 'vitest';
import { branchedPrefixSet, branchedSet } from '../../src/analysis/branched.js';
import { combineSets, iidSet } from '../../src/analysis/design.js';
import { classProbabilities, entropyOfClasses, expectation } from '../../src/analysis/estimators.js';
import { enumerate, randomModel, simulateEab, type SimParams, type SimSample } from '../ref/branching_sim.js';

const RUNS = 1500;
const model = randomModel(5, 7, 4); // token 4 ends a sequence
const exactSeqs = enumerate(model, 3);
const exact = (f: (t: number[]) => number) => exactSeqs.reduce((a, s) => a + s.p * f(s.tokens), 0);

function meanAndSe(xs: number[]): { mean: number; se: number; variance: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, se: Math.sqrt(variance / xs.length), variance };
}

const base: SimParams = { max_new_tokens: 3, entropy_threshold: 0.2, branch_factor: 3, max_paths: 6, prune_policy: 'none', seed: 0 };
const runs = (p: Partial<SimParams>) => Array.from({ length: RUNS }, (_, seed) => simulateEab(model, { ...base, ...p, seed }));

describe('branched estimators over many seeded runs', () => {
  const none = runs({});
  const functions: [string, (t: number[]) => number][] = [
    ['first token is 0', (t) => +(t[0] === 0)],
    ['first token is 1', (t) => +(t[0] === 1)],
    ['contains token 2', (t) => +t.includes(2)],
    ['length', (t) => t.length],
    ['sum of tokens', (t) => t.reduce((a, b) => a + b, 0)],
  ];

  it('the model branches at the root and the runs do branch (the check below is not about single draws)', () => {
    const q = model.q([]);
    const h = -Array.from(q).reduce((a, x) => a + x * Math.log(x), 0) / Math.log(5);
    expect(h).toBeGreaterThan(base.entropy_threshold);
    expect(meanAndSe(none.map((r) => r.forks.length)).mean).toBeGreaterThan(2);
  });

  for (const [name, f] of functions) {
    it(`prune_policy none: the weighted estimate of E[${name}] is unbiased (mean of ${RUNS} runs within 4 SE)`, () => {
      const est = none.map((r) => expectation(r, (s: SimSample) => f(s.tokens)));
      expect(est.every((e) => e.unbiased)).toBe(true);
      const m = meanAndSe(est.map((e) => e.value));
      const truth = exact(f);
      expect(Math.abs(m.mean - truth)).toBeLessThan(4 * m.se);
      // The per-run standard error is a lower bound (single draws add spread it cannot see), and not a loose one here.
      const meanVarEst = est.reduce((a, e) => a + e.se ** 2, 0) / est.length;
      expect(meanVarEst).toBeLessThan(m.variance * 1.15);
      expect(meanVarEst).toBeGreaterThan(m.variance * 0.3);
    });
  }

  it('the first-token probabilities: weighted estimates pass, probability- and uniform-weighted votes fail', () => {
    const zs = { inclusion: [] as number[], probability: [] as number[], uniform: [] as number[] };
    for (let t = 0; t < 5; t++) {
      const truth = model.q([])[t];
      const inc = none.map((r) => classProbabilities(branchedPrefixSet(r, 1), (u) => String(u.tokens[0])).classes.find((c) => c.key === String(t))?.probability ?? 0);
      // Today's vote(): each sample's weight is exp(log_probability) renormalised over the samples, or 1 (uniform).
      const share = (r: (typeof none)[number], w: (s: SimSample) => number) => {
        const total = r.samples.reduce((a, s) => a + w(s), 0);
        return r.samples.reduce((a, s) => a + (s.tokens[0] === t ? w(s) : 0), 0) / total;
      };
      const prob = none.map((r) => share(r, (s) => Math.exp(s.log_probability)));
      const uni = none.map((r) => share(r, () => 1));
      for (const [k, xs] of [['inclusion', inc], ['probability', prob], ['uniform', uni]] as const) {
        const m = meanAndSe(xs);
        zs[k].push((m.mean - truth) / m.se);
      }
    }
    expect(Math.max(...zs.inclusion.map(Math.abs))).toBeLessThan(4);
    expect(Math.max(...zs.probability.map(Math.abs))).toBeGreaterThan(4);
    expect(Math.max(...zs.uniform.map(Math.abs))).toBeGreaterThan(4);
  });

  it('keep_most_probable: pruned runs are marked biased, lose mass on average, and the prefix fallback stays unbiased', () => {
    // Logit scale 1.5 at every prefix and max_paths 4: the budget runs out at the second position and replacements
    // prune in about half the runs.
    const flat = randomModel(5, 7, 4, 1.5);
    const kmp = Array.from({ length: RUNS }, (_, seed) => simulateEab(flat, { ...base, prune_policy: 'keep_most_probable', max_paths: 4, seed }));
    const pruned = kmp.filter((r) => r.tree.some((n) => n.finish === 'pruned'));
    expect(pruned.length).toBeGreaterThan(RUNS / 4);
    for (const r of pruned) {
      const set = branchedSet(r);
      expect(set.unbiased).toBe(false);
      expect(set.notes.some((n) => n.startsWith('BIASED'))).toBe(true);
    }
    expect(kmp.some((r) => r.forks.some((f) => f.rule === 'replace'))).toBe(true);
    // The estimate of the total probability (1 for an unbiased design) is visibly short.
    const mass = meanAndSe(kmp.map((r) => expectation(r, () => 1).mass));
    expect((mass.mean - 1) / mass.se).toBeLessThan(-4);
    // Pruning happens only after a path holds its token of that step: first-token prefixes are all still there.
    for (let t = 0; t < 5; t++) {
      const xs = kmp.map((r) => {
        const set = branchedPrefixSet(r, 1);
        expect(set.unbiased).toBe(true);
        return classProbabilities(set, (u) => String(u.tokens[0])).classes.find((c) => c.key === String(t))?.probability ?? 0;
      });
      const m = meanAndSe(xs);
      expect(Math.abs(m.mean - flat.q([])[t])).toBeLessThan(4 * m.se);
    }
  });

  it('combined runs: one estimate, its standard error from the spread of the runs, the entropy of the first token', () => {
    const set = combineSets(none.slice(0, 400).map((r) => branchedPrefixSet(r, 1)));
    const e = entropyOfClasses(set, (u) => String(u.tokens[0]));
    const q = Array.from(model.q([]));
    const truth = -q.reduce((a, x) => a + x * Math.log(x), 0);
    expect(e.unbiased).toBe(false);
    expect(Math.abs(e.entropy - truth)).toBeLessThan(4 * e.se + 0.01);
    expect(e.se).toBeGreaterThan(0);
    const c = classProbabilities(set, (u) => String(u.tokens[0]));
    for (const k of c.classes) expect(Math.abs(k.probability - q[+k.key])).toBeLessThan(4 * k.se);
  });

  it('independent samples: the plain mean with standard deviation / sqrt(n)', () => {
    const xs = [1, 4, 2, 8, 5];
    const e = expectation(iidSet(xs.map((x) => ({ x }))), (u) => u.x);
    expect(e.value).toBeCloseTo(4, 14);
    expect(e.ratio).toBeCloseTo(4, 14);
    expect(e.se).toBeCloseTo(Math.sqrt(meanAndSe(xs).variance / 5), 14);
    expect(e.weighting).toBe('iid');
  });
});
