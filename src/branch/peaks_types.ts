// The public shapes of a confidence-peak run (forklm's `peaks` mode): the seed's trace records
// (../shared/seeds/prefix-branching.md: trace_id, parent_id, depth, branch_point, prefix_length, branch_history, text,
// token_ids, num_tokens, confs), the run's statistics and the events a stream yields.
import type { StepResult } from './engine_api.js';
import type { PeaksAccounting } from './peaks_accounting.js';
import type { PeaksParams } from './peaks_params.js';

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
  /**
   * Rows computed for work the schedule later discarded (0 unless the engine's room or page pool held some work
   * back): a speculative branch that lost the trace budget to an earlier peak, tokens drawn past an early stop decided
   * late. tokens_computed = the traces' tokens_computed summed + rows_discarded.
   */
  rows_discarded: number;
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
