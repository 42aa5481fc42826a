// RMSNorm (Llama): y = x / sqrt(mean(x^2) + eps) * weight, row by row over (rows, dim) activations.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, pipelineFor } from './kernel.js';

export const RmsNormParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['dim', 'u32'],
  ['eps', 'f32'],
  ['accumulate', 'u32'], // 1: y += norm(x) (a post-norm adding into the residual stream); 0: y = norm(x)
] as const);

/**
 * Workgroup sizes the norm kernels (this one and LayerNorm) compile with; one workgroup reduces one row.
 * CPU adapters run a workgroup's invocations as loops and pay for every barrier, so they get 16: at dim 2048 it was
 * the fastest or near it for 1 and 8 rows on both llvmpipe and SwiftShader (RmsNorm 1 row: ~40 us llvmpipe, ~70 us
 * SwiftShader; 64 and 256 were up to 2x and 6x slower on SwiftShader; a noisy 2-core machine). A real GPU wants
 * enough threads per row to hide memory latency: 256.
 */
export const NORM_WORKGROUP_SIZES = [16, 256] as const;
export type NormWorkgroupSize = (typeof NORM_WORKGROUP_SIZES)[number];

export function normWorkgroupSize(gpu: Gpu): NormWorkgroupSize {
  return gpu.isCpu ? 16 : 256;
}

export interface NormOptions {
  dim: number;
  eps: number;
  /** Forces one of NORM_WORKGROUP_SIZES (tests cover every variant on every adapter); default by adapter. */
  workgroupSize?: NormWorkgroupSize;
  /**
   * y += norm(x) instead of y = norm(x): the norm after attention or the MLP (Gemma 2/3's sandwich, OLMo 2's post-norm)
   * adds straight into the residual stream, saving a residual-add dispatch. A uniform flag, as Matmul's epilogue.
   */
  accumulate?: boolean;
}

/** Checks the static options shared by RmsNorm and LayerNorm; returns the workgroup size to compile with. */
export function checkNormOptions(op: string, gpu: Gpu, o: NormOptions): NormWorkgroupSize {
  if (!Number.isInteger(o.dim) || o.dim < 1) throw new InvalidArgumentError(`${op}: dim must be a positive integer, got ${o.dim}`);
  if (!Number.isFinite(o.eps) || o.eps < 0) throw new InvalidArgumentError(`${op}: eps must be a finite number >= 0, got ${o.eps}`);
  const wg = o.workgroupSize ?? normWorkgroupSize(gpu);
  if (!NORM_WORKGROUP_SIZES.includes(wg)) {
    throw new InvalidArgumentError(`${op}: workgroupSize ${wg} is not one of ${NORM_WORKGROUP_SIZES.join(', ')}`);
  }
  return wg;
}


export interface RmsNormBuffers {
  x: GPUBuffer; // (rows, dim) f32
  weight: GPUBuffer; // (dim) f32
  y: GPUBuffer; // (rows, dim) f32, a different buffer than x
}

export class RmsNorm {
  private readonly pipeline: GPUComputePipeline;
  readonly workgroupSize: NormWorkgroupSize;

  constructor(
    private readonly gpu: Gpu,
    readonly opts: NormOptions,
  ) {
    this.workgroupSize = checkNormOptions('RmsNorm', gpu, opts);
    const WG = this.workgroupSize;
    this.pipeline = pipelineFor(gpu, { op: 'rmsnorm', variant: 'row_per_workgroup', constants: { WG } }, 'rmsnorm', RmsNormParams);
  }

  bind(b: RmsNormBuffers, label = 'rmsnorm'): BoundRowNorm {
    if (b.x === b.y) throw new InvalidArgumentError(`${label}: x and y must be different buffers (RmsNorm does not run in place)`);
    checkFloats(label, 'weight', b.weight, this.opts.dim);
    const k = new BoundKernel(this.gpu, this.pipeline, RmsNormParams, [b.x, b.weight, b.y], label);
    return new BoundRowNorm(k, this.gpu, b, this.opts, label);
  }
}

/** A bound row normalisation (RmsNorm or LayerNorm): both read x and write y one row per workgroup. */
export class BoundRowNorm {
  constructor(
    private readonly k: BoundKernel<'rows' | 'dim' | 'eps' | 'accumulate'>,
    private readonly gpu: Gpu,
    private readonly b: { x: GPUBuffer; y: GPUBuffer },
    private readonly opts: NormOptions,
    private readonly label: string,
  ) {}

  /** Normalises the first `rows` rows; one workgroup per row. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    const { dim, eps } = this.opts;
    checkFloats(this.label, 'x', this.b.x, rows * dim);
    checkFloats(this.label, 'y', this.b.y, rows * dim);
    this.k.encode(pass, { rows, dim, eps, accumulate: this.opts.accumulate ? 1 : 0 }, grid2d(this.gpu, rows));
  }

  destroy(): void {
    this.k.destroy();
  }
}
