// The model spec: one typed description of a decoder that the one forward reads (DESIGN.md, "One forward for every
// family"). A family is a set of switches, not a copy of the forward: transformers' modular files show Llama, Qwen,
// Gemma, Phi, OLMo, Granite, GPT-2 and GPT-NeoX differ in the handful of fields below. Config readers (HF config.json,
// GGUF metadata, llama2.c header) produce a ModelSpec; weight loaders produce ModelWeights in the canonical layout
// documented on each field. Everything here is plain data plus pure helpers; nothing touches the GPU.
import { ModelFormatError } from '../errors.js';
import type { WeightMatrix } from '../weights/stored_matrix.js';

/** The decoder families forklm runs. Names follow Hugging Face's `model_type` where one exists. */
export const FAMILIES = [
  'llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3', 'phi3', 'smollm3', 'olmo2', 'granite', 'gpt2', 'gpt_neox',
] as const;
export type Family = (typeof FAMILIES)[number];

/** RMSNorm: x / sqrt(mean(x^2) + eps) * (offset + w). LayerNorm: (x - mean) / sqrt(var + eps) * (offset + w) + b. */
export type NormKind = 'rms' | 'layer';

export interface NormSpec {
  kind: NormKind;
  eps: number;
  /** Added to the stored weight before it scales: 1 for Gemma's `(1 + w)`, 0 otherwise. */
  weightOffset: 0 | 1;
  /** A bias follows the scale (LayerNorm of GPT-2 and GPT-NeoX). */
  bias: boolean;
}

/**
 * silu: x * sigmoid(x). gelu_tanh: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) (HF `gelu_new`, `gelu_pytorch_tanh`).
 * gelu_erf: 0.5x(1 + erf(x / sqrt 2)) (HF `gelu`).
 */
export type Activation = 'silu' | 'gelu_tanh' | 'gelu_erf';

export interface MlpSpec {
  /** Intermediate size F. */
  hiddenDim: number;
  activation: Activation;
  /** Gated: down(act(gate(x)) * up(x)) (Llama, Gemma). Plain: down(act(up(x))) (GPT-2, GPT-NeoX). */
  gated: boolean;
  /** Biases per projection; `gate` is false when the MLP is not gated. */
  bias: { gate: boolean; up: boolean; down: boolean };
}

/**
 * Where a q/k norm applies (always an RMS norm in the families run, always before RoPE):
 * 'head': one weight of headDim shared by every head, each head normed on its own (Qwen 3, Gemma 3);
 * 'projection': over the whole q (qDim) and k (kvDim) projection rows (OLMo 2).
 */
export type QkNormScope = 'head' | 'projection';

export interface AttentionSpec {
  /** Query heads Hq. */
  nHeads: number;
  /** Key/value heads Hkv (GQA when < nHeads; Hq % Hkv == 0). */
  nKvHeads: number;
  /** Head size hd: explicit, need not be dim / nHeads (Qwen 3, Gemma). */
  headDim: number;
  /** Biases per projection (Qwen 2: q, k, v; GPT-2 and GPT-NeoX: all four). */
  bias: { q: boolean; k: boolean; v: boolean; o: boolean };
  /** null: no q/k norm. The norm's eps and weight offset are the model's `norm` ones. */
  qkNorm: QkNormScope | null;
  /**
   * Multiplies q . k before the softmax: hd^-0.5 by default, query_pre_attn_scalar^-0.5 (Gemma 2/3),
   * attention_multiplier (Granite).
   */
  queryScale: number;
  /** Attention logits become cap * tanh(logits / cap) after scaling (Gemma 2); null: none. */
  softCap: number | null;
}

/**
 * How a block adds its branches to the residual stream h (s = residual.scale, Granite's residual_multiplier):
 * - sequential: h += s*attn(n1(h)); h += s*mlp(n2(h))                      (Llama, Qwen, Phi-3, GPT-2, ...)
 * - parallel:   h += s*(attn(n1(h)) + mlp(n2(h))), n2 = n1 when sharedNorm  (GPT-NeoX; GPT-J/Phi-2 share one norm)
 * - sandwich:   h += s*p1(attn(n1(h))); h += s*p2(mlp(n2(h)))                (Gemma 2, Gemma 3)
 * - post-norm:  h += s*p1(attn(h)); h += s*p2(mlp(h))                        (OLMo 2: norms on the branch outputs)
 * n1/n2 are LayerWeights.attnNorm/mlpNorm, p1/p2 attnPostNorm/mlpPostNorm.
 */
export type ResidualLayout = 'sequential' | 'parallel' | 'sandwich' | 'post-norm';

export interface ResidualSpec {
  layout: ResidualLayout;
  /** parallel only: the MLP reads the attention's input norm (no mlpNorm weights). */
  sharedNorm: boolean;
  /** Multiplies each branch output before it is added (Granite's residual_multiplier); 1 otherwise. */
  scale: number;
}

/**
 * RoPE frequency scaling, with transformers' parameter names (modeling_rope_utils.py):
 * - default: inv_freq[i] = theta^(-2i / rotaryDim)
 * - linear: inv_freq / factor
 * - dynamic: NTK-aware; theta grows once the sequence passes originalMaxPositions (depends on the sequence length)
 * - llama3: low frequencies / factor, high ones kept, a smooth ramp between (Llama 3.1+)
 * - yarn: blend of interpolated and extrapolated frequencies by a linear ramp over [betaSlow, betaFast] rotations
 * - longrope: per-frequency divisors, `short` up to originalMaxPositions and `long` beyond (Phi-3/Phi-4 128k)
 */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number; originalMaxPositions: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; betaFast: number; betaSlow: number; truncate: boolean }
  | { type: 'longrope'; shortFactor: number[]; longFactor: number[]; originalMaxPositions: number };

/**
 * Rotary position embedding of one layer kind. Canonical pairing is rotate-half (HF's): dimension i < rotaryDim/2
 * rotates with i + rotaryDim/2, over the first rotaryDim dimensions of each head; the rest pass through (partial
 * rotary, Phi-3 0.75, GPT-NeoX 0.25). Loaders of interleaved files (GGUF llama, llama2.c) permute q/k rows into this.
 */
export interface RopeSpec {
  theta: number;
  /** Even, <= headDim: round-down-to-even of headDim * partial_rotary_factor. */
  rotaryDim: number;
  scaling: RopeScaling;
  /** Multiplies cos and sin (YaRN's mscale, LongRoPE's attention factor); 1 otherwise. */
  attentionFactor: number;
  /**
   * Per-frequency divisors given by the file (GGUF `rope_freqs.weight`, rotaryDim/2 values, llama.cpp's freq_factors):
   * inv_freq[i] = theta^(-2i / rotaryDim) / freqFactors[i]; when set they replace `scaling`.
   */
  freqFactors: Float32Array | null;
}

/** Per-layer attention: every position (global) or only the last `window` positions, itself included (sliding). */
export type AttentionKind = 'global' | 'sliding';

export interface LayerSpec {
  attention: AttentionKind;
  /** sliding: key j is visible from query i when i - window < j <= i (transformers' sliding mask); null for global. */
  window: number | null;
  /** null: no rotary embedding in this layer (NoPE: SmolLM3's no_rope_layers, and every layer of learned positions). */
  rope: RopeSpec | null;
}

export type PositionKind = 'rope' | 'learned';

export interface ModelSpec {
  family: Family;
  /** What the source called it (HF model_type / architectures[0], GGUF general.architecture), for messages. */
  sourceArchitecture: string;
  /** Hidden size D. */
  dim: number;
  vocabSize: number;
  nLayers: number;
  /** The model's context in tokens (max_position_embeddings / <arch>.context_length), never a window's. */
  maxSeqLen: number;
  /** Every norm of the model: block norms, the final norm, q/k norms. */
  norm: NormSpec;
  attention: AttentionSpec;
  mlp: MlpSpec;
  residual: ResidualSpec;
  /** rope: per-layer RoPE (layers[i].rope). learned: a (maxSeqLen, D) table added to the embeddings (GPT-2). */
  positions: PositionKind;
  /** One entry per layer. */
  layers: LayerSpec[];
  /** Embeddings are multiplied by this: sqrt(D) for Gemma (rounded to the weights' dtype there, see readers), Granite's embedding_multiplier; 1 otherwise. */
  embedScale: number;
  /** Logits are multiplied by this: 1 / logits_scaling for Granite; 1 otherwise. Applied before finalSoftCap. */
  logitScale: number;
  /** Logits become cap * tanh(logits / cap) (Gemma 2); null: none. */
  finalSoftCap: number | null;
  /** lm_head is the embedding matrix (ModelWeights.lmHead === embed). */
  tiedEmbeddings: boolean;
  /** null when the model defines none (GPT-NeoX-style and some Qwen configs); prompts then start without one. */
  bosTokenId: number | null;
  /** One or more end-of-sequence ids (Llama 3 instruct lists several); never empty. */
  eosTokenIds: number[];
}

/** Most layers a reader accepts: far above any real decoder (Llama 3.1 405B has 126), and it bounds what a
 * corrupt header can make a reader allocate before the weights are checked. */
export const MAX_LAYERS = 1024;

/** Throws ModelFormatError unless `n` is a layer count a reader may build per-layer arrays for. */
export function checkLayerCount(n: number, source: string): void {
  if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_LAYERS) {
    throw new ModelFormatError(`${source}: layer count ${n} is not an integer in 1..${MAX_LAYERS}; the model description is inconsistent.`);
  }
}

/** Sizes derived once from a spec (DESIGN.md convention 7). */
export interface SpecSizes {
  /** Hq * hd */
  qDim: number;
  /** Hkv * hd */
  kvDim: number;
  /** qDim + 2 * kvDim: a fused q|k|v row */
  qkvDim: number;
  /** Hq / Hkv */
  kvGroup: number;
  /** The largest sliding window of any layer, or null when every layer is global. */
  maxWindow: number | null;
}

export function specSizes(s: ModelSpec): SpecSizes {
  const a = s.attention;
  const qDim = a.nHeads * a.headDim;
  const kvDim = a.nKvHeads * a.headDim;
  const windows = s.layers.filter((l) => l.attention === 'sliding').map((l) => l.window ?? 0);
  return { qDim, kvDim, qkvDim: qDim + 2 * kvDim, kvGroup: a.nHeads / a.nKvHeads, maxWindow: windows.length ? Math.max(...windows) : null };
}

/** The norm slots a layer of this residual layout carries (ModelWeights fields that are non-null). */
export function layerNormSlots(r: ResidualSpec): { attnNorm: boolean; mlpNorm: boolean; attnPostNorm: boolean; mlpPostNorm: boolean } {
  switch (r.layout) {
    case 'sequential':
      return { attnNorm: true, mlpNorm: true, attnPostNorm: false, mlpPostNorm: false };
    case 'parallel':
      return { attnNorm: true, mlpNorm: !r.sharedNorm, attnPostNorm: false, mlpPostNorm: false };
    case 'sandwich':
      return { attnNorm: true, mlpNorm: true, attnPostNorm: true, mlpPostNorm: true };
    case 'post-norm':
      return { attnNorm: false, mlpNorm: false, attnPostNorm: true, mlpPostNorm: true };
  }
}

/** Two RoPE specs compute the same rotation (for grouping layers by kind). */
export function sameRope(a: RopeSpec | null, b: RopeSpec | null): boolean {
  if (a === null || b === null) return a === b;
  const fa = a.freqFactors ? [...a.freqFactors] : null;
  const fb = b.freqFactors ? [...b.freqFactors] : null;
  return a.theta === b.theta && a.rotaryDim === b.rotaryDim && a.attentionFactor === b.attentionFactor &&
    JSON.stringify(a.scaling) === JSON.stringify(b.scaling) && JSON.stringify(fa) === JSON.stringify(fb);
}

export interface LayerKindGroup {
  /** e.g. "sliding(16), rope theta 10000" */
  label: string;
  attention: AttentionKind;
  window: number | null;
  rope: RopeSpec | null;
  /** Layer indices of this kind, ascending. */
  layers: number[];
}

/** Layers grouped by (attention kind, window, RoPE): what `forklm info` prints as layer kinds. */
export function layerKinds(s: ModelSpec): LayerKindGroup[] {
  const groups: LayerKindGroup[] = [];
  s.layers.forEach((l, i) => {
    const g = groups.find((x) => x.attention === l.attention && x.window === l.window && sameRope(x.rope, l.rope));
    if (g) g.layers.push(i);
    else groups.push({ label: describeLayer(l, s.positions), attention: l.attention, window: l.window, rope: l.rope, layers: [i] });
  });
  return groups;
}

export function describeRope(r: RopeSpec | null, positions: PositionKind = 'rope'): string {
  if (r === null) return positions === 'learned' ? 'learned positions' : 'no RoPE (NoPE)';
  const parts = [`rope theta ${r.theta}`, `rotary ${r.rotaryDim} dims`];
  if (r.freqFactors) parts.push('file frequency factors');
  else if (r.scaling.type !== 'default') {
    const { type, ...params } = r.scaling;
    const shown = Object.entries(params).filter(([, v]) => !Array.isArray(v)).map(([k, v]) => `${k} ${v}`);
    parts.push(`${type} scaling${shown.length ? ` (${shown.join(', ')})` : ''}`);
  }
  if (r.attentionFactor !== 1) parts.push(`attention factor ${r.attentionFactor}`);
  return parts.join(', ');
}

function describeLayer(l: LayerSpec, positions: PositionKind): string {
  const kind = l.attention === 'sliding' ? `sliding window ${l.window}` : 'global';
  return `${kind}; ${describeRope(l.rope, positions)}`;
}

/**
 * Checks a spec for internal consistency; throws ModelFormatError naming the field and `source`. Readers call it
 * last, so a spec that reaches the forward is one it can run.
 */
export function validateSpec(s: ModelSpec, source: string): ModelSpec {
  const bad = (msg: string): never => {
    throw new ModelFormatError(`${source}: ${msg}; the model description is inconsistent.`);
  };
  const a = s.attention;
  const positive: [string, number][] = [
    ['hidden size', s.dim], ['vocabulary size', s.vocabSize], ['layer count', s.nLayers], ['context length', s.maxSeqLen],
    ['attention heads', a.nHeads], ['key/value heads', a.nKvHeads], ['head size', a.headDim], ['MLP size', s.mlp.hiddenDim],
  ];
  for (const [k, v] of positive) if (!Number.isSafeInteger(v) || v <= 0) bad(`${k} is ${v}, not a positive integer`);
  if (a.nHeads % a.nKvHeads !== 0) bad(`the ${a.nHeads} attention heads are not a multiple of the ${a.nKvHeads} key/value heads`);
  if (!(s.norm.eps > 0 && s.norm.eps < 1)) bad(`the norm epsilon ${s.norm.eps} is not in (0, 1)`);
  for (const [k, v] of [['query scale', a.queryScale], ['embedding scale', s.embedScale], ['logit scale', s.logitScale], ['residual scale', s.residual.scale]] as const) {
    if (!(Number.isFinite(v) && v > 0)) bad(`the ${k} ${v} is not a positive number`);
  }
  for (const [k, v] of [['attention soft-cap', a.softCap], ['final soft-cap', s.finalSoftCap]] as const) {
    if (v !== null && !(Number.isFinite(v) && v > 0)) bad(`the ${k} ${v} is not a positive number`);
  }
  if (s.layers.length !== s.nLayers) bad(`${s.layers.length} layer entries for ${s.nLayers} layers`);
  s.layers.forEach((l, i) => {
    if (l.attention === 'sliding' && !(Number.isSafeInteger(l.window) && (l.window as number) > 0)) bad(`layer ${i} slides with window ${l.window}`);
    if (l.attention === 'global' && l.window !== null) bad(`layer ${i} is global but has a window`);
    if (s.positions === 'learned' && l.rope !== null) bad(`layer ${i} has RoPE although positions are learned`);
    const r = l.rope;
    if (r === null) return;
    if (!(r.theta > 0 && Number.isFinite(r.theta))) bad(`layer ${i}: the RoPE theta ${r.theta} is not a positive number`);
    if (!Number.isSafeInteger(r.rotaryDim) || r.rotaryDim <= 0 || r.rotaryDim % 2 !== 0 || r.rotaryDim > a.headDim) {
      bad(`layer ${i}: RoPE over ${r.rotaryDim} dimensions of a ${a.headDim}-wide head (must be even and at most the head size)`);
    }
    if (r.freqFactors && r.freqFactors.length !== r.rotaryDim / 2) bad(`layer ${i}: ${r.freqFactors.length} RoPE frequency factors for ${r.rotaryDim / 2} frequencies`);
    if (r.scaling.type === 'longrope' && (r.scaling.shortFactor.length !== r.rotaryDim / 2 || r.scaling.longFactor.length !== r.rotaryDim / 2)) {
      bad(`layer ${i}: LongRoPE factor lists must have ${r.rotaryDim / 2} entries`);
    }
  });
  if (s.residual.sharedNorm && s.residual.layout !== 'parallel') bad('a shared norm only exists in the parallel residual layout');
  if (!s.mlp.gated && s.mlp.bias.gate) bad('an ungated MLP has no gate bias');
  const ids = [...(s.bosTokenId === null ? [] : [s.bosTokenId]), ...s.eosTokenIds];
  if (s.eosTokenIds.length === 0) bad('no eos_token_id is given');
  for (const id of ids) if (!Number.isSafeInteger(id) || id < 0 || id >= s.vocabSize) bad(`token id ${id} is not below the vocabulary size ${s.vocabSize}`);
  return s;
}

/** Pre-norm weights: (D) scale, plus a (D) bias for LayerNorm with bias. */
export interface NormWeights {
  weight: Float32Array; // (n) f32, stored as the file holds it (weightOffset is applied by the forward)
  bias: Float32Array | null; // (n) f32
}

/**
 * One layer's canonical weights. Matrices are row-major (out, in), as nn.Linear stores them; fused files (Phi-3
 * qkv_proj/gate_up_proj, GPT-2 Conv1D c_attn stored (in, out), GPT-NeoX per-head interleaved query_key_value) are
 * split and transposed into these at load. q/k rows are in rotate-half order. null = the spec has no such tensor.
 * Matrices are f32 arrays or kept as the file stores them (StoredMatrix: F16, BF16, GGUF quantizations), read only
 * when uploaded; vectors (norms, biases) are f32.
 */
export interface LayerWeights {
  attnNorm: NormWeights | null; // (D) layouts sequential, parallel, sandwich
  attnPostNorm: NormWeights | null; // (D) sandwich, post-norm
  mlpNorm: NormWeights | null; // (D) sequential, sandwich, parallel without sharedNorm
  mlpPostNorm: NormWeights | null; // (D) sandwich, post-norm
  wq: WeightMatrix; // (qDim, D)
  wk: WeightMatrix; // (kvDim, D)
  wv: WeightMatrix; // (kvDim, D)
  bq: Float32Array | null; // (qDim)
  bk: Float32Array | null; // (kvDim)
  bv: Float32Array | null; // (kvDim)
  wo: WeightMatrix; // (D, qDim)
  bo: Float32Array | null; // (D)
  qNorm: Float32Array | null; // (hd) scope 'head', (qDim) scope 'projection'
  kNorm: Float32Array | null; // (hd) scope 'head', (kvDim) scope 'projection'
  wGate: WeightMatrix | null; // (F, D) gated MLP only
  bGate: Float32Array | null; // (F)
  wUp: WeightMatrix; // (F, D)
  bUp: Float32Array | null; // (F)
  wDown: WeightMatrix; // (D, F)
  bDown: Float32Array | null; // (D)
}

export interface ModelWeights {
  spec: ModelSpec;
  embed: WeightMatrix; // (V, D)
  /** positions 'learned' only. */
  posEmbed: WeightMatrix | null; // (maxSeqLen, D)
  layers: LayerWeights[];
  finalNorm: NormWeights; // (D)
  /** The same array as `embed` when tiedEmbeddings. */
  lmHead: WeightMatrix; // (V, D)
}

/** Parameters a model holds (tied embeddings counted once), for `forklm info`. */
export function parameterCount(w: ModelWeights): number {
  const seen = new Set<WeightMatrix>();
  let n = 0;
  const add = (a: WeightMatrix | null) => {
    if (a && !seen.has(a)) (seen.add(a), (n += a instanceof Float32Array ? a.length : a.rows * a.cols));
  };
  const norm = (x: NormWeights | null) => (add(x?.weight ?? null), add(x?.bias ?? null));
  add(w.embed);
  add(w.posEmbed);
  add(w.lmHead);
  norm(w.finalNorm);
  for (const l of w.layers) {
    for (const x of [l.attnNorm, l.attnPostNorm, l.mlpNorm, l.mlpPostNorm]) norm(x);
    for (const a of [l.wq, l.wk, l.wv, l.bq, l.bk, l.bv, l.wo, l.bo, l.qNorm, l.kNorm, l.wGate, l.bGate, l.wUp, l.bUp, l.wDown, l.bDown]) add(a);
  }
  return n;
}
