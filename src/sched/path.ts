// A generation path as the scheduler sees it: the tokens it has, how many of them are in the KV cache, and what it
// feeds next. One array holds every token; `computed` splits it into the part whose K/V is in the cache (or is being
// computed by the plan in flight) and the part still to feed:
//
//   tokens = [ t0 ... t(computed-1) | pending ]
//   'prefill':  pending = prompt (or forced) tokens not yet computed, at least one until its last chunk is planned
//   'decode':   pending = [nextToken], exactly one: the token sampled last step (or chosen at a fork)
//   'finished': takes no rows; keeps its KV pages (so later forks can start from it) until freed
//
// A decode row feeds nextToken at position `computed`: it writes that token's K/V and its logits pick the token after.

export type PathState = 'prefill' | 'decode' | 'finished';

export interface Path {
  /** Scheduler path id (the engine's name for it; plan.pathIds holds these). */
  readonly id: number;
  /** The KvCache path holding its page table. */
  readonly kvPath: number;
  readonly state: PathState;
  /** Every known token: computed ones, then pending ones. */
  readonly tokens: readonly number[];
  /** Tokens whose K/V is in the cache or scheduled in the plan in flight. */
  readonly computed: number;
  /** Tokens given rather than sampled: the prompt (a fork child inherits the part it keeps, plus forced tokens). */
  readonly promptLength: number;
  /** Prompt tokens taken from the prefix cache instead of computed (0 for forks). */
  readonly reusedTokens: number;
  /** The path this one was forked from, and the KV length it was forked at; null for requests. */
  readonly parentId: number | null;
  readonly forkedAt: number | null;
  /** tokens.slice(computed): what is still to feed. */
  readonly pending: readonly number[];
  /** The token a decode row feeds next (undefined unless decoding). */
  readonly nextToken: number | undefined;
  /** Tokens sampled so far: tokens.length - promptLength. */
  readonly generated: number;
}

/** The scheduler's mutable record behind a Path; only scheduler.ts mutates it. */
export class PathRecord implements Path {
  readonly id: number;
  readonly kvPath: number;
  state: PathState;
  readonly tokens: number[];
  computed: number;
  readonly promptLength: number;
  readonly reusedTokens: number;
  readonly parentId: number | null;
  readonly forkedAt: number | null;

  constructor(init: {
    id: number;
    kvPath: number;
    state: PathState;
    tokens: number[];
    computed: number;
    promptLength: number;
    reusedTokens?: number;
    parentId?: number | null;
    forkedAt?: number | null;
  }) {
    this.id = init.id;
    this.kvPath = init.kvPath;
    this.state = init.state;
    this.tokens = init.tokens;
    this.computed = init.computed;
    this.promptLength = init.promptLength;
    this.reusedTokens = init.reusedTokens ?? 0;
    this.parentId = init.parentId ?? null;
    this.forkedAt = init.forkedAt ?? null;
  }

  get pending(): readonly number[] {
    return this.tokens.slice(this.computed);
  }
  get pendingCount(): number {
    return this.tokens.length - this.computed;
  }
  get nextToken(): number | undefined {
    return this.state === 'decode' ? this.tokens[this.computed] : undefined;
  }
  get generated(): number {
    return this.tokens.length - this.promptLength;
  }
}
