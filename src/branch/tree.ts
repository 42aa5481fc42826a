// The path tree of a branching run and each path's token accounting: which tokens a path generated, their
// log-probabilities under the model and under the proposal (the sampling distribution, without replacement at branch
// points), where it branched, and how it ended. Pure data, shared by EAB and confidence-peak branching.

export type FinishReason = 'eos' | 'length' | 'pruned' | 'stopped';

export interface BranchPoint {
  /** Index in the generated tokens (0 = the first generated token) of the token where siblings differ. */
  position: number;
  /** Normalised entropy H / ln V of the distribution the siblings were drawn from. */
  entropy: number;
  /** Siblings drawn at this point, this path included. */
  siblings: number;
}

export interface TreeNode {
  id: number;
  parent: number | null;
  /** Generated-token index where this node leaves its parent (0 for the root). */
  forkPosition: number;
  /** All generated tokens of this path (inherited prefix included). */
  tokens: number[];
  /** log p(token) under the model at temperature 1, per generated token. */
  tokenLogprobs: number[];
  /** Normalised entropy of the distribution each generated token was drawn from. */
  entropies: number[];
  /** DeepConf token confidence (-mean top-k log-probs) at each generated token. */
  confidences: number[];
  /** Sum of tokenLogprobs. */
  logProb: number;
  /** Log-probability of this path under the sampler that produced it (sequential draws without replacement). */
  proposalLogProb: number;
  branchPoints: BranchPoint[];
  children: number[];
  finish: FinishReason | null;
}

export class PathTree {
  readonly nodes = new Map<number, TreeNode>();

  root(id: number): TreeNode {
    const n: TreeNode = {
      id,
      parent: null,
      forkPosition: 0,
      tokens: [],
      tokenLogprobs: [],
      entropies: [],
      confidences: [],
      logProb: 0,
      proposalLogProb: 0,
      branchPoints: [],
      children: [],
      finish: null,
    };
    this.nodes.set(id, n);
    return n;
  }

  /** A child sharing everything `parent` has generated so far. */
  fork(parentId: number, id: number): TreeNode {
    const p = this.get(parentId);
    const n: TreeNode = {
      ...p,
      id,
      parent: parentId,
      forkPosition: p.tokens.length,
      tokens: [...p.tokens],
      tokenLogprobs: [...p.tokenLogprobs],
      entropies: [...p.entropies],
      confidences: [...p.confidences],
      branchPoints: p.branchPoints.map((b) => ({ ...b })),
      children: [],
      finish: null,
    };
    p.children.push(id);
    this.nodes.set(id, n);
    return n;
  }

  /** Appends a generated token with its model and proposal log-probabilities. */
  push(id: number, token: number, logprob: number, proposalLogprob: number, entropy: number, confidence: number): void {
    const n = this.get(id);
    n.tokens.push(token);
    n.tokenLogprobs.push(logprob);
    n.entropies.push(entropy);
    n.confidences.push(confidence);
    n.logProb += logprob;
    n.proposalLogProb += proposalLogprob;
  }

  get(id: number): TreeNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`PathTree: no node ${id}`);
    return n;
  }

  leaves(): TreeNode[] {
    return [...this.nodes.values()].filter((n) => n.children.length === 0);
  }
}

/**
 * Log-probabilities, under the sampling distribution, of drawing the i-th of a without-replacement sequence given the
 * earlier ones (Plackett-Luce conditionals): q_i - log(1 - sum_{j<i} exp(q_j)). Sibling i of a branch point carries
 * the i-th value as its proposal term for that token.
 */
export function sequentialProposalLogprobs(q: readonly number[]): number[] {
  const out: number[] = [];
  let taken = 0;
  for (const qi of q) {
    const p = Math.exp(qi);
    // f32 rounding can make the remaining mass tiny or negative after nearly all mass was drawn: floor it at p.
    const rest = Math.max(1 - taken, p);
    out.push(qi - Math.log(rest));
    taken += p;
  }
  return out;
}
