// The legacy ModelConfig check (presets and random-weight models of the Llama GPU model), JSON config parsing, and the
// llama2.c header's spec. HF config.json and GGUF metadata are read in hf_config.ts and gguf_config.ts.
import { ModelFormatError } from '../errors.js';
import type { Llama2cHeader } from '../io/llama2c.js';
import { deriveConfig } from './config.js';
import type { Architecture, BaseConfig, ModelConfig } from './config.js';
import { checkLayerCount, validateSpec } from './spec.js';
import type { ModelSpec } from './spec.js';

export { shortestF32Decimal } from './gguf_config.js';

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

/** llama2.c checkpoints carry only sizes; the rest is fixed by llama2.c's training code (run.c hard-codes it too). */
export function specFromLlama2c(h: Llama2cHeader, source = 'model.bin'): ModelSpec {
  checkLayerCount(h.nLayers, source);
  if (h.dim % h.nHeads !== 0) throw new ModelFormatError(`${source}: hidden size ${h.dim} is not divisible by the ${h.nHeads} attention heads; the model description is inconsistent.`);
  const headDim = h.dim / h.nHeads;
  const rope = { theta: 10000, rotaryDim: headDim, scaling: { type: 'default' as const }, attentionFactor: 1, freqFactors: null };
  return validateSpec(
    {
      family: 'llama',
      sourceArchitecture: 'llama2.c',
      dim: h.dim,
      vocabSize: h.vocabSize,
      nLayers: h.nLayers,
      maxSeqLen: h.seqLen,
      norm: { kind: 'rms', eps: 1e-5, weightOffset: 0, bias: false },
      attention: { nHeads: h.nHeads, nKvHeads: h.nKvHeads, headDim, bias: { q: false, k: false, v: false, o: false }, qkNorm: null, queryScale: Math.pow(headDim, -0.5), softCap: null },
      mlp: { hiddenDim: h.hiddenDim, activation: 'silu', gated: true, bias: { gate: false, up: false, down: false } },
      residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
      positions: 'rope',
      layers: Array.from({ length: h.nLayers }, () => ({ attention: 'global' as const, window: null, rope })),
      embedScale: 1,
      logitScale: 1,
      finalSoftCap: null,
      tiedEmbeddings: h.sharedClassifier,
      bosTokenId: 1,
      eosTokenIds: [2],
    },
    source,
  );
}
