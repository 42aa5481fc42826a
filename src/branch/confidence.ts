// Confidence as DeepConf defines it (Fu et al., 2025, "Deep Think with Confidence"), computed on the host from the
// per-token records the token_stats kernel reads back, and the peak finder that confidence-peak branching uses.
//
//   token confidence  C_t = -(1/k) * sum of the top-k log-probs of the distribution token t was drawn from
//                     (k = 20, or the vocabulary size when smaller). A peaked distribution has a very negative tail in
//                     its top k, so C_t is large: high C = confident. The GPU computes C_t (TokenStatsRecord.confidence);
//                     tokenConfidence() is the same formula for checks.
//   group confidence  C_G = mean of C over a sliding window of `window` consecutive tokens, the window ending at t.
//   lowest group      min over a trace's groups: DeepConf's per-trace quality score and its early-stopping statistic.
//   tail confidence   mean of C over the trace's last `tail` tokens.
//
// Pure functions over number arrays: no GPU, no engine.
import { InvalidArgumentError } from '../errors.js';

/** DeepConf's k: the top-k log-probs averaged into a token confidence. */
export const DEEPCONF_TOP_K = 20;

function checkWindow(name: string, w: number): void {
  if (!Number.isInteger(w) || w < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${w}.`);
}

/**
 * C_t = -mean of the first min(k, length) log-probs, which must be sorted best first (as token_stats writes them).
 * The kernel's list already has min(20, V) entries, so the default k takes all of it.
 */
export function tokenConfidence(topLogprobs: readonly number[], k = DEEPCONF_TOP_K): number {
  checkWindow('k', k);
  const n = Math.min(k, topLogprobs.length);
  if (n === 0) throw new InvalidArgumentError('tokenConfidence needs at least one log-prob.');
  let s = 0;
  for (let i = 0; i < n; i++) s += topLogprobs[i];
  return -s / n;
}

/**
 * Group confidences: out[j] = mean(confs[j .. j + window - 1]), the window ending at token j + window - 1 (numpy's
 * convolve 'valid', as DeepConf computes them). A trace shorter than the window has one group: the mean of all of it.
 * Empty input gives an empty array.
 */
export function groupConfidences(confs: readonly number[], window: number): number[] {
  checkWindow('window', window);
  const n = confs.length;
  if (n === 0) return [];
  if (n < window) return [mean(confs)];
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < n; i++) {
    s += confs[i];
    if (i >= window) s -= confs[i - window];
    // Re-summing each window would be exact but O(n w); a running sum drifts by ~n ulps, far below any threshold.
    if (i >= window - 1) out.push(s / window);
  }
  return out;
}

/** DeepConf's trace score: the lowest group confidence (NaN for an empty trace). */
export function lowestGroupConfidence(confs: readonly number[], window: number): number {
  const g = groupConfidences(confs, window);
  return g.length === 0 ? NaN : Math.min(...g);
}

/** Mean confidence of the last `tail` tokens (all of them when the trace is shorter; NaN when empty). */
export function tailConfidence(confs: readonly number[], tail: number): number {
  checkWindow('tail', tail);
  return confs.length === 0 ? NaN : mean(confs.slice(-tail));
}

/** Mean of the lowest `fraction` of a trace's group confidences (DeepConf's "bottom 10%" score). */
export function bottomGroupConfidence(confs: readonly number[], window: number, fraction = 0.1): number {
  if (!(fraction > 0 && fraction <= 1)) throw new InvalidArgumentError(`fraction must be in (0, 1], got ${fraction}.`);
  const g = groupConfidences(confs, window).sort((a, b) => a - b);
  if (g.length === 0) return NaN;
  return mean(g.slice(0, Math.max(1, Math.ceil(g.length * fraction))));
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default). */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new InvalidArgumentError('percentile of no values.');
  if (!(q >= 0 && q <= 100)) throw new InvalidArgumentError(`percentile q must be in [0, 100], got ${q}.`);
  const s = [...xs].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * DeepConf's online stopping bar from warm-up traces: with `keepPercent` = eta, the (100 - eta)-th percentile of their
 * lowest group confidences. eta = 10 (DeepConf-low) stops a trace as soon as it dips below what the best 10% of
 * warm-ups never dipped below; eta = 90 (DeepConf-high) only stops traces worse than the worst 10% of warm-ups.
 */
export function stoppingBar(warmupLowestGroups: readonly number[], keepPercent: number): number {
  if (!(keepPercent > 0 && keepPercent <= 100)) throw new InvalidArgumentError(`keep_percent must be in (0, 100], got ${keepPercent}.`);
  return percentile(warmupLowestGroups, 100 - keepPercent);
}

/** The group confidence of the most recent `window` tokens, updated one token at a time (online early stopping). */
export class SlidingMean {
  private readonly buf: number[] = [];
  private sum = 0;
  private lowest = Infinity;

  constructor(readonly window: number) {
    checkWindow('window', window);
  }

  push(x: number): void {
    this.buf.push(x);
    this.sum += x;
    if (this.buf.length > this.window) this.sum -= this.buf.shift()!;
    if (this.full) this.lowest = Math.min(this.lowest, this.value);
  }

  /** Whether `window` tokens have been seen: only then is `value` a group confidence. */
  get full(): boolean {
    return this.buf.length === this.window;
  }

  /** Mean of the last min(seen, window) values (NaN before the first). */
  get value(): number {
    return this.buf.length === 0 ? NaN : this.sum / this.buf.length;
  }

  /** Lowest full-window mean so far (Infinity before the window fills). */
  get lowestGroup(): number {
    return this.lowest;
  }

  /** An independent copy in the same state (a branch continues its parent's window). */
  clone(): SlidingMean {
    const c = new SlidingMean(this.window);
    for (const x of this.buf) c.push(x);
    c.lowest = this.lowest;
    return c;
  }
}

/** Where a trace may branch and what counts as a peak. */
export interface PeakOptions {
  /** Tokens averaged into the smoothed confidence a peak is found on. */
  window: number;
  /** A peak's smoothed confidence must reach this. */
  threshold: number;
  /** Two chosen peaks of one trace are at least this many tokens apart (the higher one wins). */
  minDistance: number;
  /** Smallest and largest allowed branch point, inclusive, as token indices of the trace. */
  minBranchPoint: number;
  maxBranchPoint: number;
}

export interface Peak {
  /** Index of the first token a branch regenerates: the token right after the confident window. */
  branchPoint: number;
  /** Smoothed confidence of the window confs[branchPoint - window .. branchPoint - 1]. */
  confidence: number;
}

/**
 * Confidence peaks of one trace, highest first. The smoothed signal is groupConfidences(confs, window); group j covers
 * tokens j .. j + window - 1 and is a peak when it is a local maximum (>= its left neighbour, > its right one, so a
 * plateau counts once, at its right end) and reaches `threshold`. Its branch point is j + window: the branch keeps
 * the confident stretch and draws the token after it afresh. Peaks outside [minBranchPoint, maxBranchPoint] are
 * dropped; among the rest, peaks are taken highest first (ties: earlier first) and a peak closer than minDistance to
 * a taken one is skipped (scipy.signal.find_peaks' `distance` rule).
 */
export function findPeaks(confs: readonly number[], o: PeakOptions): Peak[] {
  checkWindow('window', o.window);
  if (!Number.isInteger(o.minDistance) || o.minDistance < 0)
    throw new InvalidArgumentError(`minDistance must be a non-negative integer, got ${o.minDistance}.`);
  if (confs.length < o.window) return [];
  const g = groupConfidences(confs, o.window);
  const found: Peak[] = [];
  for (let j = 0; j < g.length; j++) {
    const left = j === 0 ? -Infinity : g[j - 1];
    const right = j === g.length - 1 ? -Infinity : g[j + 1];
    if (!(g[j] >= o.threshold && g[j] >= left && g[j] > right)) continue;
    const branchPoint = j + o.window;
    if (branchPoint < o.minBranchPoint || branchPoint > o.maxBranchPoint) continue;
    found.push({ branchPoint, confidence: g[j] });
  }
  found.sort((a, b) => b.confidence - a.confidence || a.branchPoint - b.branchPoint);
  const taken: Peak[] = [];
  for (const p of found)
    if (taken.every((t) => Math.abs(t.branchPoint - p.branchPoint) >= o.minDistance)) taken.push(p);
  return taken;
}
