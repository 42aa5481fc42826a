// The remote engine's pure parts: entropy bounds from a top-k list, sibling draws without replacement, and the two
// dialects' parsing (llama.cpp's id-carrying shape and the legacy OpenAI shape vLLM sends).
import { describe, expect, it } from 'vitest';
import { RemoteFeatureError } from '../../src/errors.js';
import { llamaCppDialect, openAiDialect, type TokenEvent } from '../../src/remote/protocol.js';
import { remoteTokenStats } from '../../src/remote/token_stats.js';
import { rootRng } from '../../src/sample/rng.js';

/** A random distribution over V tokens with a peaked head (softmax of scaled normals), as a TokenEvent with top k. */
function randomEvent(rng: ReturnType<typeof rootRng>, V: number, k: number, scale: number): { ev: TokenEvent; probs: number[] } {
  const logits = Array.from({ length: V }, () => {
    const u = Math.max(rng.nextFloat(), 1e-12);
    return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
  });
  const m = Math.max(...logits);
  const z = logits.reduce((a, l) => a + Math.exp(l - m), 0);
  const logp = logits.map((l) => l - m - Math.log(z));
  const order = logp.map((_, i) => i).sort((a, b) => logp[b] - logp[a]);
  const top = order.slice(0, k);
  return {
    ev: { type: 'token', index: 0, id: top[0], logprob: logp[top[0]], topIds: top, topLogprobs: top.map((i) => logp[i]) },
    probs: logp.map(Math.exp),
  };
}

const entropy = (p: number[]) => p.reduce((a, x) => a - (x > 0 ? x * Math.log(x) : 0), 0);

describe('remote token stats', () => {
  it('bounds the true entropy from the top k, and meet it when k covers the vocabulary', () => {
    const rng = rootRng(7, 0);
    for (let trial = 0; trial < 200; trial++) {
      const V = 50 + Math.floor(rng.nextFloat() * 500);
      const k = 1 + Math.floor(rng.nextFloat() * 30);
      const { ev, probs } = randomEvent(rng, V, Math.min(k, V), 0.5 + 4 * rng.nextFloat());
      const H = entropy(probs);
      const r = remoteTokenStats(ev, { temperature: 1, topP: 1, draws: 1, vocabSize: V, topK: 20, uniform: () => rng.nextFloat() });
      // Float64 throughout: only summation rounding separates the bound from the truth.
      expect(r.entropyBounds.lower).toBeLessThanOrEqual(H + 1e-9);
      expect(r.entropyBounds.upper).toBeGreaterThanOrEqual(H - 1e-9);
      expect(r.stats.entropy).toBeCloseTo((r.entropyBounds.lower + r.entropyBounds.upper) / 2, 12);
      const full = randomEvent(rootRng(trial, 1), V, V, 2);
      const f = remoteTokenStats(full.ev, { temperature: 1, topP: 1, draws: 1, vocabSize: V, topK: 20, uniform: () => 0.5 });
      expect(f.entropyBounds.upper - f.entropyBounds.lower).toBeLessThan(1e-9);
      expect(f.stats.entropy).toBeCloseTo(entropy(full.probs), 9);
    }
  });

  it('draws siblings without replacement from the nucleus, the server token first, with q = p at T = 1', () => {
    const rng = rootRng(3, 0);
    const { ev } = randomEvent(rng, 300, 20, 2);
    const seen = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const r = remoteTokenStats(ev, { temperature: 1, topP: 1, draws: 4, vocabSize: 300, topK: 20, uniform: () => rng.nextFloat() });
      const ids = r.stats.sampledIds;
      expect(ids[0]).toBe(ev.id);
      expect(new Set(ids).size).toBe(4);
      for (const id of ids) expect(ev.topIds).toContain(id);
      r.stats.sampledIds.forEach((id, j) => expect(r.stats.sampledProposalLogprobs[j]).toBeCloseTo(r.stats.sampledLogprobs[j], 9));
      seen.set(ids[1], (seen.get(ids[1]) ?? 0) + 1);
    }
    // The second draw follows p renormalised on the top k without the first: its most likely token comes up most.
    const best = [...seen.entries()].sort((a, b) => b[1] - a[1])[0][0];
    expect(best).toBe(ev.topIds[1]);
    // Nucleus 0.5 on a peaked list keeps few tokens: no sibling from outside it.
    const peaked = remoteTokenStats(ev, { temperature: 1, topP: 0.5, draws: 5, vocabSize: 300, topK: 20, uniform: () => rng.nextFloat() });
    expect(peaked.stats.sampledIds.length).toBeLessThanOrEqual(peaked.stats.nucleusSize);
  });

  it('temperature 0 is a point mass (no sibling, q = 0, sampling entropy 0); the sampling entropy is q\'s otherwise', () => {
    const rng = rootRng(5, 0);
    const V = 40;
    const { ev } = randomEvent(rng, V, V, 2); // k covers the vocabulary: q is known exactly
    const g = remoteTokenStats(ev, { temperature: 0, topP: 1, draws: 4, vocabSize: V, topK: 20, uniform: () => rng.nextFloat() });
    expect(g.stats.sampledIds).toEqual([ev.id]);
    expect(g.stats.sampledProposalLogprobs).toEqual([0]);
    expect([g.stats.samplingEntropy, g.stats.nucleusSize]).toEqual([0, 1]);
    expect(g.stats.entropy).toBeGreaterThan(0);
    for (const [T, topP] of [[1, 1], [0.6, 1], [1.3, 0.8]]) {
      const r = remoteTokenStats(ev, { temperature: T, topP, draws: 1, vocabSize: V, topK: 20, uniform: () => 0.5 });
      // Float64 truth: softmax(log p / T), cut to the smallest prefix reaching topP, renormalised.
      const w = ev.topLogprobs.map((l) => Math.exp(l / T));
      const z = w.reduce((a, x) => a + x, 0);
      let n = 0;
      for (let c = 0; n < V && (topP >= 1 || c < topP); n++) c += w[n] / z;
      const zn = w.slice(0, n).reduce((a, x) => a + x, 0);
      expect(r.stats.samplingEntropy).toBeCloseTo(entropy(w.slice(0, n).map((x) => x / zn)), 9);
    }
  });
});

describe('remote dialects', () => {
  it('reads llama.cpp chunks: tokens with ids, per-token timings, the stop', () => {
    const ev = llamaCppDialect.parse({
      index: 1,
      tokens: [261],
      stop: true,
      stop_type: 'eos',
      timings: { prompt_n: 1, cache_n: 11, predicted_n: 3 },
      completion_probabilities: [{ id: 261, logprob: -0.5, top_logprobs: [{ id: 261, logprob: -0.5 }, { id: 7, logprob: -1.2 }] }],
    });
    expect(ev).toEqual([
      { type: 'token', index: 1, id: 261, logprob: -0.5, topIds: [261, 7], topLogprobs: [-0.5, -1.2] },
      { type: 'usage', index: 1, promptComputed: 1, promptCached: 11, generated: 3 },
      { type: 'end', index: 1, reason: 'eos' },
    ]);
    expect(() => llamaCppDialect.parse({ tokens: [5], stop: false })).toThrow(RemoteFeatureError);
  });

  it('reads the legacy OpenAI shape with token_id names (vLLM) and its usage chunk, and refuses text names', () => {
    const chunk = {
      choices: [
        {
          index: 0,
          text: ' a',
          logprobs: { tokens: ['token_id:261'], token_logprobs: [-0.25], top_logprobs: [{ 'token_id:7': -2, 'token_id:261': -0.25 }] },
          finish_reason: null,
        },
      ],
    };
    expect(openAiDialect.parse(chunk)).toEqual([{ type: 'token', index: 0, id: 261, logprob: -0.25, topIds: [261, 7], topLogprobs: [-0.25, -2] }]);
    expect(openAiDialect.parse({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 8 } } })).toEqual([
      { type: 'usage', index: -1, promptComputed: 4, promptCached: 8, generated: 5 },
    ]);
    const named = { choices: [{ index: 0, text: ' a', logprobs: { tokens: [' a'], token_logprobs: [-0.25], top_logprobs: [{ ' a': -0.25 }] } }] };
    expect(() => openAiDialect.parse(named)).toThrow(RemoteFeatureError);
    expect(() => openAiDialect.parse({ choices: [{ index: 0, text: ' a', logprobs: null }] })).toThrow(RemoteFeatureError);
  });
});
