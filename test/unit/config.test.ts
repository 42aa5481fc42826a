// ModelConfig from HF config.json (llama, mistral, qwen2), GGUF metadata and llama2.c headers, and the checks that
// refuse what forklm would run wrongly.
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import type { MetadataValue } from '../../src/io/gguf.js';
import {
  configFromGguf,
  configFromHf,
  configFromLlama2c,
  parseJsonObject,
  shortestF32Decimal,
  validateConfig,
} from '../../src/model/config_parse.js';
import { QWEN25_05B, SMOLLM2_135M, withConfig } from '../../src/model/random_weights.js';

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

const mistral = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32000,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  sliding_window: 4096,
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

describe('config from Hugging Face config.json', () => {
  it('parses a llama config and derives sizes once', () => {
    const c = configFromHf({ config: llama });
    expect(c).toMatchObject({ architecture: 'llama', dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152 });
    expect(c).toMatchObject({ maxSeqLen: 8192, normEps: 1e-5, ropeTheta: 100000, tiedEmbeddings: true, qkvBias: false, bosTokenId: 1, eosTokenIds: [2] });
    expect(c).toMatchObject({ headDim: 64, kvGroup: 3, qDim: 576, kvDim: 192, qkvDim: 960 });
    // the preset of the same model agrees
    expect(c).toEqual(SMOLLM2_135M);
  });

  it('caps a mistral context at its sliding window and defaults untied embeddings', () => {
    const c = configFromHf({ config: mistral });
    expect(c.architecture).toBe('mistral');
    expect(c.maxSeqLen).toBe(4096);
    expect(c.tiedEmbeddings).toBe(false);
    expect(c.kvGroup).toBe(4);
    expect(configFromHf({ config: { ...mistral, sliding_window: null } }).maxSeqLen).toBe(32768);
  });

  it('gives qwen2 q/k/v biases and ignores a sliding window that is switched off', () => {
    const c = configFromHf({ config: qwen2 });
    expect(c).toMatchObject({ architecture: 'qwen2', qkvBias: true, maxSeqLen: 32768, normEps: 1e-6, ropeTheta: 1e6, kvGroup: 7, headDim: 64 });
    expect(c).toEqual(QWEN25_05B);
    expect(configFromHf({ config: { ...qwen2, use_sliding_window: true, sliding_window: 4096 } }).maxSeqLen).toBe(4096);
  });

  it('takes BOS/EOS from generation_config first, then config, then tokenizer_config via tokenizer.json', () => {
    const gen = configFromHf({ config: llama, generationConfig: { bos_token_id: 1, eos_token_id: [2, 7, 2] } });
    expect(gen.eosTokenIds).toEqual([2, 7]);
    const { bos_token_id: _b, eos_token_id: _e, ...bare } = llama;
    const fromTok = configFromHf({
      config: bare,
      tokenizerConfig: { bos_token: '<|s|>', eos_token: { content: '<|e|>' } },
      tokenizerJson: { added_tokens: [{ id: 5, content: '<|e|>' }], model: { vocab: { '<|s|>': 9 } } },
    });
    expect(fromTok.bosTokenId).toBe(9);
    expect(fromTok.eosTokenIds).toEqual([5]);
    expect(() => configFromHf({ config: bare })).toThrow(/no single bos_token_id/);
  });

  it('fills the documented defaults (kv heads = heads, eps 1e-6, theta 10000, llama context 2048)', () => {
    const { num_key_value_heads: _k, rms_norm_eps: _e, rope_theta: _r, max_position_embeddings: _m, tie_word_embeddings: _t, ...bare } = llama;
    const c = configFromHf({ config: bare });
    expect(c).toMatchObject({ nKvHeads: 9, normEps: 1e-6, ropeTheta: 10000, maxSeqLen: 2048, tiedEmbeddings: false });
    expect(configFromHf({ config: { ...bare, rope_parameters: { rope_type: 'default', rope_theta: 5e5 } } }).ropeTheta).toBe(5e5);
  });

  const unsupported: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown model_type', { ...llama, model_type: 'gpt_neox' }, /model_type "gpt_neox" is not supported/],
    ['a missing model_type', { ...llama, model_type: undefined }, /model_type undefined/],
    ['an unknown architecture', { ...llama, architectures: ['LlamaForSequenceClassification'] }, /architecture "LlamaForSequenceClassification"/],
    ['rope scaling', { ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope scaling "llama3"/],
    ['a head_dim that is not hidden/heads', { ...llama, head_dim: 128 }, /head_dim 128/],
    ['a quantized checkpoint', { ...llama, quantization_config: { quant_method: 'gptq' } }, /quantization_config/],
    ['a gelu MLP', { ...llama, hidden_act: 'gelu' }, /hidden_act "gelu"/],
    ['llama attention_bias', { ...llama, attention_bias: true }, /attention_bias/],
    ['partial rotary', { ...llama, partial_rotary_factor: 0.5 }, /partial_rotary_factor/],
  ];
  it.each(unsupported)('refuses %s with UnsupportedModelError', (_what, config, message) => {
    expect(() => configFromHf({ config })).toThrow(UnsupportedModelError);
    expect(() => configFromHf({ config })).toThrow(message);
  });

  const inconsistent: [string, Record<string, unknown>, RegExp][] = [
    ['hidden size not divisible by heads', { ...llama, num_attention_heads: 7 }, /not divisible by the 7 attention heads/],
    ['heads not a multiple of kv heads', { ...llama, num_key_value_heads: 2 }, /not a multiple of the 2 key\/value heads/],
    ['zero layers', { ...llama, num_hidden_layers: 0 }, /nLayers is 0/],
    ['a missing size', { ...llama, intermediate_size: undefined }, /"intermediate_size" is missing/],
    ['a fractional size', { ...llama, vocab_size: 100.5 }, /"vocab_size" is 100.5, not an integer/],
    ['a string size', { ...llama, hidden_size: '576' }, /"hidden_size" is "576"/],
    ['an eos id outside the vocabulary', { ...llama, eos_token_id: 49152 }, /eos_token_id 49152 is not a token id/],
    ['a negative epsilon', { ...llama, rms_norm_eps: -1 }, /epsilon -1/],
    ['an odd head size', { ...llama, hidden_size: 63, num_attention_heads: 9, num_key_value_heads: 9 }, /head size 7 is odd/],
  ];
  it.each(inconsistent)('refuses %s with ModelFormatError', (_what, config, message) => {
    expect(() => configFromHf({ config })).toThrow(ModelFormatError);
    expect(() => configFromHf({ config })).toThrow(message);
  });

  it('names the file when config JSON is broken', () => {
    expect(() => parseJsonObject('{"a": ', 'config.json')).toThrow(/config.json is not valid JSON/);
    expect(() => parseJsonObject('[1]', 'config.json')).toThrow(/does not hold a JSON object/);
  });
});

describe('config from GGUF metadata and llama2.c headers', () => {
  const md = {
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

  it('reads llama.* keys and recovers the decimal epsilon from its f32', () => {
    const c = configFromGguf(md, { tiedEmbeddings: true });
    const l2c = configFromLlama2c({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
    expect(c).toEqual(l2c);
    expect(c.normEps).toBe(1e-5);
    expect(shortestF32Decimal(Math.fround(1e-6))).toBe(1e-6);
    expect(shortestF32Decimal(Math.fround(0.1))).toBe(0.1);
    expect(shortestF32Decimal(1 / 3)).toBe(0.33333334);
  });

  it('gives qwen2 GGUFs biases and u64 values as numbers', () => {
    const q: Record<string, MetadataValue> = Object.fromEntries(Object.entries(md).map(([k, v]) => [k.replace(/^llama\./, 'qwen2.'), v]));
    q['general.architecture'] = 'qwen2';
    q['qwen2.block_count'] = 5n;
    const c = configFromGguf(q, { tiedEmbeddings: false });
    expect(c).toMatchObject({ architecture: 'qwen2', qkvBias: true, nLayers: 5, tiedEmbeddings: false });
  });

  it('refuses unknown architectures, partial rotary, rope scaling and missing keys', () => {
    expect(() => configFromGguf({ ...md, 'general.architecture': 'falcon' }, { tiedEmbeddings: true })).toThrow(UnsupportedModelError);
    expect(() => configFromGguf({ ...md, 'llama.rope.dimension_count': 4 }, { tiedEmbeddings: true })).toThrow(/partial rotary/);
    expect(() => configFromGguf({ ...md, 'llama.rope.scaling.type': 'yarn' }, { tiedEmbeddings: true })).toThrow(/rope scaling "yarn"/);
    const { 'llama.block_count': _b, ...noBlocks } = md;
    expect(() => configFromGguf(noBlocks, { tiedEmbeddings: true })).toThrow(/llama.block_count is missing/);
    const { 'tokenizer.ggml.tokens': _t, ...noVocab } = md;
    expect(configFromGguf(noVocab, { tiedEmbeddings: true, embedRows: 300 }).vocabSize).toBe(300);
    expect(() => configFromGguf(noVocab, { tiedEmbeddings: true })).toThrow(/vocabulary size/);
  });

  it('fixes llama2.c conventions and honours an unshared classifier', () => {
    const c = configFromLlama2c({ dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, seqLen: 256, sharedClassifier: false });
    expect(c).toMatchObject({ architecture: 'llama', ropeTheta: 10000, normEps: 1e-5, bosTokenId: 1, eosTokenIds: [2], tiedEmbeddings: false, headDim: 48 });
  });

  it('validates configs built in code', () => {
    expect(withConfig(SMOLLM2_135M, { nLayers: 2 }).nLayers).toBe(2);
    expect(() => withConfig(SMOLLM2_135M, { nKvHeads: 4 })).toThrow(ModelFormatError);
    expect(() => validateConfig({ ...SMOLLM2_135M, bosTokenId: -1 }, 'x')).toThrow(/bos_token_id -1/);
    expect(() => validateConfig({ ...SMOLLM2_135M, eosTokenIds: [] }, 'x')).toThrow(/no eos_token_id/);
  });
});
