import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom, writeBuffer } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { QMatmul, QMATMUL_PREFILL_MIN_M, type DecodeActivations, type QMatmulVariant } from '../../src/kernels/qmatmul.js';
import { decodeQuantizedX, X8_BLOCK } from '../../src/kernels/quantize_x8.js';
import { hasIntDot } from '../../src/kernels/weight_shader.js';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { STORAGE_TYPES, kernelBlock, type StorageType } from '../../src/weights/types.js';
import { gammaF32, matmulRef, maxMatmulError } from '../ref/matmul.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
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
  /** Decode at M = 1: x quantized to 8 bits (the default for the types with an integer dot step) or f32. */
  activations?: DecodeActivations;
}

// Per type: decode at M = 1 (the dot-step kernel, qmatmul_decode.wgsl, 8 or 4 columns per invocation; for the dense
// types only when K % 8 == 0, so K = 156 takes the 1x2 register-blocked fallback and K = 104 the dot step) and M = 3
// (4x4, a partial row block), prefill at M = 17 (8x4, a partial block of rows) and at M = 3 (fewer rows than one
// block); N uneven (not a multiple of the columns per invocation or per workgroup), K of 2-3 blocks (odd block counts
// put Q8_0, Q4_0, Q5_0 and Q6_K rows at 2-byte offsets), with and without bias, W in 3+ chunks, accumulating into y.
// Decode at M = 1 runs on 8-bit activations for the types with an integer dot step (qmatmul_idecode.wgsl) and once
// more with activations: 'f32' (qmatmul_decode.wgsl) and 'f32-blocked' (qmatmul.wgsl, 1 x 2).
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
  const x = randomF32(rand, M * K);
  const wBytes = randomWeights(type, N, K, rand);
  const { values: w, magnitude } = dequantizeWithMagnitude(type, wBytes, N * K);
  const bias = t.bias ? randomF32(rand, N) : null;
  const y0 = t.accumulate ? randomF32(rand, M * N, 4) : null;
  const ref = matmulRef(x, w, bias, M, K, N, y0);
  // Error scale: sum |x| * magnitude(w) (+ |bias| + |y0|), see the tolerance below.
  const scale = matmulRef(Float64Array.from(x, Math.abs), magnitude, bias && Float64Array.from(bias, Math.abs), M, K, N, y0 && Float64Array.from(y0, Math.abs));

  const xb = createStorageFrom(gpu.device, x, `x (${M}, ${K}) f32`);
  const wt = uploadWeights(gpu, type, wBytes, N, K, `w ${type}`, t.split ? Math.ceil(N / 3) * (wBytes.length / N) + 32 : undefined);
  if (t.split) expect(wt.chunks.length).toBeGreaterThanOrEqual(3);
  const bb = bias ? createStorageFrom(gpu.device, bias, `bias (${N}) f32`) : undefined;
  const yb = createStorage(gpu.device, (M + 1) * N * 4, `y (${M + 1}, ${N}) f32`);
  const yInit = new Float32Array((M + 1) * N).fill(SENTINEL);
  if (y0) yInit.set(y0);
  writeBuffer(gpu.device, yb, yInit);

  const activations = t.activations ?? 'q8';
  const mm = new QMatmul(gpu, { type, K, N, bias: t.bias, accumulate: t.accumulate, variants: [t.variant], activations });
  const bound = mm.bind({ x: xb, w: wt, ...(bb ? { bias: bb } : {}), y: yb }, `test ${type}`);
  const compiled = gpu.pipelines.compiled;
  submitPass(gpu, (pass) => bound.encode(pass, M));
  const got = await readF32(gpu, yb, (M + 1) * N);
  expect(gpu.pipelines.compiled, 'encode must not compile').toBe(compiled);

  const q8 = t.variant === 'decode' && M === 1 && activations === 'q8' && hasIntDot(type);
  if (t.variant === 'decode') expect(bound.quantizedX !== null, 'the 8-bit scratch exists exactly where M = 1 takes the 8-bit path').toBe(activations === 'q8' && hasIntDot(type));
  const xq = q8 ? bound.quantizedX : null;
  if (xq) {
    // The kernel multiplies x as quantize_x8 left it: check that quantization, then hold y to float64 on those x.
    const xHat = await checkQuantizedX(gpu, xq, x, K);
    const refHat = matmulRef(xHat, w, bias, M, K, N, y0);
    const scaleHat = matmulRef(Float64Array.from(xHat, Math.abs), magnitude, bias && Float64Array.from(bias, Math.abs), M, K, N, y0 && Float64Array.from(y0, Math.abs));
    // With the x values fixed, the integer dot products (sum q_w q_x per 16 values, exact in 32-bit lanes, see
    // qmatmul_idecode.wgsl) carry no error; each block adds its scales (d sc dx, dmin m sx: a few roundings) and the
    // blocks sum in f32: the same gamma(2K + 5) bound as the f32 path.
    const e = maxMatmulError(got, { y: refHat.y, absSum: scaleHat.y });
    expect(e.err, `seed ${seed} ${type} on 8-bit x: worst error ${e.err.toExponential(2)} at ${e.at}`).toBeLessThanOrEqual(gammaF32(2 * K + 5));
    // Against the f32 x: quantizing moves each x by at most half its block's step, dx / 2 (checkQuantizedX), so y
    // moves by at most sum_k |w_k| dx_b(k) / 2, on top of the rounding bound. This is the 8-bit-activation tolerance
    // (llama.cpp's own error, test/ref/gguf_reference.ts); a wrong nibble moves y by a weight step times |x_k|, which
    // this bound (about K |w| |x| / 254) can hide, hence the exact check above.
    const steps = Array.from({ length: K / X8_BLOCK }, (_, b) => blockStep(x, b * X8_BLOCK));
    for (let n = 0; n < N; n++) {
      let bound8 = gammaF32(2 * K + 5) * scaleHat.y[n];
      for (let k = 0; k < K; k++) bound8 += magnitude[n * K + k] * steps[Math.floor(k / X8_BLOCK)] * (0.5 + 2 ** -16);
      expect(Math.abs(got[n] - ref.y[n]), `seed ${seed} ${type}: column ${n} against f32 x`).toBeLessThanOrEqual(bound8);
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
  // bound, loosened. A wrong nibble, bit or
  // scale moves a weight by a quantization step (>= 1/64 of its block's range) and the sum by far more than this
  // bound (K <= 768: <= 1e-4 relative).
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

/** The quantization step of x's 32-value block holding k: max |x| / 127 (quantize_x8.wgsl). */
function blockStep(x: Float32Array, k: number): number {
  const b = Math.floor(k / X8_BLOCK) * X8_BLOCK;
  let amax = 0;
  for (let i = b; i < b + X8_BLOCK; i++) amax = Math.max(amax, Math.abs(x[i]));
  return amax / 127;
}

/**
 * Reads back quantize_x8's words and scales for the one row x (K values) and checks them against its definition:
 * dx = max|x| / 127 per block (to 4 ulp: the GPU's division), |x - dx q| <= dx (1/2 + 2^-16) with |q| <= 127 (round to
 * nearest of x * 127 / max|x|, whose f32 evaluation errs by a few ulp of a value <= 127, far below 2^-16), sx = dx sum q
 * (one rounding), the B words holding the same q as the A words. Returns dx q per value (float64).
 */
async function checkQuantizedX(gpu: Gpu, xq: { xq: GPUBuffer; xs: GPUBuffer }, x: Float32Array, K: number): Promise<Float64Array> {
  const blocks = K / X8_BLOCK;
  const words = await readU32(gpu, xq.xq, K);
  const scales = await readF32(gpu, xq.xs, 2 * blocks);
  const d = decodeQuantizedX(words, scales, 1, K);
  expect(d.bWordsAgree, 'B words hold the A words values').toBe(true);
  const xHat = new Float64Array(K);
  for (let b = 0; b < blocks; b++) {
    const step = blockStep(x, b * X8_BLOCK);
    expect(Math.abs(d.dx[b] - step), `block ${b} dx`).toBeLessThanOrEqual(step * 2 ** -21);
    let sum = 0;
    for (let k = b * X8_BLOCK; k < (b + 1) * X8_BLOCK; k++) {
      expect(Math.abs(d.q[k]), `q[${k}]`).toBeLessThanOrEqual(127);
      xHat[k] = d.dx[b] * d.q[k];
      expect(Math.abs(x[k] - xHat[k]), `x[${k}] = ${x[k]} as ${d.q[k]} * ${d.dx[b]}`).toBeLessThanOrEqual(d.dx[b] * (0.5 + 2 ** -16));
      sum += d.q[k];
    }
    expect(Math.abs(d.sx[b] - d.dx[b] * sum), `block ${b} sx`).toBeLessThanOrEqual(Math.abs(d.dx[b] * sum) * 2 ** -23);
  }
  return xHat;
}

describe.each(testAdapterChoices())('matmul on stored weight types on %s', (choice) => {
  describe.each(STORAGE_TYPES.map((t) => [t]))('%s', (type) => {
    it.each(CASES)('$variant M=$M blocks=$blocks N=$N bias=$bias split=$split accumulate=$accumulate matches float64', async (t) => {
      await check(await gpuFor(choice), type, t);
    });
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
