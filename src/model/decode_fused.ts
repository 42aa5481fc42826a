// The model's fused decode (kernels/decode_fused.ts): whether this model on this adapter may run a decode step's layers
// in one dispatch, and the packed copy of the weights that dispatch reads. Decode steps of tiny models on CPU adapters
// are bound by per-dispatch cost (~30 us each on llvmpipe against a few us of work), so for them one dispatch per
// step replaces 1 + 5 L; larger models keep the layered forward, whose matmuls spread over all cores.
import type { Gpu } from '../gpu/device.js';
import { createStorage, writeBuffer } from '../gpu/buffers.js';
import { DecodeFused, decodeFusedLayout, decodeFusedRefusal, type BoundDecodeFused, type DecodeFusedShape } from '../kernels/decode_fused.js';
import { splitFrequencies } from '../kernels/rope_kv.js';
import type { WeightTensor } from '../weights/gpu_tensor.js';
import type { GpuMatrix, GpuWeights } from './gpu_weights.js';
import { ropeInvFreq } from './rope_freq.js';
import type { ModelSpec } from './spec.js';

/**
 * Largest packed weight copy the fused decode takes, in bytes. It costs that much GPU memory again, and every row's
 * workgroup reads all of it on one thread: beyond a few MB the layered kernels, spread over the cores, are faster
 * (measured only for stories260K, 1.1 MB: bench/RESULTS.md, "Peers").
 */
export const DECODE_FUSED_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Most rows a fused step takes. Each row is one workgroup, which llvmpipe runs on one core, reading every weight;
 * the layered kernels read a weight once for up to 4 rows and spread over the cores. On stories260K the fused step
 * was faster at 1-3 rows and not clearly at 4 or more (bench/RESULTS.md, "Peers").
 */
export const DECODE_FUSED_MAX_ROWS = 2;

/** What the model knows when it decides (GpuModel's constructor). */
export interface DecodeFusedContext {
  spec: ModelSpec;
  weights: GpuWeights;
  pageSize: number;
  kvPages: number;
  /** RoPE and the KV write run in the q|k|v epilogue (q and k rows pair-ordered). */
  ropeInQkv: boolean;
  /** The paged-attention variant of every step; the fused kernel mirrors per-head. */
  attentionVariant: string;
  cascade: boolean;
  /** Why the adapter does not take it (model/decode_fused_rule.ts), reported after the model's own reasons; null: it may. */
  adapterRefusal?: string | null;
}

const oneF32Chunk = (t: WeightTensor) => t.type === 'F32' && t.chunks.length === 1;
const plainMatrix = (m: GpuMatrix) => m.parts.length === 1 && oneF32Chunk(m.parts[0]);

/** The fused kernel's shape for this model, or why it does not apply (a sentence). */
export function decodeFusedPlan(gpu: Gpu, c: DecodeFusedContext): { shape: DecodeFusedShape } | { refusal: string } {
  const s = c.spec;
  const a = s.attention;
  const w = c.weights;
  if (c.attentionVariant !== 'per-head' || c.cascade) return { refusal: 'attention is not plain per-head' };
  if (s.norm.kind !== 'rms' || s.residual.layout !== 'sequential' || !s.mlp.gated) return { refusal: 'not a pre-norm RMS model with a gated MLP' };
  if (a.qkNorm !== null || a.softCap !== null || s.embedScale !== 1 || w.posEmbed) {
    return { refusal: 'q/k norm, soft-cap, embedding scale or learned positions' };
  }
  if (s.layers.some((l) => l.window !== null && l.window !== undefined)) return { refusal: 'sliding-window layers' };
  for (const l of w.layers) {
    if (!l.attnNorm || !l.mlpNorm || l.attnNorm.bias || l.mlpNorm.bias || l.bqkv || l.bo || l.bGateUp || l.bDown) return { refusal: 'biases or missing norms' };
    if (![l.wqkv, l.wo, l.wGateUp, l.wDown].every(plainMatrix)) return { refusal: 'weights not all F32' };
  }
  if (!oneF32Chunk(w.embed)) return { refusal: 'the embedding table is not F32' };
  // The fused q|k|v reads q and k rows pair-ordered, as uploaded for the RoPE epilogue.
  if (!c.ropeInQkv) return { refusal: 'RoPE runs in its own dispatch on this adapter (fewer than 12 storage buffers per stage)' };
  if (c.adapterRefusal) return { refusal: c.adapterRefusal };
  const shape: DecodeFusedShape = {
    dim: s.dim,
    hidden: s.mlp.hiddenDim,
    nHeads: a.nHeads,
    kvHeads: a.nKvHeads,
    headDim: a.headDim,
    vocab: s.vocabSize,
    pageSize: c.pageSize,
    pages: c.kvPages,
    eps: s.norm.eps,
    act: s.mlp.activation,
    queryScale: a.queryScale,
    maxKeys: s.maxSeqLen,
    layers: s.layers.map((l) => ({ rotaryHalf: l.rope ? ropeInvFreq(l.rope).length : 0, ropeScale: l.rope?.attentionFactor ?? 1 })),
  };
  const why = decodeFusedRefusal(gpu, shape);
  if (why) return { refusal: why };
  if (decodeFusedLayout(shape).floats * 4 > DECODE_FUSED_MAX_BYTES) return { refusal: `weights above ${DECODE_FUSED_MAX_BYTES} bytes` };
  return { shape };
}

/** The packed weights (one GPU-side copy of each tensor, in decodeFusedLayout's order) and the bound kernel. */
export function buildDecodeFused(
  gpu: Gpu,
  c: DecodeFusedContext,
  shape: DecodeFusedShape,
  step: { tokenIds: GPUBuffer; positions: GPUBuffer; slots: GPUBuffer; rowPath: GPUBuffer; pageTable: GPUBuffer; hidden: GPUBuffer; kv: GPUBuffer[] },
): { op: BoundDecodeFused; weights: GPUBuffer } {
  const kernel = new DecodeFused(gpu, shape);
  const layout = kernel.layout;
  const packed = createStorage(gpu.device, layout.floats * 4, `decode_fused weights (${layout.floats}) f32`);
  const enc = gpu.device.createCommandEncoder({ label: 'decode_fused pack' });
  const copy = (src: GPUBuffer, vec4At: number, floats: number) => enc.copyBufferToBuffer(src, 0, packed, vec4At * 16, floats * 4);
  const D = shape.dim;
  copy(c.weights.embed.chunks[0].buffer, layout.embed, shape.vocab * D);
  c.weights.layers.forEach((l, i) => {
    const o = layout.layers[i];
    copy(l.attnNorm!.weight, o.attnNorm, D);
    copy(l.wqkv.parts[0].chunks[0].buffer, o.qkv, l.wqkv.rows * D);
    copy(l.wo.parts[0].chunks[0].buffer, o.o, D * l.wo.cols);
    copy(l.mlpNorm!.weight, o.mlpNorm, D);
    copy(l.wGateUp.parts[0].chunks[0].buffer, o.gateUp, l.wGateUp.rows * D);
    copy(l.wDown.parts[0].chunks[0].buffer, o.down, D * l.wDown.cols);
    const rope = c.spec.layers[i].rope;
    writeBuffer(gpu.device, packed, splitFrequencies(rope ? ropeInvFreq(rope) : []), o.freq * 16);
  });
  gpu.device.queue.submit([enc.finish()]);
  const op = kernel.bind({ weights: packed, ...step });
  return { op, weights: packed };
}
