// The attention prologue of a layer in one dispatch: q/k RMSNorm (per head or over the whole projection), RoPE from a
// host-computed inverse-frequency table (any RoPE variant, partial rotary, NoPE), and the KV write of each row's k and
// v heads into the layer's paged pool. See shaders/rope_kv.wgsl for the precision argument.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError, UnsupportedModelError } from '../errors.js';
import { createStorage, createStorageFrom } from '../gpu/buffers.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, shaderSource } from './kernel.js';
import { WGSL } from './wgsl.gen.js';

export const RopeKvParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['unitsPerRow', 'u32'], // q norm groups + k norm groups + Hkv v heads
  ['nHeads', 'u32'],
  ['kvHeads', 'u32'],
  ['headDim', 'u32'],
  ['qkvStride', 'u32'],
  ['pageSize', 'u32'],
  ['pages', 'u32'], // pages in the pool: slots beyond it are dropped, never written out of place
  ['rotaryHalf', 'u32'], // rotated pairs per head (rotary dims / 2); 0 = no RoPE on this layer
  ['ropeScale', 'f32'], // multiplies cos and sin (yarn's attention factor); 1 otherwise
  ['eps', 'f32'], // q/k norm epsilon
] as const);
type Field = (typeof RopeKvParams.fields)[number][0];
const WG = 64;

/** q/k normalisation before RoPE: none, RMSNorm over each head (Qwen 3, Gemma 3), or over the whole projection (OLMo 2). */
export type QkNormKind = 'none' | 'head' | 'projection';
const NORM_CODE: Record<QkNormKind, number> = { none: 0, head: 1, projection: 2 };

export interface RopeKvShape {
  nHeads: number; // Hq
  kvHeads: number; // Hkv
  headDim: number; // hd
  pageSize: number; // tokens per page
  qkvStride: number; // f32 per qkv row, >= (Hq + 2 Hkv) hd: q heads at 0, k heads at Hq*hd, v heads at (Hq+Hkv)*hd
  qkNorm: QkNormKind;
  /** q/k norm epsilon (unused without a q/k norm). */
  eps?: number;
}

/** The positions of one layer (each layer binds its own: a theta per layer kind, NoPE layers). */
export interface RopeLayer {
  /**
   * (rotaryDim / 2) radians per position of rotated pair i (pairs (i, i + rotaryDim / 2) of each head), from the
   * model's RoPE variant; empty for a layer without RoPE (NoPE).
   */
  invFreq: ArrayLike<number>;
  /** Multiplies cos and sin: yarn's attention factor. Default 1. */
  scale?: number;
}

export interface RopeKvBuffers {
  qkv: GPUBuffer; // (rows, qkvStride) f32, q and k rewritten in place
  positions: GPUBuffer; // (rows) u32
  slots: GPUBuffer; // (rows) u32 page * pageSize + offset
  kv: GPUBuffer; // (pages, 2, Hkv, pageSize, hd) f32 of this layer
  qNorm?: GPUBuffer; // (hd) for 'head' or (Hq*hd) for 'projection' f32: exactly when qkNorm != 'none'
  kNorm?: GPUBuffer; // (hd) or (Hkv*hd) f32
}

/** Rounds `v` to at most 7 significant bits (exact in f64 and in f32). */
function top7Bits(v: number): number {
  if (v === 0) return 0;
  let scale = 2 ** (6 - Math.floor(Math.log2(Math.abs(v))));
  // Math.log2 may be one off near powers of two; settle the scale so |v| * scale lies in [64, 128).
  while (Math.abs(v) * scale >= 128) scale /= 2;
  while (Math.abs(v) * scale < 64) scale *= 2;
  return Math.round(v * scale) / scale;
}

/**
 * (n, 4) f32: inverse frequency i (radians per position) in turns per position, invFreq[i] / (2 pi) in float64, split
 * as a + b + c + d with a, b, c of 7 significant bits and d the f32 remainder (see shaders/rope_kv.wgsl).
 */
export function splitFrequencies(invFreq: ArrayLike<number>): Float32Array {
  const out = new Float32Array(Math.max(1, invFreq.length) * 4);
  for (let i = 0; i < invFreq.length; i++) {
    let r = invFreq[i] / (2 * Math.PI);
    for (let k = 0; k < 3; k++) {
      const part = top7Bits(r);
      out[i * 4 + k] = part;
      r -= part; // exact: part and r agree in their leading bits
    }
    out[i * 4 + 3] = r;
  }
  return out;
}

/** Inverse frequencies of default RoPE: theta^(-2i / rotaryDim) for i < rotaryDim / 2 (RoFormer; Llama 2). */
export function defaultInvFreq(rotaryDim: number, theta: number): Float64Array {
  return Float64Array.from({ length: rotaryDim / 2 }, (_, i) => theta ** ((-2 * i) / rotaryDim));
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`rope_kv: ${name} must be a positive integer, got ${v}`);
}

export class RopeKv {
  private readonly pipeline: GPUComputePipeline;
  private readonly owned: GPUBuffer[] = [];
  private dummy: GPUBuffer | null = null;

  constructor(
    private readonly gpu: Gpu,
    readonly shape: RopeKvShape,
  ) {
    const { nHeads, kvHeads, headDim, pageSize, qkvStride } = shape;
    for (const [k, v] of Object.entries({ nHeads, kvHeads, headDim, pageSize, qkvStride })) positiveInt(k, v);
    if (headDim % 2 !== 0) throw new UnsupportedModelError(`rope_kv: head dim ${headDim} must be even for RoPE`);
    if (qkvStride < (nHeads + 2 * kvHeads) * headDim) {
      throw new InvalidArgumentError(`rope_kv: qkvStride ${qkvStride} cannot hold ${nHeads} q, ${kvHeads} k and ${kvHeads} v heads of ${headDim}`);
    }
    if (!(shape.qkNorm in NORM_CODE)) throw new InvalidArgumentError(`rope_kv: qkNorm must be none, head or projection, got ${shape.qkNorm}`);
    const eps = shape.eps ?? 1e-6;
    if (!(Number.isFinite(eps) && eps >= 0)) throw new InvalidArgumentError(`rope_kv: eps must be a finite number >= 0, got ${eps}`);
    const constants = { NORM: NORM_CODE[shape.qkNorm] };
    this.pipeline = gpu.pipelines.get({ op: 'rope_kv', variant: 'unit_per_invocation', constants }, () => `${WGSL.rope_turns}\n${shaderSource('rope_kv', RopeKvParams)}`);
  }

  /** Invocations per row: q norm groups, k norm groups, v heads. */
  get unitsPerRow(): number {
    const s = this.shape;
    return s.qkNorm === 'projection' ? 2 + s.kvHeads : s.nHeads + 2 * s.kvHeads;
  }

  bind(b: RopeKvBuffers, layer: RopeLayer, label = 'rope_kv'): BoundRopeKv {
    const s = this.shape;
    const half = layer.invFreq.length;
    if (2 * half > s.headDim) throw new InvalidArgumentError(`${label}: ${half} rotated pairs do not fit a head of ${s.headDim}`);
    for (let i = 0; i < half; i++) {
      const f = layer.invFreq[i];
      if (!(Number.isFinite(f) && f >= 0)) throw new InvalidArgumentError(`${label}: invFreq[${i}] = ${f} is not a finite frequency >= 0`);
    }
    const ropeScale = layer.scale ?? 1;
    if (!(Number.isFinite(ropeScale) && ropeScale > 0)) throw new InvalidArgumentError(`${label}: RoPE scale must be > 0, got ${ropeScale}`);
    const pageBytes = 2 * s.kvHeads * s.pageSize * s.headDim * 4;
    const pages = Math.floor(b.kv.size / pageBytes);
    if (pages < 1) throw new InvalidArgumentError(`${label}: the KV buffer (${b.kv.size} bytes) holds no whole page of ${pageBytes} bytes`);
    const norm = s.qkNorm !== 'none';
    if (norm !== (b.qNorm !== undefined && b.kNorm !== undefined)) {
      throw new InvalidArgumentError(`${label}: qkNorm is ${s.qkNorm}; give qNorm and kNorm weights exactly when it is not none`);
    }
    if (b.qNorm && b.kNorm) {
      const whole = s.qkNorm === 'projection';
      checkFloats(label, 'qNorm', b.qNorm, whole ? s.nHeads * s.headDim : s.headDim);
      checkFloats(label, 'kNorm', b.kNorm, whole ? s.kvHeads * s.headDim : s.headDim);
    }
    const freq = createStorageFrom(this.gpu.device, splitFrequencies(layer.invFreq), `${label}:freq (${half}, 4) f32`);
    this.owned.push(freq);
    this.dummy ??= createStorage(this.gpu.device, 16, 'rope_kv:unused (4) f32');
    const buffers = [b.qkv, b.positions, freq, b.qNorm ?? this.dummy, b.kNorm ?? this.dummy, b.slots, b.kv];
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, RopeKvParams, buffers, label);
    const params: Record<Field, number> = {
      rows: 0,
      unitsPerRow: this.unitsPerRow,
      nHeads: s.nHeads,
      kvHeads: s.kvHeads,
      headDim: s.headDim,
      qkvStride: s.qkvStride,
      pageSize: s.pageSize,
      pages,
      rotaryHalf: half,
      ropeScale,
      eps: s.eps ?? 1e-6,
    };
    return new BoundRopeKv(k, this.gpu, b, params, label);
  }

  /** Frees the frequency tables of every bind; bound kernels must not be encoded afterwards. */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
    this.dummy?.destroy();
    this.dummy = null;
  }
}

export class BoundRopeKv {
  constructor(
    private readonly k: BoundKernel<Field>,
    private readonly gpu: Gpu,
    private readonly b: RopeKvBuffers,
    private readonly params: Record<Field, number>,
    private readonly label: string,
  ) {}

  /** Rows 0..rows-1: norm and rotate q and k in place, write k and v at each row's slot. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    checkFloats(this.label, 'qkv', this.b.qkv, rows * this.params.qkvStride);
    checkFloats(this.label, 'positions', this.b.positions, rows);
    checkFloats(this.label, 'slots', this.b.slots, rows);
    this.params.rows = rows;
    this.k.encode(pass, this.params, grid2d(this.gpu, groupsFor(rows * this.params.unitsPerRow, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
