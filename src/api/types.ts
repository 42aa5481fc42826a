// OpenAI's request and response shapes for /v1/completions and /v1/chat/completions, as far as forklm serves them
// (https://platform.openai.com/docs/api-reference/completions, .../chat). Field names are OpenAI's (snake_case).
// forklm's additions: `branching` (the EAB / confidence-peak extension, api/branching.ts), `logprobs_mode` (which
// distribution logprobs describe, as vLLM's option of that name), `chat_template` (a Jinja template for models that
// ship none), and the `forklm` field of responses that holds the branching tree and accounting.
import type { EabParams } from '../branch/eab_params.js';
import type { PeaksParams } from '../branch/peaks_params.js';
import type { ChatMessage } from '../tokenizer/chat.js';

/**
 * Which distribution logprobs describe:
 * - 'raw_logprobs' (default): the model's own distribution, log softmax of the logits (temperature 1, no top-p).
 * - 'processed_logprobs': the distribution tokens were drawn from, after temperature and top-p: tokens outside the
 *   nucleus get -9999 (OpenAI's and vLLM's stand-in for -infinity); at temperature 0 the chosen token has 0.
 */
export type LogprobsMode = 'raw_logprobs' | 'processed_logprobs';

export type BranchingRequest = ({ mode: 'eab' } & Partial<EabParams>) | ({ mode: 'peaks' } & Partial<PeaksParams>);

interface CommonRequest {
  model?: string;
  n?: number | null;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  logprobs_mode?: LogprobsMode;
  branching?: BranchingRequest | null;
  user?: string;
}

export interface CompletionRequest extends CommonRequest {
  /** Text, or token ids. */
  prompt: string | number[];
  /** Top alternatives per token, 0..20 (OpenAI: 0..5); null or absent: no logprobs. */
  logprobs?: number | null;
}

export interface ChatCompletionRequest extends CommonRequest {
  messages: ChatMessage[];
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  /** Top alternatives per token, 0..20; needs logprobs: true. */
  top_logprobs?: number | null;
  /** A Jinja chat template to use instead of the model's (vLLM's request field). */
  chat_template?: string;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** The legacy completions logprobs object. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens served from the engine's prefix cache instead of computed. */
  prompt_tokens_details: { cached_tokens: number };
}

/** What a branching request adds to its response: the tree, forks and token accounting of the run. */
export interface BranchingInfo {
  mode: 'eab' | 'peaks';
  /** Per choice (same order): the sample's or trace's own record (probability, lineage, branch points, ...). */
  choices: Record<string, unknown>[];
  tree?: unknown;
  stats: Record<string, unknown>;
  params: Record<string, unknown>;
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage: Usage;
  forklm?: BranchingInfo;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; logprobs: CompletionLogprobs | null; finish_reason: FinishReason | null }[];
  usage?: Usage | null;
  forklm?: BranchingInfo;
}

export interface ChatCompletionChoice {
  index: number;
  message: { role: 'assistant'; content: string; refusal: null };
  logprobs: { content: TokenLogprob[] } | null;
  finish_reason: FinishReason;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: Usage;
  forklm?: BranchingInfo;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    logprobs: { content: TokenLogprob[] } | null;
    finish_reason: FinishReason | null;
  }[];
  usage?: Usage | null;
  forklm?: BranchingInfo;
}

/** Per-call options that are not part of the request body. */
export interface RequestOptions {
  /** Cancels the request: its paths and pages are freed and the call rejects with CancelledError. */
  signal?: AbortSignal;
}
