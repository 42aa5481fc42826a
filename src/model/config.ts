// One typed model configuration for every format (HF config.json, GGUF metadata, llama2.c header); derived sizes
// are computed once here, never at call sites.

export type Architecture = 'llama' | 'mistral' | 'qwen2';

export interface ModelConfig {
  architecture: Architecture;
  /** hidden size D */
  dim: number;
  /** MLP intermediate size F */
  hiddenDim: number;
  nLayers: number;
  /** query heads Hq */
  nHeads: number;
  /** key/value heads Hkv (GQA when < nHeads) */
  nKvHeads: number;
  vocabSize: number;
  /** context window in tokens */
  maxSeqLen: number;
  normEps: number;
  ropeTheta: number;
  tiedEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2) */
  qkvBias: boolean;
  bosTokenId: number;
  /** one or more end-of-sequence ids */
  eosTokenIds: number[];
  // derived, computed by deriveConfig
  /** D / Hq */
  headDim: number;
  /** Hq / Hkv */
  kvGroup: number;
  /** Hq * headDim */
  qDim: number;
  /** Hkv * headDim */
  kvDim: number;
  /** qDim + 2 * kvDim: the row width of the fused q|k|v projection */
  qkvDim: number;
}

export type BaseConfig = Omit<ModelConfig, 'headDim' | 'kvGroup' | 'qDim' | 'kvDim' | 'qkvDim'>;

export function deriveConfig(base: BaseConfig): ModelConfig {
  const headDim = base.dim / base.nHeads;
  const kvDim = base.nKvHeads * headDim;
  const qDim = base.nHeads * headDim;
  return { ...base, headDim, kvGroup: base.nHeads / base.nKvHeads, qDim, kvDim, qkvDim: qDim + 2 * kvDim };
}
