// mlp_block: the out-projection, the MLP's RMSNorm + gate|up and act + down of a pre-norm Llama layer in one dispatch
// (shaders/mlp_block.wgsl), one workgroup per block of 8 rows, for wide steps of small models on llvmpipe. The layered
// forward runs these as three register-blocked matmuls (kernels/matmul.ts), one dispatch each; on llvmpipe a dispatch
// costs ~20 us of hand-off to Mesa's worker threads, about what stories260K's 16-row o or down projection computes.
// Same operations in the same order as the three matmuls (the shader's header): same bits. On Chromium's GL route the
// phases run written out (kernels/mlp_block_written_out.ts), as the register-blocked matmuls do there.
//
// Bindings: 1 attnOut (M, qDim) f32; 2 Wo (D, qDim); 3 hidden (M, D) f32, read and written; 4 the MLP norm's weight
// (D); 5 Wgu (2F, D) gate rows then up rows; 6 gateUp (M, 2F) f32 written (and read); 7 Wdown (D, F). No biases.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, groupsFor } from './kernel.js';
import { ACT_CODE, type Activation } from './mlp_act.js';
import { mlpBlockWrittenOut } from './mlp_block_written_out.js';
import { WGSL } from './wgsl.gen.js';

export const MlpBlockParams = defineUniform('Params', [
  ['m', 'u32'], // rows
  ['dim', 'u32'], // D
  ['qDim', 'u32'], // the attention output's width (o's K)
  ['hidden', 'u32'], // F
  ['eps', 'f32'], // the RMSNorm's epsilon
  ['zero', 'f32'], // 0: the bias the layered matmul adds (a uniform there too)
] as const);
type Field = (typeof MlpBlockParams.fields)[number][0];

/** Rows per workgroup (the shader's MR). */
export const MLP_BLOCK_ROWS = 8;
/** Threads per workgroup: one batch of llvmpipe's 8 lanes; each thread loops over column blocks of 8. */
const WG = 8;

export interface MlpBlockShape {
  dim: number; // D
  qDim: number;
  hidden: number; // F
  eps: number;
  act: Activation;
}

export interface MlpBlockBuffers {
  attnOut: GPUBuffer; // (M, qDim) f32
  wo: GPUBuffer; // (D, qDim) f32
  hidden: GPUBuffer; // (M, D) f32
  norm: GPUBuffer; // (D) f32
  wGateUp: GPUBuffer; // (2F, D) f32
  gateUp: GPUBuffer; // (M, 2F) f32
  wDown: GPUBuffer; // (D, F) f32
}

/**
 * Loop iterations one invocation runs (llvmpipe ends every loop of an invocation after 65,535 in all:
 * kernels/token_stats.ts LOOP_BUDGET): its column blocks of each phase, K / 4 steps each.
 */
export function mlpBlockLoopIterations(s: MlpBlockShape): number {
  const blocks = (n: number) => Math.ceil(Math.ceil(n / 8) / WG);
  return blocks(s.dim) * (s.qDim / 4 + 40) + blocks(2 * s.hidden) * (s.dim / 4 + 40) + blocks(s.dim) * (s.hidden / 4 + 40);
}

export class MlpBlock {
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly shape: MlpBlockShape,
  ) {
    const { dim, qDim, hidden, act } = shape;
    for (const [name, v] of [['dim', dim], ['qDim', qDim], ['hidden', hidden]] as const) {
      if (!Number.isInteger(v) || v < 4 || v % 4 !== 0) throw new InvalidArgumentError(`MlpBlock: ${name} must be a positive multiple of 4, got ${v}.`);
    }
    if (!(act in ACT_CODE)) throw new InvalidArgumentError(`MlpBlock: act must be one of ${Object.keys(ACT_CODE).join(', ')}, got ${act}.`);
    // Written out where the register-blocked kernels are (Chromium's GL route: kernels/mlp_block_written_out.ts).
    const unrolled = gpu.registerBlocks === 'unrolled';
    const body = unrolled ? mlpBlockWrittenOut(WGSL.mlp_block) : WGSL.mlp_block;
    const code = `${MlpBlockParams.wgsl}\noverride ACT: u32;\n${WGSL.activation}\n${body}`;
    this.pipeline = gpu.pipelines.get({ op: 'mlp_block', variant: unrolled ? 'rows8-unrolled' : 'rows8', constants: { WG, ACT: ACT_CODE[act] } }, () => code);
  }

  bind(b: MlpBlockBuffers, label = 'mlp_block'): BoundMlpBlock {
    const s = this.shape;
    const ws: [string, GPUBuffer, number][] = [['wo', b.wo, s.dim * s.qDim], ['norm', b.norm, s.dim], ['wGateUp', b.wGateUp, 2 * s.hidden * s.dim], ['wDown', b.wDown, s.dim * s.hidden]];
    for (const [name, buf, n] of ws) checkFloats(label, name, buf, n);
    // WebGPU refuses a buffer bound writable and also bound elsewhere in one dispatch (the whole command buffer would be
    // dropped): say so here instead.
    const all: [string, GPUBuffer][] = [['attnOut', b.attnOut], ['wo', b.wo], ['hidden', b.hidden], ['norm', b.norm], ['wGateUp', b.wGateUp], ['gateUp', b.gateUp], ['wDown', b.wDown]];
    for (const written of ['hidden', 'gateUp']) {
      const buf = all.find(([n]) => n === written)![1];
      const other = all.find(([n, o]) => n !== written && o === buf);
      if (other) throw new InvalidArgumentError(`${label}: ${written} is written, so it must be a buffer of its own (it is also bound as ${other[0]}).`);
    }
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, MlpBlockParams, [b.attnOut, b.wo, b.hidden, b.norm, b.wGateUp, b.gateUp, b.wDown], label);
    return new BoundMlpBlock(k, b, s, label);
  }
}

export class BoundMlpBlock {
  constructor(
    private readonly k: BoundKernel<Field>,
    private readonly b: MlpBlockBuffers,
    private readonly s: MlpBlockShape,
    private readonly label: string,
  ) {}

  /** hidden[0:M] += o, then += down(act(gate) * up) of RMSNorm(hidden) * g; one workgroup per 8 rows. */
  encode(pass: GPUComputePassEncoder, M: number): void {
    const s = this.s;
    if (!Number.isInteger(M) || M < 0) throw new InvalidArgumentError(`${this.label}: M must be an integer >= 0, got ${M}.`);
    checkFloats(this.label, 'attnOut', this.b.attnOut, M * s.qDim);
    checkFloats(this.label, 'hidden', this.b.hidden, M * s.dim);
    checkFloats(this.label, 'gateUp', this.b.gateUp, M * 2 * s.hidden);
    this.k.encode(pass, { m: M, dim: s.dim, qDim: s.qDim, hidden: s.hidden, eps: s.eps, zero: 0 }, [groupsFor(M, MLP_BLOCK_ROWS)]);
  }

  destroy(): void {
    this.k.destroy();
  }
}
