// An existing server engine (llama.cpp server, vLLM, SGLang) as a SessionSource: the same EAB, peaks and generate
// runs as on the local GPU engine, with the model and the load on the server.
//
//   const remote = await RemoteEngine.connect('http://127.0.0.1:8080', { kind: 'llama.cpp' });
//   const session = remote.session();             // a BranchEngine: createPath / fork / step / finish / free
//
// connect() reads the model's limits from the server (llama.cpp: /v1/models meta and /props; vLLM: max_model_len)
// and sends one probe request, so a server that cannot take token-id prompts or return log-probs fails here with a
// RemoteFeatureError rather than in the middle of a run.
import type { EngineInfo, SessionSource } from '../branch/engine_api.js';
import { InvalidArgumentError, RemoteFeatureError, RemoteServerError } from '../errors.js';
import { LIST_CAP } from '../sample/stats_record.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { requestJson, streamEvents, type HttpOptions } from './http.js';
import { dialectFor, type ServerKind } from './protocol.js';
import { RemoteSession } from './session.js';

export interface RemoteEngineOptions {
  /** Which API to speak: llama.cpp's native /completion (default) or OpenAI's /v1/completions. */
  kind?: ServerKind;
  /** Top log-probs asked per token (default 20, vLLM's default cap; llama.cpp takes up to the vocabulary). More
   * tightens the entropy bounds; k >= vocabulary makes the entropy exact. */
  topLogprobs?: number;
  /** Most live paths per session (default 64; beyond the server's slots, requests wait in its queue). */
  maxLivePaths?: number;
  /** Most tokens a request generates ahead of what its path has used (default 16; Infinity: the whole budget). A
   * path that a controller ends early (EOS it did not see coming, a prune) leaves at most this many unused. */
  lookahead?: number;
  /** Overrides of what the server reports (required where it does not: vLLM and SGLang give no vocabulary size). */
  vocabSize?: number;
  maxSeqLen?: number;
  eosTokenIds?: readonly number[];
  /** The model's tokenizer, for controllers that decode text; otherwise the server's /tokenize serves encode(). */
  tokenizer?: Tokenizer | null;
  /** Served model name (OpenAI dialect; default: the first of /v1/models). */
  model?: string;
  /** Per wait (headers, or between two streamed events), ms. Default 120000: a request queued behind busy server
   * slots sends nothing until it starts. */
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  headers?: Record<string, string>;
  /** Cancels everything: connect() and every session's in-flight requests are aborted, and their steps reject with a
   * CancelledError (the CLI's Ctrl-C). */
  signal?: AbortSignal;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null ? (v as Json) : {});
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);

export class RemoteEngine implements SessionSource {
  private constructor(
    readonly baseUrl: string,
    readonly kind: ServerKind,
    readonly info: EngineInfo,
    readonly tokenizer: Tokenizer | null,
    private readonly http: HttpOptions,
    private readonly topLogprobs: number,
    private readonly model: string | undefined,
    private readonly lookahead: number,
  ) {}

  static async connect(url: string, options: RemoteEngineOptions = {}): Promise<RemoteEngine> {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new InvalidArgumentError(`--server ${url} is not a URL; give e.g. http://127.0.0.1:8080.`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new InvalidArgumentError(`--server ${url}: only http:// and https:// servers are spoken to; give e.g. http://127.0.0.1:8080.`);
    const baseUrl = base.href.replace(/\/+$/, '').replace(/\/v1$/, '');
    const kind = options.kind ?? 'llama.cpp';
    if (kind !== 'llama.cpp' && kind !== 'openai') throw new InvalidArgumentError(`server kind '${kind}': use llama.cpp or openai.`);
    const http: HttpOptions = {
      timeoutMs: options.timeoutMs ?? 120_000,
      retries: options.retries ?? 3,
      backoffMs: options.backoffMs ?? 200,
      headers: options.headers,
      signal: options.signal,
    };
    const models = obj(await requestJson(`${baseUrl}/v1/models`, undefined, http));
    const first = obj(Array.isArray(models.data) ? models.data[0] : undefined);
    const meta = obj(first.meta);
    let slotCtx: number | undefined;
    if (kind === 'llama.cpp') {
      const props = obj(await requestJson(`${baseUrl}/props`, undefined, http));
      slotCtx = int(obj(props.default_generation_settings).n_ctx);
    }
    const tokenizer = options.tokenizer ?? null;
    const vocabSize = options.vocabSize ?? int(meta.n_vocab) ?? tokenizer?.vocabSize;
    const maxSeqLen = options.maxSeqLen ?? slotCtx ?? int(first.max_model_len) ?? int(meta.n_ctx);
    if (vocabSize === undefined || maxSeqLen === undefined)
      throw new RemoteFeatureError(
        'model_info',
        `${baseUrl} does not report the model's ${vocabSize === undefined ? 'vocabulary size' : 'context length'}; pass ` +
          `${vocabSize === undefined ? 'vocabSize (or a tokenizer)' : 'maxSeqLen'} to RemoteEngine.connect.`,
      );
    const eosTokenIds = options.eosTokenIds ?? tokenizer?.eosTokenIds ?? (kind === 'llama.cpp' ? await llamaEos(baseUrl, http) : []);
    const topLogprobs = options.topLogprobs ?? 20;
    if (!Number.isInteger(topLogprobs) || topLogprobs < 2 || topLogprobs > vocabSize)
      throw new InvalidArgumentError(`topLogprobs=${topLogprobs}: between 2 and the vocabulary size ${vocabSize}.`);
    const topK = Math.min(topLogprobs, LIST_CAP);
    const info: EngineInfo = {
      vocabSize,
      maxSeqLen,
      eosTokenIds: [...eosTokenIds],
      maxBranch: topK,
      maxLivePaths: options.maxLivePaths ?? 64,
      topK,
      pageSize: 0,
    };
    const model = options.model ?? (typeof first.id === 'string' ? first.id : undefined);
    const lookahead = options.lookahead ?? 16;
    if (!(lookahead >= 1) || (Number.isFinite(lookahead) && !Number.isInteger(lookahead)))
      throw new InvalidArgumentError(`lookahead=${lookahead}: a whole number of tokens >= 1, or Infinity.`);
    const engine = new RemoteEngine(baseUrl, kind, info, tokenizer, http, topLogprobs, model, lookahead);
    await engine.probe();
    return engine;
  }

  /** A new session: its own paths, requests and counters. */
  session(): RemoteSession {
    return new RemoteSession({
      baseUrl: this.baseUrl,
      dialect: dialectFor(this.kind),
      info: this.info,
      tokenizer: this.tokenizer,
      http: this.http,
      topLogprobs: this.topLogprobs,
      groupRoots: this.kind === 'llama.cpp',
      lookahead: this.lookahead,
      model: this.model,
    });
  }

  /**
   * Token ids of `text` by the server's tokenizer (llama.cpp, vLLM and SGLang serve /tokenize). `addSpecial`: BOS as
   * the model's config asks. `parseSpecial` (llama.cpp only; default false): special-token text such as "</s>" becomes
   * that token, as forklm's own tokenizers do only when asked; vLLM's /tokenize has no such switch.
   */
  async tokenize(text: string, addSpecial = true, parseSpecial = false): Promise<number[]> {
    // vLLM and SGLang read `prompt` and `add_special_tokens`; llama.cpp, also behind --server-kind openai, `content`
    // and `add_special`. Each ignores the other's names (vLLM's request models allow extra fields and log them:
    // OpenAIBaseModel, extra="allow", vllm/entrypoints/openai/protocol.py).
    const body =
      this.kind === 'llama.cpp'
        ? { content: text, add_special: addSpecial, parse_special: parseSpecial }
        : { model: this.model, prompt: text, add_special_tokens: addSpecial, content: text, add_special: addSpecial, parse_special: parseSpecial };
    const r = obj(await requestJson(`${this.baseUrl}/tokenize`, body, this.http));
    if (!Array.isArray(r.tokens)) throw new RemoteFeatureError('tokenize', `${this.baseUrl}/tokenize sent no tokens; pass a tokenizer instead.`);
    return r.tokens as number[];
  }

  /** Text of token ids by the server's tokenizer (/detokenize). */
  async detokenize(ids: readonly number[]): Promise<string> {
    const r = obj(await requestJson(`${this.baseUrl}/detokenize`, { tokens: [...ids], model: this.model }, this.http));
    const text = r.content ?? r.prompt;
    if (typeof text !== 'string') throw new RemoteFeatureError('detokenize', `${this.baseUrl}/detokenize sent no text; pass a tokenizer instead.`);
    return text;
  }

  /** One token from a one-token prompt: fails early on a server without token prompts or log-probs. */
  private async probe(): Promise<void> {
    const dialect = dialectFor(this.kind);
    const body = dialect.body({ prompt: [this.info.eosTokenIds[0] ?? 0], maxTokens: 1, n: 1, temperature: 0, topP: 1, seed: 0, topLogprobs: 2, model: this.model });
    let tokens = 0;
    try {
      for await (const chunk of streamEvents(this.baseUrl + dialect.path, body, this.http))
        for (const ev of dialect.parse(chunk)) if (ev.type === 'token') tokens++;
    } catch (err) {
      if (err instanceof RemoteServerError && err.reason === 'http' && err.status !== null && err.status >= 400 && err.status < 500)
        throw new RemoteFeatureError(
          'token_prompts',
          `${this.baseUrl}${dialect.path} refused a prompt of token ids with logprobs (${err.message}). forklm needs both; ` +
            `check the server kind (--server-kind) and version.`,
        );
      throw err;
    }
    if (tokens === 0) throw new RemoteFeatureError('logprobs', `${this.baseUrl}${dialect.path} generated no token with log-probs for a probe request.`);
  }
}

/** llama.cpp names its EOS token in /props; /tokenize with parse_special gives its id. */
async function llamaEos(baseUrl: string, http: HttpOptions): Promise<number[]> {
  const props = obj(await requestJson(`${baseUrl}/props`, undefined, http));
  if (typeof props.eos_token !== 'string') return [];
  const r = obj(await requestJson(`${baseUrl}/tokenize`, { content: props.eos_token, add_special: false, parse_special: true }, http));
  return Array.isArray(r.tokens) && r.tokens.length === 1 ? (r.tokens as number[]) : [];
}
