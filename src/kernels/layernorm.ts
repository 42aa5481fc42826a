// LayerNorm (GPT-2): y = (x - mean) / sqrt(var + eps) * weight + bias per row, biased variance (divided by dim).
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, pipelineFor } from './kernel.js';
import { BoundRowNorm, checkNormOptions, type NormOptions, type NormWorkgroupSize } from './rmsnorm.js';

export const LayerNormParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['dim', 'u32'],
  ['eps', 'f32'],
  ['accumulate', 'u32'], // 1: y += norm(x) (a post-norm adding into the residual stream); 0: y = norm(x)
] as const);

export interface LayerNormBuffers {
  x: GPUBuffer; // (rows, dim) f32
  weight: GPUBuffer; // (dim) f32
  bias: GPUBuffer; // (dim) f32
  y: GPUBuffer; // (rows, dim) f32, a different buffer than x
}

export class LayerNorm {
  private readonly pipeline: GPUComputePipeline;
  readonly workgroupSize: NormWorkgroupSize;

  constructor(
    private readonly gpu: Gpu,
    readonly opts: NormOptions,
  ) {
    this.workgroupSize = checkNormOptions('LayerNorm', gpu, opts);
    const WG = this.workgroupSize;
    this.pipeline = pipelineFor(gpu, { op: 'layernorm', variant: 'two_pass', constants: { WG } }, 'layernorm', LayerNormParams);
  }

  bind(b: LayerNormBuffers, label = 'layernorm'): BoundRowNorm {
    if (b.x === b.y) throw new InvalidArgumentError(`${label}: x and y must be different buffers (LayerNorm does not run in place)`);
    checkFloats(label, 'weight', b.weight, this.opts.dim);
    checkFloats(label, 'bias', b.bias, this.opts.dim);
    const k = new BoundKernel(this.gpu, this.pipeline, LayerNormParams, [b.x, b.weight, b.bias, b.y], label);
    return new BoundRowNorm(k, this.gpu, b, this.opts, label);
  }
}
