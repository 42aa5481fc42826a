// Self-consistency (Wang et al., 2022): the answer most samples agree on, each sample's vote weighted by its
// probability (the EAB seed's "most common answer weighted by probability"), by its importance weight, or equally.
import { InvalidArgumentError } from '../errors.js';
import { logNormalizer, logSumExp, sampleLogWeights } from './aggregate.js';
import type { WeightMode, WeightedSample } from './index.js';
import { normalizeAnswer } from './normalize.js';

export interface VoteOptions<S extends WeightedSample = WeightedSample> {
  /**
   * The answer a sample votes for. Default: `normalizeAnswer(sample.text)`. Return null to abstain (e.g.
   * `s => finalAnswerKey(s.text)` for a completion with no answer): an abstaining sample takes no share.
   */
  key?: (sample: S, index: number) => string | null;
  /** Default `probability`. */
  weight?: WeightMode;
}

export interface Tally {
  answer: string;
  /** log of the summed raw weight of the answer's samples (exact even when `weight` underflows to 0). */
  logWeight: number;
  /**
   * The summed raw weight: total probability for `probability`, total importance weight for `importance`, the
   * count for `uniform`. exp(logWeight), so it can be 0 for long texts; compare shares or logWeights instead.
   */
  weight: number;
  /** How many samples voted for the answer. */
  count: number;
  /** The answer's normalised weight among the voting samples; the shares of all tallies sum to 1. */
  share: number;
}

export interface VoteResult {
  /** The answer with the largest weight (ties: more samples, then the alphabetically first answer). */
  winner: string;
  /** Every answer, winner first, in the same order. */
  tallies: Tally[];
  /** Samples whose key was null. */
  abstained: number;
}

/** Most-weighted answer over `samples`. Throws InvalidArgumentError when no sample votes or all weights are zero. */
export function vote<S extends WeightedSample>(samples: readonly S[], options: VoteOptions<S> = {}): VoteResult {
  const key = options.key ?? ((s: S) => normalizeAnswer(s.text));
  const logW = sampleLogWeights(samples, options.weight ?? 'probability');
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
  const uniform = (options.weight ?? 'probability') === 'uniform';
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
  return { winner: tallies[0].answer, tallies, abstained };
}
