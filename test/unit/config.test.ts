// Config readers: HF config.json as transformers 4.x and 5.x write it, GGUF metadata, llama2.c headers -> ModelSpec,
// and the refusals (by name, with typed errors) of what forklm does not run.
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import type { MetadataValue } from '../../src/io/gguf.js';
import { parseJsonObject, specFromLlama2c, validateConfig } from '../../src/model/config_parse.js';
import { shortestF32Decimal, specFromGguf } from '../../src/model/gguf_config.js';
import type { GgufTensors } from '../../src/model/gguf_config.js';
import { specFromHf } from '../../src/model/hf_config.js';
import { legacyConfig } from '../../src/model/legacy.js';
import { QWEN25_05B, SMOLLM2_135M, withConfig } from '../../src/model/random_weights.js';
import { layerKinds } from '../../src/model/spec.js';

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
};

const qwen2 = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  sliding_window: 32768,
  use_sliding_window: false,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151643,
};

/** Gemma-3-1b's config.json as transformers 4.50 wrote it (the hub's copy), trimmed to 8 layers. */
const gemma3v4 = {
  architectures: ['Gemma3ForCausalLM'],
  model_type: 'gemma3_text',
  hidden_size: 1152,
  intermediate_size: 6912,
  num_hidden_layers: 8,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 256,
  vocab_size: 262144,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  sliding_window: 512,
  sliding_window_pattern: 6,
  query_pre_attn_scalar: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: [1, 106],
};

describe('spec from Hugging Face config.json', () => {
  it('reads a llama config; the legacy view equals the preset of the same model', () => {
    const s = specFromHf({ config: llama });
    expect(s).toMatchObject({ family: 'llama', dim: 576, nLayers: 30, vocabSize: 49152, maxSeqLen: 8192, tiedEmbeddings: true, bosTokenId: 1, eosTokenIds: [2] });
    expect(s.attention).toMatchObject({ nHeads: 9, nKvHeads: 3, headDim: 64, qkNorm: null, softCap: null, queryScale: 1 / 8 });
    expect(s.norm).toEqual({ kind: 'rms', eps: 1e-5, weightOffset: 0, bias: false });
    expect(s.layers.every((l) => l.rope?.theta === 100000 && l.rope.rotaryDim === 64 && l.attention === 'global')).toBe(true);
    expect(legacyConfig(s)).toEqual(SMOLLM2_135M);
    expect(legacyConfig(specFromHf({ config: qwen2 }))).toEqual(QWEN25_05B);
  });

  it('reads RoPE the same from 4.x rope_theta + rope_scaling and 5.x rope_parameters', () => {
    const scaling = { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const v4 = specFromHf({ config: { ...llama, rope_theta: 500000, rope_scaling: scaling } });
    const { rope_theta: _t, ...bare } = llama;
    const v5 = specFromHf({ config: { ...bare, rope_parameters: { ...scaling, rope_theta: 500000 } } });
    expect(v4).toEqual(v5);
    expect(v4.layers[0].rope).toMatchObject({ theta: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } });
    // 4.x wrote "type" where 5.x writes "rope_type"
    expect(specFromHf({ config: { ...llama, rope_scaling: { type: 'linear', factor: 4 } } }).layers[0].rope!.scaling).toEqual({ type: 'linear', factor: 4 });
    const yarn = specFromHf({ config: { ...llama, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 2048 } } }).layers[0].rope!;
    expect(yarn.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
  });

  it('reads Gemma 3 from the 4.x keys exactly as from the 5.x keys', () => {
    const v4 = specFromHf({ config: gemma3v4 });
    const { rope_theta: _a, rope_local_base_freq: _b, rope_scaling: _c, sliding_window_pattern: _d, ...rest } = gemma3v4;
    const layerTypes = Array.from({ length: 8 }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention'));
    const v5 = specFromHf({
      config: {
        ...rest,
        layer_types: layerTypes,
        rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1000000 }, sliding_attention: { rope_type: 'default', rope_theta: 10000 } },
      },
    });
    expect(v4).toEqual(v5);
    expect(layerKinds(v4).map((k) => [k.label, k.layers])).toEqual([
      ['sliding window 512; rope theta 10000, rotary 256 dims', [0, 1, 2, 3, 4, 6, 7]],
      ['global; rope theta 1000000, rotary 256 dims', [5]],
    ]);
    expect(v4).toMatchObject({ family: 'gemma3', embedScale: Math.fround(Math.sqrt(1152)), residual: { layout: 'sandwich' }, norm: { weightOffset: 1 } });
    expect(v4.attention).toMatchObject({ headDim: 256, qkNorm: 'head', queryScale: 1 / 16 });
    expect(v4.eosTokenIds).toEqual([1, 106]);
    // 4.x Gemma 3 applies rope_scaling to global layers only
    const scaled = specFromHf({ config: { ...gemma3v4, rope_scaling: { rope_type: 'linear', factor: 8 } } });
    expect(scaled.layers[5].rope!.scaling).toEqual({ type: 'linear', factor: 8 });
    expect(scaled.layers[0].rope!.scaling).toEqual({ type: 'default' });
  });

  it('applies Qwen windows only with use_sliding_window, from max_window_layers on; the context stays the model\'s', () => {
    expect(specFromHf({ config: qwen2 }).layers.every((l) => l.attention === 'global')).toBe(true);
    const s = specFromHf({ config: { ...qwen2, use_sliding_window: true, sliding_window: 4096 } });
    expect(s.maxSeqLen).toBe(32768);
    expect(s.layers.map((l) => l.window)).toEqual([...Array(21).fill(null), 4096, 4096, 4096]);
    const mistral = specFromHf({ config: { ...llama, architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 4096 } });
    expect(mistral.maxSeqLen).toBe(8192);
    expect(mistral.layers.every((l) => l.window === 4096)).toBe(true);
  });

  it('takes EOS from generation_config and config.json together, BOS may be absent', () => {
    const gen = specFromHf({ config: { ...llama, eos_token_id: 9 }, generationConfig: { bos_token_id: 1, eos_token_id: [2, 7, 2] } });
    expect(gen.eosTokenIds).toEqual([2, 7, 9]);
    const { bos_token_id: _b, eos_token_id: _e, ...bare } = llama;
    const fromTok = specFromHf({
      config: bare,
      tokenizerConfig: { bos_token: '<|s|>', eos_token: { content: '<|e|>' } },
      tokenizerJson: { added_tokens: [{ id: 5, content: '<|e|>' }], model: { vocab: { '<|s|>': 9 } } },
    });
    expect([fromTok.bosTokenId, fromTok.eosTokenIds]).toEqual([9, [5]]);
    expect(specFromHf({ config: { ...bare, eos_token_id: 2 } }).bosTokenId).toBeNull();
    expect(() => specFromHf({ config: bare })).toThrow(/no eos_token_id/);
  });

  it('fills transformers\' defaults (kv heads = heads, eps 1e-6, theta 10000, llama context 2048)', () => {
    const { num_key_value_heads: _k, rms_norm_eps: _e, rope_theta: _r, max_position_embeddings: _m, tie_word_embeddings: _t, ...bare } = llama;
    const s = specFromHf({ config: bare });
    expect([s.attention.nKvHeads, s.norm.eps, s.layers[0].rope!.theta, s.maxSeqLen, s.tiedEmbeddings]).toEqual([9, 1e-6, 10000, 2048, false]);
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['a MoE model by model_type', { ...llama, model_type: 'mixtral', architectures: ['MixtralForCausalLM'] }, /mixtral is a mixture-of-experts model/],
    ['multimodal Gemma 3', { ...llama, model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'] }, /multimodal.*text-only checkpoint/],
    ['Mamba', { ...llama, model_type: 'mamba', architectures: ['MambaForCausalLM'] }, /mamba is a state-space/],
    ['an unknown model_type', { ...llama, model_type: 'falcon' }, /model_type "falcon" is not supported/],
    ['a missing model_type', { ...llama, model_type: undefined }, /model_type null/],
    ['a head other than the causal LM', { ...llama, architectures: ['LlamaForSequenceClassification'] }, /"LlamaForSequenceClassification" is not a llama causal LM/],
    ['an unknown RoPE type', { ...llama, rope_scaling: { rope_type: 'mrope' } }, /RoPE type "mrope"/],
    ['a quantized checkpoint', { ...llama, quantization_config: { quant_method: 'gptq' } }, /quantization_config/],
    ['an unknown activation', { ...llama, hidden_act: 'relu2' }, /activation "relu2"/],
  ];
  it.each(refused)('refuses %s with UnsupportedModelError', (_what, config, message) => {
    expect(() => specFromHf({ config })).toThrow(UnsupportedModelError);
    expect(() => specFromHf({ config })).toThrow(message);
  });

  const inconsistent: [string, Record<string, unknown>, RegExp][] = [
    ['hidden size not divisible by heads', { ...llama, num_attention_heads: 7 }, /not divisible by the 7 heads/],
    ['heads not a multiple of kv heads', { ...llama, num_key_value_heads: 2 }, /not a multiple of the 2 key\/value heads/],
    ['zero layers', { ...llama, num_hidden_layers: 0 }, /layer count 0 is not an integer/],
    ['a missing size', { ...llama, intermediate_size: undefined }, /"intermediate_size" is missing/],
    ['a fractional size', { ...llama, vocab_size: 100.5 }, /"vocab_size" is 100.5, not an integer/],
    ['an eos id outside the vocabulary', { ...llama, eos_token_id: 49152 }, /token id 49152 is not below/],
    ['a negative epsilon', { ...llama, rms_norm_eps: -1 }, /epsilon -1/],
    ['an odd rotary size', { ...llama, head_dim: 63, hidden_size: 567 }, /RoPE over 63 dimensions/],
  ];
  it.each(inconsistent)('refuses %s with ModelFormatError', (_what, config, message) => {
    expect(() => specFromHf({ config })).toThrow(ModelFormatError);
    expect(() => specFromHf({ config })).toThrow(message);
  });

  it('names the file when config JSON is broken', () => {
    expect(() => parseJsonObject('{"a": ', 'config.json')).toThrow(/config.json is not valid JSON/);
    expect(() => parseJsonObject('[1]', 'config.json')).toThrow(/does not hold a JSON object/);
  });
});

describe('spec from GGUF metadata and llama2.c headers', () => {
  const md: Record<string, MetadataValue> = {
    'general.architecture': 'llama',
    'llama.embedding_length': 64,
    'llama.feed_forward_length': 172,
    'llama.block_count': 5,
    'llama.attention.head_count': 8,
    'llama.attention.head_count_kv': 4,
    'llama.context_length': 512,
    'llama.rope.dimension_count': 8,
    'llama.attention.layer_norm_rms_epsilon': Math.fround(1e-5),
    'tokenizer.ggml.tokens': Array.from({ length: 512 }, (_, i) => `t${i}`),
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
  };
  const tensors = (present: Record<string, number[]>, values: Record<string, Float32Array> = {}): GgufTensors => ({
    shape: (n) => present[n] ?? null,
    read: (n) => values[n],
  });
  const tied = tensors({});

  it('reads llama.* keys, recovers the decimal epsilon from its f32, and equals the llama2.c spec', () => {
    const g = specFromGguf(md, tied);
    const l2c = specFromLlama2c({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
    expect({ ...g, sourceArchitecture: '' }).toEqual({ ...l2c, sourceArchitecture: '' });
    expect(g.norm.eps).toBe(1e-5);
    expect(shortestF32Decimal(Math.fround(1e-6))).toBe(1e-6);
    expect(shortestF32Decimal(1 / 3)).toBe(0.33333334);
  });

  it('knows biases, q/k norm scope and untied heads from the tensors, and u64 values as numbers', () => {
    const q: Record<string, MetadataValue> = Object.fromEntries(Object.entries(md).map(([k, v]) => [k.replace(/^llama\./, 'qwen3.'), v]));
    q['general.architecture'] = 'qwen3';
    q['qwen3.block_count'] = 5n;
    const s = specFromGguf(q, tensors({ 'blk.0.attn_q.bias': [64], 'blk.0.attn_q_norm.weight': [8], 'output.weight': [512, 64] }));
    expect(s).toMatchObject({ family: 'qwen3', nLayers: 5, tiedEmbeddings: false });
    expect(s.attention).toMatchObject({ qkNorm: 'head', bias: { q: true, k: true, v: true, o: false } });
    expect(specFromGguf({ ...q, 'general.architecture': 'olmo2', ...Object.fromEntries(Object.entries(q).filter(([k]) => k.startsWith('qwen3.')).map(([k, v]) => [k.replace('qwen3.', 'olmo2.'), v])) }, tensors({ 'blk.0.attn_q_norm.weight': [64] })).attention.qkNorm).toBe('projection');
  });

  it('reads Llama 3 scaling from rope_freqs, Gemma 2 windows and soft-caps, SmolLM3 NoPE as llama.cpp does', () => {
    const ff = new Float32Array([1, 1, 2, 32]);
    expect(specFromGguf(md, tensors({ 'rope_freqs.weight': [4] }, { 'rope_freqs.weight': ff })).layers[0].rope!.freqFactors).toBe(ff);
    const g2: Record<string, MetadataValue> = Object.fromEntries(Object.entries(md).map(([k, v]) => [k.replace(/^llama\./, 'gemma2.'), v]));
    g2['general.architecture'] = 'gemma2';
    g2['gemma2.attention.sliding_window'] = 16;
    g2['gemma2.attention.key_length'] = 16;
    const s = specFromGguf(g2, tied);
    expect(s.layers.map((l) => l.window)).toEqual([16, null, 16, null, 16]);
    expect([s.attention.softCap, s.finalSoftCap, s.attention.queryScale, s.norm.weightOffset, s.embedScale]).toEqual([50, 30, 0.25, 0, 8]);
    const sm = { ...md, 'general.architecture': 'smollm3', ...Object.fromEntries(Object.entries(md).filter(([k]) => k.startsWith('llama.')).map(([k, v]) => [k.replace('llama.', 'smollm3.'), v])) };
    expect(specFromGguf(sm, tied).layers.map((l) => l.rope !== null)).toEqual([true, true, true, false, true]);
  });

  it('refuses MoE and unknown architectures, unknown scaling and missing keys', () => {
    expect(() => specFromGguf({ ...md, 'general.architecture': 'qwen3moe' }, tied)).toThrow(/mixture-of-experts/);
    expect(() => specFromGguf({ ...md, 'general.architecture': 'falcon' }, tied)).toThrow(UnsupportedModelError);
    expect(() => specFromGguf({ ...md, 'llama.rope.scaling.type': 'su' }, tied)).toThrow(/RoPE scaling "su"/);
    const { 'llama.block_count': _b, ...noBlocks } = md;
    expect(() => specFromGguf(noBlocks, tied)).toThrow(/llama.block_count is missing/);
    const { 'tokenizer.ggml.tokens': _t, ...noVocab } = md;
    expect(specFromGguf(noVocab, tensors({ 'token_embd.weight': [300, 64] })).vocabSize).toBe(300);
    expect(() => specFromGguf(noVocab, tied)).toThrow(/vocabulary size/);
  });

  it('fixes llama2.c conventions and honours an unshared classifier', () => {
    const s = specFromLlama2c({ dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, seqLen: 256, sharedClassifier: false });
    expect(s).toMatchObject({ family: 'llama', bosTokenId: 1, eosTokenIds: [2], tiedEmbeddings: false, attention: { headDim: 48 } });
  });

  it('validates legacy configs built in code', () => {
    expect(withConfig(SMOLLM2_135M, { nLayers: 2 }).nLayers).toBe(2);
    expect(() => withConfig(SMOLLM2_135M, { nKvHeads: 4 })).toThrow(ModelFormatError);
    expect(() => validateConfig({ ...SMOLLM2_135M, bosTokenId: -1 }, 'x')).toThrow(/bos_token_id -1/);
  });
});
