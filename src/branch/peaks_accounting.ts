// Exact token accounting of a confidence-peak run: rows the engine computed against what the seed's re-encoding
// implementation and N independent traces would compute for the same traces.
import type { PeaksTrace } from './peaks_types.js';

/**
 * Token accounting of a run, from its trace records and the engine's row counter. Counts are rows: one row computes
 * one token position (its K/V, and logits where it samples). A trace of n generated tokens started from a P-token
 * prompt costs P + n - 1 rows from scratch (the last drawn token is never fed back).
 */
export interface PeaksAccounting {
  /** num_tokens summed: what N independent traces of these lengths generate (the seed's "without prefix caching"). */
  generated_tokens: number;
  /** new_tokens summed: tokens the traces drew themselves (the seed's "with prefix caching"). */
  new_tokens: number;
  /** Rows the engine computed during the run (its counter, not an estimate). */
  tokens_computed: number;
  /**
   * Rows the seed's re-encoding implementation computes for the same traces: each trace prefills the prompt and its
   * inherited prefix (P + prefix_length rows, the last one sampling the first new token), then decodes new_tokens - 1.
   */
  tokens_reencode: number;
  /** Rows N independent traces of the same lengths compute: P + num_tokens - 1 each. Equal to tokens_reencode row
   * for row (re-encoding a prefix costs what generating it did; only prefill vs decode differs, i.e. wall-clock). */
  tokens_independent: number;
  /** tokens_reencode - tokens_computed. */
  tokens_saved: number;
  /** 1 - tokens_computed / tokens_reencode (0 when nothing was computed). */
  savings_vs_reencode: number;
  /** 1 - tokens_computed / tokens_independent. */
  savings_vs_independent: number;
}

export function peaksAccounting(
  traces: readonly Pick<PeaksTrace, 'num_tokens' | 'new_tokens' | 'prefix_length'>[],
  promptLength: number,
  tokensComputed: number,
): PeaksAccounting {
  let generated = 0;
  let fresh = 0;
  let reencode = 0;
  let independent = 0;
  for (const t of traces) {
    generated += t.num_tokens;
    fresh += t.new_tokens;
    if (t.num_tokens === 0) continue;
    reencode += promptLength + t.prefix_length + Math.max(0, t.new_tokens - 1);
    independent += promptLength + t.num_tokens - 1;
  }
  const saving = (base: number) => (base > 0 ? 1 - tokensComputed / base : 0);
  return {
    generated_tokens: generated,
    new_tokens: fresh,
    tokens_computed: tokensComputed,
    tokens_reencode: reencode,
    tokens_independent: independent,
    tokens_saved: reencode - tokensComputed,
    savings_vs_reencode: saving(reencode),
    savings_vs_independent: saving(independent),
  };
}
