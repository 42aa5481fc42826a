// The branching tree of a run as plain data: folded from the event stream of any mode (EAB, peaks, one path), then
// laid out in rows and segments. No pixels here (tree_svg.ts draws); pure functions, tested in Node.
//
// Layout: one row per path (so leaves = paths, and finished leaves = samples), x = generated-token position. A path's
// row starts where it forked off its parent's row, joined to it by a connector at the fork position. Long straight
// runs between forks are one segment. Children sit below their parent, the latest fork nearest, so connectors never
// cross a row.

export type EndReason = 'eos' | 'length' | 'pruned' | 'stopped';

/** What the model said about a token (or a fork), as far as the mode reports it. */
export interface Measures {
  /** Normalised entropy H / ln V of the distribution the token was drawn from. */
  entropy?: number;
  /** log p(token) under the model. */
  logprob?: number;
  /** DeepConf confidence, -mean of the top-k log-probs (higher: surer). */
  confidence?: number;
}

/**
 * The events the tree understands: EAB's events as they are (EabEvent is assignable), and the same shape from the other
 * modes. A child's first token may arrive before the fork event that names its parent (EAB's order).
 */
export type TreeEvent =
  | ({ type: 'token'; path: number; token: number; position: number } & Measures)
  | ({ type: 'fork'; parent: number; children: number[]; position: number } & Pick<Measures, 'entropy' | 'confidence'>)
  | { type: 'prune'; path: number }
  | { type: 'finish'; path: number; reason: EndReason };

export interface TreeToken extends Measures {
  id: number;
}

export interface TreePath {
  id: number;
  parent: number | null;
  /** Generated-token position where this path leaves its parent (0 for a root). */
  forkPos: number;
  /** Tokens this path generated itself, from forkPos on. */
  tokens: TreeToken[];
  /** What the fork that started this path reported; null for a root. */
  fork: Measures | null;
  end: EndReason | null;
}

export interface TreeState {
  paths: Map<number, TreePath>;
}

export function emptyTree(): TreeState {
  return { paths: new Map() };
}

function pathOf(state: TreeState, id: number, forkPos = 0): TreePath {
  let p = state.paths.get(id);
  if (!p) {
    p = { id, parent: null, forkPos, tokens: [], fork: null, end: null };
    state.paths.set(id, p);
  }
  return p;
}

/**
 * Folds one event into `state` (mutating it: the state is the accumulator of a fold over the stream). An unknown path
 * starts as a root at its first token's position; a fork event attaches it.
 */
export function applyEvent(state: TreeState, e: TreeEvent): void {
  switch (e.type) {
    case 'token': {
      const { entropy, logprob, confidence } = e;
      pathOf(state, e.path, e.position).tokens.push({ id: e.token, entropy, logprob, confidence });
      break;
    }
    case 'fork':
      pathOf(state, e.parent);
      for (const c of e.children) {
        const child = pathOf(state, c, e.position);
        child.parent = e.parent;
        child.forkPos = e.position;
        child.fork = { entropy: e.entropy, confidence: e.confidence };
      }
      break;
    case 'prune':
      pathOf(state, e.path).end = 'pruned';
      break;
    case 'finish':
      pathOf(state, e.path).end = e.reason;
      break;
  }
}

export function treeFromEvents(events: Iterable<TreeEvent>): TreeState {
  const state = emptyTree();
  for (const e of events) applyEvent(state, e);
  return state;
}

/** Every generated token of a path, the inherited prefix included. */
export function fullTokens(state: TreeState, id: number): TreeToken[] {
  const chain: TreePath[] = [];
  for (let p = state.paths.get(id); p; p = p.parent === null ? undefined : state.paths.get(p.parent)) chain.unshift(p);
  const out: TreeToken[] = [];
  for (const p of chain) {
    out.length = Math.min(out.length, p.forkPos);
    out.push(...p.tokens);
  }
  return out;
}

export interface Segment {
  path: number;
  row: number;
  /** Token positions [from, to) on this row. */
  from: number;
  to: number;
  tokens: TreeToken[];
}

export interface ForkNode {
  /** The row the children leave from, at position `at`. */
  row: number;
  at: number;
  /** What the fork reported (its first child's record). */
  fork: Measures | null;
  childRows: number[];
}

export interface TreeLayout {
  /** Path ids, top to bottom. */
  rows: number[];
  segments: Segment[];
  forks: ForkNode[];
  /** Rows whose path starts at the prompt (position 0 of no parent). */
  rootRows: number[];
  leaves: { row: number; path: number; at: number; end: EndReason | null }[];
  /** Largest end position over all rows. */
  depth: number;
}

/** Rows, edges and fork nodes of the tree; no pixels yet. */
export function layoutTree(state: TreeState): TreeLayout {
  const end = (p: TreePath) => p.forkPos + p.tokens.length;
  // A child whose fork position is not inside its parent's own run (a prefix branch at an earlier position) hangs off
  // the ancestor that owns that position; one that forks at position 0 of a root hangs off the prompt.
  const attach = (p: TreePath): TreePath | null => {
    let a = p.parent === null ? undefined : state.paths.get(p.parent);
    while (a && p.forkPos <= a.forkPos) a = a.parent === null ? undefined : state.paths.get(a.parent);
    return a ?? null;
  };
  const kids = new Map<number | null, TreePath[]>();
  for (const p of state.paths.values()) {
    const a = attach(p);
    const key = a ? a.id : null;
    if (!kids.has(key)) kids.set(key, []);
    kids.get(key)!.push(p);
  }
  // Latest fork nearest to the parent row, so each connector only passes rows that start to its right.
  for (const list of kids.values()) list.sort((x, y) => y.forkPos - x.forkPos || x.id - y.id);
  const rootPaths = (kids.get(null) ?? []).sort((x, y) => x.forkPos - y.forkPos || x.id - y.id);

  const rows: number[] = [];
  const rowOf = new Map<number, number>();
  const visit = (p: TreePath) => {
    rowOf.set(p.id, rows.length);
    rows.push(p.id);
    for (const c of kids.get(p.id) ?? []) visit(c);
  };
  for (const r of rootPaths) visit(r);

  const segments: Segment[] = [];
  const forks: ForkNode[] = [];
  const leaves: TreeLayout['leaves'] = [];
  let depth = 0;
  for (const id of rows) {
    const p = state.paths.get(id)!;
    const row = rowOf.get(id)!;
    const e = end(p);
    depth = Math.max(depth, e);
    const children = kids.get(id) ?? [];
    const cuts = [...new Set(children.map((c) => Math.min(c.forkPos, e)))].sort((a, b) => a - b);
    let from = p.forkPos;
    for (const at of [...cuts, e]) {
      if (at > from) segments.push({ path: id, row, from, to: at, tokens: p.tokens.slice(from - p.forkPos, at - p.forkPos) });
      from = Math.max(from, at);
    }
    for (const at of cuts) {
      const here = children.filter((c) => Math.min(c.forkPos, e) === at);
      forks.push({ row, at, fork: here[0].fork, childRows: here.map((c) => rowOf.get(c.id)!).sort((a, b) => a - b) });
    }
    leaves.push({ row, path: id, at: e, end: p.end });
  }
  return { rows, segments, forks, rootRows: rootPaths.map((p) => rowOf.get(p.id)!), leaves, depth };
}

