// ModelSpec from GGUF metadata (`<arch>.*` keys as llama.cpp's convert_hf_to_gguf.py writes them) and the file's
// tensor shapes (biases, q/k norms and RoPE factor tensors are known by their presence). Where llama.cpp hard-codes a
// hyperparameter instead of reading a key (llama-model.cpp: Gemma 2/3 window patterns and local RoPE base, SmolLM3's
// NoPE step, Gemma's query scale), this reader does the same, so a GGUF file runs as llama.cpp runs it.
import type { MetadataValue } from '@huggingface/gguf';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { GGUF_ARCHITECTURES, refuseByName } from './families.js';
import { checkLayerCount, validateSpec } from './spec.js';
import type { Family, LayerSpec, ModelSpec, RopeScaling, RopeSpec } from './spec.js';

/**
 * GGUF stores floats as f32, so 1e-5 reads back as 9.99999974737875e-6. The shortest decimal that rounds to the same
 * f32 is the value the converter was given, and keeps specs of one model equal across formats.
 */
export function shortestF32Decimal(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

export interface GgufTensors {
  /** Row-major shape of a tensor, null when absent. */
  shape(name: string): number[] | null;
  /** Values of a small tensor (rope_freqs, rope_factors_*). */
  read(name: string): Float32Array;
}

export function ggufFamily(md: Readonly<Record<string, MetadataValue>>, source: string): { arch: string; family: Family } {
  const arch = md['general.architecture'];
  if (typeof arch !== 'string') throw new ModelFormatError(`${source}: general.architecture is missing; the file is not a model GGUF.`);
  refuseByName(arch, source);
  const family = GGUF_ARCHITECTURES[arch];
  if (!family) {
    throw new UnsupportedModelError(`${source}: general.architecture ${JSON.stringify(arch)} is not supported; forklm runs GGUF ${Object.keys(GGUF_ARCHITECTURES).join(', ')}.`);
  }
  return { arch, family };
}

export function specFromGguf(md: Readonly<Record<string, MetadataValue>>, t: GgufTensors, source = 'model.gguf'): ModelSpec {
  const { arch, family } = ggufFamily(md, source);
  const value = (key: string): number | undefined => {
    const v = md[`${arch}.${key}`];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new ModelFormatError(`${source}: ${arch}.${key} is not a number.`);
    return n;
  };
  const f32 = (key: string): number | undefined => {
    const v = value(key);
    return v === undefined ? undefined : shortestF32Decimal(v);
  };
  const int = (key: string, fallback?: number): number => {
    const v = value(key) ?? fallback;
    if (v === undefined) throw new ModelFormatError(`${source}: metadata ${arch}.${key} is missing; the file is not a complete ${arch} GGUF.`);
    return v;
  };
  const has = (name: string) => t.shape(name) !== null;

  const dim = int('embedding_length');
  const nLayers = int('block_count');
  checkLayerCount(nLayers, source);
  const nHeads = int('attention.head_count');
  const nKvHeads = int('attention.head_count_kv', nHeads);
  const headDim = int('attention.key_length', dim / nHeads);
  const maxSeqLen = int('context_length');
  const tokens = md['tokenizer.ggml.tokens'];
  const vocabSize = value('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : t.shape('token_embd.weight')?.[0]);
  if (vocabSize === undefined) throw new ModelFormatError(`${source}: the vocabulary size is given nowhere (${arch}.vocab_size, tokenizer.ggml.tokens).`);

  const layerNorm = family === 'gpt2' || family === 'gpt_neox';
  const gemma = family === 'gemma' || family === 'gemma2' || family === 'gemma3';
  const eps = layerNorm ? (f32('attention.layer_norm_epsilon') ?? 1e-5) : (f32('attention.layer_norm_rms_epsilon') ?? 1e-5);

  // RoPE: one spec for global layers; Gemma 3's local layers use llama.cpp's fixed base 10000 and no scaling.
  const rotaryDim = int('rope.dimension_count', headDim);
  const theta = f32('rope.freq_base') ?? 10000;
  const scalingType = md[`${arch}.rope.scaling.type`] ?? 'none';
  const factor = f32('rope.scaling.factor') ?? 1;
  const origCtx = int('rope.scaling.original_context_length', maxSeqLen);
  let scaling: RopeScaling = { type: 'default' };
  let attentionFactor = f32('rope.scaling.attn_factor') ?? 1;
  let freqFactors: Float32Array | null = null;
  const freqWant = [rotaryDim / 2];
  const readFactors = (name: string): Float32Array => {
    const shape = t.shape(name)!;
    if (shape.length !== 1 || shape[0] !== rotaryDim / 2) throw new ModelFormatError(`${source}: ${name} has shape [${shape.join(', ')}], expected [${freqWant.join(', ')}].`);
    return t.read(name);
  };
  if (has('rope_factors_long.weight') && has('rope_factors_short.weight')) {
    scaling = { type: 'longrope', shortFactor: [...readFactors('rope_factors_short.weight')], longFactor: [...readFactors('rope_factors_long.weight')], originalMaxPositions: origCtx };
  } else if (has('rope_freqs.weight')) {
    // Llama 3.x: the converter bakes the llama3 scaling into per-frequency divisors.
    freqFactors = readFactors('rope_freqs.weight');
  } else if (scalingType === 'linear' && factor !== 1) {
    scaling = { type: 'linear', factor };
  } else if (scalingType === 'yarn') {
    scaling = { type: 'yarn', factor, originalMaxPositions: origCtx, betaFast: f32('rope.scaling.yarn_beta_fast') ?? 32, betaSlow: f32('rope.scaling.yarn_beta_slow') ?? 1, truncate: true };
    if (value('rope.scaling.attn_factor') === undefined) attentionFactor = 0.1 * Math.log(factor) + 1;
  } else if (scalingType !== 'none' && !(scalingType === 'linear' && factor === 1)) {
    throw new UnsupportedModelError(`${source}: RoPE scaling ${JSON.stringify(scalingType)} is not supported by forklm (none, linear, yarn, rope_freqs, LongRoPE factors).`);
  }
  const globalRope: RopeSpec = { theta, rotaryDim, scaling, attentionFactor, freqFactors };
  const localRope: RopeSpec = family === 'gemma3' ? { theta: f32('rope.freq_base_swa') ?? 10000, rotaryDim, scaling: { type: 'default' }, attentionFactor: 1, freqFactors: null } : globalRope;

  // Sliding windows: llama.cpp's set_swa_pattern(n): layer il slides when il % n < n - 1 (Gemma 2: n = 2, Gemma 3: 6).
  const window = value('attention.sliding_window') ?? null;
  const patternKey = md[`${arch}.attention.sliding_window_pattern`];
  const pattern = typeof patternKey === 'number' ? patternKey : family === 'gemma2' ? 2 : family === 'gemma3' ? 6 : 1;
  const sliding = (il: number): boolean => {
    if (window === null || window <= 0 || window >= maxSeqLen) return false;
    if (Array.isArray(patternKey)) return patternKey[il] === true;
    return pattern <= 1 ? true : il % pattern < pattern - 1;
  };
  // SmolLM3: llama.cpp skips RoPE where (il + 1) % 4 == 0 (n_no_rope_layer_step, no GGUF key).
  const nope = (il: number) => family === 'smollm3' && (il + 1) % 4 === 0;
  const layers: LayerSpec[] = Array.from({ length: nLayers }, (_, il) => {
    const s = sliding(il);
    return { attention: s ? 'sliding' : 'global', window: s ? window : null, rope: family === 'gpt2' || nope(il) ? null : s ? localRope : globalRope };
  });

  const qNormShape = t.shape('blk.0.attn_q_norm.weight');
  const qkNorm = qNormShape === null ? null : qNormShape[0] === headDim ? 'head' : 'projection';
  const bias = (x: string) => has(`blk.0.${x}.bias`);
  const qkvBias = bias('attn_q') || bias('attn_qkv');
  // Gemma 2/3: llama.cpp scales queries by 1/sqrt(head size), except the 27B models (by 1/sqrt(D / heads)).
  const is27b = (family === 'gemma2' && nLayers === 46) || (family === 'gemma3' && nLayers === 62);
  const queryScale = value('attention.scale') !== undefined ? f32('attention.scale')! : is27b ? Math.pow(dim / nHeads, -0.5) : Math.pow(headDim, -0.5);
  const softCap = family === 'gemma2' ? (f32('attn_logit_softcapping') ?? 50) : (f32('attn_logit_softcapping') ?? null);
  const finalSoftCap = family === 'gemma2' ? (f32('final_logit_softcapping') ?? 30) : (f32('final_logit_softcapping') ?? null);
  const logitScale = value('logit_scale') !== undefined ? 1 / f32('logit_scale')! : 1;

  const tokenId = (key: string): number | null => {
    const v = md[`tokenizer.ggml.${key}`];
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : null;
    return n !== null && n >= 0 && n < vocabSize ? n : null;
  };
  const eos = ['eos_token_id', 'eot_token_id', 'eom_token_id'].map(tokenId).filter((x): x is number => x !== null);
  if (eos.length === 0) throw new ModelFormatError(`${source}: tokenizer.ggml.eos_token_id is missing or outside the vocabulary.`);

  const spec: ModelSpec = {
    family,
    sourceArchitecture: arch,
    dim,
    vocabSize,
    nLayers,
    maxSeqLen,
    // The converter already added Gemma's 1 to its norm weights, so no offset here.
    norm: { kind: layerNorm ? 'layer' : 'rms', eps, weightOffset: 0, bias: layerNorm },
    attention: { nHeads, nKvHeads, headDim, bias: { q: qkvBias, k: qkvBias, v: qkvBias, o: bias('attn_output') }, qkNorm, queryScale, softCap },
    mlp: {
      hiddenDim: int('feed_forward_length'),
      activation: family === 'gpt_neox' ? 'gelu_erf' : family === 'gpt2' || gemma ? 'gelu_tanh' : 'silu',
      gated: !layerNorm,
      bias: { gate: bias('ffn_gate'), up: bias('ffn_up'), down: bias('ffn_down') },
    },
    residual: {
      layout: family === 'gemma2' || family === 'gemma3' ? 'sandwich' : family === 'olmo2' ? 'post-norm' : family === 'gpt_neox' && (value('use_parallel_residual') ?? 1) !== 0 ? 'parallel' : 'sequential',
      sharedNorm: false,
      scale: f32('residual_scale') ?? 1,
    },
    positions: family === 'gpt2' ? 'learned' : 'rope',
    layers,
    embedScale: gemma ? Math.fround(Math.sqrt(dim)) : (f32('embedding_scale') ?? 1),
    logitScale,
    finalSoftCap,
    tiedEmbeddings: !has('output.weight'),
    bosTokenId: tokenId('bos_token_id'),
    eosTokenIds: [...new Set(eos)],
  };
  return validateSpec(spec, source);
}
