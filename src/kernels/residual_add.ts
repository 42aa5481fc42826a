// Residual add: x += y, elementwise over (rows, dim) activations.
import type { Gpu } from '../gpu/device.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const ResidualAddParams = defineUniform('Params', [['n', 'u32']] as const);
const WG = 256;

export interface ResidualAddBuffers {
  x: GPUBuffer; // (rows, dim) f32, updated in place
  y: GPUBuffer; // (rows, dim) f32
}

export class ResidualAdd {
  private readonly pipeline: GPUComputePipeline;
  constructor(private readonly gpu: Gpu) {
    this.pipeline = pipelineFor(gpu, { op: 'residual_add', variant: 'flat', constants: { WG } }, 'residual_add', ResidualAddParams);
  }

  bind(b: ResidualAddBuffers, label = 'residual_add'): BoundResidualAdd {
    return new BoundResidualAdd(new BoundKernel(this.gpu, this.pipeline, ResidualAddParams, [b.x, b.y], label), this.gpu);
  }
}

export class BoundResidualAdd {
  constructor(
    private readonly k: BoundKernel<'n'>,
    private readonly gpu: Gpu,
  ) {}
  /** `n` = rows * dim elements. */
  encode(pass: GPUComputePassEncoder, n: number): void {
    this.k.encode(pass, { n }, grid2d(this.gpu, groupsFor(n, WG)));
  }
}
