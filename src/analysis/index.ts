// What to do with many samples once they exist: self-consistency voting, semantic entropy over clusters of
// equivalent answers, and weighted aggregation of a numeric metric. Pure data, no GPU (see DESIGN.md, "Boundaries").
//
// Every function takes its weights in log space (a sample's `log_probability` or `log_importance_weight`), because a
// 200-token completion easily has probability exp(-800), which is 0 as a double: weighting by `probability` would
// turn every such sample set into all-zero weights.

/**
 * One generated sample, as forklm's generators return it (and as the EAB seed describes it). Only `text` and
 * `log_probability` are read by default; `probability` is informational (it underflows to 0 for long texts).
 */
export interface WeightedSample {
  text: string;
  /** Sum of the log-probabilities of the generated tokens under the model (natural log, <= 0). */
  log_probability: number;
  /** exp(log_probability); may be 0 for long texts, which is why nothing here computes with it. */
  probability: number;
  /**
   * log(p(path) / q(path)) where q is the proposal the path was drawn from (forks drawn without replacement, or a
   * tempered distribution). Present when the generator recorded its proposal probabilities; required by
   * `weight: 'importance'`.
   */
  log_importance_weight?: number;
  /**
   * log of the sample's Horvitz-Thompson weight in a branched run: the product over its branch points of q / pi,
   * pi the token's inclusion probability given the draw's threshold (analysis/inclusion.ts). sum_i w_i f(sample_i)
   * estimates E[f] without bias when the run's rules kept the assumptions (analysis/branched.ts); -Infinity for a
   * sample that the run's design cannot count. Present on EAB samples; required by `weight: 'inclusion'` on arrays.
   */
  log_inclusion_weight?: number | null;
}

/**
 * How samples are weighted:
 * - `inclusion`: by the Horvitz-Thompson weights of the sampling design (estimators.ts): unbiased estimates of the
 *   probability of each answer under the sampling distribution, with standard errors. The default for branched
 *   results (runEab's result, a SampleSet) and for samples that carry `log_inclusion_weight`.
 * - `probability`: by the model's probability of the sample (exp(log_probability)), renormalised over the samples: the
 *   EAB seed's "probability-weighted aggregation"; a score that favours probable samples, not an estimate of any
 *   probability (it counts a sample drawn twice twice, and branched samples are drawn with unequal chances).
 * - `importance`: by exp(log_importance_weight), renormalised: p / q with q the probability of one path's draw order,
 *   which is not its inclusion probability in a branched set; biased for branched samples.
 * - `uniform`: every sample counts once (plain majority vote, discrete semantic entropy): unbiased shares for
 *   independent samples, biased for branched ones.
 */
export type WeightMode = 'inclusion' | 'probability' | 'importance' | 'uniform';

export { logInclusionProbability, inclusionProbability, thresholdOfFirst } from './inclusion.js';
export { iidSet, combineSets, estimateDesign, unitWeights, type Design, type DrawMember, type SampleSet, type SetWeighting } from './design.js';
export { branchedSet, branchedPrefixSet, type BranchedRun, type BranchedFork, type BranchedNode, type ForkRule, type PrefixUnit } from './branched.js';
export {
  expectation,
  classProbabilities,
  entropyOfClasses,
  toSampleSet,
  type SampleSource,
  type Estimate,
  type ClassEstimate,
  type ClassProbabilities,
  type EntropyEstimate,
} from './estimators.js';
export { logSumExp, sampleLogWeights, aggregate, type AggregateOptions, type AggregateResult } from './aggregate.js';
export { normalizeAnswer, extractFinalAnswer, finalAnswerKey } from './normalize.js';
export { vote, type VoteOptions, type VoteResult, type Tally } from './vote.js';
export {
  semanticEntropy,
  clusterSamples,
  bidirectional,
  type Equivalence,
  type SemanticEntropyOptions,
  type SemanticEntropyResult,
  type SemanticCluster,
} from './semantic_entropy.js';
