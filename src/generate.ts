// One path, start to finish: greedy (temperature 0) or plain sampling. The baseline every branching mode is compared
// with, and what `forklm generate --mode greedy|sample` runs.
import type { SessionSource } from './branch/engine_api.js';
import { CancelledError, InvalidArgumentError } from './errors.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Stop at an end-of-sequence token (default true). */
  stopAtEos?: boolean;
  signal?: AbortSignal;
  onToken?: (token: number, index: number) => void;
}

export interface GenerateResult {
  /** Generated tokens (an EOS that ended the path included). */
  tokens: number[];
  /** log p(token) under the model at temperature 1, per generated token. */
  logprobs: number[];
  /** Normalised entropy H / ln V of each generated token's distribution. */
  entropies: number[];
  finishReason: 'eos' | 'length';
  stats: { prompt_tokens: number; generated_tokens: number; ms: number; tokens_per_s: number };
}

/**
 * Generates one continuation of `prompt` (token ids) in its own session of `source` (an Engine or a RemoteEngine), so
 * concurrent calls share the engine's steps. Errors: InvalidArgumentError (bad options, token ids),
 * ContextOverflowError (prompt + maxNewTokens past the context), CancelledError (signal).
 */
export async function generate(source: SessionSource, prompt: readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
  const maxNew = options.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new InvalidArgumentError(`maxNewTokens must be a positive integer, got ${maxNew}.`);
  const engine = source.session();
  const eos = new Set(engine.info.eosTokenIds);
  const t0 = performance.now();
  // Root 0: the same seed gives the same text on any engine, whatever ran on it before or beside it.
  const sampling = { temperature: options.temperature ?? 1, topP: options.topP ?? 1, seed: options.seed ?? 0 };
  let id: number;
  try {
    id = engine.createPath(prompt, sampling, { reserve: maxNew, root: 0 });
  } catch (err) {
    engine.close();
    throw err;
  }
  const tokens: number[] = [];
  const logprobs: number[] = [];
  const entropies: number[] = [];
  let finishReason: GenerateResult['finishReason'] = 'length';
  try {
    while (tokens.length < maxNew) {
      if (options.signal?.aborted) throw new CancelledError();
      const step = await engine.step();
      if (!step) break; // the path was finished or freed by someone else: nothing left to compute
      const r = step.results.find((x) => x.pathId === id);
      if (!r) continue; // a prompt chunk that does not sample yet
      tokens.push(r.token);
      logprobs.push(r.stats.sampledLogprobs[0]);
      entropies.push(r.stats.normEntropy);
      options.onToken?.(r.token, tokens.length - 1);
      if (options.stopAtEos !== false && eos.has(r.token)) {
        finishReason = 'eos';
        break;
      }
    }
  } finally {
    engine.close();
  }
  const ms = performance.now() - t0;
  return {
    tokens,
    logprobs,
    entropies,
    finishReason,
    stats: { prompt_tokens: prompt.length, generated_tokens: tokens.length, ms, tokens_per_s: ms > 0 ? (tokens.length / ms) * 1000 : 0 },
  };
}
