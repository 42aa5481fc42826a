// Estimators over a sample set: the expectation of a function of a sample, the probability of each class of samples
// (what a vote estimates), and semantic entropy from clusters; each with a standard error. For a branched run they
// use the Horvitz-Thompson weights of its design (design.ts, branched.ts), for independent samples weight 1/n.
//
// Sources: Horvitz & Thompson (1952) for the estimator; priority sampling (Duffield, Lund & Thorup 2007) in the
// Gumbel-top-k form of Kool, van Hoof & Welling (2019, 2020) for the inclusion probabilities; Raj (1966) for the
// multistage variance; the ratio (self-normalised) estimator and its linearised variance from Saerndal et al.
// (1992, section 5.6); semantic entropy from Kuhn, Gal & Farquhar (2023) and Farquhar et al. (2024).
import { InvalidArgumentError } from '../errors.js';
import { branchedSet, type BranchedRun } from './branched.js';
import { estimateDesign, iidSet, unitWeights, type SampleSet, type SetWeighting } from './design.js';

/** A sample set, a branched run (EabResult) or an array of independent samples. */
export type SampleSource<U extends object> = SampleSet<U> | BranchedRun<U & { path: number }> | readonly U[];

/** Turns what a caller has into a SampleSet: a set as is, a branched run by its design, an array as i.i.d. samples. */
export function toSampleSet<S extends object>(source: SampleSource<S>): SampleSet<S> {
  if (Array.isArray(source)) return iidSet(source as readonly S[]);
  const o = source as object;
  if ('design' in o && 'units' in o) return source as SampleSet<S>;
  if ('tree' in o && 'forks' in o && 'samples' in o) return branchedSet(source as unknown as BranchedRun<S & { path: number }>) as SampleSet<S>;
  throw new InvalidArgumentError(
    'expected a sample set, a branched result ({samples, tree, forks}: runEab) or an array of samples. ' +
      'A result without `forks` comes from an older forklm: rerun it, or pass result.samples as independent samples if they are.',
  );
}

interface Provenance {
  weighting: SetWeighting;
  /** True when `value` is an unbiased estimate (see notes for what the set estimates). */
  unbiased: boolean;
  notes: readonly string[];
  /** Units the estimate was computed from (samples, or prefixes for a set with a horizon). */
  units: number;
}

export interface Estimate extends Provenance {
  /** Horvitz-Thompson estimate of E[f(Y)], Y drawn as an independent sample with the same sampling parameters. */
  value: number;
  /** Its standard error (square root of the variance estimate). */
  se: number;
  /**
   * The self-normalised (ratio) estimate sum w f / sum w: consistent, not unbiased (bias O(1/n)), often lower
   * variance; equal to `value` for independent samples.
   */
  ratio: number;
  ratioSe: number;
  /** The estimate of the total probability the set stands for (f = 1): 1 in expectation. */
  mass: number;
}

function checkValue(v: number, i: number, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidArgumentError(`${what}: the value of unit ${i} is ${String(v)}; it must be a finite number.`);
  return v;
}

function provenance<U>(set: SampleSet<U>): Provenance {
  return { weighting: set.weighting, unbiased: set.unbiased, notes: set.notes, units: set.units.length };
}

/**
 * The expectation of `f(unit)` under the distribution the set's samples were drawn from, with its standard error.
 * For a branched run's single set, the standard error misses the spread along unbranched stretches (design.ts);
 * combine several seeded runs (combineSets) for one that counts everything.
 */
export function expectation<U extends object>(source: SampleSource<U>, f: (unit: U, index: number) => number): Estimate {
  const set = toSampleSet(source);
  const x = set.units.map((u, i) => checkValue(f(u, i), i, 'expectation'));
  const r = estimateDesign(set.design, (i) => [x[i], 1], 2);
  const [value, mass] = r.value;
  const ratio = mass > 0 ? value / mass : NaN;
  // Linearisation of value / mass: the variance of the estimate of E[f - ratio] divided by mass^2.
  const lin = estimateDesign(set.design, (i) => [x[i] - ratio], 1);
  return {
    value,
    se: Math.sqrt(r.variance[0]),
    ratio,
    ratioSe: mass > 0 ? Math.sqrt(lin.variance[0]) / mass : NaN,
    mass,
    ...provenance(set),
  };
}

export interface ClassEstimate {
  key: string;
  /** Horvitz-Thompson estimate of P(key(Y) = key). */
  probability: number;
  se: number;
  /** Its share among the estimates of all classes (they sum to 1 over the classes, abstention excluded). */
  share: number;
  /** Units of this class in the set. */
  count: number;
}

export interface ClassProbabilities extends Provenance {
  /** Most probable first (ties: more units, then the alphabetically first key). */
  classes: ClassEstimate[];
  /** The estimate of P(key(Y) = null): samples without an answer. */
  abstained: { probability: number; se: number; count: number };
  mass: number;
}

/**
 * The probability of each class (`key(unit)`, null for no class) under the sampling distribution: what a vote
 * estimates. Standard errors as for `expectation`.
 */
export function classProbabilities<U extends object>(source: SampleSource<U>, key: (unit: U, index: number) => string | null): ClassProbabilities {
  const set = toSampleSet(source);
  const ids = new Map<string, number>();
  const cls: number[] = [];
  set.units.forEach((u, i) => {
    const k = key(u, i);
    if (k !== null && typeof k !== 'string') throw new InvalidArgumentError(`classProbabilities: key returned ${typeof k} for unit ${i}; it must return a string or null.`);
    if (k === null) return cls.push(-1);
    if (!ids.has(k)) ids.set(k, ids.size);
    cls.push(ids.get(k)!);
  });
  const C = ids.size;
  // Components: one indicator per class, then abstention, then the mass.
  const r = estimateDesign(set.design, (i) => {
    const v = new Float64Array(C + 2);
    v[cls[i] >= 0 ? cls[i] : C] = 1;
    v[C + 1] = 1;
    return v;
  }, C + 2);
  // Units outside the design (weight 0: restarts, siblings of a draw-dependent branch) are not counted.
  const w = unitWeights(set.design, set.units.length);
  const counts = new Array<number>(C + 1).fill(0);
  cls.forEach((c, i) => {
    if (w[i] > 0) counts[c >= 0 ? c : C]++;
  });
  let total = 0;
  for (let c = 0; c < C; c++) total += r.value[c];
  const classes: ClassEstimate[] = [...ids].map(([k, c]) => ({
    key: k,
    probability: r.value[c],
    se: Math.sqrt(r.variance[c]),
    share: total > 0 ? r.value[c] / total : 0,
    count: counts[c],
  }));
  classes.sort((a, b) => b.probability - a.probability || b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    classes,
    abstained: { probability: r.value[C], se: Math.sqrt(r.variance[C]), count: counts[C] },
    mass: r.value[C + 1],
    ...provenance(set),
  };
}

export interface EntropyEstimate extends Provenance {
  /** Plug-in entropy (nats) of the estimated class distribution (shares of the class probabilities). */
  entropy: number;
  /** Delta-method standard error. */
  se: number;
  classes: ClassEstimate[];
}

/**
 * Entropy of the distribution over classes (semantic clusters: `cluster(unit)` gives a unit's cluster id), plugged in
 * from the class probability estimates renormalised to sum to 1. A plug-in entropy is biased low by about
 * (classes - 1) / (2 n) even for independent samples (Miller 1955), so `unbiased` is false whatever the weights; its
 * standard error is the delta method's: the variance of the estimate of E[-(ln p_c(Y) + H) / mass].
 */
export function entropyOfClasses<U extends object>(source: SampleSource<U>, cluster: (unit: U, index: number) => string): EntropyEstimate {
  const set = toSampleSet(source);
  const cp = classProbabilities(set, cluster);
  const total = cp.classes.reduce((a, c) => a + c.probability, 0);
  if (!(total > 0)) throw new InvalidArgumentError('entropyOfClasses: every unit has weight zero; nothing to estimate from.');
  let entropy = 0;
  const logShare = new Map<string, number>();
  for (const c of cp.classes) {
    if (c.share > 0) entropy -= c.share * Math.log(c.share);
    logShare.set(c.key, c.share > 0 ? Math.log(c.share) : 0);
  }
  const keys = set.units.map((u, i) => cluster(u, i));
  const g = estimateDesign(set.design, (i) => [-(logShare.get(keys[i])! + entropy) / total], 1);
  return {
    entropy: Math.max(0, entropy),
    se: Math.sqrt(g.variance[0]),
    classes: cp.classes,
    ...provenance(set),
    unbiased: false,
    notes: [...set.notes, 'plug-in entropy: biased low by about (clusters - 1) / (2 n) even for independent samples'],
  };
}
