// Entropy-adaptive branching (EAB): encode the prompt once, decode every live path in one batched step, and fork a
// path into `branch_factor` children only where its next-token distribution is uncertain. Children are page-table
// forks (shared KV pages) and their first tokens come from one Gumbel-top-k draw, so siblings never duplicate.
//
// What differs from the seed document: no cache copies (forks share pages), one forward per step for all paths (not one
// per path), draws without replacement with their proposal probabilities recorded, exact accounting from the engine,
// and an exact-N mode (num_samples).
import type { BranchEngine, SessionSource, StepResult } from './engine_api.js';
import { CancelledError, PagePoolExhaustedError } from '../errors.js';
import { decodeContinuation } from '../tokenizer/stream_decoder.js';
import { eabParams, type EabParams } from './eab_params.js';
import { PathTree, sequentialProposalLogprobs, type BranchPoint, type FinishReason, type TreeNode } from './tree.js';
import { branchedSet, type BranchedFork, type ForkRule } from '../analysis/branched.js';
import { unitWeights } from '../analysis/design.js';

export type EabEvent =
  | { type: 'token'; path: number; token: number; position: number; entropy: number; logprob: number; confidence: number }
  | { type: 'fork'; parent: number; children: number[]; tokens: number[]; position: number; entropy: number }
  | { type: 'prune'; path: number; reason: 'min_path_prob' | 'max_paths' | 'pool' }
  | { type: 'finish'; path: number; reason: FinishReason };

export interface EabSample {
  path: number;
  text: string;
  tokens: number[];
  log_probability: number;
  probability: number;
  token_logprobs: number[];
  entropies: number[];
  branch_points: BranchPoint[];
  parent: number | null;
  /** The path ids from the root to this sample's path. */
  lineage: number[];
  /** log q(sample): the probability that the sampler produced this token sequence (draws without replacement from the
   * tempered top-p distribution; 0 at temperature 0, where the sampler is certain). */
  proposal_log_probability: number;
  /**
   * log p - log q with q the draw-order probability above. Not an inclusion probability: estimates weighted by it are
   * biased for branched samples (use log_inclusion_weight, or vote()/expectation() on the whole result).
   */
  log_importance_weight: number;
  /**
   * log of the sample's Horvitz-Thompson weight: the product over its branch points of q / pi, pi the drawn token's
   * inclusion probability given the draw's threshold (analysis/inclusion.ts); sum_i w_i f(sample_i) estimates what
   * independent samples estimate. -Infinity for a sample the design cannot count (see result.design.notes).
   */
  log_inclusion_weight: number;
  finish_reason: FinishReason;
}

export interface EabStats {
  prompt_tokens: number;
  /** Rows the engine computed during this run (prompt prefill + decode rows of every path). */
  token_steps: number;
  /** What N independent samples of the same lengths compute: sum over samples of prompt + generated tokens. */
  naive_token_steps: number;
  /** token_steps / naive_token_steps. */
  token_steps_ratio: number;
  forks: number;
  max_live_paths: number;
  pages_peak: number;
  /**
   * Pages N independent caches would need: sum over samples of ceil((prompt + generated) / pageSize); 0 on an engine
   * whose pages a client cannot see (remote, info.pageSize 0).
   */
  naive_pages: number;
  /** Prompt tokens served from the prefix cache instead of computed. */
  reused_prompt_tokens: number;
  samples: number;
  pruned: number;
  steps: number;
  ms: number;
  /** Generated tokens of all samples per second of generation (model load excluded). */
  tokens_per_s: number;
}

export interface EabTreeNode {
  path: number;
  parent: number | null;
  fork_position: number;
  /** Tokens this node generated itself (after leaving its parent). */
  tokens: number[];
  children: number[];
  finish: FinishReason | null;
}

/**
 * One branch point: the path that branched, where, the tokens drawn without replacement with their sampling
 * log-probabilities, the draw's threshold (null in JSON for -Infinity: every drawable token was drawn) and why it
 * branched (only 'entropy' branch points were sized before the draw; see analysis/branched.ts).
 */
export type EabFork = BranchedFork;

export interface EabResult {
  samples: EabSample[];
  tree: EabTreeNode[];
  /** Every branch point, in the order they happened: what the inclusion-weighted estimators read. */
  forks: EabFork[];
  /**
   * Whether inclusion-weighted estimates over the whole samples are unbiased for this run, and why not (pruning,
   * draw-dependent branch points, restarts; analysis/branched.ts), with the fallback taken.
   */
  design: { unbiased: boolean; notes: readonly string[] };
  stats: EabStats;
  params: EabParams;
}

export interface EabOptions extends Partial<EabParams> {
  signal?: AbortSignal;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Streams the events of an EAB run; the generator's return value is the result. */
export async function* streamEab(source: SessionSource, prompt: readonly number[], options: EabOptions = {}): AsyncGenerator<EabEvent, EabResult> {
  const engine = source.session();
  try {
    return yield* eabIn(engine, prompt, options);
  } finally {
    engine.close();
  }
}

async function* eabIn(engine: BranchEngine, prompt: readonly number[], options: EabOptions): AsyncGenerator<EabEvent, EabResult> {
  const { signal, ...partial } = options;
  const params = eabParams(partial, { maxBranch: engine.info.maxBranch, maxPaths: engine.info.maxLivePaths });
  const exactN = params.num_samples;
  const maxPaths = exactN ?? params.max_paths;
  const eos = new Set(engine.info.eosTokenIds);
  const logMinProb = params.min_path_prob > 0 ? Math.log(params.min_path_prob) : -Infinity;
  const sampling = { temperature: params.temperature, topP: params.top_p, seed: params.seed };
  // Temperature 0: the sampler is a point mass, so every root would give the same one sample (exact-N copies it).
  const greedy = params.temperature === 0;

  const t0 = now();

  const tree = new PathTree();
  const live = new Set<number>();
  const finished: number[] = [];
  let pruned = 0;
  let forks = 0;
  const forkRecords: EabFork[] = [];
  let maxLive = 0;
  // Random streams follow the lineage (sample/rng.ts): root r of the run, and a sibling's index at its fork. The same
  // seed replays the same run on any engine, whatever else runs on it before or beside it.
  let roots = 0;
  /** Paths whose result of the current step has been taken (see the replacement rule in branchOrContinue). */
  const advanced = new Set<number>();

  const startRoot = (): number => {
    const id = engine.createPath(prompt, sampling, { reserve: params.max_new_tokens, root: roots++ });
    tree.root(id);
    live.add(id);
    return id;
  };
  const end = (id: number, reason: FinishReason): EabEvent => {
    tree.get(id).finish = reason;
    live.delete(id);
    engine.free(id);
    if (reason === 'pruned') pruned++;
    else finished.push(id);
    return reason === 'pruned' ? { type: 'prune', path: id, reason: 'min_path_prob' } : { type: 'finish', path: id, reason };
  };
  // Runs on every exit: the end, an error, a cancel, and a consumer that stops iterating early (return()).
  const cleanup = () => {
    for (const id of live) engine.release(id);
    live.clear();
  };

  startRoot();
  try {
    for (;;) {
      if (signal?.aborted) throw new CancelledError();
      if (live.size === 0) {
        // Exact-N: every path ended before N samples existed; start again from the prompt, whose full pages are
        // still in the prefix cache.
        if (exactN !== null && finished.length < exactN && !greedy) startRoot();
        else break;
      }
      const want = (exactN ?? maxPaths) - live.size - (exactN !== null ? finished.length : 0);
      // Draw siblings whenever a branch could use them: while below the path budget, and at the budget when a branch
      // may replace the least probable path (keep_most_probable).
      const canReplace = exactN === null && params.prune_policy === 'keep_most_probable';
      for (const id of live) engine.setDraws(id, want > 0 || canReplace ? params.branch_factor : 1);
      maxLive = Math.max(maxLive, live.size);

      let step;
      try {
        step = await engine.step();
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError) || live.size < 2) throw err;
        // No room for this step: drop the least probable path (state was left unchanged) and retry.
        const worst = [...live].sort((a, b) => tree.get(a).logProb - tree.get(b).logProb || b - a)[0];
        tree.get(worst).finish = 'pruned';
        live.delete(worst);
        engine.free(worst);
        pruned++;
        yield { type: 'prune', path: worst, reason: 'pool' };
        continue;
      }
      if (!step) break;
      // Most uncertain first: the branching budget goes where the model hesitates most.
      const results = [...step.results]
        .filter((r) => live.has(r.pathId))
        .sort((a, b) => b.stats.samplingNormEntropy - a.stats.samplingNormEntropy || a.pathId - b.pathId);
      let budget = (exactN ?? maxPaths) - live.size - (exactN !== null ? finished.length : 0);
      advanced.clear();
      for (const r of results) {
        const events = branchOrContinue(r, budget);
        advanced.add(r.pathId);
        budget -= events.added;
        for (const e of events.out) yield e;
      }
      for (const id of [...live]) {
        const n = tree.get(id);
        if (n.finish === null && n.logProb < logMinProb && live.size > 1) yield end(id, 'pruned');
      }
    }
  } finally {
    cleanup();
  }

  function branchOrContinue(r: StepResult, budget: number): { out: EabEvent[]; added: number } {
    const out: EabEvent[] = [];
    const s = r.stats;
    const node = tree.get(r.pathId);
    const position = node.tokens.length;
    const ids = s.sampledIds;
    let k = 1;
    // The entropy of the distribution the siblings are drawn from (tempered, top-p): 0 at temperature 0, where ids has
    // one token. f32 rounding can put a flat distribution a hair above 1: clamp so threshold 1 never branches.
    const entropy = s.samplingNormEntropy;
    const byEntropy = Math.min(1, entropy) > params.entropy_threshold;
    const mayBranch = byEntropy || (exactN !== null && eos.has(ids[0]) && budget > 0);
    // Why this point branches: only the entropy rule (with the budget) fixes the number of draws before seeing them.
    let rule: ForkRule = byEntropy ? 'entropy' : 'exact_n_eos';
    if (mayBranch && ids.length > 1) {
      if (budget > 0) k = Math.min(ids.length, params.branch_factor, budget + 1);
      else if (params.prune_policy === 'keep_most_probable' && exactN === null) {
        // max_paths reached: a sibling may replace the least probable live path if it is more probable.
        const second = node.logProb + s.sampledLogprobs[1];
        // Only among paths already advanced this step: their newest token is still unfed, so every pruned path ends
        // the same way (its last token never computed) and the accounting stays exact.
        const worst = [...live]
          .filter((id) => id !== r.pathId && advanced.has(id))
          .sort((a, b) => tree.get(a).logProb - tree.get(b).logProb)[0];
        if (worst !== undefined && tree.get(worst).logProb < second) {
          tree.get(worst).finish = 'pruned';
          live.delete(worst);
          engine.free(worst);
          pruned++;
          out.push({ type: 'prune', path: worst, reason: 'max_paths' });
          k = 2;
          rule = 'replace';
        }
      }
    }
    const members = [r.pathId];
    for (let i = 1; i < k; i++) {
      let child: number;
      try {
        child = engine.fork(r.pathId, { nextToken: ids[i], sibling: i });
      } catch (err) {
        // No page left for this child's tail: branch with the siblings made so far (the pool state is unchanged).
        if (err instanceof PagePoolExhaustedError) break;
        throw err;
      }
      tree.fork(r.pathId, child);
      live.add(child);
      members.push(child);
      forks++;
    }
    k = members.length;
    const q = sequentialProposalLogprobs(s.sampledProposalLogprobs.slice(0, k));
    members.forEach((id, i) => {
      if (k > 1) tree.get(id).branchPoints.push({ position, entropy, siblings: k });
      tree.push(id, ids[i], s.sampledLogprobs[i], q[i], entropy, s.confidence);
      out.push({ type: 'token', path: id, token: ids[i], position, entropy, logprob: s.sampledLogprobs[i], confidence: s.confidence });
    });
    if (k > 1) {
      out.push({ type: 'fork', parent: r.pathId, children: members.slice(1), tokens: ids.slice(0, k), position, entropy });
      // The first k of the draw are a Gumbel-top-k draw whose threshold is the (k+1)-th key (record.sampledKeys[k]), or
      // the record's threshold when all of them were kept. NaN (a remote engine): no keys; estimators fall back.
      const threshold = k < ids.length ? s.sampledKeys[k] : s.threshold;
      forkRecords.push({
        path: r.pathId,
        position,
        members: [...members],
        tokens: ids.slice(0, k),
        log_q: s.sampledProposalLogprobs.slice(0, k),
        threshold: Number.isNaN(threshold) ? null : threshold,
        keyed: !Number.isNaN(threshold),
        rule,
      });
    }
    for (const id of members) {
      const n = tree.get(id);
      const token = n.tokens[n.tokens.length - 1];
      if (eos.has(token)) out.push(end(id, 'eos'));
      else if (n.tokens.length >= params.max_new_tokens) out.push(end(id, 'length'));
    }
    return { out, added: k - 1 };
  }

  const ms = now() - t0;
  const counters = engine.counters();
  const pageSize = engine.info.pageSize;
  let samples = finished.map((id) => toSample(tree.get(id)));
  if (greedy && exactN !== null && samples.length === 1) samples = Array.from({ length: exactN }, () => structuredClone(samples[0]));
  const naive = samples.reduce((a, s) => a + prompt.length + s.tokens.length, 0);
  const generated = samples.reduce((a, s) => a + s.tokens.length, 0);
  const tokenSteps = counters.rows;
  const stats: EabStats = {
    prompt_tokens: prompt.length,
    token_steps: tokenSteps,
    naive_token_steps: naive,
    token_steps_ratio: naive > 0 ? tokenSteps / naive : 0,
    forks,
    max_live_paths: maxLive,
    pages_peak: counters.pagesPeak,
    naive_pages: pageSize > 0 ? samples.reduce((a, s) => a + Math.ceil((prompt.length + s.tokens.length) / pageSize), 0) : 0,
    reused_prompt_tokens: counters.reusedPromptTokens,
    samples: samples.length,
    pruned,
    steps: counters.steps,
    ms,
    tokens_per_s: ms > 0 ? (generated / ms) * 1000 : 0,
  };
  const treeOut: EabTreeNode[] = [...tree.nodes.values()].map((n) => ({
    path: n.id,
    parent: n.parent,
    fork_position: n.forkPosition,
    tokens: n.tokens.slice(n.forkPosition),
    children: [...n.children],
    finish: n.finish,
  }));
  // The inclusion weights of the samples, from the run's design (the same computation vote() and expectation() do).
  const set = branchedSet({ samples, tree: treeOut, forks: forkRecords, params });
  const w = unitWeights(set.design, samples.length);
  samples.forEach((s, i) => (s.log_inclusion_weight = Math.log(w[i])));
  return { samples, tree: treeOut, forks: forkRecords, design: { unbiased: set.unbiased, notes: set.notes }, stats, params };

  function toSample(n: TreeNode): EabSample {
    const lineage: number[] = [];
    for (let c: TreeNode | null = n; c; c = c.parent === null ? null : tree.get(c.parent)) lineage.unshift(c.id);
    const textTokens = n.finish === 'eos' ? n.tokens.slice(0, -1) : n.tokens;
    return {
      path: n.id,
      text: engine.tokenizer ? decodeContinuation(engine.tokenizer, prompt, textTokens) : '',
      tokens: [...n.tokens],
      log_probability: n.logProb,
      probability: Math.exp(n.logProb),
      token_logprobs: [...n.tokenLogprobs],
      entropies: [...n.entropies],
      branch_points: n.branchPoints.map((b) => ({ ...b })),
      parent: n.parent,
      lineage,
      proposal_log_probability: n.proposalLogProb,
      log_importance_weight: n.logProb - n.proposalLogProb,
      log_inclusion_weight: 0, // set from the run's design once it is complete
      finish_reason: n.finish ?? 'stopped',
    };
  }
}

/** Runs EAB to the end; `onEvent` sees every event as it happens. */
export async function runEab(
  engine: SessionSource,
  prompt: readonly number[],
  options: EabOptions = {},
  onEvent?: (e: EabEvent) => void,
): Promise<EabResult> {
  const gen = streamEab(engine, prompt, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    onEvent?.(r.value);
  }
}
