// Weighted aggregation of a numeric metric over samples, and the log-space weight helpers the other analysis
// functions share.
import { InvalidArgumentError } from '../errors.js';
import type { WeightMode, WeightedSample } from './index.js';

/**
 * log(sum(exp(values))), exact for values far below -745 where exp() alone gives 0. The values are summed in a
 * fixed order (sorted) so the result does not depend on the order of the input: sample order comes from fork
 * scheduling, and a replayed run must give the same bits. Empty input, or all -Infinity, gives -Infinity.
 */
export function logSumExp(values: ArrayLike<number>): number {
  const sorted = Array.from(values).sort((a, b) => b - a);
  if (sorted.length === 0) return -Infinity;
  const max = sorted[0];
  if (max === -Infinity || max === Infinity || Number.isNaN(max)) return max;
  // Smallest terms first, and log1p for the sum of everything but the max: both keep precision when one term
  // dominates.
  let rest = 0;
  for (let i = sorted.length - 1; i >= 1; i--) rest += Math.exp(sorted[i] - max);
  return max + Math.log1p(rest);
}

/** True for a branched result ({samples, tree, forks}) or a sample set ({units, design}): inputs with a design. */
export function isDesigned(input: object): boolean {
  return !Array.isArray(input) && (('design' in input && 'units' in input) || ('tree' in input && 'forks' in input));
}

/** The weighting a caller gets by default: inclusion weights wherever the input has them, else `probability`. */
export function defaultWeighting(input: object): WeightMode {
  if (isDesigned(input)) return 'inclusion';
  const arr = input as readonly WeightedSample[];
  return arr.length > 0 && arr.every((s) => typeof s.log_inclusion_weight === 'number' || s.log_inclusion_weight === null) ? 'inclusion' : 'probability';
}

/** One log weight per sample for `mode`, validated: NaN or +Infinity is a caller bug and is reported, by index. */
export function sampleLogWeights(samples: readonly WeightedSample[], mode: WeightMode): Float64Array {
  const out = new Float64Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    let lw: number | undefined;
    if (mode === 'uniform') lw = 0;
    else if (mode === 'probability') lw = s.log_probability;
    else if (mode === 'inclusion') {
      // null is how JSON writes -Infinity (weight 0).
      lw = s.log_inclusion_weight === null ? -Infinity : s.log_inclusion_weight;
      if (lw === undefined) {
        throw new InvalidArgumentError(
          `Sample ${i} has no log_inclusion_weight, which weight: 'inclusion' needs. Pass the whole branched result ` +
            `(runEab's), or use weight: 'uniform' for independent samples.`,
        );
      }
      // -Infinity is a weight of 0 (a sample the design does not count), allowed like a -Infinity log_probability.
    } else if (mode === 'importance') {
      lw = s.log_importance_weight;
      if (lw === undefined) {
        throw new InvalidArgumentError(
          `Sample ${i} has no log_importance_weight, which weight: 'importance' needs. ` +
            `Use weight: 'probability' or 'uniform', or generate with a mode that records proposal probabilities.`,
        );
      }
    } else {
      throw new InvalidArgumentError(`weight: '${String(mode)}' is not a weighting; use 'inclusion', 'probability', 'importance' or 'uniform'.`);
    }
    if (typeof lw !== 'number' || Number.isNaN(lw) || lw === Infinity) {
      const field = mode === 'importance' ? 'log_importance_weight' : mode === 'inclusion' ? 'log_inclusion_weight' : 'log_probability';
      throw new InvalidArgumentError(`Sample ${i} has ${field}=${String(lw)}; it must be a number below +Infinity (-Infinity means weight 0).`);
    }
    out[i] = lw;
  }
  return out;
}

/**
 * The log of the normaliser, failing with a clear message when there is nothing to normalise: no samples, or every
 * sample has weight zero (log weight -Infinity).
 */
export function logNormalizer(logWeights: ArrayLike<number>, what: string): number {
  if (logWeights.length === 0) throw new InvalidArgumentError(`${what} needs at least one sample; got none.`);
  const lse = logSumExp(logWeights);
  if (lse === -Infinity) {
    throw new InvalidArgumentError(`${what}: every sample has weight zero (log weight -Infinity); nothing to weight by. Use weight: 'uniform'.`);
  }
  return lse;
}

export interface AggregateOptions {
  /**
   * Default `inclusion` for samples that carry `log_inclusion_weight` (then `mean` is the self-normalised
   * inclusion-weighted estimate; `expectation()` gives the unbiased one with a standard error), else `probability`,
   * as in the EAB seed's "probability-weighted aggregation".
   */
  weight?: WeightMode;
}

export interface AggregateResult {
  /** sum_i w_i x_i with the normalised weights w_i. */
  mean: number;
  /** sum_i w_i (x_i - mean)^2: the variance of the metric under the weighted sample distribution. */
  variance: number;
  std: number;
  /** Normalised weight of each sample, in input order; sums to 1. */
  weights: number[];
  /**
   * Kish's effective sample size 1 / sum_i w_i^2: n for uniform weights, near 1 when one sample carries all the
   * weight (then the mean is as good as a single sample).
   */
  effectiveSampleSize: number;
  n: number;
}

/**
 * Weighted mean and variance of `metric(sample)` over the samples. The metric must be finite for every sample
 * with nonzero weight; a sample with weight zero is ignored whatever its metric is.
 */
export function aggregate<S extends WeightedSample>(
  samples: readonly S[],
  metric: (sample: S, index: number) => number,
  options: AggregateOptions = {},
): AggregateResult {
  const mode = options.weight ?? defaultWeighting(samples);
  const logW = sampleLogWeights(samples, mode);
  const lse = logNormalizer(logW, 'aggregate');
  const n = samples.length;
  const w = new Array<number>(n);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Uniform weights are exactly 1/n, not exp(-ln n).
    w[i] = mode === 'uniform' ? 1 / n : Math.exp(logW[i] - lse);
    x[i] = w[i] > 0 ? metric(samples[i], i) : 0;
    if (w[i] > 0 && !Number.isFinite(x[i])) {
      throw new InvalidArgumentError(`aggregate: the metric of sample ${i} is ${x[i]}; it must be a finite number.`);
    }
  }
  // A fixed summation order (by weight, then value) makes the result independent of the samples' order.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => w[a] - w[b] || x[a] - x[b]);
  let mean = 0;
  let sumSq = 0;
  for (const i of order) {
    mean += w[i] * x[i];
    sumSq += w[i] * w[i];
  }
  // Two passes (mean first, then squared deviations) rather than E[x^2] - E[x]^2, which cancels catastrophically
  // when the spread is small next to the mean.
  let variance = 0;
  for (const i of order) variance += w[i] * (x[i] - mean) ** 2;
  return { mean, variance, std: Math.sqrt(variance), weights: w, effectiveSampleSize: 1 / sumSq, n };
}
