// A TokenStatsRecord from what a server reports for one generated token: the sampled token's log-prob and the top-k
// log-probs under the model distribution. What the local token_stats kernel computes exactly over the whole
// vocabulary is rebuilt here from the top k, with the unknown tail bounded:
//
//   entropy: H = H_top + H_tail, with H_top = -sum_{top k} p log p exact and the tail mass R = 1 - sum_{top k} p spread
//     over the other V - k tokens, each at most p_k (the k-th probability). H_tail lies between
//       lower: the tail packed into as few tokens as possible (floor(R / p_k) tokens at p_k and the rest in one), and
//       upper: the tail spread evenly, R log((V - k) / R).
//     (Entropy is concave, so its minimum over {0 <= p_j <= p_k, sum p_j = R} is at a vertex: all but one p_j at a
//     bound.) The record's entropy is the midpoint; both bounds go with the result. k >= V makes them meet.
//   logits: servers report log-probs only, so the record's "logits" are the log-probs (logSumExp 0, maxLogit the top
//     log-prob): the same differences, shifted by the unknown log-normaliser.
//   draws: the first token is the one the server sampled (the path goes on with it). Further tokens for a branch are
//     drawn here, without replacement, from the top-k tokens of the tempered nucleus (Gumbel-top-k with the path's
//     random stream), so siblings never duplicate; a tail token cannot be drawn as a sibling.
//   proposal log-probs q: softmax(log p / T) renormalised on the nucleus, computed on the top k with the tail's
//     tempered mass taken at its even-spread value; exact when T = 1 and top-p = 1, or when k covers the vocabulary.
//   sampling entropy (what EAB branches on): the entropy of that q, the tail (when in the nucleus) spread evenly; at
//     T = 1, top-p 1 the record's model entropy itself. Temperature 0 is a point mass, as on the local engine: the
//     server's token only, no sibling draws, q = 0, sampling entropy 0.
import type { TokenStatsRecord } from '../sample/stats_record.js';
import type { TokenEvent } from './protocol.js';

export interface EntropyBounds {
  /** Nats. */
  lower: number;
  upper: number;
}

export interface RemoteTokenStats {
  stats: TokenStatsRecord;
  /** Bounds on the natural-log entropy; `stats.entropy` is their midpoint. Equal when k covers the vocabulary. */
  entropyBounds: EntropyBounds;
}

/** Bounds on -sum p log p over the V - k tokens outside the top k, given their mass `rest` and the largest `cap`. */
export function tailEntropyBounds(rest: number, cap: number, others: number): EntropyBounds {
  if (!(rest > 1e-12) || others <= 0 || !(cap > 0)) return { lower: 0, upper: 0 };
  // f32 top-k probabilities can sum a hair above or below the truth: keep the bounds well-defined.
  const r = Math.min(rest, cap * others);
  const full = Math.floor(r / cap);
  const rem = r - full * cap;
  const lower = full * -cap * Math.log(cap) + (rem > 0 ? -rem * Math.log(rem) : 0);
  const upper = r * Math.log(others / r);
  return { lower: Math.min(lower, upper), upper };
}

export interface DrawOptions {
  temperature: number;
  topP: number;
  /** Tokens to draw without replacement (the first is the server's). */
  draws: number;
  vocabSize: number;
  /** Length of the record's top-k lists. */
  topK: number;
  /** Uniform doubles in [0, 1) from the path's random stream. */
  uniform: () => number;
}

/** The record of one reported token, with `draws - 1` siblings drawn on the client. */
export function remoteTokenStats(ev: TokenEvent, o: DrawOptions): RemoteTokenStats {
  const V = o.vocabSize;
  const k = ev.topIds.length;
  const probs = ev.topLogprobs.map((l) => Math.exp(l));
  let hTop = 0;
  let mass = 0;
  for (const p of probs) {
    if (p > 0) hTop -= p * Math.log(p);
    mass += p;
  }
  const tail = tailEntropyBounds(1 - mass, probs[k - 1] ?? 0, V - k);
  const entropyBounds = { lower: hTop + tail.lower, upper: hTop + tail.upper };
  const entropy = (entropyBounds.lower + entropyBounds.upper) / 2;
  const recK = Math.min(o.topK, k);
  const confidence = recK > 0 ? -ev.topLogprobs.slice(0, recK).reduce((a, x) => a + x, 0) / recK : 0;

  const greedy = !(o.temperature > 0);
  // Proposal distribution on the top k: tempered, then cut to the nucleus. The tail's tempered mass is taken as if
  // spread evenly (exact at T = 1 and when the tail is empty).
  const T = greedy ? 1 : o.temperature;
  const tailMass = Math.max(0, 1 - mass);
  const tailTempered = V > k && tailMass > 0 ? (V - k) * Math.pow(tailMass / (V - k), 1 / T) : 0;
  const tempered = ev.topLogprobs.map((l) => Math.exp(l / T));
  const z = tempered.reduce((a, x) => a + x, 0) + tailTempered;
  const q = tempered.map((x) => x / z);
  let nucleus = k;
  if (o.topP < 1) {
    let acc = 0;
    for (let i = 0; i < k; i++) {
      acc += q[i];
      if (acc >= o.topP) {
        nucleus = i + 1;
        break;
      }
    }
  }
  const nucleusMass = nucleus < k || tailTempered === 0 ? q.slice(0, nucleus).reduce((a, x) => a + x, 0) : 1;
  const logq = (id: number, logp: number): number => {
    if (greedy) return 0;
    const i = ev.topIds.indexOf(id);
    if (i >= 0 && i < nucleus) return Math.log(q[i] / nucleusMass);
    // Outside the top k (a tail token the server drew): its tempered share at its own log-prob.
    return logp / T - Math.log(z) - Math.log(nucleusMass);
  };

  const sampledIds = [ev.id];
  const sampledLogprobs = [ev.logprob];
  if (o.draws > 1 && !greedy) {
    // Gumbel-top-k over the nucleus minus the server's token: the largest log q + Gumbel noise, without replacement.
    const keys: { id: number; lp: number; key: number }[] = [];
    for (let i = 0; i < nucleus; i++) {
      if (ev.topIds[i] === ev.id) continue;
      const u = Math.max(o.uniform(), 1e-300);
      const score = greedy ? ev.topLogprobs[i] : Math.log(q[i]) - Math.log(-Math.log(u));
      keys.push({ id: ev.topIds[i], lp: ev.topLogprobs[i], key: score });
    }
    keys.sort((a, b) => b.key - a.key);
    for (const c of keys.slice(0, o.draws - 1)) {
      sampledIds.push(c.id);
      sampledLogprobs.push(c.lp);
    }
  }
  let samplingEntropy = 0;
  if (!greedy && T === 1 && o.topP >= 1) samplingEntropy = entropy;
  else if (!greedy) {
    for (let i = 0; i < nucleus; i++) if (q[i] > 0) samplingEntropy -= (q[i] / nucleusMass) * Math.log(q[i] / nucleusMass);
    if (nucleus === k && tailTempered > 0) {
      const share = tailTempered / z / nucleusMass; // the tail's part of the nucleus, over V - k tokens
      samplingEntropy -= share * Math.log(share / (V - k));
    }
  }
  const stats: TokenStatsRecord = {
    maxLogit: ev.topLogprobs[0] ?? ev.logprob,
    logSumExp: 0,
    entropy,
    normEntropy: entropy / Math.log(V),
    samplingEntropy,
    samplingNormEntropy: samplingEntropy / Math.log(V),
    confidence,
    topIds: ev.topIds.slice(0, o.topK),
    topLogprobs: ev.topLogprobs.slice(0, o.topK),
    sampledIds,
    sampledLogprobs,
    sampledProposalLogprobs: sampledIds.map((id, i) => logq(id, sampledLogprobs[i])),
    // The server draws the first token itself and the siblings are drawn here with fresh noise: no joint Gumbel keys,
    // so no threshold (greedy: the point mass, certain). Inclusion-weighted estimates count a branch point without a
    // threshold as one draw (analysis/branched.ts).
    sampledKeys: sampledIds.map(() => (greedy ? 0 : NaN)),
    threshold: greedy ? -Infinity : NaN,
    nucleusSize: greedy ? 1 : nucleus < k || V <= k ? nucleus : V,
    greedy,
  };
  return { stats, entropyBounds };
}
