// The state both peaks schedules share (peaks_rounds.ts, peaks_online.ts): the traces of one run, what a step's
// token does to a trace, page release, the events waiting to be yielded, and the trace records and statistics at
// the end. Schedules differ only in when a peak becomes a branch.
import type { BranchEngine, StepResult } from './engine_api.js';
import { lowestGroupConfidence, mean, SlidingMean, stoppingBar, tailConfidence } from './confidence.js';
import { peaksAccounting } from './peaks_accounting.js';
import type { PeaksParams } from './peaks_params.js';
import type { BranchHistoryEntry, PeaksEvent, PeaksResult, PeaksStats, PeaksStopReason, PeaksTrace } from './peaks_types.js';

/** A trace while the run goes on. */
export interface Trace {
  /** Creation index (trace_<index>); -1 while the trace is speculative (online schedule: not yet within budget). */
  index: number;
  /** Engine path id; -1 while a committed branch waits for room to be forked. */
  pathId: number;
  parent: Trace | null;
  depth: number;
  branchPoint: number;
  prefixLength: number;
  history: BranchHistoryEntry[];
  sibling: number;
  tokens: number[];
  logprobs: number[];
  proposal: number[];
  confs: number[];
  window: SlidingMean;
  /** Group confidence (mean over group_window) as of each token; NaN while the window is not yet full. */
  groups: number[];
  warmup: boolean;
  fromPrompt: boolean;
  reused: number;
  stop: PeaksStopReason | null;
  children: Trace[];
  /** Branches from this trace still to come (peaks or forks not yet made); its pages stay while > 0. */
  waiting: number;
  freed: boolean;
  /**
   * Online schedule: the tick at which the trace draws its first new token. Token k of a trace is drawn at tick
   * start + k - prefixLength in a schedule with unlimited room; ticks, not steps, order every decision.
   */
  start: number;
}

export type TraceInit = Pick<Trace, 'parent' | 'depth' | 'branchPoint' | 'prefixLength' | 'history' | 'sibling' | 'fromPrompt' | 'start'> & {
  pathId?: number;
};

export const traceName = (t: Trace): string => `trace_${t.index}`;

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

export class PeaksRun {
  readonly eos: Set<number>;
  readonly sampling: { temperature: number; topP: number; seed: number };
  readonly warmupCount: number;
  /** Committed traces in index order (the result's traces). */
  readonly traces: Trace[] = [];
  readonly byPath = new Map<number, Trace>();
  readonly pending: PeaksEvent[] = [];
  bar: number | null = null;
  peaksFound = 0;
  peaksBranched = 0;
  rowsDiscarded = 0;
  private readonly t0 = now();

  constructor(
    readonly engine: BranchEngine,
    readonly prompt: readonly number[],
    readonly params: PeaksParams,
    readonly regenerate: boolean,
  ) {
    this.eos = new Set(engine.info.eosTokenIds);
    this.sampling = { temperature: params.temperature, topP: params.top_p, seed: params.seed };
    this.warmupCount = params.warmup_traces ?? params.initial_traces;
  }

  /** A new trace; the parent's first prefixLength tokens (and their records) come with it. Not yet committed. */
  create(init: TraceInit): Trace {
    const p = init.parent;
    const keep = init.prefixLength;
    const t: Trace = {
      ...init,
      index: -1,
      pathId: init.pathId ?? -1,
      tokens: p ? p.tokens.slice(0, keep) : [],
      logprobs: p ? p.logprobs.slice(0, keep) : [],
      proposal: p ? p.proposal.slice(0, keep) : [],
      confs: p ? p.confs.slice(0, keep) : [],
      groups: p ? p.groups.slice(0, keep) : [],
      window: new SlidingMean(this.params.group_window),
      warmup: false,
      reused: 0,
      stop: null,
      children: [],
      waiting: 0,
      freed: false,
    };
    // The group window slides over the whole sequence: a branch starts with its inherited last tokens in it.
    for (const c of t.confs.slice(-this.params.group_window)) t.window.push(c);
    if (t.pathId >= 0) this.attach(t, t.pathId);
    return t;
  }

  /** Gives a trace its engine path. */
  attach(t: Trace, pathId: number): void {
    t.pathId = pathId;
    t.reused = t.fromPrompt ? this.engine.path(pathId).reusedTokens : 0;
    this.byPath.set(pathId, t);
  }

  /** Makes a trace part of the result: its index (and name) is the next one. */
  commit(t: Trace): void {
    t.index = this.traces.length;
    t.warmup = t.parent === null && t.index < this.warmupCount;
    this.traces.push(t);
    t.parent?.children.push(t);
  }

  /** Appends a step's token to its trace. */
  push(t: Trace, r: StepResult): void {
    const s = r.stats;
    t.tokens.push(r.token);
    t.logprobs.push(s.sampledLogprobs[0]);
    t.proposal.push(s.greedy ? 0 : s.sampledProposalLogprobs[0]);
    t.confs.push(s.confidence);
    t.window.push(s.confidence);
    t.groups.push(t.window.full ? t.window.value : NaN);
  }

  /** The natural end a trace reached with its last token, if any. */
  naturalEnd(t: Trace): PeaksStopReason | null {
    const n = t.tokens.length;
    if (n > 0 && this.eos.has(t.tokens[n - 1])) return 'eos';
    return n >= this.params.max_new_tokens ? 'length' : null;
  }

  /** Whether group confidence `k` (as of token k) is below the early-stopping bar for this trace. */
  belowBar(t: Trace, k: number): boolean {
    return this.bar !== null && !t.warmup && !Number.isNaN(t.groups[k]) && t.groups[k] < this.bar;
  }

  /** Sets the early-stopping bar once every warm-up trace has ended; true when it was set now. */
  maybeSetBar(): boolean {
    if (!this.params.early_stop || this.bar !== null) return false;
    const warmups = this.traces.filter((x) => x.warmup);
    if (warmups.length === 0 || warmups.some((x) => x.stop === null)) return false;
    const scores = warmups
      .filter((x) => x.stop === 'eos' || x.stop === 'length')
      .map((x) => lowestGroupConfidence(x.confs, this.params.group_window));
    if (scores.length === 0) return false;
    this.bar = stoppingBar(scores, this.params.keep_percent);
    this.pending.push({ type: 'bar', threshold: this.bar });
    return true;
  }

  release(t: Trace): void {
    if (t.freed || t.pathId < 0) return;
    t.freed = true;
    this.engine.release(t.pathId);
  }

  /** Frees every path still held (every exit: the end, an error, a cancel). */
  releaseAll(extra: Iterable<Trace> = []): void {
    for (const t of this.traces) this.release(t);
    for (const t of extra) this.release(t);
  }

  result(): PeaksResult {
    const ms = now() - this.t0;
    const out = this.traces.map((t) => this.record(t));
    const counters = this.engine.counters();
    const acct = peaksAccounting(out, this.prompt.length, counters.rows);
    const stats: PeaksStats = {
      branching: this.regenerate ? 'regenerate' : 'prefix',
      prompt_tokens: this.prompt.length,
      traces: out.length,
      initial_traces: out.filter((t) => t.depth === 0).length,
      branch_traces: out.filter((t) => t.depth > 0).length,
      max_depth_reached: Math.max(0, ...out.map((t) => t.depth)),
      peaks_found: this.peaksFound,
      peaks_branched: this.peaksBranched,
      early_stopped: out.filter((t) => t.stop_reason === 'low_confidence').length,
      early_stop_bar: this.bar,
      reused_prompt_tokens: this.traces.reduce((a, t) => a + t.reused, 0),
      ...acct,
      page_copies: counters.pageCopies,
      pages_peak: counters.pagesPeak,
      forks: counters.forks,
      rows_discarded: this.rowsDiscarded,
      steps: counters.steps,
      ms,
      tokens_per_s: ms > 0 ? (acct.new_tokens / ms) * 1000 : 0,
    };
    return { traces: out, stats, params: this.params };
  }

  private record(t: Trace): PeaksTrace {
    const n = t.tokens.length;
    const textTokens = n > 0 && this.eos.has(t.tokens[n - 1]) ? t.tokens.slice(0, -1) : t.tokens;
    const logp = t.logprobs.reduce((a, x) => a + x, 0);
    const logq = t.proposal.reduce((a, x) => a + x, 0);
    const newTokens = n - t.prefixLength;
    const w = this.params.group_window;
    return {
      trace_id: traceName(t),
      parent_id: t.parent ? traceName(t.parent) : null,
      depth: t.depth,
      branch_point: t.branchPoint,
      prefix_length: t.prefixLength,
      branch_history: t.history.map((h) => ({ ...h })),
      text: this.engine.tokenizer ? this.engine.tokenizer.decode(textTokens) : '',
      token_ids: [...t.tokens],
      num_tokens: n,
      new_tokens: newTokens,
      confs: [...t.confs],
      stop_reason: t.stop ?? 'length',
      seed: this.params.seed,
      sibling: t.sibling,
      path_id: t.pathId,
      tokens_computed: t.fromPrompt ? this.prompt.length - t.reused + n - 1 : newTokens,
      children: t.children.map(traceName),
      mean_confidence: mean(t.confs),
      lowest_group_confidence: lowestGroupConfidence(t.confs, w),
      tail_confidence: tailConfidence(t.confs, w),
      log_probability: logp,
      probability: Math.exp(logp),
      log_importance_weight: logp - logq,
      token_logprobs: [...t.logprobs],
    };
  }
}
