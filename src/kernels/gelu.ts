// GELU (tanh approximation, GPT-2's "gelu_new"), elementwise.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const GeluParams = defineUniform('Params', [['n', 'u32']] as const);
const WG = 256;

export interface GeluBuffers {
  x: GPUBuffer; // (n) f32
  y: GPUBuffer; // (n) f32, a different buffer than x
}

export class Gelu {
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly gpu: Gpu) {
    this.pipeline = pipelineFor(gpu, { op: 'gelu', variant: 'tanh_as_sigmoid', constants: { WG } }, 'gelu', GeluParams);
  }

  bind(b: GeluBuffers, label = 'gelu'): BoundGelu {
    if (b.x === b.y) throw new InvalidArgumentError(`${label}: x and y must be different buffers (Gelu does not run in place)`);
    return new BoundGelu(new BoundKernel(this.gpu, this.pipeline, GeluParams, [b.x, b.y], label), this.gpu, b, label);
  }
}

export class BoundGelu {
  constructor(
    private readonly k: BoundKernel<'n'>,
    private readonly gpu: Gpu,
    private readonly b: GeluBuffers,
    private readonly label: string,
  ) {}

  /** `n` = rows * dim elements. */
  encode(pass: GPUComputePassEncoder, n: number): void {
    checkFloats(this.label, 'x', this.b.x, n);
    checkFloats(this.label, 'y', this.b.y, n);
    this.k.encode(pass, { n }, grid2d(this.gpu, groupsFor(n, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
