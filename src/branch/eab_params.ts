// Entropy-adaptive branching parameters, with the seed document's names (../shared/seeds/entropy-adaptive-branching.md),
// their defaults ("balanced" from its hyperparameter guide) and validation at the edge.
import { InvalidArgumentError } from '../errors.js';

export type PrunePolicy = 'keep_most_probable' | 'none';

export interface EabParams {
  /** Tokens to generate per path at most. */
  max_new_tokens: number;
  /**
   * Branch where the normalised entropy H / ln V of the sampling distribution (the model's, after temperature and
   * top-p: what the siblings are drawn from) exceeds this (0..1). At temperature 0 that distribution is a point mass
   * (H = 0): EAB never branches. At temperature 1, top-p 1 it is the model's own distribution.
   */
  entropy_threshold: number;
  /** Children per branch point (including the path that continues), drawn without replacement. */
  branch_factor: number;
  /** Most paths alive at once. */
  max_paths: number;
  temperature: number;
  top_p: number;
  seed: number;
  /** Prune a path whose probability (product of its token probabilities) falls below this. 0 never prunes. */
  min_path_prob: number;
  /**
   * When max_paths is reached: 'keep_most_probable' lets a branch point replace the least probable live path if the
   * new children are more probable; 'none' simply stops branching.
   */
  prune_policy: PrunePolicy;
  /**
   * Exactly this many finished samples (exact-N mode); null: as many as the branching produces (the seed's way). At
   * temperature 0 there is one possible sample: the result holds N copies of it (same path and tokens, proposal
   * log-probability 0), computed once.
   */
  num_samples: number | null;
}

export const EAB_DEFAULTS: Readonly<EabParams> = Object.freeze({
  max_new_tokens: 64,
  entropy_threshold: 0.4,
  branch_factor: 3,
  max_paths: 20,
  temperature: 1,
  top_p: 1,
  seed: 0,
  min_path_prob: 0,
  prune_policy: 'keep_most_probable',
  num_samples: null,
});

function int(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${v}.`);
}

/** Fills defaults and validates; unknown keys are rejected (they are usually typos). */
export function eabParams(partial: Partial<EabParams> = {}, limits: { maxBranch: number; maxPaths: number }): EabParams {
  for (const k of Object.keys(partial))
    if (!(k in EAB_DEFAULTS))
      throw new InvalidArgumentError(`unknown EAB parameter '${k}'; expected one of ${Object.keys(EAB_DEFAULTS).join(', ')}.`);
  const p: EabParams = { ...EAB_DEFAULTS, ...partial } as EabParams;
  int('max_new_tokens', p.max_new_tokens, 1);
  if (!(p.entropy_threshold >= 0 && p.entropy_threshold <= 1))
    throw new InvalidArgumentError(`entropy_threshold must be in [0, 1] (normalised entropy), got ${p.entropy_threshold}.`);
  int('branch_factor', p.branch_factor, 2, limits.maxBranch);
  if (p.num_samples !== null) int('num_samples', p.num_samples, 1, limits.maxPaths);
  const maxPaths = p.num_samples ?? p.max_paths;
  int(p.num_samples !== null ? 'num_samples' : 'max_paths', maxPaths, 1, limits.maxPaths);
  if (!(p.min_path_prob >= 0 && p.min_path_prob < 1))
    throw new InvalidArgumentError(`min_path_prob must be in [0, 1), got ${p.min_path_prob}.`);
  if (p.prune_policy !== 'keep_most_probable' && p.prune_policy !== 'none')
    throw new InvalidArgumentError(`prune_policy must be 'keep_most_probable' or 'none', got ${p.prune_policy}.`);
  return p;
}
