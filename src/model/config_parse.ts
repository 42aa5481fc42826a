// ModelConfig from each format's own description: Hugging Face config.json (+ generation_config.json and
// tokenizer_config.json for BOS/EOS), GGUF metadata (<arch>.* keys), a llama2.c header. Anything forklm would run
// wrongly (rope scaling, partial rotary, biases it has no slot for, quantization) is refused here, by name.
import type { MetadataValue } from '@huggingface/gguf';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import type { Llama2cHeader } from '../io/llama2c.js';
import { deriveConfig } from './config.js';
import type { Architecture, BaseConfig, ModelConfig } from './config.js';

const HF_ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};
const KNOWN_TYPES: readonly Architecture[] = ['llama', 'mistral', 'qwen2'];

/** Checks a base config and derives its sizes; throws ModelFormatError naming the inconsistent field. */
export function validateConfig(base: BaseConfig, source: string): ModelConfig {
  const bad = (msg: string): never => {
    throw new ModelFormatError(`${source}: ${msg}; the model description is inconsistent.`);
  };
  const sizes = ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const;
  for (const k of sizes) {
    const v = base[k];
    if (!Number.isSafeInteger(v) || v <= 0) bad(`${k} is ${v}, not a positive integer`);
  }
  if (base.dim % base.nHeads !== 0) bad(`hidden size ${base.dim} is not divisible by the ${base.nHeads} attention heads`);
  if (base.nHeads % base.nKvHeads !== 0) bad(`the ${base.nHeads} attention heads are not a multiple of the ${base.nKvHeads} key/value heads`);
  if ((base.dim / base.nHeads) % 2 !== 0) bad(`head size ${base.dim / base.nHeads} is odd, so RoPE cannot pair its dimensions`);
  if (!(base.normEps > 0 && base.normEps < 1)) bad(`the RMSNorm epsilon ${base.normEps} is not in (0, 1)`);
  if (!(base.ropeTheta > 0 && Number.isFinite(base.ropeTheta))) bad(`the RoPE theta ${base.ropeTheta} is not a positive number`);
  const checkId = (what: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= base.vocabSize) bad(`${what} ${id} is not a token id below the vocabulary size ${base.vocabSize}`);
  };
  checkId('bos_token_id', base.bosTokenId);
  if (base.eosTokenIds.length === 0) bad('no eos_token_id is given');
  for (const id of base.eosTokenIds) checkId('eos_token_id', id);
  if (!KNOWN_TYPES.includes(base.architecture)) bad(`architecture ${String(base.architecture)} is not one of ${KNOWN_TYPES.join(', ')}`);
  return deriveConfig({ ...base, eosTokenIds: [...base.eosTokenIds] });
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses JSON text of a config file into an object, naming the file on failure. */
export function parseJsonObject(text: string, file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new ModelFormatError(`${file} is not valid JSON (${(cause as Error).message}); fix or download it again.`, { cause });
  }
  if (!isObject(v)) throw new ModelFormatError(`${file} does not hold a JSON object; fix or download it again.`);
  return v;
}

export interface HfConfigFiles {
  config: Json;
  generationConfig?: Json | null;
  tokenizerConfig?: Json | null;
  /** tokenizer.json, only to turn tokenizer_config's bos/eos token strings into ids when nothing else gives them */
  tokenizerJson?: Json | null;
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

export function configFromHf(files: HfConfigFiles, source = 'config.json'): ModelConfig {
  const c = files.config;
  const gen = files.generationConfig ?? null;
  const modelType = c.model_type;
  if (typeof modelType !== 'string' || !KNOWN_TYPES.includes(modelType as Architecture)) {
    throw new UnsupportedModelError(
      `${source}: model_type ${JSON.stringify(modelType)} is not supported; forklm runs ${KNOWN_TYPES.join(', ')}.`,
    );
  }
  const architecture = modelType as Architecture;
  if (c.architectures !== undefined) {
    if (!Array.isArray(c.architectures)) throw new ModelFormatError(`${source}: "architectures" is not a list.`);
    for (const a of c.architectures) {
      if (typeof a !== 'string' || !(a in HF_ARCHITECTURES)) {
        throw new UnsupportedModelError(
          `${source}: architecture ${JSON.stringify(a)} is not supported; forklm runs ${Object.keys(HF_ARCHITECTURES).join(', ')}.`,
        );
      }
    }
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) throw new ModelFormatError(`${source}: "${key}" is missing; the file is not a complete ${modelType} config.`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not an integer.`);
    return v;
  };
  const num = (v: unknown, key: string, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not a number.`);
    return v;
  };
  const unsupported = (what: string): never => {
    throw new UnsupportedModelError(`${source}: ${what} is not supported by forklm.`);
  };

  if (c.quantization_config !== undefined && c.quantization_config !== null) unsupported('a quantized checkpoint (quantization_config)');
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu';
  if (act !== 'silu') unsupported(`hidden_act ${JSON.stringify(act)} (only silu)`);
  if (c.mlp_bias === true) unsupported('mlp_bias: true');
  if (architecture !== 'qwen2' && c.attention_bias === true) unsupported('attention_bias: true (an output-projection bias)');
  const ropeParams = isObject(c.rope_parameters) ? c.rope_parameters : null;
  for (const scaling of [c.rope_scaling, ropeParams]) {
    if (!isObject(scaling)) continue;
    const kind = scaling.rope_type ?? scaling.type ?? 'default';
    if (kind !== 'default') unsupported(`rope scaling ${JSON.stringify(kind)}`);
  }
  const partial = c.partial_rotary_factor;
  if (partial !== undefined && partial !== 1) unsupported(`partial_rotary_factor ${JSON.stringify(partial)}`);

  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== dim / nHeads) {
    unsupported(`head_dim ${JSON.stringify(c.head_dim)} different from hidden_size / num_attention_heads (${dim / nHeads})`);
  }
  const defaultCtx = architecture === 'llama' ? 2048 : architecture === 'mistral' ? 4096 * 32 : 32768;
  let maxSeqLen = int('max_position_embeddings', defaultCtx);
  // Within its window a sliding-window model attends exactly like a full one, so cap the context at the window.
  const window = c.sliding_window;
  const windowOn = architecture === 'qwen2' ? c.use_sliding_window === true : true;
  if (windowOn && typeof window === 'number' && Number.isSafeInteger(window) && window > 0 && window < maxSeqLen) maxSeqLen = window;

  const ids = (v: unknown, key: string): number[] | null => {
    if (v === undefined || v === null) return null;
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x))) throw new ModelFormatError(`${source}: "${key}" is ${JSON.stringify(v)}, not a token id or list of ids.`);
    return list as number[];
  };
  const tc = files.tokenizerConfig ?? null;
  const fromTokenizer = (key: 'bos_token' | 'eos_token'): number[] | null => {
    const text = tc ? specialTokenText(tc[key]) : null;
    const id = text === null ? null : tokenIdOf(files.tokenizerJson, text);
    return id === null ? null : [id];
  };
  const bos = ids(gen?.bos_token_id, 'generation_config bos_token_id') ?? ids(c.bos_token_id, 'bos_token_id') ?? fromTokenizer('bos_token');
  const eos = ids(gen?.eos_token_id, 'generation_config eos_token_id') ?? ids(c.eos_token_id, 'eos_token_id') ?? fromTokenizer('eos_token');
  if (!bos || bos.length !== 1) throw new ModelFormatError(`${source}: no single bos_token_id in config.json, generation_config.json or tokenizer_config.json; add "bos_token_id" to config.json.`);
  if (!eos) throw new ModelFormatError(`${source}: no eos_token_id in config.json, generation_config.json or tokenizer_config.json; add "eos_token_id" to config.json.`);

  const tie = c.tie_word_embeddings;
  if (tie !== undefined && typeof tie !== 'boolean') throw new ModelFormatError(`${source}: "tie_word_embeddings" is not true or false.`);
  return validateConfig(
    {
      architecture,
      dim,
      hiddenDim: int('intermediate_size'),
      nLayers: int('num_hidden_layers'),
      nHeads,
      nKvHeads: int('num_key_value_heads', nHeads),
      vocabSize: int('vocab_size'),
      maxSeqLen,
      normEps: num(c.rms_norm_eps, 'rms_norm_eps', 1e-6),
      ropeTheta: num(c.rope_theta ?? ropeParams?.rope_theta, 'rope_theta', 10000),
      tiedEmbeddings: tie ?? false,
      qkvBias: architecture === 'qwen2',
      bosTokenId: bos[0],
      eosTokenIds: [...new Set(eos)],
    },
    source,
  );
}

/**
 * GGUF stores the RMSNorm epsilon as f32, so 1e-5 reads back as 9.99999974737875e-6. The shortest decimal that
 * rounds to the same f32 is the value the converter was given, and keeps configs of one model equal across formats.
 */
export function shortestF32Decimal(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

const GGUF_ARCHITECTURES: Record<string, Architecture> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2' };

export interface GgufConfigHints {
  /** Whether the file has no separate output.weight (or one equal to token_embd) */
  tiedEmbeddings: boolean;
  /** Vocabulary size from token_embd.weight when the metadata has neither <arch>.vocab_size nor tokens */
  embedRows?: number;
}

export function configFromGguf(md: Readonly<Record<string, MetadataValue>>, hints: GgufConfigHints, source = 'model.gguf'): ModelConfig {
  const arch = md['general.architecture'];
  if (typeof arch !== 'string' || !(arch in GGUF_ARCHITECTURES)) {
    throw new UnsupportedModelError(
      `${source}: general.architecture ${JSON.stringify(arch ?? null)} is not supported; forklm runs GGUF ${Object.keys(GGUF_ARCHITECTURES).join(', ')}.`,
    );
  }
  const architecture = GGUF_ARCHITECTURES[arch];
  const value = (key: string): number | undefined => {
    const v = md[`${arch}.${key}`];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new ModelFormatError(`${source}: ${arch}.${key} is not a number.`);
    return n;
  };
  const int = (key: string, fallback?: number): number => {
    const v = value(key) ?? fallback;
    if (v === undefined) throw new ModelFormatError(`${source}: metadata ${arch}.${key} is missing; the file is not a complete ${arch} GGUF.`);
    return v;
  };
  const scaling = md[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none') throw new UnsupportedModelError(`${source}: rope scaling ${JSON.stringify(scaling)} is not supported by forklm.`);
  const dim = int('embedding_length');
  const nHeads = int('attention.head_count');
  const ropeDims = value('rope.dimension_count');
  if (ropeDims !== undefined && ropeDims !== dim / nHeads) {
    throw new UnsupportedModelError(`${source}: RoPE on ${ropeDims} of ${dim / nHeads} head dimensions (partial rotary) is not supported by forklm.`);
  }
  const tokens = md['tokenizer.ggml.tokens'];
  const vocabSize = value('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : hints.embedRows);
  if (vocabSize === undefined) throw new ModelFormatError(`${source}: the vocabulary size is given nowhere (${arch}.vocab_size, tokenizer.ggml.tokens).`);
  const tokenId = (key: string, fallback: number | null): number | null => {
    const v = md[`tokenizer.ggml.${key}`];
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : null;
    return n !== null && n >= 0 && n < vocabSize ? n : fallback;
  };
  const bos = tokenId('bos_token_id', null);
  const eos = tokenId('eos_token_id', null);
  if (bos === null || eos === null) throw new ModelFormatError(`${source}: tokenizer.ggml.bos_token_id / eos_token_id are missing or outside the vocabulary.`);
  const eps = value('attention.layer_norm_rms_epsilon');
  return validateConfig(
    {
      architecture,
      dim,
      hiddenDim: int('feed_forward_length'),
      nLayers: int('block_count'),
      nHeads,
      nKvHeads: int('attention.head_count_kv', nHeads),
      vocabSize,
      maxSeqLen: int('context_length'),
      normEps: eps === undefined ? 1e-5 : shortestF32Decimal(eps),
      ropeTheta: shortestF32Decimal(value('rope.freq_base') ?? 10000),
      tiedEmbeddings: hints.tiedEmbeddings,
      qkvBias: architecture === 'qwen2',
      bosTokenId: bos,
      eosTokenIds: [eos],
    },
    source,
  );
}

/** llama2.c checkpoints carry only sizes; the rest is fixed by llama2.c's training code (run.c hard-codes it too). */
export function configFromLlama2c(h: Llama2cHeader, source = 'model.bin'): ModelConfig {
  return validateConfig(
    {
      architecture: 'llama',
      dim: h.dim,
      hiddenDim: h.hiddenDim,
      nLayers: h.nLayers,
      nHeads: h.nHeads,
      nKvHeads: h.nKvHeads,
      vocabSize: h.vocabSize,
      maxSeqLen: h.seqLen,
      normEps: 1e-5,
      ropeTheta: 10000,
      tiedEmbeddings: h.sharedClassifier,
      qkvBias: false,
      bosTokenId: 1,
      eosTokenIds: [2],
    },
    source,
  );
}
