// The engine surface that branching controllers (EAB, confidence peaks), generate() and the OpenAI-style api/ are
// written against. Two implementations: the local GPU engine (engine.ts, one scoped session per caller, so concurrent
// callers share its forward passes) and the remote engine over an existing server (remote/: llama.cpp server, vLLM,
// SGLang). A controller never knows which it drives; its results have the same shape on both.
//
// This file holds types only: branch/ stays free of gpu/, kernels/ and model/ imports (DESIGN.md, boundaries).
import type { SamplingParams } from '../sample/params.js';
import type { TokenStatsRecord } from '../sample/stats_record.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** What a controller needs to know about the model and the engine's limits. */
export interface EngineInfo {
  vocabSize: number;
  /** The model's context in tokens (prompt + generated). */
  maxSeqLen: number;
  eosTokenIds: readonly number[];
  /** Most tokens drawn without replacement for one path in one step (the largest branch factor). */
  maxBranch: number;
  /** Most paths that may be live (not finished) at once in one session. */
  maxLivePaths: number;
  /** Length of the top-k list in every TokenStatsRecord. */
  topK: number;
  /** KV tokens per page (local engine); 0 where the engine has no pages a client can see (remote). */
  pageSize: number;
}

/** One path's token for one step: its token_stats record and the token appended to it. */
export interface StepResult {
  pathId: number;
  stats: TokenStatsRecord;
  /** The token appended to the path (stats.sampledIds[0]); the path decodes it next step. */
  token: number;
  /** Absolute position of `token` in the path. */
  position: number;
}

/** What a controller reads of a path. */
export interface PathView {
  readonly id: number;
  readonly state: 'prefill' | 'decode' | 'finished';
  /** Every known token: prompt (or inherited prefix), then sampled ones. */
  readonly tokens: readonly number[];
  /** Tokens given rather than sampled. */
  readonly promptLength: number;
  /** Prompt tokens served from a prefix cache instead of computed (0 for forks). */
  readonly reusedTokens: number;
}

/** Counters of one session since it was opened; exact (counted by the engine or reported by the server). */
export interface SessionCounters {
  /** Forward steps this session's paths took part in. */
  steps: number;
  /** Token positions computed for this session's paths (prompt rows + decode rows). */
  rows: number;
  /** Prompt tokens served from a prefix cache instead of computed. */
  reusedPromptTokens: number;
  forks: number;
  /** Page copies made for this session's forks (local engine; 0 remote). */
  pageCopies: number;
  /** Most KV pages in use by the engine at once while this session ran (local engine; 0 remote). */
  pagesPeak: number;
}

export interface CreatePathOptions {
  /** Tokens the path may still generate; prompt + reserve must fit the context (else ContextOverflowError). */
  reserve?: number;
  /**
   * Index of this root among the roots of one request (0 for the first). The path's random stream depends only on
   * (sampling.seed, root) and, for forks, on the lineage below it: never on engine-wide ids or batch composition.
   */
  root?: number;
}

export interface ForkOptions {
  /** The child keeps all of the parent's computed tokens and feeds `nextToken` next (an EAB sibling). */
  nextToken?: number;
  /** The child keeps the parent's first `keep` tokens and samples token `keep` afresh (a prefix branch). */
  keep?: number;
  /** Overrides of the parent's sampling parameters. */
  sampling?: Partial<SamplingParams>;
  /** Index of this child among the siblings forked from the same parent at the same position (stream lineage). */
  sibling?: number;
}

/** One caller's view of an engine: its own paths, its own steps and counters. */
export interface BranchEngine {
  readonly info: EngineInfo;
  readonly tokenizer: Tokenizer | null;
  createPath(prompt: readonly number[], sampling?: Partial<SamplingParams>, options?: CreatePathOptions): number;
  fork(id: number, options: ForkOptions): number;
  /** Asks for `n` tokens drawn without replacement for path `id` at its next sampling step (a branch). */
  setDraws(id: number, n: number): void;
  /**
   * Advances every live path of this session by one token. Concurrent sessions of one local engine share the same
   * forward pass. Returns one result per path that sampled, or null when the session has no live path.
   * `logits`: also the (S, V) logits of the sampling rows, in result order (local engine; tests and tools).
   */
  step(options?: { logits?: boolean }): Promise<{ results: StepResult[]; logits?: Float32Array } | null>;
  /** Stops a path; its prefix stays available to later forks until free(). */
  finish(id: number): void;
  /** Releases a path (and its pages). */
  free(id: number): void;
  /** free() for clean-up code: a path already gone is not an error. */
  release(id: number): void;
  path(id: number): PathView;
  /** Paths of this session that will take part in its next step. */
  liveCount(): number;
  counters(): SessionCounters;
  /** Frees every path of this session; the session may not be used afterwards. */
  close(): void;
}

/** Anything that can open sessions: the local Engine, a RemoteEngine. Controllers take this. */
export interface SessionSource {
  session(): BranchEngine;
}
