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
}

/**
 * How samples are weighted:
 * - `probability`: by the model's probability of the sample (exp(log_probability)), renormalised over the samples;
 * - `importance`: by exp(log_importance_weight), renormalised (a self-normalised importance-sampling estimate);
 * - `uniform`: every sample counts once (plain majority vote, discrete semantic entropy).
 */
export type WeightMode = 'probability' | 'importance' | 'uniform';

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
