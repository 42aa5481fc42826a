// SwiGLU activation of the fused gate|up projection: out = silu(gate) * up.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const SwiGluParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['hidden', 'u32'],
] as const);
const WG = 256;

export interface SwiGluOptions {
  hidden: number; // MLP hidden size (intermediate_size)
}

export interface SwiGluBuffers {
  gateUp: GPUBuffer; // (rows, 2 * hidden) f32: gate in columns [0, hidden), up in [hidden, 2 * hidden)
  out: GPUBuffer; // (rows, hidden) f32
}

export class SwiGlu {
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly opts: SwiGluOptions,
  ) {
    if (!Number.isInteger(opts.hidden) || opts.hidden < 1) {
      throw new InvalidArgumentError(`SwiGlu: hidden must be a positive integer, got ${opts.hidden}`);
    }
    this.pipeline = pipelineFor(gpu, { op: 'swiglu', variant: 'flat', constants: { WG } }, 'swiglu', SwiGluParams);
  }

  bind(b: SwiGluBuffers, label = 'swiglu'): BoundSwiGlu {
    if (b.gateUp === b.out) throw new InvalidArgumentError(`${label}: gateUp and out must be different buffers`);
    const k = new BoundKernel(this.gpu, this.pipeline, SwiGluParams, [b.gateUp, b.out], label);
    return new BoundSwiGlu(k, this.gpu, b, this.opts.hidden, label);
  }
}

export class BoundSwiGlu {
  constructor(
    private readonly k: BoundKernel<'rows' | 'hidden'>,
    private readonly gpu: Gpu,
    private readonly b: SwiGluBuffers,
    private readonly hidden: number,
    private readonly label: string,
  ) {}

  encode(pass: GPUComputePassEncoder, rows: number): void {
    const hidden = this.hidden;
    checkFloats(this.label, 'gateUp', this.b.gateUp, rows * 2 * hidden);
    checkFloats(this.label, 'out', this.b.out, rows * hidden);
    this.k.encode(pass, { rows, hidden }, grid2d(this.gpu, groupsFor(rows * hidden, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
