// The canonical in-memory weights every loader produces: f32, Hugging Face names' meaning, q/k rows in the
// rotate-half RoPE order (GGUF and llama2.c interleave; their loaders permute once at load).
import type { ModelConfig } from './config.js';

export interface LlamaLayerWeights {
  attnNorm: Float32Array; // (D)
  wq: Float32Array; // (Hq*hd, D)
  wk: Float32Array; // (Hkv*hd, D)
  wv: Float32Array; // (Hkv*hd, D)
  bq?: Float32Array; // (Hq*hd) qwen2 only
  bk?: Float32Array; // (Hkv*hd)
  bv?: Float32Array; // (Hkv*hd)
  wo: Float32Array; // (D, Hq*hd)
  mlpNorm: Float32Array; // (D)
  wGate: Float32Array; // (F, D)
  wUp: Float32Array; // (F, D)
  wDown: Float32Array; // (D, F)
}

export interface LlamaWeights {
  config: ModelConfig;
  embed: Float32Array; // (V, D)
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // (D)
  /** (V, D); the same array as `embed` when embeddings are tied */
  lmHead: Float32Array;
}
