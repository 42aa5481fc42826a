// The per-row record that the token_stats kernel writes and the host reads back: the only per-step readback.
// The layout is declared here once; the kernel receives every offset as an override constant computed from it, so
// shader and host cannot disagree. One record is `stride` 32-bit words; floats are stored as f32, token ids and counts
// as u32 bit patterns in the same buffer (read it through both a Float32Array and a Uint32Array).
//
// The sampling input is a second small table, (rows, 4) words: [temperature f32, topP f32, randomBits u32, nSamples u32]
// (writeSamplingRow).

/** The largest top-k list and the largest number of samples per row the kernel supports (its private list size). */
export const LIST_CAP = 20;
/** Token id written where there is no token (top-k slots past the vocabulary, samples past the nucleus). */
export const NO_TOKEN = 0xffffffff;
/** Words per row of the sampling input. */
export const SAMPLING_ROW_WORDS = 4;

/** Word offsets of one record's fields. Scalars are one word, arrays `topK` or `maxSamples` words. */
export interface TokenStatsOffsets {
  maxLogit: number; // f32
  logSumExp: number; // f32, of the model distribution (no temperature)
  entropy: number; // f32, nats
  normEntropy: number; // f32, entropy / ln V
  confidence: number; // f32, -mean of the top-k log-probs (DeepConf)
  sampledCount: number; // u32, min(nSamples, nucleusSize)
  nucleusSize: number; // u32, tokens the draw could pick from
  temperature: number; // f32, echo of the row's temperature (0: greedy)
  samplingEntropy: number; // f32, nats, of the sampling distribution (tempered, nucleus; 0 when greedy)
  samplingNormEntropy: number; // f32, samplingEntropy / ln V
  threshold: number; // f32, the (sampledCount+1)-th perturbed key in log-q units (-inf: every drawable token drawn)
  topIds: number; // (topK) u32
  topLogprobs: number; // (topK) f32
  sampledIds: number; // (maxSamples) u32
  sampledLogprobs: number; // (maxSamples) f32, under the model distribution
  sampledProposalLogprobs: number; // (maxSamples) f32, under the sampling distribution (tempered, nucleus)
  sampledKeys: number; // (maxSamples) f32, the drawn tokens' perturbed keys log q + g, in draw order
}

export interface TokenStatsLayout {
  readonly topK: number;
  readonly maxSamples: number;
  /** 32-bit words per record (a multiple of 4, so records stay 16-byte aligned). */
  readonly stride: number;
  readonly byteStride: number;
  readonly offsets: Readonly<TokenStatsOffsets>;
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > LIST_CAP) {
    throw new RangeError(`token stats ${name} must be an integer in 1..${LIST_CAP}, got ${v}`);
  }
}

export function tokenStatsLayout(topK: number, maxSamples: number): TokenStatsLayout {
  checkCount('topK', topK);
  checkCount('maxSamples', maxSamples);
  const topIds = 11;
  const topLogprobs = topIds + topK;
  const sampledIds = topLogprobs + topK;
  const sampledLogprobs = sampledIds + maxSamples;
  const sampledProposalLogprobs = sampledLogprobs + maxSamples;
  const sampledKeys = sampledProposalLogprobs + maxSamples;
  const stride = Math.ceil((sampledKeys + maxSamples) / 4) * 4;
  const offsets: TokenStatsOffsets = {
    maxLogit: 0,
    logSumExp: 1,
    entropy: 2,
    normEntropy: 3,
    confidence: 4,
    sampledCount: 5,
    nucleusSize: 6,
    temperature: 7,
    samplingEntropy: 8,
    samplingNormEntropy: 9,
    threshold: 10,
    topIds,
    topLogprobs,
    sampledIds,
    sampledLogprobs,
    sampledProposalLogprobs,
    sampledKeys,
  };
  return { topK, maxSamples, stride, byteStride: stride * 4, offsets: Object.freeze(offsets) };
}

export interface TokenStatsRecord {
  maxLogit: number;
  logSumExp: number;
  /** Entropy (nats) of the model distribution softmax(logits), and entropy / ln V. */
  entropy: number;
  normEntropy: number;
  /**
   * Entropy (nats) of the distribution the row samples from (softmax(logits / T) renormalised on the top-p nucleus),
   * and entropy / ln V: 0 at temperature 0 (a point mass) and for a one-token nucleus; equal to `entropy` at T = 1,
   * top-p 1. EAB branches on samplingNormEntropy. 0 when the row draws nothing (nSamples 0).
   */
  samplingEntropy: number;
  samplingNormEntropy: number;
  confidence: number;
  /** Token ids, best first; shorter than topK only when the vocabulary is. */
  topIds: number[];
  topLogprobs: number[];
  /** The drawn tokens in draw order (distinct); length min(nSamples, nucleusSize): 1 at most when greedy. */
  sampledIds: number[];
  /** log p(token) under the model distribution softmax(logits). */
  sampledLogprobs: number[];
  /** log q(token) under the sampling distribution (softmax(logits / T) renormalised on the nucleus); greedy: 0 (q is
   * a point mass on the one drawn token). */
  sampledProposalLogprobs: number[];
  /**
   * The drawn tokens' Gumbel keys log q + g (g ~ Gumbel(0, 1)), in draw order (decreasing); 0 when greedy. The first k
   * of them with threshold sampledKeys[k] (or `threshold` for k = all) are a Gumbel-top-k draw of their own.
   */
  sampledKeys: number[];
  /**
   * The draw's threshold kappa: the largest key among the tokens not drawn (the (n+1)-th key), in the same units, so a
   * drawn token's inclusion probability given kappa is 1 - exp(-q e^-kappa) (analysis/inclusion.ts). -Infinity when
   * every drawable token was drawn (greedy: the point mass; a nucleus no larger than nSamples). NaN only from an
   * engine without joint keys (remote/token_stats.ts).
   */
  threshold: number;
  /** Tokens the draw could pick from (nucleus size; 1 for greedy: the point mass), 0 when nothing was drawn. */
  nucleusSize: number;
  /** The row's temperature 0: the samples are the highest logits, no randomness. */
  greedy: boolean;
}

/** Decodes `rows` records from a readback of the stats buffer ((rows, layout.stride) words). */
export function decodeTokenStats(buf: ArrayBuffer, rows: number, layout: TokenStatsLayout): TokenStatsRecord[] {
  if (buf.byteLength < rows * layout.byteStride) {
    throw new RangeError(`token stats readback holds ${buf.byteLength} bytes, ${rows} rows need ${rows * layout.byteStride}`);
  }
  const f = new Float32Array(buf, 0, rows * layout.stride);
  const u = new Uint32Array(buf, 0, rows * layout.stride);
  const o = layout.offsets;
  const out: TokenStatsRecord[] = [];
  for (let r = 0; r < rows; r++) {
    const b = r * layout.stride;
    const topIds: number[] = [];
    const topLogprobs: number[] = [];
    for (let j = 0; j < layout.topK; j++) {
      const id = u[b + o.topIds + j];
      if (id === NO_TOKEN) break;
      topIds.push(id);
      topLogprobs.push(f[b + o.topLogprobs + j]);
    }
    const n = Math.min(u[b + o.sampledCount], layout.maxSamples);
    const sampledIds: number[] = [];
    const sampledLogprobs: number[] = [];
    const sampledProposalLogprobs: number[] = [];
    const sampledKeys: number[] = [];
    for (let j = 0; j < n; j++) {
      sampledIds.push(u[b + o.sampledIds + j]);
      sampledLogprobs.push(f[b + o.sampledLogprobs + j]);
      sampledProposalLogprobs.push(f[b + o.sampledProposalLogprobs + j]);
      sampledKeys.push(f[b + o.sampledKeys + j]);
    }
    out.push({
      maxLogit: f[b + o.maxLogit],
      logSumExp: f[b + o.logSumExp],
      entropy: f[b + o.entropy],
      normEntropy: f[b + o.normEntropy],
      samplingEntropy: f[b + o.samplingEntropy],
      samplingNormEntropy: f[b + o.samplingNormEntropy],
      confidence: f[b + o.confidence],
      topIds,
      topLogprobs,
      sampledIds,
      sampledLogprobs,
      sampledProposalLogprobs,
      sampledKeys,
      threshold: f[b + o.threshold],
      nucleusSize: u[b + o.nucleusSize],
      greedy: !(f[b + o.temperature] > 0),
    });
  }
  return out;
}

/** Writes one row of the sampling input ((rows, 4) words) into `target`. */
export function writeSamplingRow(
  target: ArrayBuffer,
  row: number,
  s: { temperature: number; topP: number; randomBits: number; nSamples: number },
): void {
  const v = new DataView(target, row * SAMPLING_ROW_WORDS * 4, SAMPLING_ROW_WORDS * 4);
  v.setFloat32(0, s.temperature, true);
  v.setFloat32(4, s.topP, true);
  v.setUint32(8, s.randomBits >>> 0, true);
  v.setUint32(12, s.nSamples, true);
}

/**
 * The log-probability that a Gumbel-top-k draw (sampling without replacement) produced exactly this ordered
 * sequence: Plackett-Luce, sum_j [q_j - log(1 - sum_{i<j} exp(q_i))] with q the sampling-distribution log-probs.
 * The remaining mass is floored at exp(q_j), since token j is still in it: f32 rounding of the q's can otherwise make
 * 1 - sum go to or below zero after the draw has taken nearly all the mass. A greedy record is certain: 0.
 */
export function proposalLogProb(record: Pick<TokenStatsRecord, 'sampledProposalLogprobs' | 'greedy'>): number {
  if (record.greedy) return 0;
  let total = 0;
  let taken = 0;
  for (const q of record.sampledProposalLogprobs) {
    const p = Math.exp(q);
    total += 1 - taken > p ? q - Math.log1p(-taken) : 0;
    taken += p;
  }
  return total;
}
