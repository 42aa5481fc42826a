// Seeded random LlamaWeights in the shapes of real models, for speed and memory work where the real weights cannot
// be brought in. Matrices are N(0, std) (std 0.02 like the usual init) and norms 1, so activations stay in a sane
// range through many layers; the text they produce is noise. Deterministic per (config, seed).
import { validateConfig } from './config_parse.js';
import type { BaseConfig, ModelConfig } from './config.js';
import type { LlamaLayerWeights, LlamaWeights } from './weights.js';
import { BIAS_SLOTS, expectedShape } from './weight_maps.js';
import type { LayerSlot } from './weight_maps.js';

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
