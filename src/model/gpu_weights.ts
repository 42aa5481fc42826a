// Uploads canonical LlamaWeights to GPU buffers once, fusing the projections that share an input so a layer runs
// 4 matmuls instead of 7: q|k|v (qkvDim, D) and gate|up (2F, D).
import type { Gpu } from '../gpu/device.js';
import { createStorageFrom } from '../gpu/buffers.js';
import { destroySplit, uploadSplit, type SplitTensor } from '../gpu/split_tensor.js';
import type { LlamaWeights } from './weights.js';

/** Matrices with the same column count stacked by rows (one copy, at load). */
function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

export interface GpuLayerWeights {
  attnNorm: GPUBuffer; // (D) f32
  wqkv: SplitTensor; // (qkvDim, D) f32: rows [q heads | k heads | v heads]
  bqkv: GPUBuffer | null; // (qkvDim) f32, qwen2 only
  wo: SplitTensor; // (D, qDim) f32
  mlpNorm: GPUBuffer; // (D) f32
  wGateUp: SplitTensor; // (2F, D) f32: rows [gate | up]
  wDown: SplitTensor; // (D, F) f32
}

export interface GpuWeights {
  embed: SplitTensor; // (V, D) f32
  layers: GpuLayerWeights[];
  finalNorm: GPUBuffer; // (D) f32
  lmHead: SplitTensor; // (V, D) f32; the same buffers as embed when tied
  /** bytes of weights on the GPU */
  bytes: number;
}

export function uploadWeights(gpu: Gpu, w: LlamaWeights): GpuWeights {
  const c = w.config;
  const dev = gpu.device;
  let bytes = 0;
  const split = (data: Float32Array, rows: number, cols: number, label: string): SplitTensor => {
    bytes += data.byteLength;
    return uploadSplit(gpu, data, rows, cols, label);
  };
  const vec = (data: Float32Array, label: string): GPUBuffer => {
    bytes += data.byteLength;
    return createStorageFrom(dev, data, label);
  };
  const embed = split(w.embed, c.vocabSize, c.dim, 'embed');
  const layers = w.layers.map((l, i): GpuLayerWeights => ({
    attnNorm: vec(l.attnNorm, `l${i}.attn_norm (D)`),
    wqkv: split(concatRows([l.wq, l.wk, l.wv]), c.qkvDim, c.dim, `l${i}.wqkv`),
    bqkv: c.qkvBias && l.bq && l.bk && l.bv ? vec(concatRows([l.bq, l.bk, l.bv]), `l${i}.bqkv (qkvDim)`) : null,
    wo: split(l.wo, c.dim, c.qDim, `l${i}.wo`),
    mlpNorm: vec(l.mlpNorm, `l${i}.mlp_norm (D)`),
    wGateUp: split(concatRows([l.wGate, l.wUp]), 2 * c.hiddenDim, c.dim, `l${i}.w_gate_up`),
    wDown: split(l.wDown, c.dim, c.hiddenDim, `l${i}.w_down`),
  }));
  const finalNorm = vec(w.finalNorm, 'final_norm (D)');
  const lmHead = w.lmHead === w.embed ? embed : split(w.lmHead, c.vocabSize, c.dim, 'lm_head');
  return { embed, layers, finalNorm, lmHead, bytes };
}

export function destroyWeights(w: GpuWeights): void {
  destroySplit(w.embed);
  if (w.lmHead !== w.embed) destroySplit(w.lmHead);
  w.finalNorm.destroy();
  for (const l of w.layers) {
    l.attnNorm.destroy();
    l.mlpNorm.destroy();
    l.bqkv?.destroy();
    destroySplit(l.wqkv);
    destroySplit(l.wo);
    destroySplit(l.wGateUp);
    destroySplit(l.wDown);
  }
}
