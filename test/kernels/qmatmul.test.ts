import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom, writeBuffer } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { QMatmul, QMATMUL_PREFILL_MIN_M, type DecodeActivations, type QMatmulVariant } from '../../src/kernels/qmatmul.js';
import { hasIntDot } from '../../src/kernels/weight_shader.js';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { STORAGE_TYPES, kernelBlock, type StorageType } from '../../src/weights/types.js';
import { gammaF32, matmulRef, maxMatmulError } from '../ref/matmul.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { x8Bound, x8Exact } from '../ref/x8.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import type { Gpu } from '../../src/gpu/device.js';

interface Case {
  variant: QMatmulVariant;
  M: number;
  blocks: number; // K = blocks * the type's kernel block
  N: number;
  bias: boolean;
  split: boolean;
  accumulate: boolean;
  /** x quantized to 8 bits at every M (the default, for the types with an integer dot step) or f32. */
  activations?: DecodeActivations;
}

// Per type: decode at M = 1 (the dot-step kernel, qmatmul_decode.wgsl, 8 or 4 columns per invocation; for the dense
// types only when K % 8 == 0, so K = 156 takes the 1x2 register-blocked fallback and K = 104 the dot step) and M = 3
// (4x4, a partial row block), prefill at M = 17 (8x4, a partial block of rows) and at M = 3 (fewer rows than one
// block); N uneven (not a multiple of the columns per invocation or per workgroup), K of 2-3 blocks (odd block counts
// put Q8_0, Q4_0, Q5_0 and Q6_K rows at 2-byte offsets), with and without bias, W in 3+ chunks, accumulating into y.
// The types with an integer dot step run every case on 8-bit activations (qmatmul_q8.wgsl, 1, 4 or 8 rows per
// invocation; Q5_0 qmatmul_q8_t8.wgsl), and M = 1 once more with activations: 'f32' (qmatmul_decode.wgsl) and
// 'f32-blocked' (qmatmul.wgsl, 1 x 2), the bodies the other types take.
const CASES: Case[] = [
  { variant: 'decode', M: 1, blocks: 3, N: 129, bias: true, split: false, accumulate: false },
  { variant: 'decode', M: 1, blocks: 2, N: 70, bias: false, split: true, accumulate: true },
  { variant: 'decode', M: 1, blocks: 3, N: 129, bias: true, split: false, accumulate: false, activations: 'f32' },
  // What the model runs at one row: the register-blocked body of qmatmul.wgsl (1 x 2).
  { variant: 'decode', M: 1, blocks: 2, N: 37, bias: false, split: true, accumulate: true, activations: 'f32-blocked' },
  { variant: 'decode', M: 3, blocks: 2, N: 70, bias: false, split: true, accumulate: true },
  { variant: 'prefill', M: 17, blocks: 3, N: 37, bias: true, split: true, accumulate: false },
  { variant: 'prefill', M: 3, blocks: 1, N: 5, bias: false, split: false, accumulate: true },
];

const SENTINEL = 7.5;

async function check(gpu: Gpu, type: StorageType, t: Case): Promise<void> {
  const K = t.blocks * kernelBlock(type) * (kernelBlock(type) === 4 ? 13 : 1); // dense: K = 39 or 26 vec4s
  const { M, N } = t;
  const seed = testSeed();
  const rand = mulberry32(seed);
  const activations = t.activations ?? 'q8';
  const q8 = activations === 'q8' && hasIntDot(type);
  // On 8-bit activations: x on the grid the kernel quantizes to, so its integers are known exactly (test/ref/x8.ts).
  const exact = q8 ? x8Exact(rand, M, K) : null;
  const x = exact ? exact.x : randomF32(rand, M * K);
  const wBytes = randomWeights(type, N, K, rand);
  const { values: w, magnitude } = dequantizeWithMagnitude(type, wBytes, N * K);
  const bias = t.bias ? randomF32(rand, N) : null;
  const y0 = t.accumulate ? randomF32(rand, M * N, 4) : null;
  const abs = (a: ArrayLike<number> | null) => a && Float64Array.from(a, Math.abs);
  const ref = matmulRef(x, w, bias, M, K, N, y0);
  // Error scale: sum |x| * magnitude(w) (+ |bias| + |y0|), see the tolerance below.
  const scale = matmulRef(abs(x)!, magnitude, abs(bias), M, K, N, abs(y0));

  const xb = createStorageFrom(gpu.device, x, `x (${M}, ${K}) f32`);
  const wt = uploadWeights(gpu, type, wBytes, N, K, `w ${type}`, t.split ? Math.ceil(N / 3) * (wBytes.length / N) + 32 : undefined);
  if (t.split) expect(wt.chunks.length).toBeGreaterThanOrEqual(3);
  const bb = bias ? createStorageFrom(gpu.device, bias, `bias (${N}) f32`) : undefined;
  const yb = createStorage(gpu.device, (M + 1) * N * 4, `y (${M + 1}, ${N}) f32`);
  const yInit = new Float32Array((M + 1) * N).fill(SENTINEL);
  if (y0) yInit.set(y0);
  writeBuffer(gpu.device, yb, yInit);

  const mm = new QMatmul(gpu, { type, K, N, bias: t.bias, accumulate: t.accumulate, variants: [t.variant], activations });
  expect(mm.int8, 'the 8-bit body runs exactly for activations q8 on a type with an integer step').toBe(q8);
  const bound = mm.bind({ x: xb, w: wt, ...(bb ? { bias: bb } : {}), y: yb }, `test ${type}`);
  const compiled = gpu.pipelines.compiled;
  submitPass(gpu, (pass) => bound.encode(pass, M));
  const got = await readF32(gpu, yb, (M + 1) * N);
  expect(gpu.pipelines.compiled, 'encode must not compile').toBe(compiled);

  if (exact) {
    // The kernel multiplies x as its 8-bit grid holds it (xHat = t q, exact by construction): hold y to float64 on
    // those x. The integer block sums (sum q_w q_x per 16 values, exact in 32-bit lanes, see xq8.wgsl) carry no
    // error; each block adds its scales (d sc dx, dmin m sx: a few roundings) and the blocks sum in f32: the same
    // gamma(2K + 5) bound as the f32 path; plus the kernel's dx = max|x| / 127, which may differ from t by a few ulp of
    // its division (2^-21 relative, on every term). A wrong nibble, pairing or scale moves y by a weight step times
    // |x|, far beyond this.
    const refHat = matmulRef(exact.xHat, w, bias, M, K, N, y0);
    const scaleHat = matmulRef(abs(exact.xHat)!, magnitude, abs(bias), M, K, N, abs(y0));
    const tol = gammaF32(2 * K + 5) + 2 ** -21;
    const e = maxMatmulError(got, { y: refHat.y, absSum: scaleHat.y });
    expect(e.err, `seed ${seed} ${type} on 8-bit x: worst error ${e.err.toExponential(2)} at ${e.at}, bound ${tol.toExponential(2)}`).toBeLessThanOrEqual(tol);
    // Against the f32 x: the 8-bit rounding moves each x by at most half its block's step (test/ref/x8.ts), so y by
    // at most sum_k |w_k| dx_b(k) / 2 on top of the rounding bound. This is llama.cpp's own activation error
    // (test/ref/gguf_reference.ts), the tolerance the model's logits inherit.
    const q8Bound = x8Bound(x, magnitude, M, K, N);
    for (let i = 0; i < M * N; i++) {
      const b = tol * scaleHat.y[i] + q8Bound[i];
      expect(Math.abs(got[i] - ref.y[i]), `seed ${seed} ${type}: [${Math.floor(i / N)}, ${i % N}] against f32 x`).toBeLessThanOrEqual(b);
    }
  } else {
    const { err, at } = maxMatmulError(got, { y: ref.y, absSum: scale.y });
    // The kernel computes each weight as scale * q + off with q a small integer (exact in f32) and sums, per sub-block
    // half, scale * (q . x) + off * sum(x): a sum of 2K terms (scale q x and off x), each carrying at most two more
    // roundings (forming scale or off from the block's f16 fields, e.g. d * sc; multiplying the partial sum by it), plus
    // bias and y0. In any summation order that errs by at most gamma(2K + 5) * sum(|scale q x| + |off x|) (Higham 3.1,
    // the extra roundings counted as terms), and |scale q| + |off| is the magnitude dequantizeWithMagnitude returns.
    // (The decode dot steps of Q4_0, Q5_0 and Q8_0 fold the offset into q: d * sum((q - 8) x), q - 8 an exact small
    // integer, the same form with off = 0.) The dense types have q = the value, scale 1, off 0: the plain dot-product
    // bound, loosened. A wrong nibble, bit or scale moves a weight by a quantization step (>= 1/64 of its block's
    // range) and the sum by far more than this bound (K <= 768: <= 1e-4 relative).
    const tol = gammaF32(2 * K + 5);
    expect(
      err,
      `seed ${seed} ${type}: worst error ${err.toExponential(2)} at [${Math.floor(at / N)}, ${at % N}] (got ${got[at]}, want ${ref.y[at]}), bound ${tol.toExponential(2)}`,
    ).toBeLessThanOrEqual(tol);
  }
  expect(Array.from(got.subarray(M * N)), `seed ${seed}: row M written`).toEqual(new Array(N).fill(SENTINEL));

  destroyWeights(wt);
  for (const b of [xb, yb, bb]) b?.destroy();
  bound.destroy();
  mm.destroy();
}

/**
 * y of the first M rows of x (M, K) through one matmul on 8-bit activations, forced to `variant`: the rows per
 * invocation follow M (1, 4) or the variant (8 for prefill).
 */
async function q8Rows(gpu: Gpu, mm: QMatmul, wt: ReturnType<typeof uploadWeights>, xb: GPUBuffer, M: number, variant: QMatmulVariant): Promise<Float32Array> {
  const yb = createStorage(gpu.device, M * mm.N * 4, `y (${M}, N) f32`);
  const bound = mm.bind({ x: xb, w: wt, y: yb }, 'invariance');
  submitPass(gpu, (pass) => bound.encode(pass, M, variant));
  const got = await readF32(gpu, yb, M * mm.N);
  bound.destroy();
  yb.destroy();
  return got;
}

describe.each(testAdapterChoices())('matmul on stored weight types on %s', (choice) => {
  describe.each(STORAGE_TYPES.map((t) => [t]))('%s', (type) => {
    it.each(CASES)('$variant M=$M blocks=$blocks N=$N bias=$bias split=$split accumulate=$accumulate matches float64', async (t) => {
      await check(await gpuFor(choice), type, t);
    });
  });

  // Batch invariance of the 8-bit body: a row's y is the same bits whether it runs alone (1 row per invocation),
  // with 2 others (4 per invocation) or with 16 others (8 per invocation). Ordinary random x (ties in the 8-bit
  // rounding included: they round the same way in every variant). Alone, also in both workgroup sizes of the one-row
  // body (8 invocations on llvmpipe, in Node and on Chromium's GL route, 16 elsewhere, QMatmulOptions.narrowOneRow), over N of 3 narrow and 2
  // wide workgroups with the last one partial.
  it.each(STORAGE_TYPES.filter((t) => hasIntDot(t)).map((t) => [t]))('%s on 8-bit x: each row the same bits at M = 1, 3 and 17', async (type) => {
    const gpu = await gpuFor(choice);
    const rand = mulberry32(testSeed());
    const K = 2 * kernelBlock(type);
    const N = 137;
    const x = randomF32(rand, 17 * K, 2);
    const wt = uploadWeights(gpu, type, randomWeights(type, N, K, rand), N, K, 'w');
    const mm = new QMatmul(gpu, { type, K, N, bias: false });
    const xb = createStorageFrom(gpu.device, x, 'x (17, K) f32');
    const y17 = await q8Rows(gpu, mm, wt, xb, 17, 'prefill');
    // Rows 5..7 of x alone and as 3 rows: row slots 0..2 of an invocation against slots 5..7 of the 17-row run.
    const x5 = createStorageFrom(gpu.device, x.subarray(5 * K, 8 * K), 'x rows 5..7 (3, K) f32');
    const y3 = await q8Rows(gpu, mm, wt, x5, 3, 'decode');
    const y1 = await q8Rows(gpu, mm, wt, x5, 1, 'decode');
    const wide = new QMatmul(gpu, { type, K, N, bias: false, narrowOneRow: false });
    expect(mm.narrowOneRow, 'the narrow workgroups run exactly on llvmpipe (Node and the browser-gl project)').toBe(choice === 'llvmpipe');
    expect(wide.narrowOneRow).toBe(false);
    const y1wide = await q8Rows(gpu, wide, wt, x5, 1, 'decode');
    expect(Array.from(y3)).toEqual(Array.from(y17.subarray(5 * N, 8 * N)));
    expect(Array.from(y1)).toEqual(Array.from(y17.subarray(5 * N, 6 * N)));
    expect(Array.from(y1wide)).toEqual(Array.from(y1));
    // And not trivially: the rows differ from one another.
    expect(Array.from(y17.subarray(5 * N, 6 * N))).not.toEqual(Array.from(y17.subarray(6 * N, 7 * N)));
    xb.destroy();
    x5.destroy();
    destroyWeights(wt);
    mm.destroy();
    wide.destroy();
  });

  it('picks decode below QMATMUL_PREFILL_MIN_M rows and prefill from there', async () => {
    const gpu = await gpuFor(choice);
    const mm = new QMatmul(gpu, { type: 'Q4_K', K: 256, N: 8, bias: false });
    const t = QMATMUL_PREFILL_MIN_M;
    expect([1, t - 1, t, 300].map((m) => mm.variantFor(m))).toEqual(['decode', 'decode', 'prefill', 'prefill']);
  });

  it('rejects K that is not whole blocks, a W of another type and mismatched shapes with typed errors', async () => {
    const gpu = await gpuFor(choice);
    expect(() => new QMatmul(gpu, { type: 'Q4_K', K: 320, N: 8, bias: false })).toThrow(/multiple of 256/);
    expect(() => new QMatmul(gpu, { type: 'F16', K: 6, N: 8, bias: false })).toThrow(InvalidArgumentError);
    const w = uploadWeights(gpu, 'Q8_0', new Uint8Array(8 * 34), 8, 32, 'w');
    const x = createStorage(gpu.device, 32 * 4, 'x (1, 32) f32');
    const y = createStorage(gpu.device, 8 * 4, 'y (1, 8) f32');
    expect(() => new QMatmul(gpu, { type: 'Q4_0', K: 32, N: 8, bias: false }).bind({ x, w, y })).toThrow(/W is Q8_0/);
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 9, bias: false }).bind({ x, w, y })).toThrow(/expects/);
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 8, bias: false }).bind({ x, w, y: x })).toThrow(/own/);
    const bound = new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 8, bias: false }).bind({ x, w, y });
    submitPass(gpu, (pass) => expect(() => bound.encode(pass, 2)).toThrow(/fewer than M=2/));
    expect(() => uploadWeights(gpu, 'Q4_0', new Uint8Array(18), 1, 30, 'w')).toThrow(UnsupportedModelError);
    destroyWeights(w);
    x.destroy();
    y.destroy();
  });
});
