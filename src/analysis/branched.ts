// The sampling design of a branched run (EAB): which draws were without replacement, with which inclusion
// probabilities, and which of the branching rules' decisions break the estimators' assumptions.
//
// What the estimators assume (design.ts): at every branch point the NUMBER of tokens drawn was fixed before the draw
// (it may depend on everything that happened earlier, in this path or any other: the entropy of the distribution,
// the remaining path budget, free pages), the draw is Gumbel-top-k with fresh noise, and every path that was drawn is
// followed to its end. EAB's rules against that:
// - entropy threshold, branch_factor, max_paths budget (prune_policy 'none'), pages running out while forking:
//   decided before the draw. Valid.
// - exact-N's extra branch when the first drawn token ends the text: decided after seeing the draw. Fallback: that
//   branch point counts as a single draw (its first token is a plain draw from q); the other siblings' paths get
//   weight 0. Valid.
// - keep_most_probable at max_paths: a sibling is added only if it is more probable than the least probable live
//   path (decided after the draw; same fallback), and that path is pruned. Pruning, also by min_path_prob or for
//   lack of pages, removes part of the sample because of what it is: no reweighting repairs that. Functions of the
//   first L generated tokens stay unbiased when no path was pruned before it had L tokens (a prefix set with
//   horizon <= L); whole-sample estimates are marked biased.
// - exact-N restarts from the prompt when every path ended early: how many restarts happen depends on how the earlier
//   ones ended, so only the first root's tree is used (the others get weight 0). Valid.
import { InvalidArgumentError } from '../errors.js';
import type { Design, DrawMember, SampleSet } from './design.js';
import { logInclusionProbability } from './inclusion.js';

/** Why a branch point drew more than one token. Only `entropy` was decided before the draw. */
export type ForkRule = 'entropy' | 'exact_n_eos' | 'replace';

/** One branch point of a run, as EAB records it (EabResult.forks). */
export interface BranchedFork {
  /** The path that branched; it continues with the first drawn token. */
  path: number;
  /** Generated-token index of the drawn tokens. */
  position: number;
  /** Path ids in draw order; members[0] === path. */
  members: readonly number[];
  /** The drawn tokens, in draw order (distinct). */
  tokens: readonly number[];
  /** log q of each drawn token under the distribution it was drawn from (after temperature and top-p). */
  log_q: readonly number[];
  /**
   * The (k+1)-th largest perturbed key, in log-q units; -Infinity when every drawable token was drawn (null, as JSON
   * writes -Infinity, means the same).
   */
  threshold: number | null;
  /** False when the draw has no joint Gumbel keys (a remote engine draws the first token itself): no threshold. */
  keyed?: boolean;
  rule: ForkRule;
}

export interface BranchedNode {
  path: number;
  parent: number | null;
  /** Generated-token index where this path leaves its parent (0 for a root). */
  fork_position: number;
  /** Tokens this path generated itself, from fork_position on. */
  tokens: readonly number[];
  finish: string | null;
}

/** What branchedSet reads of a run: EabResult has this shape. */
export interface BranchedRun<S extends { path: number }> {
  samples: readonly S[];
  tree: readonly BranchedNode[];
  forks: readonly BranchedFork[];
  params?: { temperature?: number; top_p?: number };
}

/** A prefix of a branched run's paths: the unit of a set with a horizon. */
export interface PrefixUnit<S> {
  /** The first `horizon` generated tokens (fewer when the path ended before). */
  tokens: number[];
  /** The finished sample that continues this prefix, or null when its path was pruned after the horizon. */
  sample: S | null;
}

const COMPLETE = new Set(['eos', 'length']);

/** The design of a branched run over its finished samples. See branchedPrefixSet for functions of a prefix. */
export function branchedSet<S extends { path: number }>(run: BranchedRun<S>): SampleSet<S> {
  const bySample = new Map<number, number>();
  run.samples.forEach((s, i) => bySample.set(s.path, i));
  const b = build(run, Infinity, (node) => {
    const i = bySample.get(node.path);
    return i === undefined ? null : i;
  });
  return { units: run.samples, design: b.design, weighting: 'inclusion', unbiased: b.lost.length === 0, notes: b.notes, horizon: null };
}

/**
 * The design of a branched run over the prefixes of `horizon` generated tokens of its paths, pruned ones included:
 * for a function of the first `horizon` tokens (the first word, whether a word occurs early), this stays unbiased
 * when pruning made whole-sample estimates biased, as long as no path was pruned before it had `horizon` tokens.
 */
export function branchedPrefixSet<S extends { path: number }>(run: BranchedRun<S>, horizon: number): SampleSet<PrefixUnit<S>> {
  if (!Number.isInteger(horizon) || horizon < 1) throw new InvalidArgumentError(`horizon must be an integer >= 1 (generated tokens), got ${horizon}.`);
  const bySample = new Map<number, S>();
  for (const s of run.samples) bySample.set(s.path, s);
  const units: PrefixUnit<S>[] = [];
  const b = build(run, horizon, (node, tokens) => {
    units.push({ tokens: tokens.slice(0, horizon), sample: bySample.get(node.path) ?? null });
    return units.length - 1;
  });
  return { units, design: b.design, weighting: 'inclusion', unbiased: b.lost.length === 0, notes: b.notes, horizon };
}

interface Built {
  design: Design;
  lost: { path: number; length: number; finish: string | null }[];
  notes: string[];
}

function build<S extends { path: number }>(
  run: BranchedRun<S>,
  horizon: number,
  unitOf: (node: BranchedNode, tokens: number[]) => number | null,
): Built {
  const nodes = new Map<number, BranchedNode>();
  for (const n of run.tree) nodes.set(n.path, n);
  const roots = run.tree.filter((n) => n.parent === null);
  if (roots.length === 0) throw new InvalidArgumentError('branchedSet: the run has no root path (an empty tree).');
  const forksOf = new Map<number, BranchedFork[]>();
  for (const f of run.forks) {
    if (f.members.length !== f.tokens.length || f.members.length !== f.log_q.length || f.members[0] !== f.path) {
      throw new InvalidArgumentError(`branchedSet: fork of path ${f.path} at ${f.position} has inconsistent members, tokens and log_q.`);
    }
    let list = forksOf.get(f.path);
    if (!list) forksOf.set(f.path, (list = []));
    list.push(f);
  }
  for (const list of forksOf.values()) list.sort((a, b) => a.position - b.position);
  const fullTokens = new Map<number, number[]>();
  const tokensOf = (n: BranchedNode): number[] => {
    let t = fullTokens.get(n.path);
    if (!t) {
      const parent = n.parent === null ? null : nodes.get(n.parent);
      t = [...(parent ? tokensOf(parent).slice(0, n.fork_position) : []), ...n.tokens];
      fullTokens.set(n.path, t);
    }
    return t;
  };

  const lost: Built['lost'] = [];
  const fallback: { rule: ForkRule | 'no_threshold'; dropped: number }[] = [];
  const walk = (n: BranchedNode, from: number): Design => {
    const f = (forksOf.get(n.path) ?? []).find((x) => x.position >= from && x.position < horizon);
    if (!f) {
      const tokens = tokensOf(n);
      const complete = COMPLETE.has(n.finish ?? '') || tokens.length >= horizon;
      const unit = complete ? unitOf(n, tokens) : null;
      if (unit === null) {
        lost.push({ path: n.path, length: tokens.length, finish: n.finish });
        return { kind: 'lost' };
      }
      return { kind: 'unit', index: unit };
    }
    const memberDesign = (i: number): Design => {
      if (i === 0) return walk(n, f.position + 1);
      const child = nodes.get(f.members[i]);
      if (!child) throw new InvalidArgumentError(`branchedSet: fork member ${f.members[i]} is not in the tree.`);
      return walk(child, f.position + 1);
    };
    const kappa = f.threshold === null ? -Infinity : f.threshold;
    const hasThreshold = f.keyed !== false && (kappa === -Infinity || Number.isFinite(kappa));
    if (f.rule !== 'entropy' || !hasThreshold) {
      fallback.push({ rule: hasThreshold ? f.rule : 'no_threshold', dropped: f.members.length - 1 });
      return memberDesign(0);
    }
    const members: DrawMember[] = f.members.map((_, i) => ({
      logQ: f.log_q[i],
      logPi: logInclusionProbability(f.log_q[i], kappa),
      child: memberDesign(i),
    }));
    return { kind: 'draw', members };
  };
  const design = walk(roots[0], 0);

  const notes: string[] = [];
  const t = run.params?.temperature;
  const p = run.params?.top_p;
  notes.push(
    'weights: inclusion probabilities of the Gumbel-top-k draws at branch points (priority sampling with the (k+1)-th key as threshold); ' +
      `estimates are of expectations under the sampling distribution${t !== undefined ? ` (temperature ${t}, top_p ${p ?? 1})` : ''}, ` +
      'what independent samples with the same parameters estimate',
  );
  if (roots.length > 1) {
    notes.push(
      `exact-N restarted from the prompt ${roots.length - 1} time(s): only the first root's tree is used (how many restarts happen ` +
        'depends on how the earlier ones ended, so averaging them is biased); the restarted samples get weight 0',
    );
  }
  for (const rule of ['exact_n_eos', 'replace', 'no_threshold'] as const) {
    const hits = fallback.filter((x) => x.rule === rule);
    if (hits.length === 0) continue;
    const why = {
      exact_n_eos: 'exact-N branched because the first drawn token ended the text (decided after the draw)',
      replace: 'keep_most_probable added a sibling only because it beat the least probable path (decided after the draw)',
      no_threshold: 'the run recorded no threshold for the draw',
    }[rule];
    const dropped = hits.reduce((a, x) => a + x.dropped, 0);
    notes.push(`${hits.length} branch point(s): ${why}; each counts as a single draw (its first token), ${dropped} sibling path(s) get weight 0`);
  }
  if (lost.length > 0) {
    const shortest = Math.min(...lost.map((l) => l.length));
    const how = [...new Set(lost.map((l) => l.finish ?? 'unfinished'))].join(', ');
    const fallbackText =
      shortest >= 1
        ? `functions of the first ${shortest} tokens (branchedPrefixSet(result, ${shortest}) or horizon: ${shortest}), or `
        : '';
    notes.push(
      `BIASED: ${lost.length} path(s) ended without finishing (${how}) before ${Number.isFinite(horizon) ? `the horizon of ${horizon} tokens` : 'their end'}, ` +
        `the shortest after ${shortest} generated tokens; their share of the probability is missing. Unbiased instead: ${fallbackText}` +
        "a run with prune_policy: 'none', min_path_prob: 0 and enough KV pages",
    );
  }
  return { design, lost, notes };
}
