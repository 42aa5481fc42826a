// Uploads canonical ModelWeights to GPU buffers once, in the layout the one forward reads:
// - matrices keep their storage type (F32, F16, BF16, GGUF quantizations; `mode` 'f16' / 'f32' converts them), as
//   WeightTensors the stored-type kernels dequantize in registers; a matrix is streamed to the GPU when its turn
//   comes (its bytes are a view of the file, or one tensor's rearranged rows), never widened on the host;
// - projections that share an input are fused by rows, so a layer runs at most 4 matmuls: q|k|v (qkvDim, D) and
//   gate|up (2F, D) (up alone for a plain MLP). A fused matrix is a list of parts over disjoint row ranges, one
//   storage type each (a Q4_K_M file stores v in Q6_K and q, k in Q4_K): consecutive parts of one type share
//   buffers, so a matrix of one type is one tensor; a bias absent on some of the fused parts is zero there;
// - with `ropePairs`, the q and k rows (and biases) of each head are uploaded pair-adjacent (model/permute.ts
//   ropePairIndex) for the q|k|v matmul's RoPE epilogue (kernels/y_epilogue.ts), and q|k|v is held in chunks of
//   even rows;
// - a norm's weight offset (Gemma's 1 + w) is added here, in f32 as transformers adds it, so the norm kernels only
//   ever multiply by a weight; LayerNorm without a bias and RMSNorm carry none;
// - Granite's residual multiplier s is folded into the last op of each branch (the post-norm's weight and bias when
//   the layout has one, else the out- and down-projection and their biases): s * (x W^T + b) = x (s W)^T + s b,
//   which differs from scaling afterwards by one f32 rounding per weight (relative 2^-24). A scaled projection is
//   held in F32 (a block's f16 scale cannot absorb s without rounding it);
// - a dense 16-bit matrix whose rows are not a multiple of 4 values is held in F32 (the stored-type kernels read
//   dense types 4 values at a time);
// - the embedding table doubles as the LM head when tied.
import type { Gpu } from '../gpu/device.js';
import { createStorageFrom } from '../gpu/buffers.js';
import { tileRows } from '../weights/tiles.js';
import { allocWeights, chunkBytes, rowsPerChunk, destroyWeights as destroyTensor, weightGpuBytes, writeWeightRows, type WeightTensor } from '../weights/gpu_tensor.js';
import { ropePairIndex } from './permute.js';
import { asStored, selectRows, convertStored, gpuTypeFor, scaledStored, storedBytes, type StoredMatrix, type WeightMatrix, type WeightsMode } from '../weights/stored_matrix.js';
import { isQuantized, kernelBlock, rowBytes } from '../weights/types.js';
import { specSizes, type ModelWeights, type NormWeights } from './spec.js';

/** Vectors with the same length stacked (one copy, at load). */
function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

/** offset + w (and times `scale`), in f32. */
function effective(w: Float32Array, offset: number, scale = 1): Float32Array {
  if (offset === 0 && scale === 1) return w;
  return Float32Array.from(w, (v) => Math.fround(offset + v) * scale);
}

/** A (rows, cols) matrix on the GPU: parts over disjoint row ranges covering every row, one storage type each. */
export interface GpuMatrix {
  rows: number;
  cols: number;
  /** Each part's `rows` is the whole matrix's; its chunks hold its own rows (rowStart absolute). */
  parts: WeightTensor[];
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
  wqkv: GpuMatrix; // (qkvDim, D): rows [q heads | k heads | v heads]
  bqkv: GPUBuffer | null; // (qkvDim) f32
  qNorm: GPUBuffer | null; // (hd) or (qDim) f32
  kNorm: GPUBuffer | null; // (hd) or (kvDim) f32
  wo: GpuMatrix; // (D, qDim)
  bo: GPUBuffer | null; // (D) f32
  wGateUp: GpuMatrix; // (2F, D) rows [gate | up] when gated, else (F, D) up
  bGateUp: GPUBuffer | null; // (2F) or (F) f32
  wDown: GpuMatrix; // (D, F)
  bDown: GPUBuffer | null; // (D) f32
}

export interface GpuWeights {
  embed: WeightTensor; // (V, D) one storage type
  posEmbed: WeightTensor | null; // (maxSeqLen, D), learned positions only
  layers: GpuLayerWeights[];
  finalNorm: GpuNorm; // (D)
  lmHead: GpuMatrix; // (V, D); the embedding's buffers when tied
  /** bytes of weights on the GPU (buffers as allocated: rows plus each chunk's rounding and spare word) */
  bytes: number;
}

/** What an upload reports after each tensor it wrote. */
export interface UploadProgress {
  /** The tensor just written (`l3.wqkv`, `embed`, ...) */
  tensor: string;
  /** Bytes of weights written so far, and in all */
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** Storage on the GPU: as the file stores each matrix (default), or every matrix F16, or F32. */
  mode?: WeightsMode;
  onProgress?: (p: UploadProgress) => void;
  /** q and k rows in the RoPE epilogue's pair-adjacent order (see the file comment). Default false. */
  ropePairs?: boolean;
}

/** A matrix as it will be uploaded: its parts (row ranges of one type each) in order. */
interface PlannedMatrix {
  label: string;
  rows: number;
  cols: number;
  parts: StoredMatrix[];
  /** Chunks of an even number of rows (q|k|v: the RoPE epilogue's column pairs stay in one chunk). */
  evenChunks?: boolean;
}

interface PlannedVec {
  label: string;
  data: Float32Array;
}

/** Every tensor an upload writes, in order; nothing read from the file yet. */
interface WeightPlan {
  embed: PlannedMatrix;
  posEmbed: PlannedMatrix | null;
  lmHead: PlannedMatrix | null; // null: tied
  layers: {
    norms: [PlannedVec | null, PlannedVec | null][]; // attnNorm, attnPostNorm, mlpNorm, mlpPostNorm: [weight, bias]
    wqkv: PlannedMatrix;
    bqkv: PlannedVec | null;
    qNorm: PlannedVec | null;
    kNorm: PlannedVec | null;
    wo: PlannedMatrix;
    bo: PlannedVec | null;
    wGateUp: PlannedMatrix;
    bGateUp: PlannedVec | null;
    wDown: PlannedMatrix;
    bDown: PlannedVec | null;
  }[];
  finalNorm: [PlannedVec, PlannedVec | null];
}

/** The type a matrix is held in on the GPU: the mode's, then the kernels' constraints (file comment). */
function onGpu(m: StoredMatrix, mode: WeightsMode): StoredMatrix {
  const t = gpuTypeFor(m.type, mode);
  const c = convertStored(m, t);
  return !isQuantized(c.type) && c.type !== 'F32' && c.cols % kernelBlock(c.type) !== 0 ? convertStored(m, 'F32') : c;
}

function planWeights(w: ModelWeights, mode: WeightsMode, ropePairs = false): WeightPlan {
  const s = w.spec;
  const { qkvDim, qDim } = specSizes(s);
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const offset = s.norm.weightOffset;
  const resScale = s.residual.scale;
  const mat = (label: string, rows: number, cols: number, parts: (WeightMatrix | null)[], scale = 1): PlannedMatrix => {
    const present = parts.filter((p): p is WeightMatrix => p !== null);
    const stored = present.map((p) => {
      const sm = asStored(p, p instanceof Float32Array ? p.length / cols : p.rows, cols);
      return onGpu(scale === 1 ? sm : scaledStored(sm, scale), mode);
    });
    return { label, rows, cols, parts: stored };
  };
  const vec = (data: Float32Array | null, label: string): PlannedVec | null => (data ? { label, data } : null);
  const norm = (n: NormWeights | null, label: string, scale = 1): [PlannedVec | null, PlannedVec | null] =>
    n === null ? [null, null] : [vec(effective(n.weight, offset, scale), `${label} (D)`), vec(n.bias ? effective(n.bias, 0, scale) : null, `${label}.bias (D)`)];
  /** Fused rows [parts...]; a bias vector when any part has one, zeros for the others. */
  const fusedBias = (biases: (Float32Array | null)[], sizes: number[], label: string): PlannedVec | null =>
    biases.some((b) => b) ? vec(concat(biases.map((b, i) => b ?? new Float32Array(sizes[i]))), label) : null;
  const post = s.residual.layout === 'sandwich' || s.residual.layout === 'post-norm';
  const projScale = post ? 1 : resScale; // where the residual multiplier goes
  const scaled = (a: Float32Array | null) => (a && projScale !== 1 ? a.map((v) => v * projScale) : a);
  const tied = w.lmHead === w.embed;
  const a = s.attention;
  /** Rows of a q or k projection in the pair-adjacent order of layer i's rotary dims (as is without ropePairs). */
  const pairIndex = (heads: number, i: number): number[] | null => {
    const half = ropePairs ? (s.layers[i].rope?.rotaryDim ?? 0) / 2 : 0;
    return half > 0 ? ropePairIndex(heads, a.headDim, half) : null;
  };
  const pairs = (m: WeightMatrix, heads: number, i: number): WeightMatrix => {
    const index = pairIndex(heads, i);
    return index ? selectRows(asStored(m, heads * a.headDim, s.dim), index) : m;
  };
  const pairsVec = (v: Float32Array | null, heads: number, i: number): Float32Array | null => {
    const index = pairIndex(heads, i);
    return v && index ? Float32Array.from(index, (r) => v[r]) : v;
  };
  return {
    embed: mat('embed', s.vocabSize, D, [w.embed]),
    posEmbed: w.posEmbed ? mat('pos_embed', s.maxSeqLen, D, [w.posEmbed]) : null,
    lmHead: tied ? null : mat('lm_head', s.vocabSize, D, [w.lmHead]),
    layers: w.layers.map((l, i) => {
      const kv = qkvDim - qDim;
      const gated = s.mlp.gated && l.wGate;
      return {
        norms: [
          norm(l.attnNorm, `l${i}.attn_norm`),
          norm(l.attnPostNorm, `l${i}.attn_post_norm`, resScale),
          norm(l.mlpNorm, `l${i}.mlp_norm`),
          norm(l.mlpPostNorm, `l${i}.mlp_post_norm`, resScale),
        ],
        wqkv: { ...mat(`l${i}.wqkv`, qkvDim, D, [pairs(l.wq, a.nHeads, i), pairs(l.wk, a.nKvHeads, i), l.wv]), evenChunks: true },
        bqkv: fusedBias([pairsVec(l.bq, a.nHeads, i), pairsVec(l.bk, a.nKvHeads, i), l.bv], [qDim, kv / 2, kv / 2], `l${i}.bqkv (qkvDim)`),
        qNorm: vec(l.qNorm ? effective(l.qNorm, offset) : null, `l${i}.q_norm`),
        kNorm: vec(l.kNorm ? effective(l.kNorm, offset) : null, `l${i}.k_norm`),
        wo: mat(`l${i}.wo`, D, qDim, [l.wo], projScale),
        bo: vec(scaled(l.bo), `l${i}.bo (D)`),
        wGateUp: mat(`l${i}.w_gate_up`, gated ? 2 * F : F, D, gated ? [l.wGate, l.wUp] : [l.wUp]),
        bGateUp: s.mlp.gated ? fusedBias([l.bGate, l.bUp], [F, F], `l${i}.b_gate_up (2F)`) : vec(l.bUp, `l${i}.b_up (F)`),
        wDown: mat(`l${i}.w_down`, D, F, [l.wDown], projScale),
        bDown: vec(scaled(l.bDown), `l${i}.b_down (D)`),
      };
    }),
    finalNorm: norm(w.finalNorm, 'final_norm') as [PlannedVec, PlannedVec | null],
  };
}

/** Consecutive parts of one type that can share buffers: rows of whole 4-byte words, so every part starts aligned. */
function groups(m: PlannedMatrix): { first: number; parts: StoredMatrix[] }[] {
  const out: { first: number; parts: StoredMatrix[] }[] = [];
  let row = 0;
  for (const p of m.parts) {
    const last = out[out.length - 1];
    const lastType = last?.parts[0].type;
    if (last && lastType === p.type && rowBytes(p.type, m.cols) % 4 === 0) last.parts.push(p);
    else out.push({ first: row, parts: [p] });
    row += p.rows;
  }
  return out;
}

function everyMatrix(p: WeightPlan): PlannedMatrix[] {
  return [p.embed, p.posEmbed, p.lmHead, ...p.layers.flatMap((l) => [l.wqkv, l.wo, l.wGateUp, l.wDown])].filter((m): m is PlannedMatrix => m !== null);
}

function everyVec(p: WeightPlan): PlannedVec[] {
  const l = p.layers.flatMap((x) => [...x.norms.flat(), x.bqkv, x.qNorm, x.kNorm, x.bo, x.bGateUp, x.bDown]);
  return [...p.finalNorm, ...l].filter((v): v is PlannedVec => v !== null);
}

/**
 * Bytes the weights of `w` take on the GPU under `mode`, without a GPU: what uploadWeights allocates on an adapter
 * whose storage bindings hold `maxBindingBytes` (128 MiB on llvmpipe; a larger limit means fewer chunks, each with
 * at most 32 bytes of rounding and spare).
 */
export function plannedWeightBytes(w: ModelWeights, mode: WeightsMode = 'as-stored', maxBindingBytes = 128 * 1024 * 1024): number {
  const plan = planWeights(w, mode);
  let bytes = everyVec(plan).reduce((n, v) => n + v.data.byteLength, 0);
  for (const m of everyMatrix(plan)) {
    for (const g of groups(m)) {
      const rb = rowBytes(g.parts[0].type, m.cols);
      const rows = g.parts.reduce((n, p) => n + p.rows, 0);
      const type = g.parts[0].type;
      const per = rowsPerChunk(type, rb, maxBindingBytes, m.evenChunks);
      for (let r = 0; r < rows; r += per) bytes += chunkBytes(Math.min(per, rows - r), rb, tileRows(type));
    }
  }
  return bytes;
}

/** Bytes of the matrices as stored (before chunk padding), by storage type on the GPU under `mode`. */
export function weightBytesByType(w: ModelWeights, mode: WeightsMode = 'as-stored'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of everyMatrix(planWeights(w, mode))) for (const p of m.parts) out[p.type] = (out[p.type] ?? 0) + storedBytes(p);
  return out;
}

export function uploadWeights(gpu: Gpu, w: ModelWeights, opts: UploadOptions = {}): GpuWeights {
  const plan = planWeights(w, opts.mode ?? 'as-stored', opts.ropePairs);
  const dev = gpu.device;
  const total = everyMatrix(plan).reduce((n, m) => n + m.parts.reduce((k, p) => k + storedBytes(p), 0), 0) + everyVec(plan).reduce((n, v) => n + v.data.byteLength, 0);
  let loaded = 0;
  let bytes = 0;
  const made: WeightTensor[] = [];
  const made2: GPUBuffer[] = [];
  const report = (tensor: string, n: number) => {
    loaded += n;
    opts.onProgress?.({ tensor, loaded, total });
  };
  const matrix = (m: PlannedMatrix): GpuMatrix => {
    const parts = groups(m).map((g) => {
      const rows = g.parts.reduce((n, p) => n + p.rows, 0);
      const t = allocWeights(gpu, g.parts[0].type, rows, m.cols, m.label, undefined, m.evenChunks);
      made.push(t);
      let at = 0;
      for (const p of g.parts) {
        // One part's bytes at a time: a view of the file, or this part's rearranged rows, dropped after the write.
        const b = p.bytes();
        writeWeightRows(gpu, t, at, b);
        at += p.rows;
        report(m.label, b.length);
      }
      bytes += weightGpuBytes(t);
      return { ...t, rows: m.rows, chunks: t.chunks.map((c) => ({ ...c, rowStart: c.rowStart + g.first })) };
    });
    return { rows: m.rows, cols: m.cols, parts };
  };
  const vec = (v: PlannedVec | null): GPUBuffer | null => {
    if (v === null) return null;
    const b = createStorageFrom(dev, v.data, v.label);
    made2.push(b);
    bytes += v.data.byteLength;
    report(v.label, v.data.byteLength);
    return b;
  };
  const norm = ([weight, bias]: [PlannedVec | null, PlannedVec | null]): GpuNorm | null => (weight === null ? null : { weight: vec(weight)!, bias: vec(bias) });
  try {
    const embed = matrix(plan.embed).parts[0];
    const posEmbed = plan.posEmbed ? matrix(plan.posEmbed).parts[0] : null;
    const layers = plan.layers.map(
      (l): GpuLayerWeights => ({
        attnNorm: norm(l.norms[0]),
        attnPostNorm: norm(l.norms[1]),
        mlpNorm: norm(l.norms[2]),
        mlpPostNorm: norm(l.norms[3]),
        wqkv: matrix(l.wqkv),
        bqkv: vec(l.bqkv),
        qNorm: vec(l.qNorm),
        kNorm: vec(l.kNorm),
        wo: matrix(l.wo),
        bo: vec(l.bo),
        wGateUp: matrix(l.wGateUp),
        bGateUp: vec(l.bGateUp),
        wDown: matrix(l.wDown),
        bDown: vec(l.bDown),
      }),
    );
    const finalNorm = norm(plan.finalNorm) as GpuNorm;
    const lmHead = plan.lmHead ? matrix(plan.lmHead) : { rows: embed.rows, cols: embed.cols, parts: [embed] };
    return { embed, posEmbed, layers, finalNorm, lmHead, bytes };
  } catch (e) {
    for (const t of made) destroyTensor(t);
    for (const b of made2) b.destroy();
    throw e;
  }
}

export function destroyWeights(w: GpuWeights): void {
  const seen = new Set<GPUBuffer>();
  const buf = (b: GPUBuffer | null | undefined) => {
    if (b && !seen.has(b)) (seen.add(b), b.destroy());
  };
  const tensor = (t: WeightTensor | null) => t?.chunks.forEach((c) => buf(c.buffer));
  const matrix = (m: GpuMatrix) => m.parts.forEach(tensor);
  const norm = (n: GpuNorm | null) => (buf(n?.weight), buf(n?.bias));
  tensor(w.embed);
  tensor(w.posEmbed);
  matrix(w.lmHead);
  norm(w.finalNorm);
  for (const l of w.layers) {
    for (const n of [l.attnNorm, l.attnPostNorm, l.mlpNorm, l.mlpPostNorm]) norm(n);
    for (const b of [l.bqkv, l.qNorm, l.kNorm, l.bo, l.bGateUp, l.bDown]) buf(b);
    for (const m of [l.wqkv, l.wo, l.wGateUp, l.wDown]) matrix(m);
  }
}
