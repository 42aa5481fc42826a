// Logprobs of one sampled token from its token_stats record, in either distribution (types.ts LogprobsMode).
//
// token_stats reads back the top-k (k = engine topK, 20) of the model's distribution and, for the drawn token, its
// log-probability under both the model distribution and the sampling distribution. The sampling distribution of any
// token i in the nucleus follows from those without the full vocabulary: for tokens of one row,
// log q(i) - log q(s) = (log p(i) - log p(s)) / T (the normalisers cancel), so log q(i) = log q(s) + (lp_i - lp_s) / T;
// tokens outside the nucleus (rank >= nucleusSize) have q = 0.
import type { TokenStatsRecord } from '../sample/stats_record.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { tokenText } from './token_text.js';
import type { LogprobsMode, TokenLogprob, TopLogprob } from './types.js';

/** OpenAI's and vLLM's stand-in for log 0 (JSON has no -Infinity). */
export const LOG_ZERO = -9999;

const finite = (x: number): number => (Number.isFinite(x) ? Math.max(x, LOG_ZERO) : LOG_ZERO);

/** The logprob of `token` (at rank `rank` of the top list, or -1) in the chosen distribution. */
function logprobOf(s: TokenStatsRecord, mode: LogprobsMode, T: number, token: number, rawLogprob: number, rank: number): number {
  if (mode === 'raw_logprobs') return finite(rawLogprob);
  const drawn = s.sampledIds[0];
  if (s.greedy) return token === drawn ? 0 : LOG_ZERO;
  if (token === drawn) return finite(s.sampledProposalLogprobs[0]);
  if (rank < 0 || rank >= s.nucleusSize) return LOG_ZERO;
  return finite(s.sampledProposalLogprobs[0] + (rawLogprob - s.sampledLogprobs[0]) / T);
}

/** The chat-style logprobs entry of the drawn token with `top` alternatives. */
/** `temperature`: the one the token was drawn at (processed_logprobs need it). */
export function tokenLogprob(tokenizer: Tokenizer, s: TokenStatsRecord, top: number, mode: LogprobsMode, temperature: number): TokenLogprob {
  const id = s.sampledIds[0];
  const rank = s.topIds.indexOf(id);
  const alternatives: TopLogprob[] = [];
  for (let i = 0; i < top && i < s.topIds.length; i++) {
    alternatives.push({ ...tokenText(tokenizer, s.topIds[i]), logprob: logprobOf(s, mode, temperature, s.topIds[i], s.topLogprobs[i], i) });
  }
  return { ...tokenText(tokenizer, id), logprob: logprobOf(s, mode, temperature, id, s.sampledLogprobs[0], rank), top_logprobs: alternatives };
}
