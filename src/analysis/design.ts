// How a set of samples was drawn (its sampling design), and the two numbers every estimator here needs from it: the
// Horvitz-Thompson estimate of a sum over the model's sequences and an estimate of that estimate's variance.
//
// A design is a tree. Its leaves are units (a finished sample, or a prefix of one); its inner nodes are
// - `draw`: k >= 2 tokens drawn without replacement at one position by Gumbel-top-k (a branch point), each member
//   carrying its sampling probability q_i and its inclusion probability pi_i given the draw's threshold
//   (inclusion.ts). A position where one token was drawn is not a node: one draw from q is already an unbiased
//   one-sample estimate of what lies below it, with weight 1.
// - `replicates`: independent runs of one estimator (independent samples, several seeds); their mean.
// - `lost`: a part of the sample whose units were discarded by a rule that looked at them (a pruned path). It
//   contributes 0; a set containing one is marked biased.
//
// Estimates are recursive (multistage sampling, Raj 1966; Saerndal, Swensson & Wretman, "Model Assisted Survey
// Sampling", 1992, result 4.3.1): below a draw, each member's subtree gives an unbiased estimate Y_i of its own
// conditional expectation F_i (the subtrees use independent random streams), and
//   Y    = sum_{i in S} (q_i / pi_i) Y_i
//   V(Y) = sum_{i in S} (1 - pi_i) (q_i / pi_i)^2 Y_i^2  +  sum_{i in S} (q_i^2 / pi_i) V(Y_i)
// The first term is the priority-sampling variance estimate with Y_i in place of F_i, the second the within-member
// variance (Raj's form, which divides by pi_i once, not twice). A run of single draws contributes no variance term:
// one draw cannot estimate the spread of what it could have drawn, so the variance estimate of a branched set misses
// the spread along its unbranched stretches (it is exact for functions decided at branch points, such as the first
// token when the first position branched). Independent replicates do not have this gap: combine several runs
// (`combineSets`) for a standard error that counts everything.
import { InvalidArgumentError } from '../errors.js';

export type Design =
  | { kind: 'unit'; index: number }
  | { kind: 'draw'; members: DrawMember[] }
  | { kind: 'replicates'; parts: Design[] }
  | { kind: 'lost' };

export interface DrawMember {
  /** log q_i: the member's first token's probability under the distribution it was drawn from. */
  logQ: number;
  /** log pi_i(kappa): its inclusion probability given the draw's threshold. */
  logPi: number;
  child: Design;
}

/**
 * How the weights were obtained: `inclusion` (Horvitz-Thompson weights from the inclusion probabilities of a branched
 * run), `iid` (independent samples, weight 1/n each).
 */
export type SetWeighting = 'inclusion' | 'iid';

/** Samples (units) with the design they were drawn by: what the estimators of estimators.ts take. */
export interface SampleSet<U> {
  readonly units: readonly U[];
  readonly design: Design;
  readonly weighting: SetWeighting;
  /** True when the estimates of expectations are unbiased for the distribution independent samples are drawn from. */
  readonly unbiased: boolean;
  /** What the set does and does not estimate, and every assumption a rule of the sampler broke (and the fallback). */
  readonly notes: readonly string[];
  /** Units are prefixes of this many generated tokens (null: whole samples). */
  readonly horizon: number | null;
}

/** Independent samples, each drawn as an independent request would be: the mean over them, weight 1/n each. */
export function iidSet<U>(units: readonly U[], notes: readonly string[] = []): SampleSet<U> {
  if (units.length === 0) throw new InvalidArgumentError('iidSet needs at least one sample; got none.');
  return {
    units,
    design: { kind: 'replicates', parts: units.map((_, index) => ({ kind: 'unit', index }) as Design) },
    weighting: 'iid',
    unbiased: true,
    notes: ['independent samples: every sample has weight 1/n; the standard error is the sample standard deviation / sqrt(n)', ...notes],
    horizon: null,
  };
}

/**
 * Independent sets of the same kind (several seeded runs) as one set: the mean of their estimates, with a standard
 * error from their spread (which, unlike one branched run's, also counts the unbranched stretches).
 */
export function combineSets<U>(sets: readonly SampleSet<U>[]): SampleSet<U> {
  if (sets.length === 0) throw new InvalidArgumentError('combineSets needs at least one set; got none.');
  const horizon = sets[0].horizon;
  if (sets.some((s) => s.horizon !== horizon)) throw new InvalidArgumentError('combineSets: every set must have the same horizon.');
  const units: U[] = [];
  const parts: Design[] = [];
  for (const s of sets) {
    parts.push(shift(s.design, units.length));
    units.push(...s.units);
  }
  const notes = [...new Set(sets.flatMap((s) => s.notes))];
  notes.push(`${sets.length} independent runs combined: the estimate is their mean, its standard error their spread / sqrt(${sets.length})`);
  return {
    units,
    design: { kind: 'replicates', parts },
    weighting: sets.every((s) => s.weighting === 'iid') ? 'iid' : 'inclusion',
    unbiased: sets.every((s) => s.unbiased),
    notes,
    horizon,
  };
}

function shift(d: Design, by: number): Design {
  switch (d.kind) {
    case 'unit':
      return { kind: 'unit', index: d.index + by };
    case 'draw':
      return { kind: 'draw', members: d.members.map((m) => ({ ...m, child: shift(m.child, by) })) };
    case 'replicates':
      return { kind: 'replicates', parts: d.parts.map((p) => shift(p, by)) };
    case 'lost':
      return d;
  }
}

/** Estimates and variance estimates of C sums at once (one per component of the units' values). */
export interface DesignEstimate {
  /** (C) Horvitz-Thompson estimates. */
  value: Float64Array;
  /** (C) their variance estimates (>= 0). */
  variance: Float64Array;
}

/**
 * The recursive estimate of sum_y q(y) x(y) for every component of `x` (C values per unit), and its variance
 * estimate, over `design`. `x(unit)` must return C finite numbers.
 */
export function estimateDesign(design: Design, x: (unitIndex: number) => ArrayLike<number>, components: number): DesignEstimate {
  const walk = (d: Design): DesignEstimate => {
    const value = new Float64Array(components);
    const variance = new Float64Array(components);
    if (d.kind === 'unit') {
      const v = x(d.index);
      for (let c = 0; c < components; c++) value[c] = v[c];
    } else if (d.kind === 'draw') {
      for (const m of d.members) {
        const r = walk(m.child);
        const pi = Math.exp(m.logPi);
        const a = Math.exp(m.logQ - m.logPi); // q / pi
        const q = Math.exp(m.logQ);
        for (let c = 0; c < components; c++) {
          value[c] += a * r.value[c];
          variance[c] += (1 - pi) * a * a * r.value[c] * r.value[c] + a * q * r.variance[c];
        }
      }
    } else if (d.kind === 'replicates') {
      const parts = d.parts.map(walk);
      const n = parts.length;
      for (const p of parts) for (let c = 0; c < components; c++) value[c] += p.value[c] / n;
      if (n === 1) variance.set(parts[0].variance);
      else
        for (const p of parts)
          for (let c = 0; c < components; c++) variance[c] += (p.value[c] - value[c]) ** 2 / (n * (n - 1));
    }
    return { value, variance };
  };
  return walk(design);
}

/**
 * Each unit's Horvitz-Thompson weight (the product of q_i / pi_i over the draws above it, divided by the number of
 * replicates at each `replicates` node): sum_u w_u f(u) is the estimate of E[f]. Units under no path get 0.
 */
export function unitWeights(design: Design, units: number): Float64Array {
  const w = new Float64Array(units);
  const walk = (d: Design, logW: number): void => {
    if (d.kind === 'unit') w[d.index] += Math.exp(logW);
    else if (d.kind === 'draw') for (const m of d.members) walk(m.child, logW + m.logQ - m.logPi);
    else if (d.kind === 'replicates') for (const p of d.parts) walk(p, logW - Math.log(d.parts.length));
  };
  walk(design, 0);
  return w;
}
