// Where a trace may branch, under each schedule of confidence-peak branching.
//
// rounds: the peaks of the finished trace (confidence.ts findPeaks): local maxima of the smoothed confidence that
//   reach the threshold, inside a region given as fractions of the trace's own length, the highest peaks_per_trace
//   of them at least min_peak_distance apart.
// online: a peak is confirmed as soon as the trace has drawn the token after it (the smoothed value to its right is
//   then known), so nothing waits for the trace to end. The region is given as fractions of max_new_tokens (a
//   running trace's final length is not known yet), and peaks are taken in the order the trace passes them: a
//   confirmed peak is taken when the trace has taken fewer than peaks_per_trace and it lies at least
//   min_peak_distance after the last one taken.
import type { Peak, PeakOptions } from './confidence.js';
import type { PeaksParams } from './peaks_params.js';

/** The peak-finding window and eligible region of a finished trace under `params` (rounds schedule). */
export function peakOptions(t: { tokens: readonly number[]; branchPoint: number; prefixLength: number }, params: PeaksParams): PeakOptions {
  const n = t.tokens.length;
  return {
    window: params.peak_window,
    threshold: params.confidence_threshold,
    minDistance: params.min_peak_distance,
    minBranchPoint: Math.max(1, Math.ceil(params.min_branch_fraction * n), t.prefixLength > 0 ? t.branchPoint + 1 : 0),
    maxBranchPoint: Math.min(n - 1, Math.floor(params.max_branch_fraction * n), params.max_new_tokens - 1),
  };
}

/** The eligible branch points of a trace under the online rule: [lo, hi], inclusive. */
export function onlineRegion(t: { branchPoint: number; prefixLength: number }, params: PeaksParams): [number, number] {
  const m = params.max_new_tokens;
  const lo = Math.max(1, Math.ceil(params.min_branch_fraction * m), t.prefixLength > 0 ? t.branchPoint + 1 : 0);
  const hi = Math.min(Math.floor(params.max_branch_fraction * m), m - 1);
  return [lo, hi];
}

function windowMean(confs: readonly number[], from: number, w: number): number {
  let s = 0;
  for (let i = from; i < from + w; i++) s += confs[i];
  return s / w;
}

/**
 * Online rule: whether the trace's latest token (index k = confs.length - 1) confirms a peak at branch point b = k,
 * given the branch points it has already taken. The smoothed value of the window confs[b - w .. b - 1] must reach the
 * threshold, be >= the window one token earlier and > the window one token later (the one ending at k): the same
 * local-maximum test as findPeaks, decided with no token after k.
 */
export function confirmedPeak(
  t: { confs: readonly number[]; branchPoint: number; prefixLength: number },
  taken: readonly number[],
  params: PeaksParams,
): Peak | null {
  const w = params.peak_window;
  const b = t.confs.length - 1;
  const j = b - w;
  if (j < 0 || taken.length >= params.peaks_per_trace) return null;
  if (taken.length > 0 && b - taken[taken.length - 1] < params.min_peak_distance) return null;
  const [lo, hi] = onlineRegion(t, params);
  if (b < lo || b > hi) return null;
  const g = windowMean(t.confs, j, w);
  if (g < params.confidence_threshold) return null;
  if (j > 0 && g < windowMean(t.confs, j - 1, w)) return null;
  if (!(g > windowMean(t.confs, j + 1, w))) return null;
  return { branchPoint: b, confidence: g };
}

/** Every peak the online rule takes in a trace, replayed token by token (tests and tools). */
export function onlinePeaks(t: { confs: readonly number[]; branchPoint: number; prefixLength: number }, params: PeaksParams): Peak[] {
  const taken: Peak[] = [];
  for (let k = t.prefixLength + 1; k < t.confs.length; k++) {
    const p = confirmedPeak({ ...t, confs: t.confs.slice(0, k + 1) }, taken.map((x) => x.branchPoint), params);
    if (p) taken.push(p);
  }
  return taken;
}
