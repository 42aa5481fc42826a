// Seeded random weights (LlamaWeights from a ModelConfig, ModelWeights from any ModelSpec) in the shapes of real models, for speed and memory work where the real weights cannot
// be brought in. Matrices are N(0, std) (std 0.02 like the usual init) and norms 1, so activations stay in a sane
// range through many layers; the text they produce is noise. Deterministic per (config, seed).
import { validateConfig } from './config_parse.js';
import type { BaseConfig, ModelConfig } from './config.js';
import type { LlamaLayerWeights, LlamaWeights } from './weights.js';
import { BIAS_SLOTS, expectedShape } from './weight_maps.js';
import type { LayerSlot } from './weight_maps.js';
import { layerNormSlots, specSizes, validateSpec } from './spec.js';
import type { LayerSpec, LayerWeights, ModelSpec, ModelWeights, NormWeights } from './spec.js';

/** SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json). */
export const SMOLLM2_135M: ModelConfig = validateConfig(
  {
    architecture: 'llama',
    dim: 576,
    hiddenDim: 1536,
    nLayers: 30,
    nHeads: 9,
    nKvHeads: 3,
    vocabSize: 49152,
    maxSeqLen: 8192,
    normEps: 1e-5,
    ropeTheta: 100000,
    tiedEmbeddings: true,
    qkvBias: false,
    bosTokenId: 1,
    eosTokenIds: [2],
  },
  'SMOLLM2_135M',
);

/** Qwen2.5-0.5B (Qwen/Qwen2.5-0.5B config.json; use_sliding_window is false there, so the full context applies). */
export const QWEN25_05B: ModelConfig = validateConfig(
  {
    architecture: 'qwen2',
    dim: 896,
    hiddenDim: 4864,
    nLayers: 24,
    nHeads: 14,
    nKvHeads: 2,
    vocabSize: 151936,
    maxSeqLen: 32768,
    normEps: 1e-6,
    ropeTheta: 1000000,
    tiedEmbeddings: true,
    qkvBias: true,
    bosTokenId: 151643,
    eosTokenIds: [151643],
  },
  'QWEN25_05B',
);

/** A config with some sizes replaced (e.g. fewer layers for a quick run), checked again. */
export function withConfig(base: ModelConfig, changes: Partial<BaseConfig>): ModelConfig {
  const { headDim: _h, kvGroup: _g, qDim: _q, kvDim: _k, qkvDim: _d, ...rest } = base;
  return validateConfig({ ...rest, ...changes }, 'withConfig');
}

/** xoshiro128** (Blackman & Vigna) seeded through splitmix32: fast, deterministic, uniform in (0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  const split = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split() || 1;
  return () => {
    const m = Math.imul(b, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    return (r + 0.5) / 4294967296;
  };
}

/** Fills `out` with N(0, std) values (Marsaglia's polar method: no trig, about twice as fast as Box-Muller). */
function fillNormal(out: Float32Array, next: () => number, std: number): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * next() - 1;
      v = 2 * next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s) * std;
    out[i] = u * f;
    if (i + 1 < out.length) out[i + 1] = v * f;
  }
  return out;
}

export interface RandomWeightOptions {
  /** Standard deviation of matrix entries (default 0.02) */
  std?: number;
  /** Standard deviation of q/k/v biases when the config has them (default 0.02) */
  biasStd?: number;
}

/** Random weights for `config`; each tensor has its own stream (seed, index), so the result is deterministic. */
export function randomWeights(config: ModelConfig, seed: number, opts: RandomWeightOptions = {}): LlamaWeights {
  const std = opts.std ?? 0.02;
  const biasStd = opts.biasStd ?? 0.02;
  let stream = 0;
  const size = (slot: Parameters<typeof expectedShape>[1]) => expectedShape(config, slot).reduce((a, d) => a * d, 1);
  const normal = (slot: Parameters<typeof expectedShape>[1], s = std) =>
    fillNormal(new Float32Array(size(slot)), rng((seed * 1000003 + ++stream) >>> 0), s);
  const ones = (n: number) => new Float32Array(n).fill(1);

  const embed = normal('embed');
  const layers: LlamaLayerWeights[] = [];
  const mats: LayerSlot[] = ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'];
  for (let i = 0; i < config.nLayers; i++) {
    const l = { attnNorm: ones(config.dim), mlpNorm: ones(config.dim) } as LlamaLayerWeights;
    for (const m of mats) l[m] = normal(m);
    if (config.qkvBias) for (const b of BIAS_SLOTS) l[b] = normal(b, biasStd);
    layers.push(l);
  }
  const finalNorm = ones(config.dim);
  const lmHead = config.tiedEmbeddings ? embed : normal('lmHead');
  return { config, embed, layers, finalNorm, lmHead };
}

/** A global layer with default RoPE over the whole head. */
function ropeLayer(theta: number, headDim: number, window: number | null = null): LayerSpec {
  return {
    attention: window === null ? 'global' : 'sliding',
    window,
    rope: { theta, rotaryDim: headDim, scaling: { type: 'default' }, attentionFactor: 1, freqFactors: null },
  };
}

const NO_BIAS = { q: false, k: false, v: false, o: false };
const NO_MLP_BIAS = { gate: false, up: false, down: false };

/** Qwen3-0.6B (Qwen/Qwen3-0.6B config.json): q/k RMSNorm per head, head_dim 128 while 1024 / 16 = 64, tied. */
export const QWEN3_06B: ModelSpec = validateSpec(
  {
    family: 'qwen3', sourceArchitecture: 'Qwen3ForCausalLM', dim: 1024, vocabSize: 151936, nLayers: 28, maxSeqLen: 40960,
    norm: { kind: 'rms', eps: 1e-6, weightOffset: 0, bias: false },
    attention: { nHeads: 16, nKvHeads: 8, headDim: 128, bias: NO_BIAS, qkNorm: 'head', queryScale: 128 ** -0.5, softCap: null },
    mlp: { hiddenDim: 3072, activation: 'silu', gated: true, bias: NO_MLP_BIAS },
    residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
    positions: 'rope', layers: Array.from({ length: 28 }, () => ropeLayer(1e6, 128)),
    embedScale: 1, logitScale: 1, finalSoftCap: null, tiedEmbeddings: true, bosTokenId: 151643, eosTokenIds: [151645, 151643],
  },
  'QWEN3_06B',
);

/**
 * Gemma-3-270m (google/gemma-3-270m config.json): 18 layers, 5 sliding (window 512, theta 1e4) to 1 global (theta 1e6),
 * head_dim 256, query_pre_attn_scalar 256, GeGLU (tanh), sandwich norms with (1 + w), q/k norms, embeddings times
 * sqrt(640), vocabulary 262144, tied.
 */
export const GEMMA3_270M: ModelSpec = validateSpec(
  {
    family: 'gemma3', sourceArchitecture: 'Gemma3ForCausalLM', dim: 640, vocabSize: 262144, nLayers: 18, maxSeqLen: 32768,
    norm: { kind: 'rms', eps: 1e-6, weightOffset: 1, bias: false },
    attention: { nHeads: 4, nKvHeads: 1, headDim: 256, bias: NO_BIAS, qkNorm: 'head', queryScale: 256 ** -0.5, softCap: null },
    mlp: { hiddenDim: 2048, activation: 'gelu_tanh', gated: true, bias: NO_MLP_BIAS },
    residual: { layout: 'sandwich', sharedNorm: false, scale: 1 },
    positions: 'rope',
    layers: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 === 0 ? ropeLayer(1e6, 256) : ropeLayer(1e4, 256, 512))),
    embedScale: Math.fround(Math.sqrt(640)), logitScale: 1, finalSoftCap: null, tiedEmbeddings: true, bosTokenId: 2, eosTokenIds: [1, 106],
  },
  'GEMMA3_270M',
);

/** SmolLM2-360M (HuggingFaceTB/SmolLM2-360M config.json): a Llama with 15 / 5 heads, theta 1e5, tied. */
export const SMOLLM2_360M: ModelSpec = validateSpec(
  {
    family: 'llama', sourceArchitecture: 'LlamaForCausalLM', dim: 960, vocabSize: 49152, nLayers: 32, maxSeqLen: 8192,
    norm: { kind: 'rms', eps: 1e-5, weightOffset: 0, bias: false },
    attention: { nHeads: 15, nKvHeads: 5, headDim: 64, bias: NO_BIAS, qkNorm: null, queryScale: 64 ** -0.5, softCap: null },
    mlp: { hiddenDim: 2560, activation: 'silu', gated: true, bias: NO_MLP_BIAS },
    residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
    positions: 'rope', layers: Array.from({ length: 32 }, () => ropeLayer(1e5, 64)),
    embedScale: 1, logitScale: 1, finalSoftCap: null, tiedEmbeddings: true, bosTokenId: 1, eosTokenIds: [2],
  },
  'SMOLLM2_360M',
);

/** GPT-2 124M (openai-community/gpt2 config.json): learned positions, LayerNorm, GELU tanh, biases everywhere, tied. */
export const GPT2_124M: ModelSpec = validateSpec(
  {
    family: 'gpt2', sourceArchitecture: 'GPT2LMHeadModel', dim: 768, vocabSize: 50257, nLayers: 12, maxSeqLen: 1024,
    norm: { kind: 'layer', eps: 1e-5, weightOffset: 0, bias: true },
    attention: { nHeads: 12, nKvHeads: 12, headDim: 64, bias: { q: true, k: true, v: true, o: true }, qkNorm: null, queryScale: 64 ** -0.5, softCap: null },
    mlp: { hiddenDim: 3072, activation: 'gelu_tanh', gated: false, bias: { gate: false, up: true, down: true } },
    residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
    positions: 'learned', layers: Array.from({ length: 12 }, () => ({ attention: 'global' as const, window: null, rope: null })),
    embedScale: 1, logitScale: 1, finalSoftCap: null, tiedEmbeddings: true, bosTokenId: 50256, eosTokenIds: [50256],
  },
  'GPT2_124M',
);

/** A spec with fewer layers, a smaller vocabulary or a shorter context (quick runs in the same shapes), checked again. */
export function withSpec(base: ModelSpec, changes: { nLayers?: number; vocabSize?: number; maxSeqLen?: number }): ModelSpec {
  const nLayers = changes.nLayers ?? base.nLayers;
  const vocabSize = changes.vocabSize ?? base.vocabSize;
  const ids = (xs: number[]) => xs.map((id) => (id < vocabSize ? id : vocabSize - 1));
  return validateSpec(
    {
      ...base,
      nLayers,
      vocabSize,
      maxSeqLen: changes.maxSeqLen ?? base.maxSeqLen,
      // Keep the layer-kind pattern (Gemma 3's 5 sliding : 1 global) from the start.
      layers: Array.from({ length: nLayers }, (_, i) => base.layers[i % base.layers.length]),
      bosTokenId: base.bosTokenId === null ? null : ids([base.bosTokenId])[0],
      eosTokenIds: ids(base.eosTokenIds),
    },
    'withSpec',
  );
}

/**
 * Fills `out` with uniform values of standard deviation `std` (on [-std sqrt 3, std sqrt 3]): one generator call per
 * value, several times faster than the normal fill, which matters at the hundreds of millions of values of a real
 * shape; a matmul's output is near normal either way (a sum of many such terms).
 */
function fillUniform(out: Float32Array, next: () => number, std: number): Float32Array {
  const a = 2 * Math.sqrt(3) * std;
  for (let i = 0; i < out.length; i++) out[i] = (next() - 0.5) * a;
  return out;
}

/**
 * Seeded random ModelWeights for any spec: matrices and biases uniform with standard deviation std and biasStd, norms
 * scaling by 1 (a stored 0 where the spec adds 1 + w) with zero biases. Each tensor has its own stream, so the result
 * is deterministic.
 */
export function randomModelWeights(spec: ModelSpec, seed: number, opts: RandomWeightOptions = {}): ModelWeights {
  const std = opts.std ?? 0.02;
  const biasStd = opts.biasStd ?? 0.02;
  const { qDim, kvDim } = specSizes(spec);
  const a = spec.attention;
  const D = spec.dim;
  const F = spec.mlp.hiddenDim;
  let stream = 0;
  const normal = (n: number, s = std) => fillUniform(new Float32Array(n), rng((seed * 1000003 + ++stream) >>> 0), s);
  const bias = (on: boolean, n: number) => (on ? normal(n, biasStd) : null);
  const normW = (n: number): NormWeights => ({
    weight: new Float32Array(n).fill(1 - spec.norm.weightOffset),
    bias: spec.norm.bias ? new Float32Array(n) : null,
  });
  const slots = layerNormSlots(spec.residual);
  const qkN = (n: number) => (a.qkNorm === null ? null : new Float32Array(a.qkNorm === 'head' ? a.headDim : n).fill(1 - spec.norm.weightOffset));
  const embed = normal(spec.vocabSize * D);
  const layers = Array.from({ length: spec.nLayers }, (): LayerWeights => ({
    attnNorm: slots.attnNorm ? normW(D) : null,
    attnPostNorm: slots.attnPostNorm ? normW(D) : null,
    mlpNorm: slots.mlpNorm ? normW(D) : null,
    mlpPostNorm: slots.mlpPostNorm ? normW(D) : null,
    wq: normal(qDim * D),
    wk: normal(kvDim * D),
    wv: normal(kvDim * D),
    bq: bias(a.bias.q, qDim),
    bk: bias(a.bias.k, kvDim),
    bv: bias(a.bias.v, kvDim),
    wo: normal(D * qDim),
    bo: bias(a.bias.o, D),
    qNorm: qkN(qDim),
    kNorm: qkN(kvDim),
    wGate: spec.mlp.gated ? normal(F * D) : null,
    bGate: bias(spec.mlp.bias.gate, F),
    wUp: normal(F * D),
    bUp: bias(spec.mlp.bias.up, F),
    wDown: normal(D * F),
    bDown: bias(spec.mlp.bias.down, D),
  }));
  return {
    spec,
    embed,
    posEmbed: spec.positions === 'learned' ? normal(spec.maxSeqLen * D) : null,
    layers,
    finalNorm: normW(D),
    lmHead: spec.tiedEmbeddings ? embed : normal(spec.vocabSize * D),
  };
}
