// Float64 reference for the token_stats kernel: the same definitions (masking, the -80 tempered cut, nucleus with
// ties at the cut kept, the same xxh32-derived Gumbel noise) computed in double precision, plus what a test needs to
// judge f32 results honestly: every candidate's Gumbel key, and the nucleus' cumulative masses.

export const MASKED = -3.0e38;
export const CUT = 80;

/** XXH32 of the 4-byte little-endian word `w` with seed `seed` (the xxHash spec's short-input path). */
export function xxh32Word(seed: number, w: number): number {
  let h = (seed + 374761393 + 4) >>> 0;
  h = (h + Math.imul(w, 3266489917)) >>> 0;
  h = Math.imul((h << 17) | (h >>> 15), 668265263) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 2246822519) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 3266489917) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The uniform in (0, 1) the kernel derives from a hash: (2k + 1) / 2^24, k = the top 23 bits. */
export function unitFromHash(h: number): number {
  return (2 * (h >>> 9) + 1) / 2 ** 24;
}

export function gumbelRef(seed: number, i: number): number {
  return -Math.log(-Math.log(unitFromHash(xxh32Word(seed, i))));
}

export interface SamplingRow {
  temperature: number;
  topP: number;
  randomBits: number;
  nSamples: number;
}

export interface TokenStatsRef {
  maxLogit: number;
  lse: number;
  /** log sum exp(x - max): lse without its large part. */
  logS: number;
  entropy: number;
  normEntropy: number;
  /** E_p[max - x]: how far below the max the mass sits (the exp error bound grows with it). */
  meanGap: number;
  confidence: number;
  topIds: number[];
  topLogprobs: number[];
  greedy: boolean;
  /** Drawable tokens sorted by logit desc, id asc (greedy: the one token of the point mass; else the tempered -80
   * cut applied). */
  order: number[];
  /** Cumulative tempered mass of order[0..j] over the total tempered mass (empty when greedy). */
  cumMass: number[];
  /** Nucleus size, ties at the cut kept (greedy: 1). */
  nucleusSize: number;
  /** Entropy (nats) of the sampling distribution on the reference nucleus (0 when greedy or nothing is drawn). */
  samplingEntropy: number;
  samplingNormEntropy: number;
  /** Total tempered mass sum exp((x - m) / T) over the unmasked tokens. */
  temperedZ: number;
  nSamples: number;
  /** The draw on the reference nucleus. */
  sampledIds: number[];
  sampledLogprobs: number[];
  sampledProposalLogprobs: number[];
  /** The drawn tokens' keys in log-q units (key - log z_nucleus = log q + g); 0 when greedy. */
  sampledKeys: number[];
  /** The largest key of the nucleus tokens not drawn, in log-q units; -Infinity when all were drawn or greedy. */
  threshold: number;
}

/** Gumbel keys (or logits when greedy) of the first `n` tokens of `order`. */
export function sampleKeys(logits: ArrayLike<number>, ref: TokenStatsRef, n: number, row: SamplingRow): Map<number, number> {
  const keys = new Map<number, number>();
  const T = Math.fround(row.temperature);
  for (let j = 0; j < n; j++) {
    const id = ref.order[j];
    keys.set(id, ref.greedy ? logits[id] : (logits[id] - ref.maxLogit) / T + gumbelRef(row.randomBits >>> 0, id));
  }
  return keys;
}

/** The draw (ordered, distinct) from the first `n` tokens of `order`: the largest keys, ties to the lower id. */
export function drawFrom(keys: Map<number, number>, nSamples: number): number[] {
  const out: number[] = [];
  const taken = new Set<number>();
  // nSamples linear scans: the nucleus can be the whole vocabulary, and nSamples is at most 20.
  for (let j = 0; j < nSamples; j++) {
    let best = -1;
    let bestKey = -Infinity;
    for (const [id, k] of keys) {
      if (taken.has(id)) continue;
      if (best < 0 || k > bestKey || (k === bestKey && id < best)) {
        best = id;
        bestKey = k;
      }
    }
    if (best < 0) break;
    out.push(best);
    taken.add(best);
  }
  return out;
}

/** The largest key among the tokens of `keys` not in `drawn` (-Infinity when there is none): the draw's threshold. */
export function largestKeyOutside(keys: Map<number, number>, drawn: readonly number[]): number {
  const taken = new Set(drawn);
  let best = -Infinity;
  for (const [id, k] of keys) if (!taken.has(id) && k > best) best = k;
  return best;
}

/** Nucleus size for T > 0: the smallest prefix of `order` with mass >= topP, extended over ties of its last logit. */
export function nucleusSizeFor(logits: ArrayLike<number>, order: number[], cumMass: number[], topP: number): number {
  if (topP >= 1) return order.length;
  let n = cumMass.findIndex((c) => c >= topP) + 1;
  if (n === 0) n = order.length;
  while (n < order.length && logits[order[n]] === logits[order[n - 1]]) n++;
  return n;
}

/**
 * Entropy of q = softmax(a) over the first `n` tokens of `order`, a = (x - m) / T, with what an f32 error bound needs:
 * zq = sum exp(a), E_q[-a], and the q-weighted and q|a|-weighted means of (6 + 3|a|) (the relative error, in ulps,
 * of one f32 term exp(a): WGSL's exp is within 3 + 2|a| ulp, and a itself is rounded by about |a| ulp).
 */
export function nucleusEntropy(
  logits: ArrayLike<number>,
  order: number[],
  n: number,
  m: number,
  T: number,
): { entropy: number; zq: number; meanGap: number; termUlpZ: number; termUlpW: number } {
  let z = 0;
  let w = 0;
  let ez = 0;
  let ew = 0;
  for (const i of order.slice(0, n)) {
    const a = (logits[i] - m) / T;
    const e = Math.exp(a);
    z += e;
    w += e * a;
    ez += e * (6 + 3 * Math.abs(a));
    ew += e * Math.abs(a) * (6 + 3 * Math.abs(a));
  }
  return { entropy: Math.log(z) - w / z, zq: z, meanGap: -w / z, termUlpZ: ez / z, termUlpW: w === 0 ? 0 : ew / -w };
}

export function tokenStatsRef(logits: ArrayLike<number>, topK: number, row: SamplingRow, maxSamples: number): TokenStatsRef {
  const V = logits.length;
  const T = Math.fround(row.temperature);
  const topP = Math.fround(row.topP);
  const greedy = !(T > 0);
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] >= MASKED && logits[i] > m) m = logits[i];
  let s = 0;
  let u = 0;
  let z = 0;
  for (let i = 0; i < V; i++) {
    const x = logits[i];
    if (!(x >= MASKED)) continue;
    const e = Math.exp(x - m);
    s += e;
    u += e * (x - m);
    if (!greedy) z += Math.exp((x - m) / T);
  }
  const logS = Math.log(s);
  const lse = m + logS;
  const entropy = logS - u / s;
  // Masked (-inf) logits rank as -FLT_MAX, tied among themselves (by id), as in the kernel's lists.
  const val = Float64Array.from(logits, (x) => Math.max(x, -Number.MAX_VALUE));
  const all = Array.from({ length: V }, (_, i) => i).sort((a, b) => val[b] - val[a] || a - b);
  const topIds = all.slice(0, Math.min(topK, V));
  const topLogprobs = topIds.map((i) => logits[i] - m - logS);
  const confidence = -topLogprobs.reduce((a, b) => a + b, 0) / topIds.length;

  const cut = greedy ? MASKED : m - CUT * T;
  // Greedy: the limit of softmax(x / T) as T -> 0 is a point mass on the largest logit (the lower id among ties).
  const order = all.filter((i) => logits[i] >= MASKED && logits[i] >= cut).slice(0, greedy ? 1 : V);
  const cumMass: number[] = [];
  if (!greedy) {
    let c = 0;
    for (const i of order) {
      c += Math.exp((logits[i] - m) / T) / z;
      cumMass.push(c);
    }
  }
  const nS = Math.min(row.nSamples, maxSamples);
  const nucleusSize = nS === 0 ? 0 : greedy ? order.length : nucleusSizeFor(logits, order, cumMass, topP);
  const samplingEntropy = greedy || nS === 0 ? 0 : nucleusEntropy(logits, order, nucleusSize, m, T).entropy;
  const ref: TokenStatsRef = {
    maxLogit: m,
    lse,
    logS,
    entropy,
    normEntropy: V === 1 ? 0 : entropy / Math.log(V),
    meanGap: -u / s,
    confidence,
    topIds,
    topLogprobs,
    greedy,
    order,
    cumMass,
    nucleusSize,
    samplingEntropy,
    samplingNormEntropy: V === 1 ? 0 : samplingEntropy / Math.log(V),
    temperedZ: z,
    nSamples: nS,
    sampledIds: [],
    sampledLogprobs: [],
    sampledProposalLogprobs: [],
    sampledKeys: [],
    threshold: -Infinity,
  };
  const keys = sampleKeys(logits, ref, nucleusSize, row);
  ref.sampledIds = drawFrom(keys, nS);
  const zNuc = greedy ? 1 : nucleusSize > 0 ? cumMass[nucleusSize - 1] * z : 1;
  ref.sampledKeys = ref.sampledIds.map((i) => (greedy ? 0 : keys.get(i)! - Math.log(zNuc)));
  if (!greedy) ref.threshold = largestKeyOutside(keys, ref.sampledIds) - Math.log(zNuc);
  ref.sampledLogprobs = ref.sampledIds.map((i) => logits[i] - m - logS);
  ref.sampledProposalLogprobs = ref.sampledIds.map((i) => (greedy ? 0 : (logits[i] - m) / T - Math.log(zNuc)));
  return ref;
}
