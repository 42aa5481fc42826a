// Validation of OpenAI-style requests at the edge: every field checked once, with OpenAI's limits where forklm can
// honour them, typed errors naming the field (`param`), and defaults filled. What forklm does not do (penalties,
// logit_bias, best_of, suffix, echo, tools, several prompts per request) is refused rather than ignored.
import type { EngineInfo } from '../branch/engine_api.js';
import { ContextOverflowError, InvalidArgumentError } from '../errors.js';
import type { BranchingRequest, ChatCompletionRequest, CompletionRequest, LogprobsMode } from './types.js';

/** The most logprob alternatives a request may ask for (OpenAI's top_logprobs bound, and token_stats' LIST_CAP). */
export const MAX_TOP_LOGPROBS = 20;
/** The most stop strings per request (OpenAI's bound). */
export const MAX_STOP = 4;

export interface NormalizedRequest {
  promptIds: number[];
  n: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  /** null: no logprobs; else alternatives per token (0..20). */
  topLogprobs: number | null;
  logprobsMode: LogprobsMode;
  stream: boolean;
  includeUsage: boolean;
  branching: BranchingRequest | null;
}

const bad = (param: string, message: string) => new InvalidArgumentError(message, { param });

const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  frequency_penalty: (v) => v !== 0,
  presence_penalty: (v) => v !== 0,
  logit_bias: (v) => typeof v === 'object' && v !== null && Object.keys(v).length > 0,
  best_of: (v) => v !== 1,
  suffix: (v) => v !== '',
  echo: (v) => v !== false,
  tools: () => true,
  functions: () => true,
  response_format: (v) => (v as { type?: unknown })?.type !== 'text',
};

function checkUnsupported(body: Record<string, unknown>): void {
  for (const [k, isSet] of Object.entries(UNSUPPORTED))
    if (body[k] !== undefined && body[k] !== null && isSet(body[k]))
      throw bad(k, `'${k}' is not supported by forklm; leave it out of the request.`);
}

function integer(param: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(param, `'${param}' must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}.`);
  return v;
}

function number(param: string, v: unknown, min: number, max: number, openMin = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (openMin ? v <= min : v < min))
    throw bad(param, `'${param}' must be a number in ${openMin ? '(' : '['}${min}, ${max}], got ${JSON.stringify(v)}.`);
  return v;
}

const given = <T>(v: T | null | undefined): v is T => v !== undefined && v !== null;

function stops(v: unknown): string[] {
  if (!given(v)) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0))
    throw bad('stop', "'stop' must be a non-empty string or a list of non-empty strings.");
  if (list.length > MAX_STOP) throw bad('stop', `'stop' holds at most ${MAX_STOP} strings, got ${list.length}.`);
  return list as string[];
}

/** Fields shared by completions and chat, once the prompt's token ids are known. */
function common(
  body: CompletionRequest | ChatCompletionRequest,
  info: EngineInfo,
  promptIds: number[],
  maxTokens: unknown,
  defaultMax: number,
  topLogprobs: number | null,
): NormalizedRequest {
  checkUnsupported(body as unknown as Record<string, unknown>);
  const n = given(body.n) ? integer('n', body.n, 1, info.maxLivePaths) : 1;
  const room = info.maxSeqLen - promptIds.length;
  if (room < 1)
    throw new ContextOverflowError(
      `The prompt has ${promptIds.length} tokens; the model's context is ${info.maxSeqLen}, which leaves no room to generate. Shorten the prompt.`,
    );
  const max = given(maxTokens) ? integer('max_tokens', maxTokens, 1, Number.MAX_SAFE_INTEGER) : Math.min(defaultMax, room);
  if (promptIds.length + max > info.maxSeqLen)
    throw new ContextOverflowError(
      `This model's maximum context length is ${info.maxSeqLen} tokens. However, you requested ${promptIds.length + max} ` +
        `tokens (${promptIds.length} in the prompt, ${max} for the completion). Shorten the prompt or lower max_tokens.`,
    );
  if (topLogprobs !== null && topLogprobs > info.topK)
    throw bad('top_logprobs', `this engine keeps ${info.topK} alternatives per token; ask for at most ${info.topK}.`);
  const mode = body.logprobs_mode ?? 'raw_logprobs';
  if (mode !== 'raw_logprobs' && mode !== 'processed_logprobs')
    throw bad('logprobs_mode', `'logprobs_mode' must be 'raw_logprobs' or 'processed_logprobs', got ${JSON.stringify(mode)}.`);
  const branching = given(body.branching) ? body.branching : null;
  if (branching !== null) {
    if (typeof branching !== 'object' || (branching.mode !== 'eab' && branching.mode !== 'peaks'))
      throw bad('branching', "'branching.mode' must be 'eab' or 'peaks'.");
    if (topLogprobs !== null && topLogprobs > 0)
      throw bad('top_logprobs', 'branching choices carry each token\'s logprob but no alternatives; ask for 0 alternatives.');
    if (mode !== 'raw_logprobs') throw bad('logprobs_mode', "branching choices report raw_logprobs only.");
  }
  if (given(body.stream_options) && !body.stream)
    throw bad('stream_options', "'stream_options' is only allowed when 'stream' is true.");
  return {
    promptIds,
    n,
    maxTokens: max,
    temperature: given(body.temperature) ? number('temperature', body.temperature, 0, 2) : 1,
    topP: given(body.top_p) ? number('top_p', body.top_p, 0, 1, true) : 1,
    // No seed: a fresh one, as OpenAI's servers do; give one to replay.
    seed: given(body.seed) ? integer('seed', body.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) : Math.floor(Math.random() * 2 ** 31),
    stop: stops(body.stop),
    topLogprobs,
    logprobsMode: mode,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    branching,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A /v1/completions body; `encode` turns text into token ids (the engine's tokenizer). */
export function completionRequest(body: unknown, info: EngineInfo, encode: ((text: string) => number[]) | null): NormalizedRequest {
  if (!isObject(body)) throw bad('body', 'The request body must be a JSON object.');
  const b = body as unknown as CompletionRequest;
  let ids: number[];
  if (typeof b.prompt === 'string') {
    if (!encode) throw bad('prompt', 'This engine has no tokenizer: pass the prompt as token ids.');
    ids = encode(b.prompt);
  } else if (Array.isArray(b.prompt) && b.prompt.length > 0 && b.prompt.every((t) => typeof t === 'number')) {
    ids = b.prompt;
    for (const t of ids)
      if (!Number.isInteger(t) || t < 0 || t >= info.vocabSize)
        throw bad('prompt', `token id ${t} is outside the vocabulary (0..${info.vocabSize - 1}).`);
  } else throw bad('prompt', "'prompt' must be a string or a non-empty list of token ids (one prompt per request).");
  if (ids.length === 0) throw bad('prompt', 'The prompt encodes to no tokens: give some text.');
  const top = given(b.logprobs) ? integer('logprobs', b.logprobs, 0, MAX_TOP_LOGPROBS) : null;
  return common(b, info, ids, b.max_tokens, 16, top);
}

/** A /v1/chat/completions body, once its messages are rendered and encoded (`promptIds`). */
export function chatRequest(body: ChatCompletionRequest, info: EngineInfo, promptIds: number[]): NormalizedRequest {
  if (given(body.top_logprobs) && body.logprobs !== true)
    throw bad('top_logprobs', "'top_logprobs' needs 'logprobs': true.");
  if (given(body.logprobs) && typeof body.logprobs !== 'boolean') throw bad('logprobs', "'logprobs' must be true or false in a chat request.");
  const top = body.logprobs === true ? (given(body.top_logprobs) ? integer('top_logprobs', body.top_logprobs, 0, MAX_TOP_LOGPROBS) : 0) : null;
  if (given(body.max_tokens) && given(body.max_completion_tokens) && body.max_tokens !== body.max_completion_tokens)
    throw bad('max_completion_tokens', "Give 'max_completion_tokens' or 'max_tokens' (deprecated), not both with different values.");
  const max = given(body.max_completion_tokens) ? body.max_completion_tokens : body.max_tokens;
  return common(body, info, promptIds, max, Number.MAX_SAFE_INTEGER, top);
}

/** Checks the shape of a chat body before its messages are rendered. */
export function checkChatBody(body: unknown): ChatCompletionRequest {
  if (!isObject(body)) throw bad('body', 'The request body must be a JSON object.');
  const b = body as unknown as ChatCompletionRequest;
  if (!Array.isArray(b.messages) || b.messages.length === 0)
    throw bad('messages', "'messages' must be a non-empty list of { role, content }.");
  for (const [i, m] of b.messages.entries())
    if (!isObject(m) || typeof m.role !== 'string' || typeof m.content !== 'string')
      throw bad(`messages[${i}]`, `messages[${i}] must be { role: string, content: string } (text content only).`);
  return b;
}
