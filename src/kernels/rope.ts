// Rotary position embedding (Hugging Face rotate-half layout), in place on the first nHeads heads of each row.
// The model calls it on fused q|k|v rows with nHeads = Hq + Hkv: q and k rotate in one dispatch, v is untouched.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { createStorageFrom } from '../gpu/buffers.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const RopeParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['nHeads', 'u32'],
  ['headDim', 'u32'],
  ['rowStride', 'u32'],
] as const);
const WG = 256;

export interface RopeOptions {
  headDim: number; // even
  nHeads: number; // heads rotated per row, from column 0
  rowStride: number; // f32 values per row of x, >= nHeads * headDim
  theta: number; // base of the frequencies, e.g. 1e4 (Llama 2) or 1e6
}

export interface RopeBuffers {
  x: GPUBuffer; // (rows, rowStride) f32, rotated in place
  positions: GPUBuffer; // (rows) u32
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
 * (headDim / 2, 4) f32: frequency i in turns per position, theta^(-2i/headDim) / (2 pi) computed in float64,
 * split as a + b + c + d with a, b, c of 7 significant bits and d the f32 remainder (see shaders/rope.wgsl).
 */
export function ropeFrequencyTable(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half * 4);
  for (let i = 0; i < half; i++) {
    let r = theta ** ((-2 * i) / headDim) / (2 * Math.PI);
    for (let k = 0; k < 3; k++) {
      const part = top7Bits(r);
      out[i * 4 + k] = part;
      r -= part; // exact: part and r agree in their leading bits
    }
    out[i * 4 + 3] = r;
  }
  return out;
}

export class Rope {
  private readonly pipeline: GPUComputePipeline;
  private readonly freq: GPUBuffer; // (headDim / 2, 4) f32, owned

  constructor(
    private readonly gpu: Gpu,
    readonly opts: RopeOptions,
  ) {
    const { headDim, nHeads, rowStride, theta } = opts;
    if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
      throw new InvalidArgumentError(`Rope: headDim must be a positive even integer, got ${headDim}`);
    }
    if (!Number.isInteger(nHeads) || nHeads < 1) throw new InvalidArgumentError(`Rope: nHeads must be a positive integer, got ${nHeads}`);
    if (!Number.isInteger(rowStride) || rowStride < nHeads * headDim) {
      throw new InvalidArgumentError(`Rope: rowStride ${rowStride} must be an integer >= nHeads * headDim = ${nHeads * headDim}`);
    }
    if (!Number.isFinite(theta) || theta <= 1) throw new InvalidArgumentError(`Rope: theta must be a finite number > 1, got ${theta}`);
    this.pipeline = pipelineFor(gpu, { op: 'rope', variant: 'rotate_half', constants: { WG } }, 'rope', RopeParams);
    this.freq = createStorageFrom(gpu.device, ropeFrequencyTable(headDim, theta), `rope:freq (${headDim / 2}, 4) f32`);
  }

  bind(b: RopeBuffers, label = 'rope'): BoundRope {
    const k = new BoundKernel(this.gpu, this.pipeline, RopeParams, [b.x, b.positions, this.freq], label);
    return new BoundRope(k, this.gpu, b, this.opts, label);
  }

  /** Frees the frequency table; bound kernels of this Rope must not be encoded afterwards. */
  destroy(): void {
    this.freq.destroy();
  }
}

export class BoundRope {
  constructor(
    private readonly k: BoundKernel<'rows' | 'nHeads' | 'headDim' | 'rowStride'>,
    private readonly gpu: Gpu,
    private readonly b: RopeBuffers,
    private readonly opts: RopeOptions,
    private readonly label: string,
  ) {}

  /** Rotates the first `rows` rows, each at its own position. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    const { nHeads, headDim, rowStride } = this.opts;
    checkFloats(this.label, 'x', this.b.x, rows * rowStride);
    checkFloats(this.label, 'positions', this.b.positions, rows);
    const pairs = rows * nHeads * (headDim / 2);
    this.k.encode(pass, { rows, nHeads, headDim, rowStride }, grid2d(this.gpu, groupsFor(pairs, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
