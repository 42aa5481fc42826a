// A host-side stand-in for an EAB run on a small synthetic model: the same branching rules as src/branch/eab.ts
// (entropy threshold, branch_factor, max_paths budget spent most-uncertain-first, keep_most_probable replacement,
// end of text, max_new_tokens), Gumbel-top-k draws in float64, and the run recorded in the shape analysis/ reads
// (samples, tree, forks). Tests check the estimators on it against exact enumeration of the synthetic model.
import type { BranchedFork, BranchedNode, BranchedRun } from '../../src/analysis/branched.js';
import { PathRng, rootKey } from '../../src/sample/rng.js';

/** A next-token distribution for every prefix: fixed, known exactly, enumerable for small vocab and depth. */
export interface SyntheticModel {
  vocab: number;
  /** Token that ends a sequence, or -1 for none. */
  eos: number;
  /** q(. | prefix), (vocab) probabilities summing to 1. */
  q(prefix: readonly number[]): Float64Array;
}

/**
 * A model whose distribution at each prefix is a seeded random softmax of normal logits times a scale: random per
 * prefix in [0.3, 3.3] (some peaked, some flat), or `scale` everywhere.
 */
export function randomModel(vocab: number, seed: number, eos = -1, scale?: number): SyntheticModel {
  const cache = new Map<string, Float64Array>();
  return {
    vocab,
    eos,
    q(prefix) {
      const key = prefix.join(',');
      let p = cache.get(key);
      if (!p) {
        const rng = new PathRng(rootKey(seed, hash(key)));
        const sc = scale ?? 0.3 + 3 * rng.nextFloat();
        const logits = Array.from({ length: vocab }, () => sc * normal(rng));
        const m = Math.max(...logits);
        const e = logits.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        p = Float64Array.from(e, (x) => x / z);
        cache.set(key, p);
      }
      return p;
    },
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function normal(rng: PathRng): number {
  const u = rng.nextFloat() || 1e-300;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

export function gumbel(rng: PathRng): number {
  return -Math.log(-Math.log(rng.nextFloat() || 1e-300));
}

/** Every complete sequence with its probability (for exact expectations). */
export function enumerate(model: SyntheticModel, depth: number): { tokens: number[]; p: number }[] {
  const out: { tokens: number[]; p: number }[] = [];
  const go = (prefix: number[], p: number): void => {
    if (prefix.length === depth || (prefix.length > 0 && prefix[prefix.length - 1] === model.eos)) return void out.push({ tokens: prefix, p });
    const q = model.q(prefix);
    for (let t = 0; t < model.vocab; t++) if (q[t] > 0) go([...prefix, t], p * q[t]);
  };
  go([], 1);
  return out;
}

export interface SimParams {
  max_new_tokens: number;
  entropy_threshold: number;
  branch_factor: number;
  max_paths: number;
  prune_policy: 'keep_most_probable' | 'none';
  seed: number;
}

export interface SimSample {
  path: number;
  tokens: number[];
  log_probability: number;
}

interface Path {
  id: number;
  parent: number | null;
  forkPosition: number;
  tokens: number[];
  logProb: number;
  finish: string | null;
  rng: PathRng;
}

/** One EAB-like run on `model`: what runEab records, computed on the host. */
export function simulateEab(model: SyntheticModel, params: SimParams): BranchedRun<SimSample> {
  const paths = new Map<number, Path>();
  const forks: BranchedFork[] = [];
  const live = new Set<number>();
  const finished: number[] = [];
  let next = 0;
  const make = (parent: Path | null, tokens: number[], logProb: number): Path => {
    const id = next++;
    const p: Path = { id, parent: parent?.id ?? null, forkPosition: parent ? parent.tokens.length : 0, tokens, logProb, finish: null, rng: new PathRng(rootKey(params.seed, id)) };
    paths.set(id, p);
    live.add(id);
    return p;
  };
  make(null, [], 0);
  const end = (p: Path, reason: string): void => {
    p.finish = reason;
    live.delete(p.id);
    if (reason !== 'pruned') finished.push(p.id);
  };
  while (live.size > 0) {
    const want = params.max_paths - live.size;
    const canReplace = params.prune_policy === 'keep_most_probable';
    const draws = want > 0 || canReplace ? params.branch_factor : 1;
    // The step: every live path's distribution, entropy and Gumbel-top-(draws+1) keys.
    const results = [...live].map((id) => {
      const p = paths.get(id)!;
      const q = model.q(p.tokens);
      let h = 0;
      for (const x of q) if (x > 0) h -= x * Math.log(x);
      const keys = Array.from(q, (x, t) => ({ t, key: x > 0 ? Math.log(x) + gumbel(p.rng) : -Infinity })).filter((k) => k.key > -Infinity);
      keys.sort((a, b) => b.key - a.key);
      const n = Math.min(draws, keys.length);
      return { p, q, norm: h / Math.log(model.vocab), ids: keys.slice(0, n).map((k) => k.t), keys: keys.slice(0, n).map((k) => k.key), nextKey: n < keys.length ? keys[n].key : -Infinity };
    });
    results.sort((a, b) => b.norm - a.norm || a.p.id - b.p.id);
    let budget = params.max_paths - live.size;
    const advanced = new Set<number>();
    for (const r of results) {
      const node = r.p;
      const position = node.tokens.length;
      let k = 1;
      let rule: BranchedFork['rule'] = 'entropy';
      if (r.norm > params.entropy_threshold && r.ids.length > 1) {
        if (budget > 0) k = Math.min(r.ids.length, params.branch_factor, budget + 1);
        else if (canReplace) {
          const second = node.logProb + Math.log(r.q[r.ids[1]]);
          const worst = [...live].filter((id) => id !== node.id && advanced.has(id)).sort((a, b) => paths.get(a)!.logProb - paths.get(b)!.logProb)[0];
          if (worst !== undefined && paths.get(worst)!.logProb < second) {
            end(paths.get(worst)!, 'pruned');
            k = 2;
            rule = 'replace';
          }
        }
      }
      const members = [node];
      for (let i = 1; i < k; i++) members.push(make(node, [...node.tokens, r.ids[i]], node.logProb + Math.log(r.q[r.ids[i]])));
      node.tokens.push(r.ids[0]);
      node.logProb += Math.log(r.q[r.ids[0]]);
      if (k > 1) {
        forks.push({
          path: node.id,
          position,
          members: members.map((m) => m.id),
          tokens: r.ids.slice(0, k),
          log_q: r.ids.slice(0, k).map((t) => Math.log(r.q[t])),
          threshold: k < r.ids.length ? r.keys[k] : r.nextKey,
          rule,
        });
      }
      advanced.add(node.id);
      budget -= k - 1;
      for (const m of members) {
        if (m.tokens[m.tokens.length - 1] === model.eos) end(m, 'eos');
        else if (m.tokens.length >= params.max_new_tokens) end(m, 'length');
      }
    }
  }
  const tree: BranchedNode[] = [...paths.values()].map((p) => ({ path: p.id, parent: p.parent, fork_position: p.forkPosition, tokens: p.tokens.slice(p.forkPosition), finish: p.finish }));
  const samples = finished.map((id) => {
    const p = paths.get(id)!;
    return { path: id, tokens: [...p.tokens], log_probability: p.logProb };
  });
  return { samples, tree, forks };
}
