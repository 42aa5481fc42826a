// engine.completions.create() and engine.chat.completions.create(): OpenAI's request and response shapes over forklm's
// sessions (one session per request, so concurrent requests share the engine's steps). `stream: true` resolves to an
// async iterator of chunks (several choices interleave, each chunk names its choice `index`); otherwise to the whole
// response. Errors are typed (errors.ts) and thrown before any chunk: InvalidArgumentError with `param` for a bad
// field, ContextOverflowError for a prompt past the context, NoChatTemplateError for a chat without a template,
// CancelledError when `signal` aborts.
import { InvalidArgumentError } from '../errors.js';
import { applyChatTemplate, encodeChatPrompt, requireChatTemplate } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { runBranching } from './branching.js';
import { runChoices, type ChoiceDelta } from './choices.js';
import type { ApiHost } from './host.js';
import { pump } from './pump.js';
import { chatRequest, checkChatBody, completionRequest, type NormalizedRequest } from './request.js';
import type {
  BranchingInfo,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionLogprobs,
  CompletionRequest,
  FinishReason,
  RequestOptions,
  TokenLogprob,
  Usage,
} from './types.js';

export type ChunkStream<T> = AsyncIterableIterator<T> & { controller: AbortController };

let counter = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}${(counter++).toString(36)}`;
const seconds = () => Math.floor(Date.now() / 1000);

function tokenizerOf(host: ApiHost): Tokenizer {
  if (!host.tokenizer) throw new InvalidArgumentError('This engine has no tokenizer; the OpenAI-style API needs one to produce text.');
  return host.tokenizer;
}

function usage(prompt: number, completion: number, cached: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

/** One choice's text, logprobs and finish, gathered from its deltas (or given whole by a branching run). */
export interface ChoiceResult {
  index: number;
  text: string;
  logprobs: TokenLogprob[];
  textOffsets: number[];
  finish: FinishReason;
}

/** What every request kind produces: a stream of deltas, then totals (and, for branching, the run's record). */
type Source = AsyncGenerator<ChoiceDelta[], { completionTokens: number; cachedTokens: number; branching?: BranchingInfo }>;

function start(host: ApiHost, req: NormalizedRequest, nGiven: boolean, signal: AbortSignal | undefined): Source {
  const tokenizer = tokenizerOf(host);
  if (req.branching) return runBranching(host, tokenizer, req, nGiven, signal);
  return runChoices(host, tokenizer, host.info.eosTokenIds, req, signal);
}

function legacyLogprobs(entries: TokenLogprob[], offsets: number[], top: number): CompletionLogprobs {
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: top > 0 ? entries.map((e) => Object.fromEntries(e.top_logprobs.map((t) => [t.token, t.logprob]))) : null,
    text_offset: offsets,
  };
}

/** Runs a request to the end and gathers its choices. */
async function collect(source: Source, n: number): Promise<{ choices: ChoiceResult[]; completionTokens: number; cachedTokens: number; branching?: BranchingInfo }> {
  const byIndex = new Map<number, ChoiceResult>();
  for (;;) {
    const r = await source.next();
    if (r.done) {
      const choices = [...byIndex.values()].sort((a, b) => a.index - b.index);
      void n;
      return { choices, ...r.value };
    }
    for (const d of r.value) {
      let c = byIndex.get(d.index);
      if (!c) byIndex.set(d.index, (c = { index: d.index, text: '', logprobs: [], textOffsets: [], finish: 'length' }));
      c.text += d.text;
      c.logprobs.push(...d.logprobs);
      c.textOffsets.push(...d.textOffsets);
      if (d.finish) c.finish = d.finish;
    }
  }
}

/** Builds the stream of chunks of a request: one chunk per choice delta, then (asked for) a usage chunk. */
function streamOf<C>(
  host: ApiHost,
  req: NormalizedRequest,
  nGiven: boolean,
  options: RequestOptions,
  toChunk: (d: ChoiceDelta, first: boolean) => C,
  usageChunk: (u: Usage, branching?: BranchingInfo) => C,
): ChunkStream<C> {
  return pump<C>(async (emit, signal) => {
    const source = start(host, req, nGiven, signal);
    const seen = new Set<number>();
    for (;;) {
      const r = await source.next();
      if (r.done) {
        if (req.includeUsage || r.value.branching)
          emit(usageChunk(usage(req.promptIds.length, r.value.completionTokens, r.value.cachedTokens), r.value.branching));
        return;
      }
      for (const d of r.value) {
        emit(toChunk(d, !seen.has(d.index)));
        seen.add(d.index);
      }
    }
  }, options.signal);
}

export class Completions {
  constructor(private readonly host: ApiHost) {}

  /** OpenAI's POST /v1/completions. */
  create(body: CompletionRequest & { stream: true }, options?: RequestOptions): Promise<ChunkStream<CompletionChunk>>;
  create(body: CompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<Completion>;
  create(body: CompletionRequest, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>>;
  async create(body: CompletionRequest, options: RequestOptions = {}): Promise<Completion | ChunkStream<CompletionChunk>> {
    const host = this.host;
    const tokenizer = host.tokenizer;
    const req = completionRequest(body, host.info, tokenizer ? (t) => tokenizer.encode(t) : null);
    const nGiven = body.n !== undefined && body.n !== null;
    const id = newId('cmpl');
    const created = seconds();
    const model = host.modelName;
    const top = req.topLogprobs ?? 0;
    if (req.stream) {
      return streamOf<CompletionChunk>(
        host,
        req,
        nGiven,
        options,
        (d) => ({
          id,
          object: 'text_completion',
          created,
          model,
          choices: [{ index: d.index, text: d.text, logprobs: req.topLogprobs !== null ? legacyLogprobs(d.logprobs, d.textOffsets, top) : null, finish_reason: d.finish }],
        }),
        (u, branching) => ({ id, object: 'text_completion', created, model, choices: [], usage: u, ...(branching ? { forklm: branching } : {}) }),
      );
    }
    const r = await collect(start(host, req, nGiven, options.signal), req.n);
    return {
      id,
      object: 'text_completion',
      created,
      model,
      choices: r.choices.map((c) => ({
        index: c.index,
        text: c.text,
        logprobs: req.topLogprobs !== null ? legacyLogprobs(c.logprobs, c.textOffsets, top) : null,
        finish_reason: c.finish,
      })),
      usage: usage(req.promptIds.length, r.completionTokens, r.cachedTokens),
      ...(r.branching ? { forklm: r.branching } : {}),
    };
  }
}

export class ChatCompletions {
  constructor(private readonly host: ApiHost) {}

  /** The prompt token ids of a chat: the messages through the model's (or the request's) chat template. */
  promptIds(body: ChatCompletionRequest): number[] {
    const tokenizer = tokenizerOf(this.host);
    const info = this.host.chatTemplate;
    const template =
      typeof body.chat_template === 'string' && body.chat_template.length > 0
        ? body.chat_template
        : (info.template ?? requireChatTemplate({}, this.host.modelName));
    const text = applyChatTemplate(template, body.messages, { add_generation_prompt: true, bos_token: info.bosToken, eos_token: info.eosToken });
    return encodeChatPrompt(tokenizer, text, info.bosToken);
  }

  /** OpenAI's POST /v1/chat/completions. */
  create(body: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
  create(body: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  create(body: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
  async create(body: ChatCompletionRequest, options: RequestOptions = {}): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>> {
    const host = this.host;
    const b = checkChatBody(body);
    const req = chatRequest(b, host.info, this.promptIds(b));
    const nGiven = b.n !== undefined && b.n !== null;
    const id = newId('chatcmpl');
    const created = seconds();
    const model = host.modelName;
    const logprobs = (entries: TokenLogprob[]) => (req.topLogprobs !== null ? { content: entries } : null);
    if (req.stream) {
      return streamOf<ChatCompletionChunk>(
        host,
        req,
        nGiven,
        options,
        (d, first) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [
            {
              index: d.index,
              delta: first ? { role: 'assistant', content: d.text } : { content: d.text },
              logprobs: logprobs(d.logprobs),
              finish_reason: d.finish,
            },
          ],
        }),
        (u, branching) => ({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: u, ...(branching ? { forklm: branching } : {}) }),
      );
    }
    const r = await collect(start(host, req, nGiven, options.signal), req.n);
    return {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: r.choices.map((c) => ({
        index: c.index,
        message: { role: 'assistant', content: c.text, refusal: null },
        logprobs: logprobs(c.logprobs),
        finish_reason: c.finish,
      })),
      usage: usage(req.promptIds.length, r.completionTokens, r.cachedTokens),
      ...(r.branching ? { forklm: r.branching } : {}),
    };
  }
}

/** The OpenAI-style namespaces an engine carries: engine.completions, engine.chat.completions. */
export function openAiSurface(host: ApiHost): { completions: Completions; chat: { completions: ChatCompletions } } {
  return { completions: new Completions(host), chat: { completions: new ChatCompletions(host) } };
}
