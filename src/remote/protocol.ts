// The two HTTP dialects the remote engine speaks, reduced to one request and one event shape:
//
//   llama.cpp's native POST /completion (tools/server/README.md of llama.cpp): prompt as token ids, `n_probs` top
//     log-probs per token, `n_cmpl` completions of one prompt (processed once, copied to child slots, child i seeded
//     seed + i), `cache_prompt`, `samplers` (the sampler chain), `timings_per_token` (prompt_n computed, cache_n
//     served from the slot's cache, predicted_n generated: in every streamed chunk, so an aborted request still counts).
//   OpenAI's POST /v1/completions (vLLM, SGLang, llama.cpp): prompt as token ids, `logprobs` = top-k, `seed`,
//     `stream_options.include_usage` (usage.prompt_tokens_details.cached_tokens where the server reports it). Token
//     ids come from llama.cpp's `logprobs.content[].id` or, in the legacy shape vLLM returns, from "token_id:N" strings
//     (`return_tokens_as_token_ids`).
import { RemoteFeatureError, RemoteServerError } from '../errors.js';

export type ServerKind = 'llama.cpp' | 'openai';

export interface CompletionRequest {
  prompt: readonly number[];
  maxTokens: number;
  /** Completions of this prompt in one request (llama.cpp n_cmpl); completion i is seeded seed + i. */
  n: number;
  /** 0: greedy. */
  temperature: number;
  topP: number;
  /** u32, never 0xFFFFFFFF (llama.cpp's "random seed"). */
  seed: number;
  /** Top log-probs per generated token. */
  topLogprobs: number;
  /** Served model name (OpenAI dialect). */
  model?: string;
}

/** One generated token with its top log-probs, under the model distribution softmax(logits) (temperature 1). */
export interface TokenEvent {
  type: 'token';
  index: number;
  id: number;
  logprob: number;
  /** Best first. */
  topIds: number[];
  topLogprobs: number[];
}

/** The server's own counters for completion `index` so far (cumulative; `final` on the last chunk). */
export interface UsageEvent {
  type: 'usage';
  index: number;
  promptComputed: number | null;
  promptCached: number | null;
  generated: number | null;
}

export interface EndEvent {
  type: 'end';
  index: number;
  reason: 'eos' | 'length' | 'stop';
}

export type ServerEvent = TokenEvent | UsageEvent | EndEvent;

export interface Dialect {
  readonly kind: ServerKind;
  readonly path: string;
  body(req: CompletionRequest): Record<string, unknown>;
  /** The events of one streamed chunk. Throws RemoteFeatureError where the chunk lacks what forklm needs. */
  parse(chunk: unknown): ServerEvent[];
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function checkError(chunk: unknown): Json {
  if (!isObj(chunk)) throw new RemoteServerError('protocol', `The server sent ${JSON.stringify(chunk)?.slice(0, 200)}, not a JSON object.`);
  if (isObj(chunk.error)) throw new RemoteServerError('protocol', `The server reported an error: ${String(chunk.error.message ?? JSON.stringify(chunk.error))}`);
  return chunk;
}

/** llama.cpp's per-token entry {id, logprob, top_logprobs: [{id, logprob}]} (native and OpenAI content shape). */
function idEntry(e: unknown, index: number): TokenEvent {
  if (!isObj(e) || typeof e.id !== 'number' || num(e.logprob) === null || !Array.isArray(e.top_logprobs))
    throw new RemoteFeatureError('logprobs', 'The server sent a token without its id, log-prob and top log-probs; forklm needs all three.');
  const tops = e.top_logprobs.filter((t): t is Json => isObj(t) && typeof t.id === 'number' && num(t.logprob) !== null);
  return {
    type: 'token',
    index,
    id: e.id,
    logprob: e.logprob as number,
    topIds: tops.map((t) => t.id as number),
    topLogprobs: tops.map((t) => t.logprob as number),
  };
}

function llamaStop(stopType: unknown): EndEvent['reason'] {
  return stopType === 'eos' ? 'eos' : stopType === 'word' ? 'stop' : 'length';
}

/** llama.cpp's native /completion. */
export const llamaCppDialect: Dialect = {
  kind: 'llama.cpp',
  path: '/completion',
  body(req) {
    return {
      prompt: [...req.prompt],
      n_predict: req.maxTokens,
      n_cmpl: req.n,
      n_probs: req.topLogprobs,
      // Only temperature and nucleus: the default chain also applies top-k 40 and min-p 0.05, which forklm's local
      // sampler does not. Greedy at temperature 0.
      samplers: ['temperature', 'top_p'],
      temperature: req.temperature,
      top_p: req.topP,
      top_k: 0,
      min_p: 0,
      seed: req.seed,
      cache_prompt: true,
      stream: true,
      return_tokens: true,
      timings_per_token: true,
    };
  },
  parse(chunk) {
    const c = checkError(chunk);
    const index = num(c.index) ?? 0;
    const out: ServerEvent[] = [];
    const probs = c.completion_probabilities;
    const tokens = Array.isArray(c.tokens) ? c.tokens : [];
    if (tokens.length > 0 && (!Array.isArray(probs) || probs.length !== tokens.length))
      throw new RemoteFeatureError('logprobs', 'The server sent tokens without completion_probabilities: it does not support n_probs.');
    if (Array.isArray(probs)) for (const p of probs) out.push(idEntry(p, index));
    if (isObj(c.timings))
      out.push({ type: 'usage', index, promptComputed: num(c.timings.prompt_n), promptCached: num(c.timings.cache_n), generated: num(c.timings.predicted_n) });
    if (c.stop === true) out.push({ type: 'end', index, reason: llamaStop(c.stop_type) });
    return out;
  },
};

const TOKEN_ID = /^token_id:(\d+)$/;

function legacyId(s: unknown): number {
  const m = typeof s === 'string' ? TOKEN_ID.exec(s) : null;
  if (!m)
    throw new RemoteFeatureError(
      'token_ids',
      `The server named a token ${JSON.stringify(s)} by its text, not its id. On vLLM pass return_tokens_as_token_ids ` +
        '(forklm does), or use a server that returns ids.',
    );
  return Number(m[1]);
}

/** OpenAI's legacy completions logprobs {tokens, token_logprobs, top_logprobs: [{token: logprob}]}, one entry per token. */
function legacyEntries(lp: Json, index: number): TokenEvent[] {
  const tokens = lp.tokens as unknown[];
  const logprobs = lp.token_logprobs as unknown[];
  const tops = lp.top_logprobs as unknown[];
  if (!Array.isArray(tokens) || !Array.isArray(logprobs) || !Array.isArray(tops))
    throw new RemoteFeatureError('logprobs', 'The server sent logprobs without tokens, token_logprobs and top_logprobs.');
  return tokens.map((t, i) => {
    const top = isObj(tops[i]) ? Object.entries(tops[i] as Json) : [];
    const pairs = top.map(([k, v]) => [legacyId(k), num(v) ?? -Infinity] as const).sort((a, b) => b[1] - a[1]);
    return {
      type: 'token' as const,
      index,
      id: legacyId(t),
      logprob: num(logprobs[i]) ?? -Infinity,
      topIds: pairs.map((p) => p[0]),
      topLogprobs: pairs.map((p) => p[1]),
    };
  });
}

/** OpenAI /v1/completions (vLLM, SGLang, llama.cpp). */
export const openAiDialect: Dialect = {
  kind: 'openai',
  path: '/v1/completions',
  body(req) {
    return {
      ...(req.model ? { model: req.model } : {}),
      prompt: [...req.prompt],
      max_tokens: req.maxTokens,
      n: req.n,
      logprobs: req.topLogprobs,
      temperature: req.temperature,
      top_p: req.topP,
      seed: req.seed,
      stream: true,
      stream_options: { include_usage: true },
      // vLLM: name tokens "token_id:N" in logprobs (llama.cpp gives ids anyway); vLLM and SGLang: no top-k / min-p.
      return_tokens_as_token_ids: true,
      top_k: -1,
      min_p: 0,
    };
  },
  parse(chunk) {
    const c = checkError(chunk);
    const out: ServerEvent[] = [];
    const choices = Array.isArray(c.choices) ? c.choices : [];
    for (const ch of choices) {
      if (!isObj(ch)) continue;
      const index = num(ch.index) ?? 0;
      const text = typeof ch.text === 'string' ? ch.text : '';
      const lp = ch.logprobs;
      if (isObj(lp)) {
        if (Array.isArray(lp.content)) lp.content.forEach((e) => out.push(idEntry(e, index)));
        else if (Array.isArray(lp.tokens)) out.push(...legacyEntries(lp, index));
      } else if (text !== '') {
        throw new RemoteFeatureError('logprobs', 'The server generated text without logprobs: it does not support the logprobs parameter.');
      }
      if (typeof ch.finish_reason === 'string') {
        const timings = isObj(c.timings) ? c.timings : null;
        if (timings)
          out.push({ type: 'usage', index, promptComputed: num(timings.prompt_n), promptCached: num(timings.cache_n), generated: num(timings.predicted_n) });
        out.push({ type: 'end', index, reason: ch.finish_reason === 'stop' ? 'eos' : 'length' });
      }
    }
    // vLLM and SGLang send usage once, in a last chunk with no choices, for the whole request.
    if (choices.length === 0 && isObj(c.usage)) {
      const u = c.usage;
      const cached = isObj(u.prompt_tokens_details) ? num(u.prompt_tokens_details.cached_tokens) : null;
      const prompt = num(u.prompt_tokens);
      out.push({
        type: 'usage',
        index: -1,
        promptComputed: prompt !== null && cached !== null ? prompt - cached : prompt,
        promptCached: cached,
        generated: num(u.completion_tokens),
      });
    }
    return out;
  },
};

export function dialectFor(kind: ServerKind): Dialect {
  return kind === 'llama.cpp' ? llamaCppDialect : openAiDialect;
}
