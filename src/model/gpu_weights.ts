// Uploads canonical ModelWeights to GPU buffers once, in the layout the one forward reads:
// - projections that share an input are fused by rows, so a layer runs at most 4 matmuls: q|k|v (qkvDim, D) and
//   gate|up (2F, D) (up alone for a plain MLP); a bias absent on some of the fused parts is zero there;
// - a norm's weight offset (Gemma's 1 + w) is added here, in f32 as transformers adds it, so the norm kernels only
//   ever multiply by a weight; LayerNorm without a bias and RMSNorm carry none;
// - Granite's residual multiplier s is folded into the last op of each branch (the post-norm's weight and bias when
//   the layout has one, else the out- and down-projection and their biases): s * (x W^T + b) = x (s W)^T + s b,
//   which differs from scaling afterwards by one f32 rounding per weight (relative 2^-24);
// - the embedding table doubles as the LM head when tied.
import type { Gpu } from '../gpu/device.js';
import { createStorageFrom } from '../gpu/buffers.js';
import { destroySplit, uploadSplit, type SplitTensor } from '../gpu/split_tensor.js';
import { specSizes, type ModelWeights, type NormWeights } from './spec.js';

/** Matrices with the same column count stacked by rows (one copy, at load). */
function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

/** offset + w (and times `scale`), in f32. */
function effective(w: Float32Array, offset: number, scale = 1): Float32Array {
  if (offset === 0 && scale === 1) return w;
  return Float32Array.from(w, (v) => Math.fround(offset + v) * scale);
}

export interface GpuNorm {
  weight: GPUBuffer; // (n) f32, offset already added
  bias: GPUBuffer | null; // (n) f32, LayerNorm with bias only
}

export interface GpuLayerWeights {
  attnNorm: GpuNorm | null; // (D)
  attnPostNorm: GpuNorm | null; // (D)
  mlpNorm: GpuNorm | null; // (D)
  mlpPostNorm: GpuNorm | null; // (D)
  wqkv: SplitTensor; // (qkvDim, D) f32: rows [q heads | k heads | v heads]
  bqkv: GPUBuffer | null; // (qkvDim) f32
  qNorm: GPUBuffer | null; // (hd) or (qDim) f32
  kNorm: GPUBuffer | null; // (hd) or (kvDim) f32
  wo: SplitTensor; // (D, qDim) f32
  bo: GPUBuffer | null; // (D) f32
  wGateUp: SplitTensor; // (2F, D) f32 rows [gate | up] when gated, else (F, D) up
  bGateUp: GPUBuffer | null; // (2F) or (F) f32
  wDown: SplitTensor; // (D, F) f32
  bDown: GPUBuffer | null; // (D) f32
}

export interface GpuWeights {
  embed: SplitTensor; // (V, D) f32
  posEmbed: SplitTensor | null; // (maxSeqLen, D) f32, learned positions only
  layers: GpuLayerWeights[];
  finalNorm: GpuNorm; // (D)
  lmHead: SplitTensor; // (V, D) f32; the same buffers as embed when tied
  /** bytes of weights on the GPU */
  bytes: number;
}

export function uploadWeights(gpu: Gpu, w: ModelWeights): GpuWeights {
  const s = w.spec;
  const { qkvDim, qDim } = specSizes(s);
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const dev = gpu.device;
  const offset = s.norm.weightOffset;
  const resScale = s.residual.scale;
  let bytes = 0;
  const split = (data: Float32Array, rows: number, cols: number, label: string): SplitTensor => {
    bytes += data.byteLength;
    return uploadSplit(gpu, data, rows, cols, label);
  };
  const vec = (data: Float32Array, label: string): GPUBuffer => {
    bytes += data.byteLength;
    return createStorageFrom(dev, data, label);
  };
  const norm = (n: NormWeights | null, label: string, scale = 1): GpuNorm | null =>
    n === null
      ? null
      : {
          weight: vec(effective(n.weight, offset, scale), `${label} (D)`),
          bias: n.bias ? vec(effective(n.bias, 0, scale), `${label}.bias (D)`) : null,
        };
  /** Fused rows [parts...]; a bias vector when any part has one, zeros for the others. */
  const fusedBias = (biases: (Float32Array | null)[], sizes: number[], label: string): GPUBuffer | null =>
    biases.some((b) => b) ? vec(concatRows(biases.map((b, i) => b ?? new Float32Array(sizes[i]))), label) : null;
  const post = s.residual.layout === 'sandwich' || s.residual.layout === 'post-norm';
  const projScale = post ? 1 : resScale; // where the residual multiplier goes
  const scaled = (a: Float32Array | null) => (a && projScale !== 1 ? a.map((v) => v * projScale) : a);

  const embed = split(w.embed, s.vocabSize, D, 'embed');
  const posEmbed = w.posEmbed ? split(w.posEmbed, w.posEmbed.length / D, D, 'pos_embed') : null;
  const layers = w.layers.map((l, i): GpuLayerWeights => {
    const kv = qkvDim - qDim;
    const gateUp = s.mlp.gated && l.wGate ? concatRows([l.wGate, l.wUp]) : l.wUp;
    const bGateUp = s.mlp.gated ? fusedBias([l.bGate, l.bUp], [F, F], `l${i}.b_gate_up (2F)`) : l.bUp ? vec(l.bUp, `l${i}.b_up (F)`) : null;
    const bo = scaled(l.bo);
    const bDown = scaled(l.bDown);
    return {
      attnNorm: norm(l.attnNorm, `l${i}.attn_norm`),
      attnPostNorm: norm(l.attnPostNorm, `l${i}.attn_post_norm`, resScale),
      mlpNorm: norm(l.mlpNorm, `l${i}.mlp_norm`),
      mlpPostNorm: norm(l.mlpPostNorm, `l${i}.mlp_post_norm`, resScale),
      wqkv: split(concatRows([l.wq, l.wk, l.wv]), qkvDim, D, `l${i}.wqkv`),
      bqkv: fusedBias([l.bq, l.bk, l.bv], [qDim, kv / 2, kv / 2], `l${i}.bqkv (qkvDim)`),
      qNorm: l.qNorm ? vec(effective(l.qNorm, offset), `l${i}.q_norm`) : null,
      kNorm: l.kNorm ? vec(effective(l.kNorm, offset), `l${i}.k_norm`) : null,
      wo: split(scaled(l.wo) as Float32Array, D, qDim, `l${i}.wo`),
      bo: bo ? vec(bo, `l${i}.bo (D)`) : null,
      wGateUp: split(gateUp, gateUp.length / D, D, `l${i}.w_gate_up`),
      bGateUp,
      wDown: split(scaled(l.wDown) as Float32Array, D, F, `l${i}.w_down`),
      bDown: bDown ? vec(bDown, `l${i}.b_down (D)`) : null,
    };
  });
  const finalNorm = norm(w.finalNorm, 'final_norm') as GpuNorm;
  const lmHead = w.lmHead === w.embed ? embed : split(w.lmHead, s.vocabSize, D, 'lm_head');
  return { embed, posEmbed, layers, finalNorm, lmHead, bytes };
}

export function destroyWeights(w: GpuWeights): void {
  destroySplit(w.embed);
  if (w.posEmbed) destroySplit(w.posEmbed);
  if (w.lmHead !== w.embed) destroySplit(w.lmHead);
  const norm = (n: GpuNorm | null) => (n?.weight.destroy(), n?.bias?.destroy());
  norm(w.finalNorm);
  for (const l of w.layers) {
    for (const n of [l.attnNorm, l.attnPostNorm, l.mlpNorm, l.mlpPostNorm]) norm(n);
    for (const b of [l.bqkv, l.qNorm, l.kNorm, l.bo, l.bGateUp, l.bDown]) b?.destroy();
    for (const t of [l.wqkv, l.wo, l.wGateUp, l.wDown]) destroySplit(t);
  }
}
