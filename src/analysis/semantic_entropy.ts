// Semantic entropy (Kuhn, Gal & Farquhar, 2023; Farquhar et al., 2024): the entropy of the model's distribution over
// MEANINGS rather than token sequences. Samples are clustered by an equivalence (bidirectional entailment in the
// paper, pluggable here), each cluster gets the summed weight of its members, and the entropy is taken over the
// renormalised cluster weights. High semantic entropy = the model gives answers that disagree in meaning.
// For a branched result or a sample set, the cluster probabilities are the design's inclusion-weighted estimates
// (estimators.ts: entropyOfClasses), with a standard error.
import { InvalidArgumentError } from '../errors.js';
import { defaultWeighting, logNormalizer, logSumExp, sampleLogWeights } from './aggregate.js';
import type { BranchedRun } from './branched.js';
import type { SampleSet } from './design.js';
import { entropyOfClasses, toSampleSet } from './estimators.js';
import type { WeightMode, WeightedSample } from './index.js';
import { normalizeAnswer } from './normalize.js';

/**
 * Whether two answers mean the same. It should be symmetric; the clustering calls it as
 * `equivalent(representative, candidate)`. An entailment model gives one direction: wrap it in `bidirectional`.
 */
export type Equivalence = (a: string, b: string) => boolean | Promise<boolean>;

export interface SemanticEntropyOptions<S = WeightedSample> {
  /** Default: equal after `normalizeAnswer` ("Paris." and " paris" are equivalent). */
  equivalent?: Equivalence;
  /**
   * Default `inclusion` for a branched result, a sample set or samples carrying `log_inclusion_weight` (cluster
   * probability = the design's unbiased estimate; for independent samples this is the count share, the paper's
   * discrete semantic entropy); `probability` for other arrays (cluster mass = summed sequence probability, the
   * paper's Rao-Blackwellised form, which is a different quantity from the entropy of the sampling distribution).
   * `uniform`: member counts. `importance`: log_importance_weight.
   */
  weight?: WeightMode;
  /** The text that is compared. Default `sample.text`; e.g. `s => extractFinalAnswer(s.text) ?? s.text`. */
  text?: (sample: S, index: number) => string;
}

export interface SemanticCluster<S = WeightedSample> {
  /** The samples in the cluster, in input order. */
  members: S[];
  /** Their indices in the input. */
  indices: number[];
  /** The compared text of the first member, which every later member was tested against. */
  representative: string;
  /**
   * log of the summed raw weight of the members (log probability mass for `probability`, log count for `uniform`,
   * log of the estimated cluster probability for `inclusion`).
   */
  logMass: number;
  /** The cluster's normalised weight; the shares of all clusters sum to 1. */
  share: number;
}

export interface SemanticEntropyResult<S = WeightedSample> {
  /** -sum_c share_c * ln(share_c), in nats; 0 when every sample means the same, ln(k) for k equal clusters. */
  entropy: number;
  /** Largest mass first (ties: the cluster that appeared first). */
  clusters: SemanticCluster<S>[];
  /** The weighting used. */
  weighting: WeightMode;
  /** `inclusion` on a result or set: delta-method standard error of `entropy`. */
  se?: number;
  /** What the weights estimate and which assumptions a branched run broke (plug-in entropy is never unbiased). */
  notes: readonly string[];
}

/** An equivalence that holds only if `entails` holds both ways, as the paper uses an NLI model. */
export function bidirectional(entails: Equivalence): Equivalence {
  return async (a, b) => (await entails(a, b)) && (await entails(b, a));
}

function defaultEquivalence(): Equivalence {
  const cache = new Map<string, string>();
  const norm = (t: string): string => {
    let n = cache.get(t);
    if (n === undefined) cache.set(t, (n = normalizeAnswer(t)));
    return n;
  };
  return (a, b) => norm(a) === norm(b);
}

/**
 * Greedy clustering as in Kuhn et al.'s `get_semantic_ids`: each sample, in input order, joins the first existing
 * cluster whose representative (first member) it is equivalent to, else starts a new one. Returns a cluster id per
 * sample (0, 1, ... in order of first appearance). With an equivalence that is not transitive the result can depend
 * on the order of the samples; with a true equivalence relation it does not.
 */
export async function clusterSamples<S>(
  samples: readonly S[],
  options: Pick<SemanticEntropyOptions<S>, 'equivalent' | 'text'> = {},
): Promise<number[]> {
  return (await greedyClusters(samples, options)).ids;
}

async function greedyClusters<S>(
  samples: readonly S[],
  options: Pick<SemanticEntropyOptions<S>, 'equivalent' | 'text'>,
): Promise<{ ids: number[]; representatives: string[] }> {
  const equivalent = options.equivalent ?? defaultEquivalence();
  const textOf = options.text ?? ((s: S) => (s as { text?: string }).text as string);
  const representatives: string[] = [];
  const ids: number[] = [];
  for (let i = 0; i < samples.length; i++) {
    const t = textOf(samples[i], i);
    if (typeof t !== 'string') throw new InvalidArgumentError(`semanticEntropy: the text of sample ${i} is ${typeof t}; it must be a string.`);
    let id = -1;
    for (let c = 0; c < representatives.length && id < 0; c++) {
      const same = await equivalent(representatives[c], t);
      if (typeof same !== 'boolean') {
        throw new InvalidArgumentError(`semanticEntropy: equivalent() returned ${typeof same}; it must return a boolean (threshold a score yourself).`);
      }
      if (same) id = c;
    }
    if (id < 0) {
      id = representatives.length;
      representatives.push(t);
    }
    ids.push(id);
  }
  return { ids, representatives };
}

/**
 * Semantic entropy of `input` (an array of samples, a branched result or a sample set) and the clusters it was
 * computed from.
 */
export async function semanticEntropy<S extends object>(
  input: readonly S[] | BranchedRun<S & { path: number }> | SampleSet<S>,
  options: SemanticEntropyOptions<S> = {},
): Promise<SemanticEntropyResult<S>> {
  const mode = options.weight ?? defaultWeighting(input);
  if (!Array.isArray(input) && mode === 'inclusion') return designEntropy(toSampleSet(input as SampleSet<S>), options);
  const samples = (Array.isArray(input) ? input : toSampleSet(input as SampleSet<S>).units) as readonly S[];
  if (samples.length === 0) throw new InvalidArgumentError('semanticEntropy needs at least one sample; got none.');
  // Weights first: a bad weight fails before any (possibly expensive) equivalence call.
  const logW = sampleLogWeights(samples as unknown as readonly WeightedSample[], mode);
  const { ids, representatives } = await greedyClusters(samples, options);
  const clusters: SemanticCluster<S>[] = [];
  const memberLogW: number[][] = [];
  for (let i = 0; i < samples.length; i++) {
    const id = ids[i];
    if (id === clusters.length) {
      clusters.push({ members: [], indices: [], representative: representatives[id], logMass: 0, share: 0 });
      memberLogW.push([]);
    }
    clusters[id].members.push(samples[i]);
    clusters[id].indices.push(i);
    memberLogW[id].push(logW[i]);
  }
  const uniform = mode === 'uniform';
  for (let c = 0; c < clusters.length; c++) {
    clusters[c].logMass = uniform ? Math.log(memberLogW[c].length) : logSumExp(memberLogW[c]);
  }
  const lse = logNormalizer(
    clusters.map((c) => c.logMass),
    'semanticEntropy',
  );
  // Shares and entropy from log shares: share_c * ln(share_c) stays exact when every mass is far below exp(-745).
  // Counts are exact in plain arithmetic (2 of 3 samples is exactly 2/3).
  const terms: number[] = [];
  for (const c of clusters) {
    const logShare = uniform ? Math.log(c.members.length / samples.length) : c.logMass - lse;
    c.share = uniform ? c.members.length / samples.length : Math.exp(logShare);
    if (c.share > 0) terms.push(-c.share * logShare);
  }
  // Summed in a fixed order so the entropy does not depend on the order of the samples.
  terms.sort((a, b) => a - b);
  let entropy = 0;
  for (const t of terms) entropy += t;
  clusters.sort((a, b) => b.logMass - a.logMass || a.indices[0] - b.indices[0]);
  const notes = [
    mode === 'inclusion'
      ? "weight: inclusion, from each sample's log_inclusion_weight; pass the whole branched result for a standard error and the checks of the branching rules"
      : mode === 'uniform'
        ? 'weight: uniform (discrete semantic entropy): estimates the entropy of the sampling distribution only for independent samples'
        : `weight: ${mode}: cluster masses from ${mode === 'probability' ? 'sequence probabilities' : 'importance weights'} renormalised over the samples, not estimates of the clusters' probabilities`,
  ];
  return { entropy: Math.max(0, entropy), clusters, weighting: mode, notes };
}

async function designEntropy<S extends object>(set: SampleSet<S>, options: SemanticEntropyOptions<S>): Promise<SemanticEntropyResult<S>> {
  const { ids, representatives } = await greedyClusters(set.units, options);
  const e = entropyOfClasses(set, (_, i) => String(ids[i]));
  const clusters: SemanticCluster<S>[] = e.classes.map((c) => {
    const id = Number(c.key);
    const indices = ids.flatMap((x, i) => (x === id ? [i] : []));
    return { members: indices.map((i) => set.units[i]), indices, representative: representatives[id], logMass: Math.log(c.probability), share: c.share };
  });
  clusters.sort((a, b) => b.logMass - a.logMass || a.indices[0] - b.indices[0]);
  return { entropy: e.entropy, se: e.se, clusters, weighting: 'inclusion', notes: e.notes };
}
