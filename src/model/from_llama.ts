// LlamaWeights (what the llama/mistral/qwen2 loaders and the llama2.c reader produce) as the canonical ModelWeights the
// GPU model reads: a Llama is the spec's plainest case (RMSNorm, SwiGLU, sequential residual, default RoPE over the
// whole head, optional q/k/v bias).
import type { LlamaWeights } from './weights.js';
import { validateSpec, type Family, type LayerSpec, type ModelSpec, type ModelWeights } from './spec.js';

export function specFromLlamaConfig(w: LlamaWeights): ModelSpec {
  const c = w.config;
  const layer: LayerSpec = {
    attention: 'global',
    window: null,
    rope: { theta: c.ropeTheta, rotaryDim: c.headDim, scaling: { type: 'default' }, attentionFactor: 1, freqFactors: null },
  };
  const family: Family = c.architecture;
  return validateSpec(
    {
      family,
      sourceArchitecture: c.architecture,
      dim: c.dim,
      vocabSize: c.vocabSize,
      nLayers: c.nLayers,
      maxSeqLen: c.maxSeqLen,
      norm: { kind: 'rms', eps: c.normEps, weightOffset: 0, bias: false },
      attention: {
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        bias: { q: c.qkvBias, k: c.qkvBias, v: c.qkvBias, o: false },
        qkNorm: null,
        queryScale: 1 / Math.sqrt(c.headDim),
        softCap: null,
      },
      mlp: { hiddenDim: c.hiddenDim, activation: 'silu', gated: true, bias: { gate: false, up: false, down: false } },
      residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
      positions: 'rope',
      layers: Array.from({ length: c.nLayers }, () => layer),
      embedScale: 1,
      logitScale: 1,
      finalSoftCap: null,
      tiedEmbeddings: c.tiedEmbeddings,
      bosTokenId: c.bosTokenId,
      eosTokenIds: c.eosTokenIds,
    },
    'llama config',
  );
}

/** The same arrays, re-labelled; nothing is copied. */
export function modelWeightsFromLlama(w: LlamaWeights): ModelWeights {
  const spec = specFromLlamaConfig(w);
  const norm = (weight: Float32Array) => ({ weight, bias: null });
  return {
    spec,
    embed: w.embed,
    posEmbed: null,
    layers: w.layers.map((l) => ({
      attnNorm: norm(l.attnNorm),
      attnPostNorm: null,
      mlpNorm: norm(l.mlpNorm),
      mlpPostNorm: null,
      wq: l.wq,
      wk: l.wk,
      wv: l.wv,
      bq: l.bq ?? null,
      bk: l.bk ?? null,
      bv: l.bv ?? null,
      wo: l.wo,
      bo: null,
      qNorm: null,
      kNorm: null,
      wGate: l.wGate,
      bGate: null,
      wUp: l.wUp,
      bUp: null,
      wDown: l.wDown,
      bDown: null,
    })),
    finalNorm: norm(w.finalNorm),
    lmHead: w.lmHead,
  };
}

/** ModelWeights as they are, LlamaWeights converted. */
export function asModelWeights(w: ModelWeights | LlamaWeights): ModelWeights {
  return 'spec' in w ? w : modelWeightsFromLlama(w);
}
