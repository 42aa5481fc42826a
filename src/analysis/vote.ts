// Self-consistency (Wang et al., 2022): the answer most samples agree on. For a branched result (runEab's) or a sample
// set, each answer's probability under the sampling distribution is estimated with the design's inclusion weights
// (estimators.ts), with a standard error; plain arrays keep the weightings the EAB seed describes (by probability,
// by importance weight, or equally), each marked with what it is.
import { InvalidArgumentError } from '../errors.js';
import { defaultWeighting, isDesigned, logNormalizer, logSumExp, sampleLogWeights } from './aggregate.js';
import type { BranchedRun } from './branched.js';
import type { SampleSet } from './design.js';
import { classProbabilities, toSampleSet } from './estimators.js';
import type { WeightMode, WeightedSample } from './index.js';
import { normalizeAnswer } from './normalize.js';

export interface VoteOptions<S = WeightedSample> {
  /**
   * The answer a sample votes for. Default: `normalizeAnswer(sample.text)`. Return null to abstain (e.g.
   * `s => finalAnswerKey(s.text)` for a completion with no answer): an abstaining sample takes no share.
   */
  key?: (sample: S, index: number) => string | null;
  /**
   * Default `inclusion` for a branched result, a sample set, or samples that all carry `log_inclusion_weight`;
   * `probability` for other arrays (see WeightMode for what each estimates).
   */
  weight?: WeightMode;
}

export interface Tally {
  answer: string;
  /** log of `weight` (exact even when `weight` underflows to 0). */
  logWeight: number;
  /**
   * The summed weight: for `inclusion`, the estimate of the answer's probability; total probability for
   * `probability`, total importance weight for `importance`, the count for `uniform`. Compare shares or logWeights.
   */
  weight: number;
  /** How many samples voted for the answer (with nonzero weight, for `inclusion` on a result). */
  count: number;
  /** The answer's normalised weight among the voting samples; the shares of all tallies sum to 1. */
  share: number;
  /** `inclusion` on a result or set: the answer's estimated probability (abstentions included in the total). */
  probability?: number;
  /** Its standard error (see `expectation` for what one branched run's standard error leaves out). */
  se?: number;
}

export interface VoteResult {
  /** The answer with the largest weight (ties: more samples, then the alphabetically first answer). */
  winner: string;
  /** Every answer, winner first, in the same order. */
  tallies: Tally[];
  /** Samples whose key was null. */
  abstained: number;
  /** The weighting used. */
  weighting: WeightMode;
  /** True when `probability` (inclusion) or `share` (uniform, independent samples) estimates without bias. */
  unbiased: boolean;
  /** What the weights estimate, and any rule of a branched run that broke an assumption (see analysis/branched.ts). */
  notes: readonly string[];
}

const LEGACY_NOTES: Record<Exclude<WeightMode, 'inclusion'>, string> = {
  probability:
    'weight: probability (each sample by its model probability, renormalised over the samples): a score that favours probable answers, not an estimate of their probability',
  importance:
    "weight: importance (p / q with q one path's draw-order probability, renormalised): biased for branched samples, whose inclusion probability q is not",
  uniform: 'weight: uniform (every sample counts once): the shares estimate the answers\' probabilities only if the samples are independent',
};

function textKey(sample: unknown, i: number): string {
  const text = (sample as { text?: unknown }).text;
  if (typeof text !== 'string') throw new InvalidArgumentError(`vote: unit ${i} has no text; pass key (e.g. u => String(u.tokens[0]) for a prefix set).`);
  return normalizeAnswer(text);
}

/**
 * The answer with the largest weight over `input`: an array of samples, a branched result (runEab's) or a sample set
 * (branchedPrefixSet, iidSet, combineSets). Throws InvalidArgumentError when no sample votes or all weights are zero.
 */
export function vote<S extends object>(input: readonly S[] | BranchedRun<S & { path: number }> | SampleSet<S>, options: VoteOptions<S> = {}): VoteResult {
  const key = options.key ?? textKey;
  const mode = options.weight ?? defaultWeighting(input);
  if (mode === 'inclusion' && isDesigned(input)) return designVote(toSampleSet(input as SampleSet<S>), key);
  const samples = (Array.isArray(input) ? input : toSampleSet(input as SampleSet<S>).units) as readonly S[];
  return weightedVote(samples, key, mode);
}

function designVote<S extends object>(set: SampleSet<S>, key: (sample: S, index: number) => string | null): VoteResult {
  const cp = classProbabilities(set, key);
  if (cp.classes.length === 0) throw new InvalidArgumentError(`vote: all ${set.units.length} samples abstained (key returned null).`);
  if (!(cp.classes[0].probability > 0)) throw new InvalidArgumentError('vote: every voting sample has weight zero in the design; nothing to weight by.');
  const tallies: Tally[] = cp.classes.map((c) => ({
    answer: c.key,
    logWeight: Math.log(c.probability),
    weight: c.probability,
    count: c.count,
    share: c.share,
    probability: c.probability,
    se: c.se,
  }));
  return { winner: tallies[0].answer, tallies, abstained: cp.abstained.count, weighting: 'inclusion', unbiased: set.unbiased, notes: set.notes };
}

function weightedVote<S extends object>(samples: readonly S[], key: (sample: S, index: number) => string | null, mode: WeightMode): VoteResult {
  const logW = sampleLogWeights(samples as unknown as readonly WeightedSample[], mode);
  const groups = new Map<string, number[]>();
  let abstained = 0;
  for (let i = 0; i < samples.length; i++) {
    const answer = key(samples[i], i);
    if (answer === null) {
      abstained++;
      continue;
    }
    if (typeof answer !== 'string') {
      throw new InvalidArgumentError(`vote: key returned ${typeof answer} for sample ${i}; it must return a string or null.`);
    }
    let g = groups.get(answer);
    if (!g) groups.set(answer, (g = []));
    g.push(logW[i]);
  }
  if (groups.size === 0) {
    throw new InvalidArgumentError(
      samples.length === 0 ? 'vote needs at least one sample; got none.' : `vote: all ${samples.length} samples abstained (key returned null).`,
    );
  }
  const uniform = mode === 'uniform';
  const voters = samples.length - abstained;
  const tallies: Tally[] = [];
  for (const [answer, lws] of groups) {
    const logWeight = uniform ? Math.log(lws.length) : logSumExp(lws);
    tallies.push({ answer, logWeight, weight: uniform ? lws.length : Math.exp(logWeight), count: lws.length, share: 0 });
  }
  const lse = logNormalizer(tallies.map((t) => t.logWeight), 'vote');
  // Counting is exact in plain arithmetic: 2 of 3 votes is a share of exactly 2/3, not exp(ln 2 - ln 3).
  for (const t of tallies) t.share = uniform ? t.count / voters : Math.exp(t.logWeight - lse);
  // Order by log weight, not share: shares of the losers can all underflow to 0 while their weights still differ.
  tallies.sort((a, b) => b.logWeight - a.logWeight || b.count - a.count || (a.answer < b.answer ? -1 : a.answer > b.answer ? 1 : 0));
  if (mode === 'inclusion') for (const t of tallies) t.probability = t.weight;
  const notes =
    mode === 'inclusion'
      ? ["weight: inclusion, from each sample's log_inclusion_weight; pass the whole branched result for standard errors and the checks of the branching rules"]
      : [LEGACY_NOTES[mode]];
  return { winner: tallies[0].answer, tallies, abstained, weighting: mode, unbiased: mode === 'uniform', notes };
}
