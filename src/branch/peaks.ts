// Confidence-peak prefix branching (forklm's `peaks` mode): sample `initial_traces` traces from the prompt, find where
// each one was confidently on track (peaks of DeepConf's token confidence, smoothed over a window), and continue new
// traces from those points. A branch is a page-table fork of its finished parent at an earlier position:
//
//   engine.fork(parent, { keep: promptLength + branch_point, sibling })
//
// keeps the parent's first branch_point generated tokens (full pages shared, one tail page copied) and recomputes only
// the last kept token, whose logits draw the branch's first new token afresh. Branches run batched with every other
// live trace, may branch again (max_depth), share one trace budget (max_traces), and may be stopped early by
// DeepConf's online rule (early_stop).
//
// What differs from the seed (../shared/seeds/prefix-branching.md): no decode / re-tokenize of the prefix (token ids
// are kept exactly, the prompt stays in the prefix), one batched forward per step for all traces, and accounting from
// the engine's own row counter rather than estimates.
//
// Page lifetime: a finished trace that still has peaks waiting to be branched is engine.finish()ed (its pages stay);
// it is engine.free()d as soon as its last waiting peak has been branched or dropped, and everything is freed at the
// end, so the engine holds exactly the pages it held before the run.
import type { BranchEngine, SessionSource, StepResult } from './engine_api.js';
import { CancelledError, PagePoolExhaustedError } from '../errors.js';
import { findPeaks, lowestGroupConfidence, mean, SlidingMean, stoppingBar, tailConfidence, type Peak, type PeakOptions } from './confidence.js';
import { peaksParams, type PeaksParams } from './peaks_params.js';

import { peaksAccounting, type PeaksAccounting } from './peaks_accounting.js';

export { peaksAccounting, type PeaksAccounting };

export type PeaksStopReason = 'eos' | 'length' | 'low_confidence' | 'pool';

export interface BranchHistoryEntry {
  /** The branch point: index of the first token the branch drew itself. */
  step: number;
  /** Smoothed confidence of the peak the branch started from. */
  confidence: number;
  parent_trace: string;
}

/** One trace, with the seed's fields. */
export interface PeaksTrace {
  trace_id: string;
  parent_id: string | null;
  depth: number;
  /** Generated-token index where this trace left its parent (0 for roots). */
  branch_point: number;
  /** Generated tokens shared with the parent: branch_point for a prefix branch, 0 for roots and regenerated ones. */
  prefix_length: number;
  /** Every branching from the root to this trace, oldest first. */
  branch_history: BranchHistoryEntry[];
  /** Decoded token_ids (a final EOS left out); '' without a tokenizer. */
  text: string;
  /** The full generated sequence: the parent's first branch_point tokens, then the new ones. */
  token_ids: number[];
  num_tokens: number;
  /** Tokens this trace drew itself: num_tokens - prefix_length. */
  new_tokens: number;
  /** DeepConf token confidence of every token in token_ids. */
  confs: number[];
  stop_reason: PeaksStopReason;
  /** The run's seed. A trace's random stream follows from it and the trace's lineage (sample/rng.ts). */
  seed: number;
  /** The trace's place in that lineage: its root index (traces started from the prompt) or its index among the
   * branches of its parent's peak. */
  sibling: number;
  /** Engine path id (the row of this trace in step results). */
  path_id: number;
  /** Rows the engine computed for this trace: prompt (less prefix-cache hits) + num_tokens - 1 for a trace started
   * from the prompt, new_tokens for a prefix branch (one recomputed row, then one per new token but the last). */
  tokens_computed: number;
  children: string[];
  mean_confidence: number;
  lowest_group_confidence: number;
  tail_confidence: number;
  /** log p(token_ids | prompt) under the model at temperature 1, and its exp (0 for long texts). */
  log_probability: number;
  probability: number;
  /** log p - log q with q the per-token sampling distribution (peak selection itself is not part of q). */
  log_importance_weight: number;
  token_logprobs: number[];
}

export interface PeaksStats extends PeaksAccounting {
  /** 'prefix': true branching by page-table fork; 'regenerate': the seed's simulated branching (fresh traces). */
  branching: 'prefix' | 'regenerate';
  prompt_tokens: number;
  traces: number;
  initial_traces: number;
  branch_traces: number;
  max_depth_reached: number;
  /** Peaks found in finished traces that were eligible parents, and how many of them were branched. */
  peaks_found: number;
  peaks_branched: number;
  early_stopped: number;
  /** The early-stopping bar once set (null: early_stop off, or the warm-up never finished). */
  early_stop_bar: number | null;
  reused_prompt_tokens: number;
  page_copies: number;
  pages_peak: number;
  forks: number;
  steps: number;
  ms: number;
  /** Generated tokens (new_tokens of all traces) per second. */
  tokens_per_s: number;
}

export interface PeaksResult {
  traces: PeaksTrace[];
  stats: PeaksStats;
  params: PeaksParams;
}

export type PeaksEvent =
  | { type: 'token'; trace: string; token: number; position: number; confidence: number }
  | { type: 'branch'; parent: string; children: string[]; branch_point: number; confidence: number; depth: number }
  | { type: 'finish'; trace: string; reason: PeaksStopReason; num_tokens: number }
  | { type: 'bar'; threshold: number };

export interface PeaksOptions extends Partial<PeaksParams> {
  signal?: AbortSignal;
  /** Simulated branching, the seed's old way: a branch is a fresh trace from the prompt; branch_point is metadata. */
  regenerate?: boolean;
  /** Ask every step for the (S, V) logits of its sampling rows (tests); passed to onStep. */
  logits?: boolean;
  onStep?: (step: { results: StepResult[]; logits?: Float32Array }) => void;
}

interface Trace {
  index: number;
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
  warmup: boolean;
  fromPrompt: boolean;
  reused: number;
  stop: PeaksStopReason | null;
  children: Trace[];
  /** Chosen peaks of this (finished) trace still waiting in the pool; its pages stay while > 0. */
  waiting: number;
  freed: boolean;
}

interface Candidate {
  parent: Trace;
  peak: Peak;
  /** Branches still to start from this peak. */
  remaining: number;
}

const name = (t: Trace): string => `trace_${t.index}`;

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Streams the events of a peaks run; the generator's return value is the result. */
export async function* streamPeaks(source: SessionSource, prompt: readonly number[], options: PeaksOptions = {}): AsyncGenerator<PeaksEvent, PeaksResult> {
  const engine = source.session();
  try {
    return yield* peaksIn(engine, prompt, options);
  } finally {
    engine.close();
  }
}

async function* peaksIn(engine: BranchEngine, prompt: readonly number[], options: PeaksOptions): AsyncGenerator<PeaksEvent, PeaksResult> {
  const { signal, regenerate = false, logits = false, onStep, ...partial } = options;
  const params = peaksParams(partial, { maxLivePaths: engine.info.maxLivePaths });
  const eos = new Set(engine.info.eosTokenIds);
  const sampling = { temperature: params.temperature, topP: params.top_p, seed: params.seed };
  const warmupCount = params.warmup_traces ?? params.initial_traces;

  const t0 = now();

  const traces: Trace[] = [];
  const byPath = new Map<number, Trace>();
  const live = new Set<Trace>();
  const pool: Candidate[] = [];
  let bar: number | null = null;
  let peaksFound = 0;
  let peaksBranched = 0;
  const pending: PeaksEvent[] = [];

  const newTrace = (init: Pick<Trace, 'pathId' | 'parent' | 'depth' | 'branchPoint' | 'prefixLength' | 'history' | 'sibling' | 'fromPrompt'>): Trace => {
    const p = init.parent;
    const keep = init.prefixLength;
    const t: Trace = {
      ...init,
      index: traces.length,
      tokens: p ? p.tokens.slice(0, keep) : [],
      logprobs: p ? p.logprobs.slice(0, keep) : [],
      proposal: p ? p.proposal.slice(0, keep) : [],
      confs: p ? p.confs.slice(0, keep) : [],
      window: new SlidingMean(params.group_window),
      warmup: init.parent === null && traces.length < warmupCount,
      reused: init.fromPrompt ? engine.path(init.pathId).reusedTokens : 0,
      stop: null,
      children: [],
      waiting: 0,
      freed: false,
    };
    // The group window slides over the whole sequence: a branch starts with its inherited last tokens in it.
    for (const c of t.confs.slice(-params.group_window)) t.window.push(c);
    traces.push(t);
    byPath.set(t.pathId, t);
    live.add(t);
    return t;
  };

  const release = (t: Trace): void => {
    if (t.freed) return;
    t.freed = true;
    engine.release(t.pathId);
  };

  /** Ends a live trace; a natural end may leave peaks to branch (pages kept), anything else frees it now. */
  const end = (t: Trace, reason: PeaksStopReason): void => {
    t.stop = reason;
    live.delete(t);
    pending.push({ type: 'finish', trace: name(t), reason, num_tokens: t.tokens.length });
    const natural = reason === 'eos' || reason === 'length';
    if (natural && t.depth < params.max_depth && traces.length < params.max_traces) {
      const peaks = findPeaks(t.confs, peakOptions(t, params));
      peaksFound += peaks.length;
      for (const peak of peaks.slice(0, params.peaks_per_trace)) pool.push({ parent: t, peak, remaining: params.branches_per_peak });
      t.waiting = Math.min(peaks.length, params.peaks_per_trace);
    }
    // Regenerated branches start from the prompt: only a prefix branch needs the parent's pages.
    if (t.waiting > 0 && !regenerate) engine.finish(t.pathId);
    else release(t);
    const warmups = traces.filter((x) => x.warmup);
    if (t.warmup && params.early_stop && bar === null && warmups.every((x) => x.stop !== null)) {
      const scores = warmups
        .filter((x) => x.stop === 'eos' || x.stop === 'length')
        .map((x) => lowestGroupConfidence(x.confs, params.group_window));
      if (scores.length > 0) {
        bar = stoppingBar(scores, params.keep_percent);
        pending.push({ type: 'bar', threshold: bar });
      }
    }
  };

  const drop = (c: Candidate): void => {
    c.remaining = 0;
    if (--c.parent.waiting === 0) release(c.parent);
  };

  const rank = (a: Candidate, b: Candidate): number =>
    (params.schedule === 'rounds' ? a.parent.depth - b.parent.depth : 0) ||
    b.peak.confidence - a.peak.confidence ||
    a.parent.index - b.parent.index ||
    a.peak.branchPoint - b.peak.branchPoint;

  /** Starts branches from the best waiting peaks while the budget and the engine's live-path room allow. */
  const spawn = (): void => {
    pool.sort(rank);
    while (pool.length > 0 && traces.length < params.max_traces) {
      const c = pool[0];
      if (params.schedule === 'rounds' && [...live].some((t) => t.depth <= c.parent.depth)) break;
      const room = engine.info.maxLivePaths - engine.liveCount();
      if (room <= 0) break;
      const n = Math.min(c.remaining, params.max_traces - traces.length, room);
      const children: Trace[] = [];
      let noPage = false;
      try {
        for (let i = 0; i < n; i++) children.push(branch(c, params.branches_per_peak - c.remaining + i));
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError)) throw err;
        noPage = true; // no page for the tail copy: this peak keeps the branches it has
      }
      if (children.length > 0) {
        if (c.remaining === params.branches_per_peak) peaksBranched++;
        c.remaining -= children.length;
        pending.push({
          type: 'branch',
          parent: name(c.parent),
          children: children.map(name),
          branch_point: c.peak.branchPoint,
          confidence: c.peak.confidence,
          depth: c.parent.depth + 1,
        });
      }
      if (noPage || c.remaining === 0) {
        pool.shift();
        drop(c);
      }
    }
    if (traces.length >= params.max_traces) while (pool.length > 0) drop(pool.shift()!);
  };

  /** Branch number `sibling` of candidate `c`. Streams follow the lineage, so a run replays on any engine. */
  const branch = (c: Candidate, sibling: number): Trace => {
    const p = c.parent;
    const b = c.peak.branchPoint;
    // A regenerated branch is a new root: its root index is its index in the run (unique, and the same on replay).
    const root = traces.length;
    const pathId = regenerate
      ? engine.createPath(prompt, sampling, { reserve: params.max_new_tokens, root })
      : engine.fork(p.pathId, { keep: prompt.length + b, sibling });
    const t = newTrace({
      pathId,
      parent: p,
      depth: p.depth + 1,
      branchPoint: b,
      prefixLength: regenerate ? 0 : b,
      history: [...p.history, { step: b, confidence: c.peak.confidence, parent_trace: name(p) }],
      sibling: regenerate ? root : sibling,
      fromPrompt: regenerate,
    });
    p.children.push(t);
    return t;
  };

  const accept = (r: StepResult): void => {
    const t = byPath.get(r.pathId);
    if (!t || !live.has(t)) return;
    const s = r.stats;
    t.tokens.push(r.token);
    t.logprobs.push(s.sampledLogprobs[0]);
    t.proposal.push(s.greedy ? 0 : s.sampledProposalLogprobs[0]);
    t.confs.push(s.confidence);
    t.window.push(s.confidence);
    pending.push({ type: 'token', trace: name(t), token: r.token, position: t.tokens.length - 1, confidence: s.confidence });
    if (eos.has(r.token)) end(t, 'eos');
    else if (t.tokens.length >= params.max_new_tokens) end(t, 'length');
    else if (bar !== null && !t.warmup && t.window.full && t.window.value < bar) end(t, 'low_confidence');
  };

  const cleanup = (): void => {
    for (const t of traces) if (!t.freed) release(t);
    live.clear();
    pool.length = 0;
  };

  try {
    for (let i = 0; i < params.initial_traces; i++) {
      const pathId = engine.createPath(prompt, sampling, { reserve: params.max_new_tokens, root: i });
      newTrace({ pathId, parent: null, depth: 0, branchPoint: 0, prefixLength: 0, history: [], sibling: i, fromPrompt: true });
    }
    for (;;) {
      if (signal?.aborted) throw new CancelledError();
      spawn();
      yield* pending.splice(0);
      if (live.size === 0) {
        if (pool.length === 0) break;
        // Waiting peaks but nothing live and nothing started (no room or budget): they can never start.
        while (pool.length > 0) drop(pool.shift()!);
        break;
      }
      let step;
      try {
        step = await engine.step({ logits });
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError)) throw err;
        // No room for this step (nothing changed): pages held for waiting peaks go first, then the least confident
        // live trace.
        if (pool.length > 0) while (pool.length > 0) drop(pool.shift()!);
        else if (live.size > 1) end([...live].sort((a, b) => a.window.value - b.window.value || b.index - a.index)[0], 'pool');
        else throw err;
        yield* pending.splice(0);
        continue;
      }
      if (!step) break;
      onStep?.(step);
      for (const r of step.results) accept(r);
      yield* pending.splice(0);
    }
  } finally {
    // Every exit: the end, an error, a cancel, a consumer that stops iterating early.
    cleanup();
  }

  const ms = now() - t0;
  const out = traces.map((t) => toRecord(t));
  const counters = engine.counters();
  const computed = counters.rows;
  const acct = peaksAccounting(out, prompt.length, computed);
  const stats: PeaksStats = {
    branching: regenerate ? 'regenerate' : 'prefix',
    prompt_tokens: prompt.length,
    traces: out.length,
    initial_traces: out.filter((t) => t.depth === 0).length,
    branch_traces: out.filter((t) => t.depth > 0).length,
    max_depth_reached: Math.max(0, ...out.map((t) => t.depth)),
    peaks_found: peaksFound,
    peaks_branched: peaksBranched,
    early_stopped: out.filter((t) => t.stop_reason === 'low_confidence').length,
    early_stop_bar: bar,
    reused_prompt_tokens: traces.reduce((a, t) => a + t.reused, 0),
    ...acct,
    page_copies: counters.pageCopies,
    pages_peak: counters.pagesPeak,
    forks: counters.forks,
    steps: counters.steps,
    ms,
    tokens_per_s: ms > 0 ? (acct.new_tokens / ms) * 1000 : 0,
  };
  return { traces: out, stats, params };

  function toRecord(t: Trace): PeaksTrace {
    const n = t.tokens.length;
    const textTokens = n > 0 && eos.has(t.tokens[n - 1]) ? t.tokens.slice(0, -1) : t.tokens;
    const logp = t.logprobs.reduce((a, x) => a + x, 0);
    const logq = t.proposal.reduce((a, x) => a + x, 0);
    const newTokens = n - t.prefixLength;
    return {
      trace_id: name(t),
      parent_id: t.parent ? name(t.parent) : null,
      depth: t.depth,
      branch_point: t.branchPoint,
      prefix_length: t.prefixLength,
      branch_history: t.history.map((h) => ({ ...h })),
      text: engine.tokenizer ? engine.tokenizer.decode(textTokens) : '',
      token_ids: [...t.tokens],
      num_tokens: n,
      new_tokens: newTokens,
      confs: [...t.confs],
      stop_reason: t.stop ?? 'length',
      seed: params.seed,
      sibling: t.sibling,
      path_id: t.pathId,
      tokens_computed: t.fromPrompt ? prompt.length - t.reused + n - 1 : newTokens,
      children: t.children.map(name),
      mean_confidence: mean(t.confs),
      lowest_group_confidence: lowestGroupConfidence(t.confs, params.group_window),
      tail_confidence: tailConfidence(t.confs, params.group_window),
      log_probability: logp,
      probability: Math.exp(logp),
      log_importance_weight: logp - logq,
      token_logprobs: [...t.logprobs],
    };
  }
}

/** The peak-finding window and eligible region of a finished trace under `params`. */
export function peakOptions(t: { tokens: readonly number[]; branchPoint: number; prefixLength: number }, params: PeaksParams): PeakOptions {
  const n = t.tokens.length;
  return {
    window: params.peak_window,
    threshold: params.confidence_threshold,
    minDistance: params.min_peak_distance,
    minBranchPoint: Math.max(1, Math.ceil(params.min_branch_fraction * n), t.prefixLength > 0 ? t.branchPoint + 1 : 0),
    maxBranchPoint: Math.min(n - 1, Math.floor(params.max_branch_fraction * n), params.max_new_tokens - 1),
  };
}

/** Runs a peaks run to the end; `onEvent` sees every event as it happens. */
export async function runPeaks(
  engine: SessionSource,
  prompt: readonly number[],
  options: PeaksOptions = {},
  onEvent?: (e: PeaksEvent) => void,
): Promise<PeaksResult> {
  const gen = streamPeaks(engine, prompt, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    onEvent?.(r.value);
  }
}
