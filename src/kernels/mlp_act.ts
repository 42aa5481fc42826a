// The MLP activation: act(gate) * up of the fused gate|up projection (SwiGLU: Llama; GeGLU: Gemma), or act(x) alone
// for a plain MLP (GPT-2, GPT-NeoX). act: SiLU, GELU tanh form, GELU erf form. One pipeline per (act, gated).
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, shaderSource } from './kernel.js';
import { WGSL } from './wgsl.gen.js';

export const MlpActParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['hidden', 'u32'],
] as const);
const WG = 256;

/** silu: x sigmoid(x). gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))). gelu_erf: 0.5 x (1 + erf(x / sqrt 2)). */
export type Activation = 'silu' | 'gelu_tanh' | 'gelu_erf';
/** The ACT value shaders/activation.wgsl reads for each activation. */
export const ACT_CODE: Record<Activation, number> = { silu: 0, gelu_tanh: 1, gelu_erf: 2 };

export interface MlpActOptions {
  hidden: number; // MLP hidden size (intermediate_size)
  /** Default silu. */
  act?: Activation;
  /** act(gate) * up over (rows, 2 * hidden) input; false: act(x) over (rows, hidden). Default true. */
  gated?: boolean;
}

export interface MlpActBuffers {
  input: GPUBuffer; // (rows, 2 * hidden) f32 gate | up when gated, else (rows, hidden) f32
  out: GPUBuffer; // (rows, hidden) f32
}

export class MlpAct {
  private readonly pipeline: GPUComputePipeline;
  readonly act: Activation;
  readonly gated: boolean;

  constructor(
    private readonly gpu: Gpu,
    readonly opts: MlpActOptions,
  ) {
    if (!Number.isInteger(opts.hidden) || opts.hidden < 1) {
      throw new InvalidArgumentError(`MlpAct: hidden must be a positive integer, got ${opts.hidden}`);
    }
    this.act = opts.act ?? 'silu';
    this.gated = opts.gated ?? true;
    if (!(this.act in ACT_CODE)) throw new InvalidArgumentError(`MlpAct: act must be one of ${Object.keys(ACT_CODE).join(', ')}, got ${this.act}`);
    const constants = { WG, ACT: ACT_CODE[this.act], GATED: this.gated ? 1 : 0 };
    this.pipeline = gpu.pipelines.get({ op: 'mlp_act', variant: 'flat', constants }, () => `${WGSL.activation}\n${shaderSource('mlp_act', MlpActParams)}`);
  }

  bind(b: MlpActBuffers, label = 'mlp_act'): BoundMlpAct {
    if (b.input === b.out) throw new InvalidArgumentError(`${label}: input and out must be different buffers`);
    const k = new BoundKernel(this.gpu, this.pipeline, MlpActParams, [b.input, b.out], label);
    return new BoundMlpAct(k, this.gpu, b, this.opts.hidden, this.gated, label);
  }
}

export class BoundMlpAct {
  constructor(
    private readonly k: BoundKernel<'rows' | 'hidden'>,
    private readonly gpu: Gpu,
    private readonly b: MlpActBuffers,
    private readonly hidden: number,
    private readonly gated: boolean,
    private readonly label: string,
  ) {}

  encode(pass: GPUComputePassEncoder, rows: number): void {
    const hidden = this.hidden;
    checkFloats(this.label, 'input', this.b.input, rows * (this.gated ? 2 : 1) * hidden);
    checkFloats(this.label, 'out', this.b.out, rows * hidden);
    this.k.encode(pass, { rows, hidden }, grid2d(this.gpu, groupsFor(rows * hidden, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
