// The state a remote session keeps per path and per request, and the pure rules over it (remote/session.ts drives it).
import type { EngineInfo, StepResult } from '../branch/engine_api.js';
import type { SamplingParams } from '../sample/params.js';
import type { PathRng, StreamKey } from '../sample/rng.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { HttpOptions } from './http.js';
import type { Dialect, TokenEvent, UsageEvent } from './protocol.js';
import type { EntropyBounds } from './token_stats.js';

/** What the session needs of its engine (remote/engine.ts). */
export interface SessionConfig {
  baseUrl: string;
  dialect: Dialect;
  info: EngineInfo;
  tokenizer: Tokenizer | null;
  http: HttpOptions;
  /** Top log-probs asked per token (>= info.topK; more tightens the entropy bounds). */
  topLogprobs: number;
  /** Group roots with one prompt into one request (llama.cpp n_cmpl). */
  groupRoots: boolean;
  /** Most tokens one request generates ahead of what its path has used (Infinity: the path's whole budget). */
  lookahead: number;
  model?: string;
}

/** The server's counters and the client's view of them, for one session. */
export interface RemoteCounters {
  requests: number;
  retries: number;
  /** Prompt tokens the server computed, and served from its cache (its own counters). */
  promptComputed: number;
  promptCached: number;
  /** Prompt tokens forklm sent in the requests whose counters the server reported (completion 0 of an n_cmpl
   * request): on llama.cpp promptComputed + promptCached equals it, whichever slot served each request. */
  promptSent: number;
  /** Prompt tokens of n_cmpl completions 1.. (llama.cpp processes the prompt once for completion 0 and copies its KV to
   * the others, whose timings repeat completion 0's counts; its /metrics counts the prompt once). */
  promptCopied: number;
  /** Tokens the server generated, and how many of them the paths used (the rest ran past a path's end). */
  generated: number;
  generatedUsed: number;
  /** Completions whose counters the server reported (an aborted OpenAI stream reports none). */
  completionsReported: number;
  /** Widest entropy bound seen, as a fraction of ln V (0 when the top-k list covers the vocabulary). */
  maxEntropyGap: number;
  meanEntropyGap: number;
}

/** A step result with the entropy bounds the top-k list gives. */
export interface RemoteStepResult extends StepResult {
  entropyBounds: EntropyBounds;
}

export interface Feed {
  id: number;
  abort: AbortController;
  /** Completion index -> path id (null once that path let go). */
  paths: (number | null)[];
  usage: Map<number, UsageEvent>;
  /** Tokens in the request's prompt. */
  promptLength: number;
}

export interface RemotePath {
  id: number;
  tokens: number[];
  promptLength: number;
  reusedTokens: number;
  state: 'prefill' | 'decode' | 'finished';
  sampling: SamplingParams;
  /** The path's stream key (rootKey / childKey, as on the local engine): its client-side draws and its children's. */
  key: StreamKey;
  /** Server seed of the request that feeds the path (u32, never 0xFFFFFFFF: llama.cpp's "random"). */
  seed: number;
  rng: PathRng;
  maxLength: number;
  draws: number;
  /** No token taken and no request sent yet: may share an n_cmpl request with paths of the same tokens. */
  fresh: boolean;
  queue: TokenEvent[];
  feed: Feed | null;
  /** The feeding request ended; no more tokens come from it. */
  drained: boolean;
  retries: number;
}

/** 31 bits of a stream key: a server seed with room for + root / + sibling below 2^32 - 1. */
export const seed31 = (key: StreamKey): number => key[0] & 0x7fffffff;

/** Tokens a path has, used or queued. */
export const known = (p: RemotePath): number => p.tokens.length + p.queue.length;

/** Paths that one n_cmpl request can serve: fresh, same tokens, sampling and budget, and consecutive seeds. */
export function groupable(a: RemotePath, b: RemotePath): boolean {
  return (
    a.fresh &&
    b.fresh &&
    b.seed === a.seed + 1 &&
    a.maxLength === b.maxLength &&
    a.sampling.temperature === b.sampling.temperature &&
    a.sampling.topP === b.sampling.topP &&
    a.tokens.length === b.tokens.length &&
    a.tokens.every((t, i) => t === b.tokens[i])
  );
}

/** The server's usage counters summed over requests (RemoteCounters' fields of the same names). */
export function usageTotals(feeds: readonly Feed[]): Pick<RemoteCounters, 'promptComputed' | 'promptCached' | 'promptSent' | 'promptCopied' | 'generated' | 'completionsReported'> {
  let promptComputed = 0;
  let promptCached = 0;
  let promptSent = 0;
  let promptCopied = 0;
  let generated = 0;
  let reported = 0;
  for (const f of feeds)
    for (const u of f.usage.values()) {
      if (u.index > 0) promptCopied += (u.promptComputed ?? 0) + (u.promptCached ?? 0);
      else {
        promptComputed += u.promptComputed ?? 0;
        promptCached += u.promptCached ?? 0;
        promptSent += f.promptLength;
      }
      generated += u.generated ?? 0;
      reported += u.index < 0 ? f.paths.length : 1;
    }
  return { promptComputed, promptCached, promptSent, promptCopied, generated, completionsReported: reported };
}
