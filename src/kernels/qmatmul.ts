// Matmul with W in its storage type (F32, F16, BF16 or a GGUF block quantization), dequantized in registers:
//   y[m, n] (+)= sum_k x[m, k] * W[n, k] (+ bias[n]),  x (M, K) f32, W (N, K) as a WeightTensor, y (M, N) f32.
// f32 accumulation; K must be a whole number of the type's blocks (kernelBlock: 4 for the dense types, 32 or 256).
//
// Body shaders composed with the type's weight-loading snippet (shaders/wload_<type>.wgsl), picked per encode from M
// (bench/RESULTS.md, "Weights"):
// - activations 'q8' (the default) on Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K, at every M: kernels/quantize_x8.ts quantizes
//   x to 8 bits per 32-value block after the x prologue, as llama.cpp does for its quantized dot products (one
//   dispatch more, none with xqReady: the model's out-projection reads what the per-head attention wrote on 8 bits), then shaders/qmatmul_q8.wgsl (Q5_0: qmatmul_q8_t8.wgsl, one 8-row tile per invocation) multiplies
//   integers, two weights per u32 multiply (idot_<type>.wgsl); 8 columns and 1 (M = 1), 4 (M < QMATMUL_PREFILL_MIN_M)
//   or 8 rows per invocation (at M = 1 on llvmpipe 8 invocations per workgroup, else 16). A row's per-column arithmetic is the same at every M, so its bits do not depend on how
//   many rows share the dispatch (batched == single);
// - decode, M = 1, other types (or activations 'f32'): shaders/qmatmul_decode.wgsl with the type's dot step
//   (wdot_<type>.wgsl): each invocation loads a chunk of x once and dots it with 8 rows of W (4 for the dense types),
//   reading W in the widest words its layout allows. On llvmpipe a storage load costs per load instruction and lane,
//   so loads, not arithmetic, set the speed. 2-byte-aligned blocks (Q4_0, Q8_0, Q6_K) are read as the 16-byte words
//   that cover them and realigned in registers; Q5_0 is held in 8-row tiles of aligned words (src/weights/tiles.ts).
//   F16/BF16 with K % 8 != 0 (no 16-byte step) take the 1 x 2 blocking of qmatmul.wgsl;
// - decode, M = 1 with activations 'f32-blocked' (what the model runs for the types without an integer step):
//   shaders/qmatmul.wgsl, 1 x 2 outputs per thread, the register-blocked body of the two below. Each row then sums
//   over k in the same order at every M (the dot-step kernels round differently);
// - decode, 2 <= M < QMATMUL_PREFILL_MIN_M: shaders/qmatmul.wgsl, 4 x 2 outputs per thread (a small batch reads W
//   about once);
// - prefill: shaders/qmatmul.wgsl, 8 x 2 for larger M (each dequantized sub-block serves 8 rows).
// Bias and accumulate are uniform flags as in kernels/matmul.ts (one pipeline serves every projection of a type); x goes
// through the x prologue (kernels/x_prologue.ts) and y through the y epilogue chosen at construction. The act_q8
// epilogue (kernels/act_q8_epilogue.ts: a gate|up projection writes down's x on 8 bits) runs on llvmpipe (actQ8Runs)
// in a one-row configuration of its own, 64 columns per invocation; its other configurations run without an epilogue.
// The x hand-off (kernels/x8_handoff.ts, llvmpipe, one row): a matmul built with handoffOut that writes the residual
// stream also writes the next norm's x on 8 bits (configuration q8x1n-out), and one built with handoffIn reads it
// instead of quantizing its own x (q8x1n-in, or q8x1act-in with act_q8); other row counts ignore the hand-off.
// W is split in chunks of whole rows like a SplitTensor (one dispatch per chunk). Encode one bound matmul at most
// once per submit (its uniforms are written at encode time).
import { onLlvmpipe } from '../gpu/adapters.js';
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import { defineUniform } from '../gpu/uniform.js';
import { InvalidArgumentError } from '../errors.js';
import { chunkBytes, type WeightTensor } from '../weights/gpu_tensor.js';
import { tileRows } from '../weights/tiles.js';
import { kernelBlock, type StorageType } from '../weights/types.js';
import { LLVMPIPE_MIN_WG } from './matmul.js';
import { BoundKernel, groupsFor } from './kernel.js';
import { hasDotStep, hasIntDot, weightPipeline, type Handoff } from './weight_shader.js';
import { checkPrologue, PLAIN, prologueKey, xWidth, type XPrologue } from './x_prologue.js';
import { BoundQuantizeX8, createQuantizedX, quantizedXBytes, type QuantizedX } from './quantize_x8.js';
import { ACT_Q8_COLUMNS, ACT_Q8_WG } from './act_q8_epilogue.js';
import { checkEpilogue, checkRopeBinding, NO_EPILOGUE, type RopeBuffers, type YEpilogue } from './y_epilogue.js';
import { handoffBytes, WRITER_STORAGE_BUFFERS, type X8Handoff } from './x8_handoff.js';

export const QMatmulParams = defineUniform('Params', [
  ['m', 'u32'], // rows of x and y this dispatch computes
  ['k', 'u32'], // columns of x and W
  ['n', 'u32'], // rows of this chunk of W (= columns of y it writes)
  ['ldy', 'u32'], // row stride of y (N)
  ['nOffset', 'u32'], // first y column (and bias index) of this chunk
  ['hasBias', 'u32'], // 1 when bias is bound
  ['accumulate', 'u32'], // 1: y += x W^T (+ bias); 0: y = x W^T (+ bias)
  ['rowBytes', 'u32'], // bytes of one row of W
] as const);
type QMatmulField = (typeof QMatmulParams.fields)[number][0];

export type QMatmulVariant = 'decode' | 'prefill';
export const QMATMUL_VARIANTS: readonly QMatmulVariant[] = ['decode', 'prefill'];
/** Smallest M that takes the prefill blocking (as kernels/matmul.ts: decode 4 x 4 covers M = 2..4 in one pass). */
export const QMATMUL_PREFILL_MIN_M = 5;

interface Config {
  name: string;
  /** The body shader: qmatmul (register-blocked rows and columns), qmatmul_decode (dot steps, 4 or 8 columns, one
   * row) or qmatmul_q8 (8-bit activations, 8 columns and mr rows). */
  op: 'qmatmul' | 'qmatmul_decode' | 'qmatmul_q8';
  variant: QMatmulVariant;
  mr: number;
  nr: number;
  wg: number;
}
// Dot-step decode (qmatmul_decode.wgsl): 8 columns per invocation for the block types (the x chunk each invocation
// loads serves 8 rows of W), 4 for the dense ones (measured faster on llvmpipe; their steps are only 4-8 values).
const DECODE_DOT_Q: Config = { name: 'decodeDot8', op: 'qmatmul_decode', variant: 'decode', mr: 1, nr: 8, wg: 16 };
const DECODE_DOT_D: Config = { name: 'decodeDot4', op: 'qmatmul_decode', variant: 'decode', mr: 1, nr: 4, wg: 16 };
// 8-bit activations: one body whose rows per invocation change nothing in a row's arithmetic.
const Q8_1: Config = { name: 'q8x1', op: 'qmatmul_q8', variant: 'decode', mr: 1, nr: 8, wg: 16 };
// One row on llvmpipe: one 8-lane SIMD batch per workgroup (64 columns), so a small N still spreads evenly over
// the worker threads: N = 576 (SmolLM2-135M's o and down) is 9 workgroups instead of 5, which two threads split 5 / 4
// instead of 3 / 2 (1.06-1.09x the Q4_K model's decode step in Node, bench/RESULTS.md "Weights"; on Chromium's GL
// route a Q8_0 576 x 576 one-row matmul 0.93x, RESULTS "Peers"). Same arithmetic per column.
const Q8_1_NARROW: Config = { ...Q8_1, name: 'q8x1n', wg: LLVMPIPE_MIN_WG };
// The same one-row body reading x handed over by the matmul before (kernels/x8_handoff.ts), and writing one.
const Q8_1_IN: Config = { ...Q8_1_NARROW, name: 'q8x1n-in' };
const Q8_1_OUT: Config = { ...Q8_1_NARROW, name: 'q8x1n-out' };
// One row with the act_q8 epilogue (kernels/act_q8_epilogue.ts): each invocation the 64 gate and up columns of one
// 32-value block of down's x; and the same reading x handed over.
const Q8_1_ACT: Config = { name: 'q8x1act', op: 'qmatmul_q8', variant: 'decode', mr: 1, nr: ACT_Q8_COLUMNS, wg: ACT_Q8_WG };
const Q8_1_ACT_IN: Config = { ...Q8_1_ACT, name: 'q8x1act-in' };
const Q8_4: Config = { name: 'q8x4', op: 'qmatmul_q8', variant: 'decode', mr: 4, nr: 8, wg: 16 };
const Q8_8: Config = { name: 'q8x8', op: 'qmatmul_q8', variant: 'prefill', mr: 8, nr: 8, wg: 16 };
const DECODE_1: Config = { name: 'decode1x2', op: 'qmatmul', variant: 'decode', mr: 1, nr: 2, wg: 64 };
const DECODE_4: Config = { name: 'decode4x2', op: 'qmatmul', variant: 'decode', mr: 4, nr: 2, wg: 64 };
const PREFILL: Config = { name: 'prefill8x2', op: 'qmatmul', variant: 'prefill', mr: 8, nr: 2, wg: 64 };

/**
 * How the matmul takes x: 'q8' quantized to 8 bits per 32 values at every M where the type has an integer dot step
 * (batched == single bit for bit), other types as 'f32'; 'f32' as f32, at M = 1 through the faster dot-step kernel;
 * 'f32-blocked' as f32 through the register-blocked body that M > 1 uses, so a row's result is bit for bit the same
 * at every M (batched == single).
 */
export type DecodeActivations = 'f32' | 'q8' | 'f32-blocked';
const ACTIVATIONS: readonly DecodeActivations[] = ['q8', 'f32', 'f32-blocked'];

function decodeOne(type: StorageType, K: number, act: DecodeActivations): Config {
  if (act === 'f32-blocked') return DECODE_1;
  if (!hasDotStep(type, K)) return DECODE_1;
  return kernelBlock(type) > 4 ? DECODE_DOT_Q : DECODE_DOT_D;
}

/** Whether `act` runs `type` on 8-bit activations. */
function int8(type: StorageType, act: DecodeActivations): boolean {
  return act === 'q8' && hasIntDot(type);
}

/** Whether the one-row 8-bit body takes Q8_1_NARROW's workgroups: on llvmpipe (gpu/adapters.ts onLlvmpipe: Node and Chromium's GL route). */
function narrowOneRow(gpu: Gpu): boolean {
  return onLlvmpipe(gpu);
}

/**
 * Whether a matmul of `type` on these activations (and QMatmulOptions.narrowOneRow) runs the act_q8 epilogue at one
 * row: 8-bit activations on llvmpipe, where the one-row body is tuned for it (one invocation per 64 columns would
 * leave a GPU's lanes idle; unmeasured elsewhere).
 */
export function actQ8Runs(gpu: Gpu, type: StorageType, activations: DecodeActivations = 'q8', narrow = true): boolean {
  return int8(type, activations) && narrow && narrowOneRow(gpu);
}

/**
 * Whether a one-row matmul on `type` can read x handed over by the matmul before (kernels/x8_handoff.ts): it runs
 * qmatmul_q8.wgsl or qmatmul_q8_t8.wgsl in 8-invocation workgroups (8-bit activations on llvmpipe).
 */
export function canReadHandoff(gpu: Gpu, type: StorageType, act: DecodeActivations = 'q8'): boolean {
  return int8(type, act) && narrowOneRow(gpu);
}

/**
 * Whether one can write a hand-off: as canReadHandoff (both bodies give each invocation 8 adjacent columns, so a
 * workgroup 64), with the 9 storage buffers the writer binds.
 */
export function canWriteHandoff(gpu: Gpu, type: StorageType, act: DecodeActivations = 'q8'): boolean {
  return canReadHandoff(gpu, type, act) && gpu.limits.maxStorageBuffersPerShaderStage >= WRITER_STORAGE_BUFFERS;
}

function configsOf(type: StorageType, K: number, act: DecodeActivations, narrow: boolean, actQ8: boolean): readonly Config[] {
  return int8(type, act) ? [actQ8 ? Q8_1_ACT : narrow ? Q8_1_NARROW : Q8_1, Q8_4, Q8_8] : [decodeOne(type, K, act), DECODE_4, PREFILL];
}

function configFor(type: StorageType, K: number, act: DecodeActivations, narrow: boolean, actQ8: boolean, variant: QMatmulVariant, M: number): Config {
  const q8 = int8(type, act);
  if (variant === 'prefill') return q8 ? Q8_8 : PREFILL;
  if (M <= 1) return q8 ? (actQ8 ? Q8_1_ACT : narrow ? Q8_1_NARROW : Q8_1) : decodeOne(type, K, act);
  return q8 ? Q8_4 : DECODE_4;
}

export interface QMatmulOptions {
  type: StorageType;
  K: number;
  N: number;
  bias: boolean;
  /** y += x W^T (+ bias) instead of y = ... (a residual stream). Default false. */
  accumulate?: boolean;
  /** Variants to build (tests force one); default both. */
  variants?: readonly QMatmulVariant[];
  /** What the kernel makes of x before the product (kernels/x_prologue.ts). Default plain. */
  prologue?: XPrologue;
  /**
   * 'q8' (default) quantizes x to 8 bits per 32 values and multiplies integers at every M for the types that have an
   * integer dot step (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K; others take 'f32'); 'f32' keeps x in f32 ('f32-blocked': through
   * one body at every M). See DecodeActivations.
   */
  activations?: DecodeActivations;
  /** What the kernel does with its finished outputs (kernels/y_epilogue.ts). Default nothing. */
  epilogue?: YEpilogue;
  /**
   * Also build the one-row body that reads x handed over by the matmul before instead of quantizing it (an RMS
   * prologue; kernels/x8_handoff.ts; canReadHandoff must hold). Bind with handoffIn to use it. Default false.
   */
  handoffIn?: boolean;
  /**
   * Also build the one-row body that hands its y (the residual stream, N values) over to the next matmul, quantized
   * through that matmul's RMS norm (canWriteHandoff must hold, no y epilogue). Bind with handoffOut. Default false.
   */
  handoffOut?: boolean;
  /**
   * On 8-bit activations at one row: 8-invocation workgroups on llvmpipe (Q8_1_NARROW; default true), or
   * false for 16 everywhere (tests: the same bits either way).
   */
  narrowOneRow?: boolean;
}

export interface QMatmulBuffers {
  x: GPUBuffer; // (M, K) f32; (M, 2K) gate | up for a gated act prologue
  w: WeightTensor; // (N, K) in the Matmul's storage type, chunks of whole rows
  bias?: GPUBuffer; // (N) f32, exactly when made with bias: true
  y: GPUBuffer; // (M, N) f32; read as well when accumulating
  norm?: GPUBuffer; // (K) f32 the norm weight, exactly when the prologue is rms
  rope?: RopeBuffers; // exactly when the epilogue is rope_kv
  /**
   * On 8-bit activations: scratch for x quantized (rows >= M, K values each), which matmuls encoded one after another
   * may share; default: its own, for as many rows as x holds.
   */
  xq?: QuantizedX;
  /**
   * On 8-bit activations: xq already holds this x through this prologue when encode runs (the matmul encoded just
   * before it quantized the same x into the same scratch, e.g. another part of a matrix stored in two types), so
   * encode skips the quantize dispatch. Default false. Only with xq.
   */
  xqReady?: boolean;
  /**
   * Exactly with the act_q8 epilogue: where its one-row encodes write act(gate) * up on 8 bits, (1, F) values (the
   * down projection's x; a scratch other than xq, which this matmul reads).
   */
  actOut?: QuantizedX;
  /** At one row: x as the matmul before handed it over (QMatmulOptions.handoffIn); other row counts quantize x. */
  handoffIn?: X8Handoff;
  /**
   * At one row: also write y, through the next matmul's RMS norm weight `norm` (N) f32, into `to` (N values) for
   * that matmul (QMatmulOptions.handoffOut). W must be one chunk.
   */
  handoffOut?: { to: X8Handoff; norm: GPUBuffer };
}

export class QMatmul {
  readonly type: StorageType;
  readonly K: number;
  readonly N: number;
  readonly bias: boolean;
  readonly accumulate: boolean;
  readonly variants: readonly QMatmulVariant[];
  readonly prologue: XPrologue;
  readonly activations: DecodeActivations;
  readonly epilogue: YEpilogue;
  /** The one-row 8-bit body runs 8-invocation workgroups (QMatmulOptions.narrowOneRow). */
  readonly narrowOneRow: boolean;
  /** Built to read / write an x hand-off at one row (QMatmulOptions.handoffIn, handoffOut). */
  readonly handoffIn: boolean;
  readonly handoffOut: boolean;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private dummy: GPUBuffer | null = null;

  constructor(
    private readonly gpu: Gpu,
    opts: QMatmulOptions,
  ) {
    for (const [v, what] of [
      [opts.K, 'K'],
      [opts.N, 'N'],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`QMatmul: ${what} must be a positive integer, got ${v}.`);
    }
    const qk = kernelBlock(opts.type);
    if (opts.K % qk !== 0) {
      throw new InvalidArgumentError(`QMatmul: K=${opts.K} is not a multiple of ${qk}, the ${opts.type} block the kernel reads.`);
    }
    this.type = opts.type;
    this.K = opts.K;
    this.N = opts.N;
    this.bias = opts.bias;
    this.accumulate = opts.accumulate ?? false;
    this.variants = opts.variants ?? QMATMUL_VARIANTS;
    this.prologue = checkPrologue('QMatmul', opts.prologue ?? PLAIN, opts.K, true);
    this.epilogue = checkEpilogue('QMatmul', opts.epilogue ?? NO_EPILOGUE, opts.N);
    const act = opts.activations ?? 'q8';
    if (!ACTIVATIONS.includes(act)) {
      throw new InvalidArgumentError(`QMatmul: activations must be one of ${ACTIVATIONS.join(', ')}, got ${String(act)}.`);
    }
    this.activations = act;
    if (this.variants.length === 0) throw new InvalidArgumentError('QMatmul: variants must name at least one variant.');
    for (const v of this.variants) {
      if (!QMATMUL_VARIANTS.includes(v)) throw new InvalidArgumentError(`QMatmul: unknown variant ${v}; use ${QMATMUL_VARIANTS.join(' or ')}.`);
    }
    this.narrowOneRow = (opts.narrowOneRow ?? true) && narrowOneRow(gpu);
    if (this.epilogue.kind === 'act_q8') {
      if (!actQ8Runs(gpu, this.type, act, this.narrowOneRow)) {
        throw new InvalidArgumentError(`QMatmul: the act_q8 epilogue runs only on 8-bit activations in the one-row llvmpipe body (actQ8Runs); ${this.type} here does not.`);
      }
      if (this.accumulate) throw new InvalidArgumentError('QMatmul: the act_q8 epilogue ends a gate|up projection, which does not accumulate.');
    }
    this.handoffIn = opts.handoffIn ?? false;
    this.handoffOut = opts.handoffOut ?? false;
    const one = this.narrowOneRow && this.variants.includes('decode');
    if (this.handoffIn && !(one && canReadHandoff(gpu, this.type, act) && this.prologue.kind === 'rms')) {
      throw new InvalidArgumentError(`QMatmul: handoffIn needs the one-row 8-bit body on llvmpipe and an rms prologue (canReadHandoff), got ${this.type}, ${act}, ${prologueKey(this.prologue)}.`);
    }
    if (this.handoffOut && !(one && canWriteHandoff(gpu, this.type, act) && this.epilogue.kind === 'none' && this.N % 32 === 0 && !this.handoffIn)) {
      throw new InvalidArgumentError(`QMatmul: handoffOut needs the one-row 8-bit body on llvmpipe (canWriteHandoff), no y epilogue, no handoffIn and N a multiple of 32, got ${this.type}, N=${this.N}.`);
    }
    const handoffs: [Config, Handoff][] = [];
    const actQ8 = this.epilogue.kind === 'act_q8';
    if (this.handoffIn && this.prologue.kind === 'rms') handoffs.push([actQ8 ? Q8_1_ACT_IN : Q8_1_IN, { readEps: this.prologue.eps }]);
    if (this.handoffOut) handoffs.push([Q8_1_OUT, { write: true }]);
    // Compile every pipeline now: nothing in the per-token loop may compile.
    for (const [c, handoff] of [...configsOf(this.type, this.K, this.activations, this.narrowOneRow, actQ8).map((c) => [c, {}] as [Config, Handoff]), ...handoffs]) {
      if (!this.variants.includes(c.variant)) continue;
      const constants: Record<string, number> =
        c.op === 'qmatmul' ? { WG: c.wg, MR: c.mr, NR: c.nr } : c.op === 'qmatmul_q8' ? { WG: c.wg, MR: c.mr } : { WG: c.wg, NR: c.nr };
      const key = { op: c.op, type: this.type, config: c.name, constants, prologue: this.prologue, epilogue: this.epilogueOf(c), handoff };
      this.pipelines.set(c.name, weightPipeline(gpu, key, QMatmulParams));
    }
  }

  /** The epilogue configuration c runs: act_q8 only in its own one-row configuration (reading a hand-off or not). */
  private epilogueOf(c: Config): YEpilogue {
    return this.epilogue.kind === 'act_q8' && c !== Q8_1_ACT && c !== Q8_1_ACT_IN ? NO_EPILOGUE : this.epilogue;
  }

  /** Whether an encode of M rows in `variant` writes down's x through the act_q8 epilogue (QMatmulBuffers.actOut). */
  writesActX(variant: QMatmulVariant, M: number): boolean {
    return this.epilogue.kind === 'act_q8' && M === 1 && this.configFor(variant, M) === Q8_1_ACT;
  }

  destroy(): void {
    this.dummy?.destroy();
    this.dummy = null;
  }

  variantFor(M: number): QMatmulVariant {
    if (M >= QMATMUL_PREFILL_MIN_M && this.variants.includes('prefill')) return 'prefill';
    return this.variants.includes('decode') ? 'decode' : this.variants[0];
  }

  /** Whether this matmul runs on 8-bit activations (at every M). */
  get int8(): boolean {
    return int8(this.type, this.activations);
  }

  /** The configuration `encode` runs for M rows in `variant`. */
  configFor(variant: QMatmulVariant, M: number): Config {
    return configFor(this.type, this.K, this.activations, this.narrowOneRow, this.epilogue.kind === 'act_q8', variant, M);
  }

  bind(b: QMatmulBuffers, label = 'qmatmul'): BoundQMatmul {
    const { K, N } = this;
    if (b.w.type !== this.type) throw new InvalidArgumentError(`${label}: W is ${b.w.type} but this QMatmul reads ${this.type}.`);
    if (b.w.cols !== K || b.w.rows !== N) {
      throw new InvalidArgumentError(`${label}: W is (${b.w.rows}, ${b.w.cols}) but this QMatmul expects (N, K) = (${N}, ${K}).`);
    }
    if (b.w.chunks.length === 0) throw new InvalidArgumentError(`${label}: W has no chunks; upload it with uploadWeights.`);
    if (b.y === b.x || b.y === b.bias || b.y === b.norm || b.w.chunks.some((c) => c.buffer === b.y)) {
      throw new InvalidArgumentError(`${label}: y must be a buffer of its own (WebGPU forbids writing a buffer a dispatch also reads).`);
    }
    if (this.bias !== (b.bias !== undefined)) {
      throw new InvalidArgumentError(`${label}: the QMatmul was made with bias: ${this.bias} but ${b.bias ? 'a bias buffer was' : 'no bias buffer was'} given.`);
    }
    if (b.bias && b.bias.size < N * 4) throw new InvalidArgumentError(`${label}: bias holds ${b.bias.size} bytes, needs N*4 = ${N * 4}.`);
    for (const c of b.w.chunks) {
      const need = chunkBytes(c.rows, b.w.rowBytes, tileRows(b.w.type));
      if (c.buffer.size < need) throw new InvalidArgumentError(`${label}: W chunk at row ${c.rowStart} holds ${c.buffer.size} bytes, needs ${need}.`);
    }
    const rms = this.prologue.kind === 'rms';
    if (rms !== (b.norm !== undefined)) {
      throw new InvalidArgumentError(`${label}: the ${prologueKey(this.prologue)} prologue ${rms ? 'needs the norm weight as norm' : 'takes no norm buffer'}.`);
    }
    if (b.norm && b.norm.size < K * 4) throw new InvalidArgumentError(`${label}: norm holds ${b.norm.size} bytes, needs K*4 = ${K * 4}.`);
    checkRopeBinding(label, this.epilogue, b.rope, b.y, b.w.chunks);
    this.checkHandoff(b, label);
    const act = this.epilogue.kind === 'act_q8' ? this.epilogue : null;
    if ((act !== null) !== (b.actOut !== undefined)) {
      throw new InvalidArgumentError(`${label}: ${act ? 'the act_q8 epilogue needs actOut, the scratch for down\'s x' : 'actOut given without the act_q8 epilogue'}.`);
    }
    if (act && b.actOut) {
      // A workgroup's gate and up columns must lie in one dispatch.
      if (b.w.chunks.length !== 1) throw new InvalidArgumentError(`${label}: the act_q8 epilogue needs gate|up in one chunk, got ${b.w.chunks.length}.`);
      const need = quantizedXBytes(1, act.features);
      if (b.actOut.xq.size < need.words || b.actOut.xs.size < need.scales) throw new InvalidArgumentError(`${label}: actOut holds less than one row of F=${act.features} values on 8 bits.`);
      if (b.xq && (b.actOut.xq === b.xq.xq || b.actOut.xs === b.xq.xs)) throw new InvalidArgumentError(`${label}: actOut must not be the xq scratch this matmul reads.`);
    }
    this.dummy ??= createStorage(this.gpu.device, 16, 'qmatmul:unused bias (4) f32');
    const bias = b.bias ?? this.dummy;
    // On 8-bit activations a pass quantizes x (through the prologue) into scratch, which the matmul then reads.
    let quantize: BoundQuantizeX8 | null = null;
    let own: QuantizedX | null = null;
    if (b.xqReady && !(this.int8 && b.xq)) throw new InvalidArgumentError(`${label}: xqReady needs 8-bit activations and the shared xq scratch.`);
    if (this.int8) {
      const rows = Math.floor(b.x.size / (K * xWidth(this.prologue) * 4));
      const xq = b.xq ?? (own = createQuantizedX(this.gpu, Math.max(rows, 1), K, label));
      quantize = new BoundQuantizeX8(this.gpu, b.x, xq, K, this.prologue, b.norm ?? null, label);
    }
    const rope = b.rope ? [b.rope.positions, b.rope.slots, b.rope.freq, b.rope.kv] : [];
    const kernels = new Map<string, BoundKernel<QMatmulField>[]>();
    for (const [name, pipeline] of this.pipelines) {
      // The hand-off pipelines exist only for binds that give their buffers.
      const reads = name === Q8_1_IN.name || name === Q8_1_ACT_IN.name;
      if ((reads && !b.handoffIn) || (name === Q8_1_OUT.name && !b.handoffOut)) continue;
      const actOut = b.actOut && (name === Q8_1_ACT.name || name === Q8_1_ACT_IN.name) ? [b.actOut.xq, b.actOut.xs] : [];
      kernels.set(
        name,
        b.w.chunks.map((c, i) => {
          const out = b.handoffOut;
          const buffers =
            reads && b.handoffIn
              ? [b.handoffIn.xq, c.buffer, c.buffer, bias, b.y, b.handoffIn.xs, ...rope, ...actOut]
              : name === Q8_1_OUT.name && out && quantize
                ? [quantize.out.xq, c.buffer, c.buffer, bias, b.y, quantize.out.xs, null, null, null, null, out.norm, out.to.xq, out.to.xs]
                : quantize
                  ? [quantize.out.xq, c.buffer, c.buffer, bias, b.y, quantize.out.xs, ...rope, ...actOut]
                  : [b.x, c.buffer, c.buffer, bias, b.y, b.norm ?? null, ...rope];
          return new BoundKernel(this.gpu, pipeline, QMatmulParams, buffers, `${label}:${name}[${i}]`);
        }),
      );
    }
    return new BoundQMatmul(this, this.gpu, b, kernels, quantize, own, label);
  }

  private checkHandoff(b: QMatmulBuffers, label: string): void {
    const { K, N } = this;
    if (b.handoffIn) {
      if (!this.handoffIn) throw new InvalidArgumentError(`${label}: handoffIn given to a QMatmul built without handoffIn.`);
      const need = handoffBytes(K);
      if (b.handoffIn.K !== K || b.handoffIn.xq.size < need.words || b.handoffIn.xs.size < need.scales) {
        throw new InvalidArgumentError(`${label}: the hand-off read holds ${b.handoffIn.K} values, this matmul's x ${K}.`);
      }
    }
    const out = b.handoffOut;
    if (out) {
      if (!this.handoffOut) throw new InvalidArgumentError(`${label}: handoffOut given to a QMatmul built without handoffOut.`);
      const need = handoffBytes(N);
      if (out.to.K !== N || out.to.xq.size < need.words || out.to.xs.size < need.scales) {
        throw new InvalidArgumentError(`${label}: the hand-off written holds ${out.to.K} values, this matmul's y ${N}.`);
      }
      if (out.norm.size < N * 4) throw new InvalidArgumentError(`${label}: the hand-off's norm weight holds ${out.norm.size} bytes, needs N*4 = ${N * 4}.`);
      if (b.w.chunks.length !== 1) throw new InvalidArgumentError(`${label}: writing a hand-off needs W in one chunk, got ${b.w.chunks.length}.`);
      if ([out.to.xq, out.to.xs, out.norm].includes(b.y) || (b.xq && [b.xq.xq, b.xq.xs].some((x) => x === out.to.xq || x === out.to.xs))) {
        throw new InvalidArgumentError(`${label}: the hand-off written must be buffers of its own, not y or the x scratch.`);
      }
    }
  }
}

export class BoundQMatmul {
  constructor(
    private readonly mm: QMatmul,
    private readonly gpu: Gpu,
    private readonly b: QMatmulBuffers,
    private readonly kernels: ReadonlyMap<string, readonly BoundKernel<QMatmulField>[]>,
    private readonly quantize: BoundQuantizeX8 | null,
    private readonly ownScratch: QuantizedX | null,
    private readonly label: string,
  ) {}

  /** The scratch holding x on 8 bits after an encode (null when this matmul takes x in f32). */
  get quantizedX(): QuantizedX | null {
    return this.quantize?.out ?? null;
  }

  variantFor(M: number): QMatmulVariant {
    return this.mm.variantFor(M);
  }

  /** Whether encode(pass, M, variant) writes down's x to actOut (the act_q8 epilogue at one row). */
  writesActX(M: number, variant: QMatmulVariant = this.variantFor(M)): boolean {
    return this.mm.writesActX(variant, M);
  }

  /**
   * Encodes y[0:M] (+)= x[0:M] W^T (+ bias): one dispatch per chunk of W, after the quantizing one on 8-bit
   * activations (none with xqReady, nor at one row with handoffIn). `variant` forces one (tests, benchmarks).
   */
  encode(pass: GPUComputePassEncoder, M: number, variant: QMatmulVariant = this.variantFor(M)): void {
    const { K, N } = this.mm;
    if (!Number.isInteger(M) || M < 0) throw new InvalidArgumentError(`${this.label}: M must be a non-negative integer, got ${M}.`);
    const xk = K * xWidth(this.mm.prologue);
    if (M * xk * 4 > this.b.x.size) throw new InvalidArgumentError(`${this.label}: x holds ${this.b.x.size / (xk * 4)} rows of ${xk} values, fewer than M=${M}.`);
    if (M * N * 4 > this.b.y.size) throw new InvalidArgumentError(`${this.label}: y holds ${this.b.y.size / (N * 4)} rows of N=${N}, fewer than M=${M}.`);
    const cfg = this.mm.configFor(variant, M);
    const kernels = this.kernels.get(cfg.name);
    if (!kernels) {
      throw new InvalidArgumentError(`${this.label}: variant ${variant} was not built (built: ${this.mm.variants.join(', ')}).`);
    }
    const gy = groupsFor(M, cfg.mr);
    if (gy > this.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new InvalidArgumentError(`${this.label}: M=${M} needs ${gy} workgroups along y; split the rows into smaller batches.`);
    }
    const hasBias = this.mm.bias ? 1 : 0;
    const accumulate = this.mm.accumulate ? 1 : 0;
    const rowBytes = this.b.w.rowBytes;
    // One row in the narrow body: x handed over (no quantize dispatch) and / or y handed on (kernels/x8_handoff.ts).
    const one = M === 1 && (cfg === Q8_1_NARROW || cfg === Q8_1_ACT);
    const inName = cfg === Q8_1_ACT ? Q8_1_ACT_IN.name : Q8_1_IN.name;
    const handIn = one && this.kernels.has(inName);
    const run = handIn ? this.kernels.get(inName)! : one && this.kernels.has(Q8_1_OUT.name) ? this.kernels.get(Q8_1_OUT.name)! : kernels;
    if (!this.b.xqReady && !handIn) this.quantize?.encode(pass, M);
    this.b.w.chunks.forEach((c, i) => {
      const params = { m: M, k: K, n: c.rows, ldy: N, nOffset: c.rowStart, hasBias, accumulate, rowBytes };
      run[i].encode(pass, params, [groupsFor(c.rows, cfg.nr * cfg.wg), gy]);
    });
  }

  destroy(): void {
    for (const ks of this.kernels.values()) for (const k of ks) k.destroy();
    this.quantize?.destroy();
    this.ownScratch?.xq.destroy();
    this.ownScratch?.xs.destroy();
  }
}
