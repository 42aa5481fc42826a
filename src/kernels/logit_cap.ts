// Final logit transform, in place over (rows, V): multiply by a scale (Granite's 1 / logits_scaling), then soft-cap
// as cap * tanh(x / cap) (Gemma 2's final_logit_softcapping). The model dispatches it once per step, only for specs
// that need it.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const LogitCapParams = defineUniform('Params', [
  ['n', 'u32'],
  ['scale', 'f32'],
  ['cap', 'f32'], // 0 = no soft-cap
] as const);
const WG = 256;

export interface LogitCapOptions {
  /** Multiplies every logit first. Default 1. */
  scale?: number;
  /** Soft-cap after the scale; null or 0: none. */
  cap?: number | null;
}

export class LogitCap {
  private readonly pipeline: GPUComputePipeline;
  readonly scale: number;
  readonly cap: number;

  constructor(
    private readonly gpu: Gpu,
    opts: LogitCapOptions,
  ) {
    this.scale = opts.scale ?? 1;
    this.cap = opts.cap ?? 0;
    if (!(Number.isFinite(this.scale) && this.scale > 0)) throw new InvalidArgumentError(`LogitCap: scale must be a positive number, got ${this.scale}`);
    if (!(Number.isFinite(this.cap) && this.cap >= 0)) throw new InvalidArgumentError(`LogitCap: cap must be >= 0 (0 = none), got ${this.cap}`);
    this.pipeline = pipelineFor(gpu, { op: 'logit_cap', variant: 'flat', constants: { WG } }, 'logit_cap', LogitCapParams);
  }

  bind(x: GPUBuffer, label = 'logit_cap'): BoundLogitCap {
    const k = new BoundKernel(this.gpu, this.pipeline, LogitCapParams, [x], label);
    return new BoundLogitCap(k, this.gpu, x, this.scale, this.cap, label);
  }
}

export class BoundLogitCap {
  constructor(
    private readonly k: BoundKernel<'n' | 'scale' | 'cap'>,
    private readonly gpu: Gpu,
    private readonly x: GPUBuffer, // (n) f32
    private readonly scale: number,
    private readonly cap: number,
    private readonly label: string,
  ) {}

  /** Transforms the first `n` values (rows * V). */
  encode(pass: GPUComputePassEncoder, n: number): void {
    checkFloats(this.label, 'x', this.x, n);
    this.k.encode(pass, { n, scale: this.scale, cap: this.cap }, grid2d(this.gpu, groupsFor(n, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
