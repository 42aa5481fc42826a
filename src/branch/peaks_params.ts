// Confidence-peak prefix branching parameters (../shared/seeds/prefix-branching.md, with DeepConf's confidence and
// online early stopping), their defaults and validation at the edge. Names are snake_case like the seed's flags.
//
// Defaults are tuned on stories260K (V = 512, so token confidences run from about 3 to 16; a uniform distribution
// gives ln 512 = 6.2) for an ordinary story prompt at temperature 0.9 and 96 new tokens: most traces have a window
// of 8 tokens averaging above 7.5 in their middle, so a default run branches, and reaches depth 2.
import { InvalidArgumentError } from '../errors.js';

/**
 * 'online': a peak is branched as soon as its trace has passed it, batched with the traces still running; peaks are
 * taken in the order a trace passes them, the eligible region is a fraction of max_new_tokens, and the budget goes to
 * peaks in the (virtual) order they were passed (peak_rules.ts, peaks_online.ts). 'rounds': the seed's way: a trace's
 * highest peaks over its finished length, and branches of depth d + 1 only once every trace of depth d has finished,
 * ranked over the whole round (steps thin out at the end of each round).
 */
export type PeaksSchedule = 'online' | 'rounds';

export interface PeaksParams {
  /** Traces sampled from the prompt before any branching, in one batch, seeds seed, seed + 1, ... */
  initial_traces: number;
  /** Total traces of the run, initial ones included: the branching budget. */
  max_traces: number;
  /** Most generated tokens per trace, a branch's inherited prefix included (a branch at b adds at most this - b). */
  max_new_tokens: number;
  /** Sampling temperature; must be > 0 when branching (a greedy branch would repeat its parent). */
  temperature: number;
  top_p: number;
  /** Trace i (in creation order) samples with seed + i. */
  seed: number;
  /** A peak's smoothed confidence (mean token confidence over peak_window tokens) must reach this. */
  confidence_threshold: number;
  /** Tokens in the window that smooths token confidence for peak finding. */
  peak_window: number;
  /** Two peaks chosen in one trace are at least this many tokens apart. */
  min_peak_distance: number;
  /**
   * The eligible middle region: a branch point b of a trace of n tokens satisfies
   * ceil(min_branch_fraction * n) <= b <= floor(max_branch_fraction * n), and 1 <= b <= n - 1, and for a branch b is
   * after its own branch point (earlier peaks are its parent's, already considered there). Under the online schedule
   * n is max_new_tokens (a running trace's length is not known yet).
   */
  min_branch_fraction: number;
  max_branch_fraction: number;
  /** Most peaks branched per trace (its highest ones under 'rounds', the first ones passed under 'online'). */
  peaks_per_trace: number;
  /** New traces continued from each chosen peak. */
  branches_per_peak: number;
  /** Branches of branches down to this depth (roots are depth 0; 0 disables branching: plain sampling). */
  max_depth: number;
  schedule: PeaksSchedule;
  /**
   * DeepConf online early stopping: once the warm-up traces have finished, a trace whose group confidence (mean over
   * the last group_window tokens) falls below the bar is finished early (stop reason 'low_confidence', never branched,
   * its pages freed for new branches). The bar is the (100 - keep_percent)-th percentile of the warm-up traces'
   * lowest group confidences.
   */
  early_stop: boolean;
  /** The first this-many initial traces are the warm-up (never stopped early); null: all initial traces. */
  warmup_traces: number | null;
  /** DeepConf's eta: 10 keeps only traces as good as the best 10% of warm-ups (aggressive), 90 is conservative. */
  keep_percent: number;
  /** Tokens per group for the early-stopping group confidence and the reported lowest group confidence. */
  group_window: number;
}

export const PEAKS_DEFAULTS: Readonly<PeaksParams> = Object.freeze({
  initial_traces: 4,
  max_traces: 16,
  max_new_tokens: 96,
  temperature: 0.9,
  top_p: 1,
  seed: 0,
  confidence_threshold: 7.5,
  peak_window: 8,
  min_peak_distance: 8,
  min_branch_fraction: 0.1,
  max_branch_fraction: 0.8,
  peaks_per_trace: 1,
  branches_per_peak: 2,
  max_depth: 2,
  schedule: 'online',
  early_stop: false,
  warmup_traces: null,
  keep_percent: 90,
  group_window: 16,
});

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER, maxFrom = ''): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]${maxFrom}, got ${String(v)}.`);
}

function num(name: string, v: unknown, ok: (x: number) => boolean, range: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new InvalidArgumentError(`${name} must be ${range}, got ${String(v)}.`);
}

/** What the engine allows: the most traces live at once (engine.maxLivePaths). */
export interface PeaksLimits {
  maxLivePaths: number;
}

/** Fills defaults and validates; unknown keys are rejected (they are usually typos). */
export function peaksParams(partial: Partial<PeaksParams> = {}, limits: PeaksLimits = { maxLivePaths: Number.MAX_SAFE_INTEGER }): PeaksParams {
  for (const k of Object.keys(partial))
    if (!(k in PEAKS_DEFAULTS))
      throw new InvalidArgumentError(`unknown peaks parameter '${k}'; expected one of ${Object.keys(PEAKS_DEFAULTS).join(', ')}.`);
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const p = { ...PEAKS_DEFAULTS, ...defined } as PeaksParams;
  int('initial_traces', p.initial_traces, 1, limits.maxLivePaths, ` (the upper bound is the engine's most live paths: maxSamples in loadEngine, or the server's slots)`);
  int('max_traces', p.max_traces, p.initial_traces);
  int('max_new_tokens', p.max_new_tokens, 2);
  num('temperature', p.temperature, (x) => x >= 0, 'a finite number >= 0 (0 = greedy)');
  if (p.temperature === 0 && p.max_depth > 0)
    throw new InvalidArgumentError('temperature 0 (greedy) makes every branch repeat its parent token for token; use a temperature > 0, or max_depth 0.');
  num('top_p', p.top_p, (x) => x > 0 && x <= 1, 'in (0, 1]');
  int('seed', p.seed, Number.MIN_SAFE_INTEGER);
  num('confidence_threshold', p.confidence_threshold, () => true, 'a finite number (token confidences are >= 0)');
  int('peak_window', p.peak_window, 1);
  int('min_peak_distance', p.min_peak_distance, 0);
  num('min_branch_fraction', p.min_branch_fraction, (x) => x >= 0 && x <= 1, 'in [0, 1]');
  num('max_branch_fraction', p.max_branch_fraction, (x) => x >= p.min_branch_fraction && x <= 1, `in [min_branch_fraction (${p.min_branch_fraction}), 1]`);
  int('peaks_per_trace', p.peaks_per_trace, 1);
  int('branches_per_peak', p.branches_per_peak, 1);
  int('max_depth', p.max_depth, 0);
  if (p.schedule !== 'online' && p.schedule !== 'rounds')
    throw new InvalidArgumentError(`schedule must be 'online' or 'rounds', got ${String(p.schedule)}.`);
  if (typeof p.early_stop !== 'boolean') throw new InvalidArgumentError(`early_stop must be true or false, got ${String(p.early_stop)}.`);
  if (p.warmup_traces !== null) int('warmup_traces', p.warmup_traces, 1, p.initial_traces);
  num('keep_percent', p.keep_percent, (x) => x > 0 && x <= 100, 'in (0, 100]');
  int('group_window', p.group_window, 1);
  return p;
}
