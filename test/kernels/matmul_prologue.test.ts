// The fused x prologues of both matmul kernels (kernels/x_prologue.ts) against the unfused float64 chain:
// rms:  y (+)= RMSNorm(x) * g W^T (+ bias)   vs rmsNormRef then matmulRef,
// act:  y (+)= act(gate) * up W^T (+ bias)   vs mlpActRef then matmulRef,
// on every body shader: F32 decode (vec4 and scalar paths, 1x2 and 4x4), prefill, tiled; the stored-type kernel's dot
// step decode, its 1x2 fallback, 4x2 decode and 8x2 prefill, and its 8-bit-activation path (quantize_x8 with the
// prologue, then qmatmul_q8 at 1, 4 and 8 rows per invocation). Fresh random inputs, uneven shapes, W split in chunks.
import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom, writeBuffer } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { uploadSplit } from '../../src/gpu/split_tensor.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Matmul, type MatmulVariant } from '../../src/kernels/matmul.js';
import { QMatmul, type QMatmulVariant } from '../../src/kernels/qmatmul.js';
import type { Activation } from '../../src/kernels/mlp_act.js';
import { xWidth, type XPrologue } from '../../src/kernels/x_prologue.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { kernelBlock, type StorageType } from '../../src/weights/types.js';
import { mlpActRef, rmsNormRef } from '../ref/elementwise.js';
import { randomWeights as randomWeightsFor } from '../ref/quant_random.js';
import { gammaF32, matmulRef, maxMatmulError } from '../ref/matmul.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { x8Bound } from '../ref/x8.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';

const SENTINEL = 7.5;
const EPS = 1e-5;

/**
 * Relative error of one activation output act(g) [* up] for |g| <= 1 (test/kernels/mlp_act.test.ts derives these
 * bounds for |x| <= 15; they hold here a fortiori).
 */
const ACT_TOL: Record<Activation, number> = { silu: 4e-6, gelu_tanh: 1.5e-5, gelu_erf: 1.5e-5 };

interface Inputs {
  x: Float32Array; // (M, K * xWidth) what the kernel reads
  g: Float32Array | null; // (K) the norm weight of an rms prologue
  xRef: Float64Array; // (M, K) the unfused chain's matmul input, in float64
}

function inputs(p: XPrologue, M: number, K: number, rand: () => number): Inputs {
  // |x| up to 3 and g around 1: a residual stream and a norm weight of the usual size.
  const x = randomF32(rand, M * K * xWidth(p), p.kind === 'rms' ? 3 : 1);
  if (p.kind === 'rms') {
    const g = Float32Array.from(randomF32(rand, K, 0.5), (v) => 1 + v);
    return { x, g, xRef: rmsNormRef(x, g, M, K, p.eps) };
  }
  if (p.kind === 'act') return { x, g: null, xRef: mlpActRef(x, M, K, p.act, p.gated) };
  return { x, g: null, xRef: Float64Array.from(x) };
}

/**
 * The bound on |y - ref| / sum |terms| beyond the plain matmul's own (`base`): rms computes r * sum_k (x g) W with
 * one more rounding per term (x g, K more terms in gamma) and r from an f32 sum of K squares (relative error
 * gamma(K), halved by the square root) plus ~4 roundings (mean, + eps, sqrt, reciprocal), which scales the whole sum;
 * act carries each activation's own relative error (ACT_TOL). A skipped norm, a wrong g index or r of another row
 * errs by O(1) relative; an activation swapped for another, or gate for up, by over 1e-2.
 */
function extraTol(p: XPrologue, K: number): number {
  if (p.kind === 'rms') return gammaF32(K) + gammaF32(K / 2 + 4);
  if (p.kind === 'act') return ACT_TOL[p.act];
  return 0;
}

interface Case {
  M: number;
  K: number;
  N: number;
  bias: boolean;
  accumulate: boolean;
  prologue: XPrologue;
}

async function run(
  gpu: Gpu,
  t: Case,
  make: (inp: Inputs, xb: GPUBuffer, gb: GPUBuffer | undefined, yb: GPUBuffer, bb: GPUBuffer | undefined) => { encode(pass: GPUComputePassEncoder): void; destroy(): void },
  w: ArrayLike<number>,
  magnitude: ArrayLike<number>,
  baseTol: number,
  what: string,
  seed: number,
  rand: () => number,
  q8 = false,
): Promise<void> {
  const { M, K, N } = t;
  const inp = inputs(t.prologue, M, K, rand);
  const bias = t.bias ? randomF32(rand, N) : null;
  const y0 = t.accumulate ? randomF32(rand, M * N, 4) : null;
  const ref = matmulRef(inp.xRef, w, bias, M, K, N, y0);
  const abs = (a: ArrayLike<number> | null) => a && Float64Array.from(a, Math.abs);
  const scale = matmulRef(abs(inp.xRef)!, magnitude, abs(bias), M, K, N, abs(y0));

  const xb = createStorageFrom(gpu.device, inp.x, 'x');
  const gb = inp.g ? createStorageFrom(gpu.device, inp.g, 'g') : undefined;
  const bb = bias ? createStorageFrom(gpu.device, bias, 'bias') : undefined;
  const yb = createStorage(gpu.device, (M + 1) * N * 4, 'y');
  const yInit = new Float32Array((M + 1) * N).fill(SENTINEL);
  if (y0) yInit.set(y0);
  writeBuffer(gpu.device, yb, yInit);
  const k = make(inp, xb, gb, yb, bb);
  submitPass(gpu, (pass) => k.encode(pass));
  const got = await readF32(gpu, yb, (M + 1) * N);
  const tol = baseTol + extraTol(t.prologue, K);
  if (q8) {
    // On 8-bit activations the kernel quantizes the prologue's output (x g, whose row factor r joins each block's
    // step, or act(gate) up) per 32 values: on top of the f32 bound, y moves by at most sum_k |w_k| dx_b(k) / 2 with
    // dx_b = max |xRef| / 127 over the block (test/ref/x8.ts). A skipped norm or a wrong activation errs by O(1)
    // relative, far beyond it.
    const q = x8Bound(inp.xRef, magnitude, M, K, N);
    for (let i = 0; i < M * N; i++) {
      const bound = tol * scale.y[i] + q[i];
      expect(Math.abs(got[i] - ref.y[i]), `seed ${seed} ${what}: [${Math.floor(i / N)}, ${i % N}] (got ${got[i]}, want ${ref.y[i]}), bound ${bound.toExponential(2)}`).toBeLessThanOrEqual(bound);
    }
  } else {
    const { err, at } = maxMatmulError(got, { y: ref.y, absSum: scale.y });
    expect(err, `seed ${seed} ${what}: worst error ${err.toExponential(2)} at [${Math.floor(at / N)}, ${at % N}] (got ${got[at]}, want ${ref.y[at]}), bound ${tol.toExponential(2)}`).toBeLessThanOrEqual(tol);
  }
  expect(Array.from(got.subarray(M * N)), `seed ${seed}: row M written`).toEqual(new Array(N).fill(SENTINEL));
  k.destroy();
  for (const b of [xb, gb, bb, yb]) b?.destroy();
}

const RMS: XPrologue = { kind: 'rms', eps: EPS };
const act = (a: Activation, gated: boolean): XPrologue => ({ kind: 'act', act: a, gated });
const name = (p: XPrologue) => (p.kind === 'act' ? `act ${p.act}${p.gated ? ' gated' : ''}` : p.kind);

// F32 kernel: decode 1x2 (M = 1) and 4x4 (M = 3, 17) on the vec4 path and the scalar one (K % 4 != 0), prefill, tiled
// (a partial K stage at K = 63, rows beyond one tile at M = 70), each with both prologues.
const F32_BASE: (Case & { variant: MatmulVariant })[] = (
  [
    ['decode', 1, 200, 67, true, false],
    ['decode', 3, 63, 130, false, true],
    ['decode', 17, 100, 9, true, true],
    ['prefill', 17, 200, 67, false, true],
    ['prefill', 3, 100, 130, true, false],
    ['tiled', 70, 63, 67, true, true],
    ['tiled', 3, 200, 9, false, false],
  ] as const
).flatMap(([variant, M, K, N, bias, accumulate], i) =>
  [RMS, [act('silu', true), act('gelu_tanh', false), act('gelu_erf', true)][i % 3]].map((prologue) => ({ variant, M, K, N, bias, accumulate, prologue })),
);
// The prefill cases again with the prefill written out (shaders/matmul_prefill_unrolled.wgsl, Chromium's GL route).
const F32_CASES: (Case & { variant: MatmulVariant; registerBlocks?: RegisterBlocks })[] = [
  ...F32_BASE,
  ...F32_BASE.filter((c) => c.variant === 'prefill').map((c) => ({ ...c, registerBlocks: 'unrolled' as const })),
];

// Stored types: F16 with K % 8 == 0 (dot step) and K % 8 == 4 (1x2 fallback), block types on the 8-column dot step
// (Q4_K; Q8_0, whose rows lie at 2-byte offsets with an odd block count), M = 3 (4x2) and M = 17 (prefill 8x2). The
// prologue is the same code for every type (test/kernels/qmatmul.test.ts covers each type's weight loads).
const Q_CASES: { type: StorageType; blocks: number; variant: QMatmulVariant; M: number; N: number; bias: boolean; accumulate: boolean }[] = [
  { type: 'F16', blocks: 26, variant: 'decode', M: 1, N: 37, bias: true, accumulate: true },
  { type: 'F16', blocks: 39, variant: 'decode', M: 1, N: 37, bias: false, accumulate: false },
  { type: 'F16', blocks: 39, variant: 'prefill', M: 17, N: 20, bias: false, accumulate: true },
  { type: 'Q4_K', blocks: 1, variant: 'decode', M: 1, N: 70, bias: false, accumulate: true },
  { type: 'Q4_K', blocks: 2, variant: 'decode', M: 3, N: 19, bias: true, accumulate: false },
  { type: 'Q8_0', blocks: 3, variant: 'decode', M: 1, N: 70, bias: true, accumulate: false },
  { type: 'Q8_0', blocks: 3, variant: 'prefill', M: 17, N: 19, bias: false, accumulate: true },
];
const Q_RUNS = Q_CASES.flatMap((c, i) => [RMS, [act('silu', true), act('gelu_erf', false), act('gelu_tanh', true)][i % 3]].map((prologue) => ({ ...c, prologue, activations: 'f32' as const })));
// 8-bit activations: Q4_K (qmatmul_q8.wgsl) and Q5_0 (its 8-row tiles, qmatmul_q8_t8.wgsl) at 1, 4 and 8 rows per
// invocation (M = 1, 3, 17), N uneven.
const Q8_CASES: typeof Q_CASES = [
  { type: 'Q4_K', blocks: 2, variant: 'decode', M: 1, N: 19, bias: true, accumulate: false },
  { type: 'Q5_0', blocks: 5, variant: 'decode', M: 3, N: 21, bias: false, accumulate: true },
  { type: 'Q4_K', blocks: 1, variant: 'prefill', M: 17, N: 13, bias: false, accumulate: true },
  { type: 'Q5_0', blocks: 3, variant: 'prefill', M: 17, N: 10, bias: true, accumulate: false },
];
const Q8_RUNS = Q8_CASES.flatMap((c, i) => [RMS, [act('silu', true), act('gelu_tanh', false)][i % 2]].map((prologue) => ({ ...c, prologue, activations: 'q8' as const })));

describe.each(testAdapterChoices())('matmul x prologues on %s', (choice) => {
  it.each(F32_CASES.map((c) => ({ ...c, p: name(c.prologue), v: `${c.variant}${c.registerBlocks === 'unrolled' ? ' written out' : ''}` })))('F32 $v M=$M K=$K N=$N $p matches the unfused float64 chain', async (t) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const w = randomF32(rand, t.N * t.K);
    const mm = new Matmul(gpu, { K: t.K, N: t.N, bias: t.bias, accumulate: t.accumulate, variants: [t.variant], prologue: t.prologue, registerBlocks: t.registerBlocks });
    await run(
      gpu,
      t,
      (_, x, norm, y, bias) => {
        const wt = uploadSplit(gpu, w, t.N, t.K, 'w', Math.ceil(t.N / 3) * t.K * 4);
        const b = mm.bind({ x, w: wt, y, ...(bias ? { bias } : {}), ...(norm ? { norm } : {}) }, 'test');
        expect(b.variantFor(t.M)).toBe(t.variant);
        return {
          encode: (pass) => b.encode(pass, t.M),
          destroy: () => {
            b.destroy();
            mm.destroy();
            for (const c of wt.chunks) c.buffer.destroy();
          },
        };
      },
      w,
      Float64Array.from(w, Math.abs),
      // The plain f32 dot product of K terms plus bias and y0 (test/kernels/matmul.test.ts).
      gammaF32(t.K + 2),
      `${t.variant} ${name(t.prologue)}`,
      seed,
      rand,
    );
  });

  it.each([...Q_RUNS, ...Q8_RUNS].map((c) => ({ ...c, p: name(c.prologue) })))('$type $variant M=$M blocks=$blocks $p $activations matches the unfused float64 chain', async (t) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const Kd = t.blocks * kernelBlock(t.type);
    const bytes = randomWeightsFor(t.type, t.N, Kd, rand);
    const { values: w, magnitude } = dequantizeWithMagnitude(t.type, bytes, t.N * Kd);
    const mm = new QMatmul(gpu, { type: t.type, K: Kd, N: t.N, bias: t.bias, accumulate: t.accumulate, variants: [t.variant], prologue: t.prologue, activations: t.activations });
    expect(mm.int8).toBe(t.activations === 'q8');
    await run(
      gpu,
      { ...t, K: Kd },
      (_, x, norm, y, bias) => {
        // Chunks of a third of the rows (at least one 8-row tile of Q5_0).
        const wt = uploadWeights(gpu, t.type, bytes, t.N, Kd, 'w', Math.max(8, Math.ceil(t.N / 3)) * (bytes.length / t.N) + 32);
        const b = mm.bind({ x, w: wt, y, ...(bias ? { bias } : {}), ...(norm ? { norm } : {}) }, 'test');
        return {
          encode: (pass) => b.encode(pass, t.M),
          destroy: () => {
            b.destroy();
            mm.destroy();
            destroyWeights(wt);
          },
        };
      },
      w,
      magnitude,
      // The stored-type kernel's own bound (test/kernels/qmatmul.test.ts), with magnitude-weighted sums.
      gammaF32(2 * Kd + 5),
      `${t.type} ${t.variant} ${name(t.prologue)} ${t.activations}`,
      seed,
      rand,
      t.activations === 'q8',
    );
  });

  it('refuses an rms prologue without its norm weight, a norm for another prologue and a short gate | up x', async () => {
    const gpu = await gpuFor(choice);
    const x = createStorage(gpu.device, 2 * 8 * 4, 'x (1, 2K) f32');
    const g = createStorage(gpu.device, 8 * 4, 'g (K) f32');
    const y = createStorage(gpu.device, 4 * 4, 'y (1, N) f32');
    const w = uploadSplit(gpu, new Float32Array(4 * 8), 4, 8, 'w');
    expect(() => new Matmul(gpu, { K: 8, N: 4, bias: false, prologue: RMS }).bind({ x, w, y })).toThrow(/norm weight/);
    expect(() => new Matmul(gpu, { K: 8, N: 4, bias: false }).bind({ x, w, y, norm: g })).toThrow(/no norm/);
    expect(() => new Matmul(gpu, { K: 8, N: 4, bias: false, prologue: { kind: 'rms', eps: -1 } })).toThrow(InvalidArgumentError);
    const gated = new Matmul(gpu, { K: 8, N: 4, bias: false, prologue: act('silu', true) }).bind({ x: g, w, y });
    submitPass(gpu, (pass) => expect(() => gated.encode(pass, 1)).toThrow(/16 values, fewer than M=1/));
    for (const b of [x, g, y, ...w.chunks.map((c) => c.buffer)]) b.destroy();
  });
});
