// Matmul: y = x W^T (+ bias), the projections of every layer and the LM head; or y += x W^T (+ bias) (accumulate).
//   y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]),  x (M, K), w (N, K) as stored by PyTorch Linear, y (M, N).
//
// W may be split in chunks of whole rows (SplitTensor: llvmpipe binds at most 128 MiB); a row of W is a column of y,
// so each chunk is one dispatch writing y columns [rowStart, rowStart + rows) with row stride N.
//
// Variants, picked per encode from M and the adapter (variantFor), numbers in bench/RESULTS.md:
// - decode  (shaders/matmul_decode.wgsl): each thread NR output columns x MR rows; MR=1, NR=2 for M=1 and 4 x 4 for
//   2 <= M < PREFILL_MIN_M, so a small batch reads W about once. Any K (vec4 loads when K % 4 == 0, scalar otherwise).
// - prefill (shaders/matmul_prefill.wgsl): 8 x 8 register blocks per thread, no shared memory; CPU adapters, M large.
//   Needs K % 4 == 0; for other K the decode shader covers every M. Written out (matmul_prefill_unrolled.wgsl) when
//   the device's registerBlocks is `unrolled` (Chromium's GL route: gpu/register_blocks.ts).
// - tiled   (shaders/matmul_tiled.wgsl): 64 x 64 shared-memory tiles; hardware adapters, M large. Any K.
//
// Bias: a uniform flag (hasBias) instead of an override constant, so one pipeline serves biased and unbiased
// projections (the flag is read once per output, after the K loop); without bias a 16-byte dummy is bound.
//
// Accumulate: y[m, n] += x W^T (+ bias), chosen at construction. The out- and down-projections write straight into the
// residual stream, which saves the model two residual-add dispatches per layer (decode is dispatch-bound on CPU
// adapters). Also a uniform flag rather than an override constant: the branch is uniform and taken once per output
// after the K loop, so it costs nothing measurable, while a constant would double the pipelines every Matmul compiles
// (0.5-1 s each on SwiftShader). y stays a buffer of its own (bind checks): it is read and written by the same thread
// and element only, so no other invocation's write can race with the read.
//
// x prologue (kernels/x_prologue.ts), chosen at construction: x as given, RMSNorm(x) * g (the norm before the
// projection folded in; g bound as `norm`) or the MLP activation of a gate | up buffer, so a model needs no separate
// norm or activation dispatch before its projections. One pipeline set per prologue.
//
// Every (variant, blocking, chunk) gets its own BoundKernel at bind time (a BoundKernel writes its uniform at encode
// time, and chunks differ in n and nOffset); encode only writes uniforms that changed and dispatches.
// As with every BoundKernel, encode one bound matmul at most once per submit.
import { onLlvmpipe } from '../gpu/adapters.js';
import type { Gpu } from '../gpu/device.js';
import type { RegisterBlocks } from '../gpu/register_blocks.js';
import { createStorage } from '../gpu/buffers.js';
import type { SplitTensor } from '../gpu/split_tensor.js';
import { defineUniform } from '../gpu/uniform.js';
import { InvalidArgumentError } from '../errors.js';
import { BoundKernel, groupsFor, shaderSource } from './kernel.js';
import { checkPrologue, PLAIN, prologueKey, xPrologueSource, xWidth, type XPrologue, type XViews } from './x_prologue.js';
import { checkEpilogue, checkRopeBinding, epilogueKey, NO_EPILOGUE, yEpilogueSource, type RopeBuffers, type YEpilogue } from './y_epilogue.js';

export const MatmulParams = defineUniform('Params', [
  ['m', 'u32'], // rows of x and y this dispatch computes
  ['k', 'u32'], // columns of x and W
  ['n', 'u32'], // rows of this chunk of W (= columns of y it writes)
  ['ldy', 'u32'], // row stride of y (N)
  ['nOffset', 'u32'], // first y column (and bias index) of this chunk
  ['hasBias', 'u32'], // 1 when bias is bound
  ['accumulate', 'u32'], // 1: y += x W^T (+ bias); 0: y = x W^T (+ bias)
] as const);
type MatmulField = (typeof MatmulParams.fields)[number][0];

export type MatmulVariant = 'decode' | 'prefill' | 'tiled';
export const MATMUL_VARIANTS: readonly MatmulVariant[] = ['decode', 'prefill', 'tiled'];

/**
 * Smallest M that takes the wide variant on CPU adapters. Measured on llvmpipe, K=N=2048 (bench/RESULTS.md,
 * "Decode/prefill threshold"): decode 4x4 costs the same for M=2..4 and one more pass over W per 4 rows after that,
 * while prefill 8x8 costs about the same for every M <= 8; they cross between M=4 and M=5.
 */
export const PREFILL_MIN_M = 5;
/**
 * The same on hardware adapters, where the tiled kernel takes over. Not measured (no GPU here): a 64-row tile a
 * quarter full is where the usual GPU crossover between gemv-style and tiled kernels lies.
 */
export const TILED_MIN_M = 16;

/** One pipeline: a shader with its blocking (MR rows x NR columns per thread, WG threads per workgroup). */
interface Config {
  name: string;
  variant: MatmulVariant;
  file: string;
  mr: number;
  nr: number;
  wg: number;
}
const DECODE_1: Config = { name: 'decode1x2', variant: 'decode', file: 'matmul_decode', mr: 1, nr: 2, wg: 64 };
const DECODE_4: Config = { name: 'decode4x4', variant: 'decode', file: 'matmul_decode', mr: 4, nr: 4, wg: 64 };
const PREFILL: Config = { name: 'prefill8x8', variant: 'prefill', file: 'matmul_prefill', mr: 8, nr: 8, wg: 64 };
/** The same blocking written out (gpu/register_blocks.ts); a Matmul builds one of the two prefill configs. */
const PREFILL_UNROLLED: Config = { ...PREFILL, name: 'prefill8x8u', file: 'matmul_prefill_unrolled' };
const TILED: Config = { name: 'tiled64', variant: 'tiled', file: 'matmul_tiled', mr: 64, nr: 64, wg: 1 };
/** How each body shader declares x, and the bindings its prologue's norm weight takes (after the body's own). */
const VIEWS: Record<string, XViews> = {
  matmul_decode: { v4: { x: 'x4', g: 7 }, v1: { x: 'x1', g: 8 } },
  matmul_prefill: { v4: { x: 'x', g: 5 } },
  matmul_prefill_unrolled: { v4: { x: 'x', g: 5 } },
  matmul_tiled: { tile: { x: 'x', g: 5, rows: 64 } },
};
/** The first binding of each body's y epilogue (kernels/y_epilogue.ts), after the prologue's. */
const EPILOGUE_BINDING: Record<string, number> = { matmul_decode: 9, matmul_prefill: 6, matmul_prefill_unrolled: 6, matmul_tiled: 6 };

/**
 * Threads per workgroup of a decode or prefill matmul with N output columns on llvmpipe: the fewest
 * (a power of two from LLVMPIPE_MIN_WG up to the config's WG) whose workgroup covers ceil(N / NR) column blocks.
 * llvmpipe runs a workgroup as batches of 8 lanes, and a batch whose lanes all return at once still costs about
 * a microsecond: stories260K's 16-row out-projection (N = 64, 8 column blocks) took 58 us in 64-thread workgroups
 * and 39-41 us in 8-thread ones (CPU time, scratch timings of 2026-12-01, bench/RESULTS.md "Peers"). Columns are
 * computed by the same operations in the same order whatever the workgroup size, so this changes no bits. llvmpipe:
 * in Node by name; in a page, where the adapter may be anonymous, by the GL route's register-block form (`unrolled`
 * only on a compatibility-only CPU adapter, gpu/register_blocks.ts), where the same 16-row projections took 0.71-0.77x
 * the time of 64-thread workgroups (scratch timings, bench/RESULTS.md "Peers"). Elsewhere (SwiftShader, GPUs) the
 * config's WG: unmeasured there.
 */
export function fittedWorkgroup(gpu: Gpu, cfg: { wg: number; nr: number }, N: number): number {
  const llvmpipe = onLlvmpipe(gpu);
  if (!llvmpipe) return cfg.wg;
  let wg = LLVMPIPE_MIN_WG;
  while (wg < cfg.wg && wg * cfg.nr < N) wg *= 2;
  return wg;
}

/** llvmpipe's SIMD width in lanes (8 x 32-bit, AVX2): smaller workgroups leave lanes of a batch idle. */
export const LLVMPIPE_MIN_WG = 8;

/** The pipelines a Matmul builds for its register-block form. */
function configsFor(blocks: RegisterBlocks): readonly Config[] {
  return [DECODE_1, DECODE_4, blocks === 'unrolled' ? PREFILL_UNROLLED : PREFILL, TILED];
}

function configFor(variant: MatmulVariant, M: number, blocks: RegisterBlocks): Config {
  if (variant === 'decode') return M <= 1 ? DECODE_1 : DECODE_4;
  return variant === 'tiled' ? TILED : blocks === 'unrolled' ? PREFILL_UNROLLED : PREFILL;
}

export interface MatmulOptions {
  K: number;
  N: number;
  bias: boolean;
  /** y += x W^T (+ bias) instead of y = ...: y holds its initial values (a residual stream). Default false. */
  accumulate?: boolean;
  /** Variants to build (tests force one); default: the ones variantFor can pick on this adapter. */
  variants?: readonly MatmulVariant[];
  /** What the kernel makes of x before the product (kernels/x_prologue.ts). Default plain. */
  prologue?: XPrologue;
  /** What the kernel does with its finished outputs (kernels/y_epilogue.ts). Default nothing. */
  epilogue?: YEpilogue;
  /** The prefill variant's form (gpu/register_blocks.ts); default the device's (Gpu.registerBlocks). Tests force both. */
  registerBlocks?: RegisterBlocks;
  /** Workgroups fitted to N where that pays (fittedWorkgroup; default true); false keeps each config's WG (tests). */
  fitWorkgroups?: boolean;
}

export interface MatmulBuffers {
  x: GPUBuffer; // (M, K) f32, M <= the rows the buffer holds; (M, 2K) gate | up for a gated act prologue
  w: SplitTensor; // (N, K) f32, in chunks of whole rows
  bias?: GPUBuffer; // (N) f32, exactly when the Matmul was made with bias: true
  y: GPUBuffer; // (M, N) f32; read as well when the Matmul accumulates
  norm?: GPUBuffer; // (K) f32 the norm weight, exactly when the prologue is rms
  rope?: RopeBuffers; // exactly when the epilogue is rope_kv
}

function positiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`Matmul: ${what} must be a positive integer, got ${v}.`);
}

export class Matmul {
  readonly K: number;
  readonly N: number;
  readonly bias: boolean;
  readonly accumulate: boolean;
  readonly variants: readonly MatmulVariant[];
  readonly prologue: XPrologue;
  readonly epilogue: YEpilogue;
  readonly registerBlocks: RegisterBlocks;
  private readonly vec4: boolean;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Threads per workgroup of each config's pipeline (fittedWorkgroup). */
  private readonly workgroups = new Map<string, number>();
  private dummy: GPUBuffer | null = null;

  constructor(
    private readonly gpu: Gpu,
    opts: MatmulOptions,
  ) {
    positiveInt(opts.K, 'K');
    positiveInt(opts.N, 'N');
    this.K = opts.K;
    this.N = opts.N;
    this.bias = opts.bias;
    this.accumulate = opts.accumulate ?? false;
    this.vec4 = opts.K % 4 === 0;
    this.prologue = checkPrologue('Matmul', opts.prologue ?? PLAIN, opts.K, false);
    this.epilogue = checkEpilogue('Matmul', opts.epilogue ?? NO_EPILOGUE, opts.N);
    if (this.epilogue.kind === 'act_q8') throw new InvalidArgumentError('Matmul: the act_q8 epilogue runs only in the 8-bit quantized matmul (kernels/qmatmul.ts).');
    if (opts.registerBlocks !== undefined && opts.registerBlocks !== 'loops' && opts.registerBlocks !== 'unrolled') {
      throw new InvalidArgumentError(`Matmul: registerBlocks must be loops or unrolled, got ${String(opts.registerBlocks)}.`);
    }
    this.registerBlocks = opts.registerBlocks ?? gpu.registerBlocks;
    const wide: MatmulVariant = gpu.isCpu ? 'prefill' : 'tiled';
    this.variants = opts.variants ?? (wide === 'prefill' && !this.vec4 ? ['decode'] : ['decode', wide]);
    if (this.variants.length === 0) throw new InvalidArgumentError('Matmul: variants must name at least one variant.');
    for (const v of this.variants) {
      if (!MATMUL_VARIANTS.includes(v)) {
        throw new InvalidArgumentError(`Matmul: unknown variant ${v}; use one of ${MATMUL_VARIANTS.join(', ')}.`);
      }
      if (v === 'prefill' && !this.vec4) {
        throw new InvalidArgumentError(`Matmul: the prefill variant needs K % 4 == 0 (K=${opts.K}); use decode or tiled.`);
      }
    }
    // Compile every pipeline now: nothing in the per-token loop may compile (0.5-1 s each on SwiftShader).
    for (const c of configsFor(this.registerBlocks)) {
      if (!this.variants.includes(c.variant)) continue;
      const wg = c.variant === 'tiled' || opts.fitWorkgroups === false ? c.wg : fittedWorkgroup(gpu, c, this.N);
      this.workgroups.set(c.name, wg);
      const constants: Record<string, number> = c.variant === 'tiled' ? {} : { WG: wg, MR: c.mr, NR: c.nr };
      if (c.variant === 'decode') constants.VEC4 = this.vec4 ? 1 : 0;
      const epilogue = yEpilogueSource(this.epilogue, EPILOGUE_BINDING[c.file], c.variant === 'tiled');
      const source = () => `${shaderSource(c.file, MatmulParams)}\n${xPrologueSource(this.prologue, VIEWS[c.file])}\n${epilogue}`;
      const variant = `${c.name}:${prologueKey(this.prologue)}${this.epilogue.kind === 'none' ? '' : `:${epilogueKey(this.epilogue)}`}`;
      this.pipelines.set(c.name, gpu.pipelines.get({ op: 'matmul', variant, constants }, source));
    }
  }

  /** Frees the shared dummy buffer; bound matmuls of this Matmul must not be encoded afterwards. */
  destroy(): void {
    this.dummy?.destroy();
    this.dummy = null;
  }

  /** The variant an encode of M rows uses: the wide one (prefill on CPU adapters, tiled on GPUs) for large M. */
  variantFor(M: number): MatmulVariant {
    const wide: MatmulVariant = this.gpu.isCpu ? 'prefill' : 'tiled';
    if (M >= (this.gpu.isCpu ? PREFILL_MIN_M : TILED_MIN_M) && this.variants.includes(wide)) return wide;
    return this.variants.includes('decode') ? 'decode' : this.variants[0];
  }

  bind(b: MatmulBuffers, label = 'matmul'): BoundMatmul {
    const { K, N } = this;
    if (b.w.cols !== K || b.w.rows !== N) {
      throw new InvalidArgumentError(`${label}: W is (${b.w.rows}, ${b.w.cols}) but this Matmul expects (N, K) = (${N}, ${K}).`);
    }
    if (b.w.chunks.length === 0) throw new InvalidArgumentError(`${label}: W has no chunks; upload it with uploadSplit.`);
    if (b.y === b.x || b.y === b.bias || b.y === b.norm || b.w.chunks.some((c) => c.buffer === b.y)) {
      throw new InvalidArgumentError(`${label}: y must be a buffer of its own (WebGPU forbids writing a buffer a dispatch also reads).`);
    }
    if (this.bias !== (b.bias !== undefined)) {
      throw new InvalidArgumentError(
        `${label}: the Matmul was made with bias: ${this.bias} but ${b.bias ? 'a bias buffer was' : 'no bias buffer was'} given.`,
      );
    }
    if (b.bias && b.bias.size < N * 4) throw new InvalidArgumentError(`${label}: bias holds ${b.bias.size} bytes, needs N*4 = ${N * 4}.`);
    const rms = this.prologue.kind === 'rms';
    if (rms !== (b.norm !== undefined)) {
      throw new InvalidArgumentError(`${label}: the ${prologueKey(this.prologue)} prologue ${rms ? 'needs the norm weight as norm' : 'takes no norm buffer'}.`);
    }
    if (b.norm && b.norm.size < K * 4) throw new InvalidArgumentError(`${label}: norm holds ${b.norm.size} bytes, needs K*4 = ${K * 4}.`);
    checkRopeBinding(label, this.epilogue, b.rope, b.y, b.w.chunks);
    for (const c of b.w.chunks) {
      if (c.buffer.size < c.rows * K * 4) {
        throw new InvalidArgumentError(`${label}: W chunk at row ${c.rowStart} holds ${c.buffer.size} bytes, needs ${c.rows * K * 4}.`);
      }
    }
    // One small read-only buffer stands in for every binding a pipeline declares but does not read.
    this.dummy ??= createStorage(this.gpu.device, 16, 'matmul:unused (4) f32');
    const dummy = this.dummy;
    const bias = b.bias ?? dummy;
    const kernels = new Map<string, BoundKernel<MatmulField>[]>();
    for (const [name, pipeline] of this.pipelines) {
      const decode = name.startsWith('decode');
      kernels.set(
        name,
        b.w.chunks.map((c, i) => {
          const buffers = !decode
            ? [b.x, c.buffer, bias, b.y]
            : this.vec4
              ? [b.x, c.buffer, dummy, dummy, bias, b.y]
              : [dummy, dummy, b.x, c.buffer, bias, b.y];
          // The norm weight after the body's buffers; the decode body reads it through the view of its x.
          const norm = !b.norm ? (decode ? [null, null] : [null]) : !decode ? [b.norm] : this.vec4 ? [b.norm, dummy] : [dummy, b.norm];
          const rope = b.rope ? [b.rope.positions, b.rope.slots, b.rope.freq, b.rope.kv] : [];
          return new BoundKernel(this.gpu, pipeline, MatmulParams, [...buffers, ...norm, ...rope], `${label}:${name}[${i}]`);
        }),
      );
    }
    return new BoundMatmul(this, this.gpu, b, kernels, label);
  }

  /** Threads per workgroup of the pipeline `name` (a config's name: decode1x2, prefill8x8, ...). */
  workgroupOf(name: string, fallback: number): number {
    return this.workgroups.get(name) ?? fallback;
  }
}

export class BoundMatmul {
  constructor(
    private readonly mm: Matmul,
    private readonly gpu: Gpu,
    private readonly b: MatmulBuffers,
    private readonly kernels: ReadonlyMap<string, readonly BoundKernel<MatmulField>[]>,
    private readonly label: string,
  ) {}

  variantFor(M: number): MatmulVariant {
    return this.mm.variantFor(M);
  }

  /**
   * Encodes y[0:M] = x[0:M] W^T (+ bias), or += when accumulating: one dispatch per chunk of W. `variant` forces one
   * (tests, benchmarks).
   */
  encode(pass: GPUComputePassEncoder, M: number, variant: MatmulVariant = this.variantFor(M)): void {
    const { K, N } = this.mm;
    if (!Number.isInteger(M) || M < 0) throw new InvalidArgumentError(`${this.label}: M must be a non-negative integer, got ${M}.`);
    const xk = K * xWidth(this.mm.prologue);
    if (M * xk * 4 > this.b.x.size) {
      throw new InvalidArgumentError(`${this.label}: x holds ${this.b.x.size / (xk * 4)} rows of ${xk} values, fewer than M=${M}.`);
    }
    if (M * N * 4 > this.b.y.size) {
      throw new InvalidArgumentError(`${this.label}: y holds ${this.b.y.size / (N * 4)} rows of N=${N}, fewer than M=${M}.`);
    }
    const cfg = configFor(variant, M, this.mm.registerBlocks);
    const kernels = this.kernels.get(cfg.name);
    if (!kernels) {
      throw new InvalidArgumentError(
        `${this.label}: variant ${variant} was not built (built: ${this.mm.variants.join(', ')}); ` +
          `make the Matmul with variants: [..., '${variant}'].`,
      );
    }
    const gy = groupsFor(M, cfg.mr);
    if (gy > this.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new InvalidArgumentError(`${this.label}: M=${M} needs ${gy} workgroups along y; split the rows into smaller batches.`);
    }
    const hasBias = this.mm.bias ? 1 : 0;
    const accumulate = this.mm.accumulate ? 1 : 0;
    this.b.w.chunks.forEach((c, i) => {
      const gx = groupsFor(c.rows, cfg.nr * this.mm.workgroupOf(cfg.name, cfg.wg));
      const params = { m: M, k: K, n: c.rows, ldy: N, nOffset: c.rowStart, hasBias, accumulate };
      kernels[i].encode(pass, params, [gx, gy]);
    });
  }

  destroy(): void {
    for (const ks of this.kernels.values()) for (const k of ks) k.destroy();
  }
}
