// ModelSpec from a Hugging Face folder: config.json as transformers 4.x wrote it (rope_theta + rope_scaling at the top,
// Gemma 3's rope_local_base_freq / sliding_window_pattern, Qwen's use_sliding_window / max_window_layers) and as 5.x
// writes it (rope_parameters, also keyed by layer type; layer_types), plus generation_config.json's EOS list.
// Defaults are transformers' own per family (configuration_*.py), so a config that omits a key reads as it does there.
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { HF_ARCHITECTURES, HF_MODEL_TYPES, refuseByName } from './families.js';
import { longRopeAttentionFactor, yarnMscale } from './rope_freq.js';
import { checkLayerCount, validateSpec } from './spec.js';
import type { Activation, Family, LayerSpec, ModelSpec, RopeScaling, RopeSpec } from './spec.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface HfConfigFiles {
  config: Json;
  generationConfig?: Json | null;
  tokenizerConfig?: Json | null;
  /** tokenizer.json, only to turn tokenizer_config's bos/eos token strings into ids when nothing else gives them */
  tokenizerJson?: Json | null;
}

const GEMMAS: readonly Family[] = ['gemma', 'gemma2', 'gemma3'];

/** Per-family defaults transformers applies when a key is absent. */
const DEFAULT_CONTEXT: Record<Family, number> = {
  llama: 2048, mistral: 131072, qwen2: 32768, qwen3: 32768, gemma: 8192, gemma2: 8192, gemma3: 131072, phi3: 4096,
  smollm3: 32768, olmo2: 2048, granite: 2048, gpt2: 1024, gpt_neox: 2048,
};
const DEFAULT_THETA: Partial<Record<Family, number>> = { gemma3: 1_000_000, smollm3: 2_000_000, olmo2: 10000 };
const DEFAULT_TIED: Partial<Record<Family, boolean>> = { gemma: true, gemma2: true, gemma3: true, smollm3: true, gpt2: true };

function activationOf(name: unknown, source: string): Activation {
  switch (name) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'gelu':
      return 'gelu_erf';
    default:
      throw new UnsupportedModelError(`${source}: activation ${JSON.stringify(name)} is not supported by forklm (silu, gelu, gelu_new, gelu_pytorch_tanh).`);
  }
}

/** Token id of a special-token spelling in tokenizer.json (added_tokens, then the model vocabulary). */
function tokenIdOf(tokenizerJson: Json | null | undefined, content: string): number | null {
  if (!tokenizerJson) return null;
  const added = tokenizerJson.added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) if (isObject(t) && t.content === content && Number.isInteger(t.id)) return t.id as number;
  }
  const model = tokenizerJson.model;
  const vocab = isObject(model) ? model.vocab : undefined;
  if (isObject(vocab) && Number.isInteger(vocab[content])) return vocab[content] as number;
  return null;
}

function specialTokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** The family of a config.json, or a typed refusal naming what it is. */
export function hfFamily(c: Json, source: string): Family {
  const modelType = c.model_type;
  const archs = Array.isArray(c.architectures) ? c.architectures : [];
  if (c.architectures !== undefined && !Array.isArray(c.architectures)) throw new ModelFormatError(`${source}: "architectures" is not a list.`);
  const family = typeof modelType === 'string' ? HF_MODEL_TYPES[modelType] : undefined;
  if (!family) {
    if (typeof modelType === 'string') refuseByName(modelType, source, modelType === 'gemma3' ? 'For Gemma 3 use a text-only checkpoint (model_type gemma3_text, e.g. gemma-3-270m or gemma-3-1b).' : '');
    for (const a of archs) if (typeof a === 'string') refuseByName(a.replace(/For\w+$|LMHeadModel$/, '').toLowerCase(), source);
    throw new UnsupportedModelError(`${source}: model_type ${JSON.stringify(modelType ?? null)} is not supported; forklm runs ${Object.keys(HF_MODEL_TYPES).join(', ')}.`);
  }
  for (const a of archs) {
    if (typeof a !== 'string' || HF_ARCHITECTURES[a] !== family) {
      throw new UnsupportedModelError(
        `${source}: architecture ${JSON.stringify(a)} is not a ${family} causal LM forklm runs (${Object.keys(HF_ARCHITECTURES).filter((k) => HF_ARCHITECTURES[k] === family).join(', ')}).`,
      );
    }
  }
  return family;
}

/** A reader of one config object with typed errors naming the key. */
function reader(c: Json, source: string, family: Family) {
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) throw new ModelFormatError(`${source}: "${key}" is missing; the file is not a complete ${family} config.`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not an integer.`);
    return v;
  };
  const num = (v: unknown, key: string, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not a number.`);
    return v;
  };
  const optNum = (v: unknown, key: string): number | null => (v === undefined || v === null ? null : num(v, key, 0));
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not true or false.`);
    return v;
  };
  return { int, num, optNum, bool };
}

/** transformers' RoPE parameters of one layer type -> RopeSpec. `params` holds rope_type, rope_theta and the scaling keys. */
function ropeOf(params: Json, headDim: number, maxPos: number, configOrigMax: number | null, fallbackTheta: number, fallbackPartial: number, source: string): RopeSpec {
  const r = reader(params, source, 'llama');
  const theta = r.num(params.rope_theta, 'rope_theta', fallbackTheta);
  const partial = r.num(params.partial_rotary_factor, 'partial_rotary_factor', fallbackPartial);
  const rotaryDim = Math.floor(headDim * partial);
  const type = params.rope_type ?? params.type ?? 'default';
  const factor = r.num(params.factor, 'factor', 1);
  const origMax = r.num(params.original_max_position_embeddings, 'original_max_position_embeddings', configOrigMax ?? maxPos);
  const givenAttention = r.optNum(params.attention_factor, 'attention_factor');
  let scaling: RopeScaling;
  let attentionFactor = 1;
  switch (type) {
    case 'default':
      scaling = { type: 'default' };
      break;
    case 'linear':
      scaling = { type: 'linear', factor };
      break;
    case 'dynamic':
      scaling = { type: 'dynamic', factor, originalMaxPositions: origMax };
      break;
    case 'llama3':
      scaling = {
        type: 'llama3',
        factor,
        lowFreqFactor: r.num(params.low_freq_factor, 'low_freq_factor', 1),
        highFreqFactor: r.num(params.high_freq_factor, 'high_freq_factor', 4),
        originalMaxPositions: r.num(params.original_max_position_embeddings, 'original_max_position_embeddings', 8192),
      };
      break;
    case 'yarn': {
      scaling = {
        type: 'yarn',
        factor,
        originalMaxPositions: origMax,
        betaFast: r.num(params.beta_fast, 'beta_fast', 32),
        betaSlow: r.num(params.beta_slow, 'beta_slow', 1),
        truncate: params.truncate !== false,
      };
      const mscale = r.optNum(params.mscale, 'mscale');
      const mscaleAll = r.optNum(params.mscale_all_dim, 'mscale_all_dim');
      attentionFactor = givenAttention ?? (mscale && mscaleAll ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAll) : yarnMscale(factor));
      break;
    }
    case 'longrope': {
      const list = (k: string): number[] => {
        const v = params[k];
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new ModelFormatError(`${source}: LongRoPE "${k}" is not a list of numbers.`);
        return v as number[];
      };
      const orig = configOrigMax ?? origMax;
      scaling = { type: 'longrope', shortFactor: list('short_factor'), longFactor: list('long_factor'), originalMaxPositions: orig };
      attentionFactor = givenAttention ?? longRopeAttentionFactor(configOrigMax ? maxPos / configOrigMax : factor, orig);
      break;
    }
    default:
      throw new UnsupportedModelError(`${source}: RoPE type ${JSON.stringify(type)} is not supported by forklm (default, linear, dynamic, llama3, yarn, longrope).`);
  }
  return { theta, rotaryDim, scaling, attentionFactor, freqFactors: null };
}

/** Layer types ('full_attention' | 'sliding_attention' per layer) from 5.x layer_types or the 4.x keys. */
function layerTypesOf(c: Json, family: Family, nLayers: number, window: number | null, source: string): string[] {
  if (Array.isArray(c.layer_types)) {
    const lt = c.layer_types;
    if (lt.length !== nLayers || !lt.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      throw new UnsupportedModelError(`${source}: layer_types ${JSON.stringify(lt)} must list full_attention / sliding_attention for each of the ${nLayers} layers.`);
    }
    // A sliding layer without a window attends like a global one (transformers' mask does the same).
    return window === null ? lt.map(() => 'full_attention') : (lt as string[]);
  }
  const all = (t: string) => Array.from({ length: nLayers }, () => t);
  if (window === null) return all('full_attention');
  switch (family) {
    case 'gemma2':
      return Array.from({ length: nLayers }, (_, i) => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention'));
    case 'gemma3': {
      const pattern = typeof c.sliding_window_pattern === 'number' ? c.sliding_window_pattern : typeof c._sliding_window_pattern === 'number' ? c._sliding_window_pattern : 6;
      return Array.from({ length: nLayers }, (_, i) => ((i + 1) % pattern ? 'sliding_attention' : 'full_attention'));
    }
    case 'qwen2':
    case 'qwen3':
    case 'smollm3': {
      const from = typeof c.max_window_layers === 'number' ? c.max_window_layers : nLayers;
      return Array.from({ length: nLayers }, (_, i) => (i >= from ? 'sliding_attention' : 'full_attention'));
    }
    default:
      return all('sliding_attention');
  }
}

export function specFromHf(files: HfConfigFiles, source = 'config.json'): ModelSpec {
  const c = files.config;
  const family = hfFamily(c, source);
  const { int, num, bool } = reader(c, source, family);
  if (c.quantization_config !== undefined && c.quantization_config !== null) {
    throw new UnsupportedModelError(`${source}: a quantized checkpoint (quantization_config) is not supported by forklm; use the unquantized weights or a GGUF file.`);
  }
  const isGpt2 = family === 'gpt2';
  const dim = int(isGpt2 ? 'n_embd' : 'hidden_size');
  const nHeads = int(isGpt2 ? 'n_head' : 'num_attention_heads');
  const nLayers = int(isGpt2 ? 'n_layer' : 'num_hidden_layers');
  checkLayerCount(nLayers, source);
  const nKvHeads = family === 'gpt2' || family === 'gpt_neox' ? nHeads : int('num_key_value_heads', nHeads);
  const headDim = c.head_dim === undefined || c.head_dim === null ? dim / nHeads : int('head_dim');
  if (!Number.isInteger(headDim)) throw new ModelFormatError(`${source}: hidden size ${dim} is not divisible by the ${nHeads} heads and no head_dim is given.`);
  const maxSeqLen = int(isGpt2 ? 'n_positions' : 'max_position_embeddings', DEFAULT_CONTEXT[family]);
  const hiddenDim = isGpt2 ? int('n_inner', 4 * dim) : int('intermediate_size', family === 'gpt_neox' ? 4 * dim : undefined);
  if (isGpt2 && c.scale_attn_by_inverse_layer_idx === true) throw new UnsupportedModelError(`${source}: scale_attn_by_inverse_layer_idx is not supported by forklm.`);
  if (isGpt2 && c.scale_attn_weights === false) throw new UnsupportedModelError(`${source}: scale_attn_weights false is not supported by forklm.`);

  const gemma = GEMMAS.includes(family);
  const actName = isGpt2 ? (c.activation_function ?? 'gelu_new') : gemma ? (c.hidden_activation ?? 'gelu_pytorch_tanh') : (c.hidden_act ?? (family === 'gpt_neox' ? 'gelu' : 'silu'));
  const activation = activationOf(actName, source);
  const layerNorm = isGpt2 || family === 'gpt_neox';
  const eps = isGpt2 ? num(c.layer_norm_epsilon, 'layer_norm_epsilon', 1e-5) : layerNorm ? num(c.layer_norm_eps, 'layer_norm_eps', 1e-5) : num(c.rms_norm_eps, 'rms_norm_eps', 1e-6);

  const attnBias = layerNorm ? bool('attention_bias', true) : family === 'phi3' ? false : bool('attention_bias', false);
  const qkvBias = family === 'qwen2' || attnBias;
  const mlpBias = layerNorm ? true : bool('mlp_bias', false);
  const queryScale =
    family === 'granite' ? num(c.attention_multiplier, 'attention_multiplier', 1) :
    family === 'gemma2' || family === 'gemma3' ? Math.pow(num(c.query_pre_attn_scalar, 'query_pre_attn_scalar', 256), -0.5) :
    Math.pow(headDim, -0.5);
  const softCap = family === 'gemma2' ? num(c.attn_logit_softcapping, 'attn_logit_softcapping', 50) : family === 'gemma3' ? (c.attn_logit_softcapping == null ? null : num(c.attn_logit_softcapping, 'attn_logit_softcapping', 0)) : null;
  const finalSoftCap = family === 'gemma2' ? num(c.final_logit_softcapping, 'final_logit_softcapping', 30) : family === 'gemma3' ? (c.final_logit_softcapping == null ? null : num(c.final_logit_softcapping, 'final_logit_softcapping', 0)) : null;

  // Windows: Qwen-style configs gate theirs with use_sliding_window; Mistral / Phi-3 / Gemma use sliding_window as given.
  let window: number | null = c.sliding_window === undefined || c.sliding_window === null ? null : int('sliding_window');
  if ((family === 'qwen2' || family === 'qwen3' || family === 'smollm3') && c.use_sliding_window !== true) window = null;
  if (family === 'gemma2' && c.sliding_window === undefined) window = 4096;
  if (family === 'gemma3' && c.sliding_window === undefined) window = 4096;
  if (window !== null && window >= maxSeqLen) window = null; // a window as wide as the context changes nothing
  const types = layerTypesOf(c, family, nLayers, window, source);

  // RoPE: 5.x rope_parameters (flat, or keyed by layer type); else 4.x rope_theta + rope_scaling (+ Gemma 3's local base).
  const origMax = c.original_max_position_embeddings == null ? null : int('original_max_position_embeddings');
  const fallbackTheta = num(c.rope_theta, 'rope_theta', DEFAULT_THETA[family] ?? 10000);
  const fallbackPartial = num(c.partial_rotary_factor ?? c.rotary_pct, 'partial_rotary_factor', family === 'gpt_neox' ? 0.25 : 1);
  const rp = c.rope_parameters;
  const perType = isObject(rp) && (isObject(rp.full_attention) || isObject(rp.sliding_attention));
  const ropeFor = (type: string): RopeSpec => {
    let params: Json;
    if (perType) {
      const p = (rp as Json)[type] ?? (rp as Json).full_attention;
      if (!isObject(p)) throw new ModelFormatError(`${source}: rope_parameters has no entry for ${type}.`);
      params = p;
    } else if (isObject(rp)) {
      params = rp;
    } else {
      const scaling = isObject(c.rope_scaling) ? c.rope_scaling : {};
      // Gemma 3 (4.x): local layers use rope_local_base_freq and no scaling; rope_scaling applies to global ones.
      params = family === 'gemma3' && type === 'sliding_attention'
        ? { rope_theta: num(c.rope_local_base_freq, 'rope_local_base_freq', 10000) }
        : { ...scaling, rope_theta: fallbackTheta };
    }
    return ropeOf(params, headDim, maxSeqLen, origMax, fallbackTheta, fallbackPartial, source);
  };

  // SmolLM3: no_rope_layers[i] = 1 means layer i uses RoPE; absent, every no_rope_layer_interval-th layer has none.
  let useRope = Array.from({ length: nLayers }, () => true);
  if (family === 'smollm3') {
    const interval = int('no_rope_layer_interval', 4);
    const given = c.no_rope_layers;
    if (given !== undefined && given !== null && (!Array.isArray(given) || given.length !== nLayers)) {
      throw new ModelFormatError(`${source}: no_rope_layers must list 0 or 1 for each of the ${nLayers} layers.`);
    }
    useRope = Array.isArray(given) ? given.map((x) => x !== 0) : useRope.map((_, i) => (i + 1) % interval !== 0);
  }
  const layers: LayerSpec[] = types.map((t, i) => ({
    attention: t === 'sliding_attention' ? 'sliding' : 'global',
    window: t === 'sliding_attention' ? window : null,
    rope: isGpt2 || !useRope[i] ? null : ropeFor(t),
  }));

  // BOS may be absent (Qwen, GPT-NeoX-style configs); EOS: generation_config's list and config.json's, together.
  const ids = (v: unknown, key: string): number[] | null => {
    if (v === undefined || v === null) return null;
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x))) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not a token id or list of ids.`);
    return list as number[];
  };
  const gen = files.generationConfig ?? null;
  const tc = files.tokenizerConfig ?? null;
  const fromTokenizer = (key: 'bos_token' | 'eos_token'): number[] | null => {
    const text = tc ? specialTokenText(tc[key]) : null;
    const id = text === null ? null : tokenIdOf(files.tokenizerJson, text);
    return id === null ? null : [id];
  };
  const bos = ids(gen?.bos_token_id, 'generation_config bos_token_id') ?? ids(c.bos_token_id, 'bos_token_id') ?? fromTokenizer('bos_token');
  const eosLists = [ids(gen?.eos_token_id, 'generation_config eos_token_id'), ids(c.eos_token_id, 'eos_token_id')].filter((x) => x !== null);
  const eos = eosLists.length ? eosLists.flat() : fromTokenizer('eos_token');
  if (!eos) throw new ModelFormatError(`${source}: no eos_token_id in config.json, generation_config.json or tokenizer_config.json; add "eos_token_id" to config.json.`);
  if (bos && bos.length !== 1) throw new ModelFormatError(`${source}: bos_token_id ${JSON.stringify(bos)} is not a single id.`);

  const tie = c.tie_word_embeddings;
  if (tie !== undefined && tie !== null && typeof tie !== 'boolean') throw new ModelFormatError(`${source}: "tie_word_embeddings" is not true or false.`);
  const spec: ModelSpec = {
    family,
    sourceArchitecture: typeof c.model_type === 'string' ? c.model_type : family,
    dim,
    vocabSize: int('vocab_size', isGpt2 ? 50257 : undefined),
    nLayers,
    maxSeqLen,
    norm: { kind: layerNorm ? 'layer' : 'rms', eps, weightOffset: gemma ? 1 : 0, bias: layerNorm },
    attention: {
      nHeads,
      nKvHeads,
      headDim,
      bias: { q: qkvBias, k: qkvBias, v: qkvBias, o: attnBias },
      qkNorm: family === 'qwen3' || family === 'gemma3' ? 'head' : family === 'olmo2' ? 'projection' : null,
      queryScale,
      softCap,
    },
    mlp: { hiddenDim, activation, gated: !layerNorm, bias: { gate: !layerNorm && mlpBias, up: mlpBias, down: mlpBias } },
    residual: {
      layout: family === 'gemma2' || family === 'gemma3' ? 'sandwich' : family === 'olmo2' ? 'post-norm' : family === 'gpt_neox' && bool('use_parallel_residual', true) ? 'parallel' : 'sequential',
      sharedNorm: false,
      scale: family === 'granite' ? num(c.residual_multiplier, 'residual_multiplier', 1) : 1,
    },
    positions: isGpt2 ? 'learned' : 'rope',
    layers,
    // Gemma scales by sqrt(D) in the activations' dtype: float32 here.
    embedScale: gemma ? Math.fround(Math.sqrt(dim)) : family === 'granite' ? num(c.embedding_multiplier, 'embedding_multiplier', 1) : 1,
    logitScale: family === 'granite' ? 1 / num(c.logits_scaling, 'logits_scaling', 1) : 1,
    finalSoftCap,
    tiedEmbeddings: tie ?? DEFAULT_TIED[family] ?? false,
    bosTokenId: bos ? bos[0] : null,
    eosTokenIds: [...new Set(eos)],
  };
  return validateSpec(spec, source);
}

