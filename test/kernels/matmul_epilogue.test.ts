// The rope_kv y epilogue of both matmul kernels (kernels/y_epilogue.ts) against the unfused float64 chain: a q|k|v
// projection, then RoPE and the KV write (ropeKvRef, kvWriteRef, in Hugging Face's rotate-half order). The kernel gets
// W with q and k rows in the pair-adjacent order (ropePairIndex) and its outputs are mapped back before comparing, on
// every body shader: F32 decode (1x2, 4x4, scalar path), prefill, tiled; the stored-type dot step decode, 4x2, prefill.
// GQA, partial rotary, a NoPE layer (KV write only), W in chunks, a row whose slot lies past the pool.
import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { uploadSplit } from '../../src/gpu/split_tensor.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Matmul, type MatmulVariant } from '../../src/kernels/matmul.js';
import { QMatmul, type QMatmulVariant } from '../../src/kernels/qmatmul.js';
import { defaultInvFreq, splitFrequencies } from '../../src/kernels/rope_kv.js';
import type { YEpilogue } from '../../src/kernels/y_epilogue.js';
import { ropePairIndex } from '../../src/model/permute.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { kernelBlock, type StorageType } from '../../src/weights/types.js';
import { kvWriteRef } from '../ref/attention.js';
import { ropeKvRef } from '../ref/elementwise.js';
import { gammaF32, matmulRef } from '../ref/matmul.js';
import { x8Bound } from '../ref/x8.js';
import { hasIntDot } from '../../src/kernels/weight_shader.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';

const PAGE = 5;
const PAGES = 4;

interface Heads {
  name: string;
  nHeads: number;
  kvHeads: number;
  headDim: number;
  rotary: number; // rotated dims per head, 0 = NoPE
  scale: number; // yarn-like attention factor on cos and sin
}
const HEADS: Heads[] = [
  { name: 'GQA 4/2, full rotary', nHeads: 4, kvHeads: 2, headDim: 8, rotary: 8, scale: 1 },
  { name: 'partial rotary 8/12, scaled', nHeads: 3, kvHeads: 1, headDim: 12, rotary: 8, scale: 1.1386 },
  { name: 'NoPE', nHeads: 2, kvHeads: 2, headDim: 6, rotary: 0, scale: 1 },
];

/** Column c of the kernel's (pair-ordered) output holds Hugging Face column from[c]. */
function columnMap(h: Heads): number[] {
  const q = ropePairIndex(h.nHeads, h.headDim, h.rotary / 2);
  const k = ropePairIndex(h.kvHeads, h.headDim, h.rotary / 2);
  const qDim = h.nHeads * h.headDim;
  const kvDim = h.kvHeads * h.headDim;
  return [...q, ...k.map((r) => r + qDim), ...Array.from({ length: kvDim }, (_, i) => qDim + kvDim + i)];
}

/**
 * Runs one case: `kernel` gets the pair-ordered W (the stored rows `wRows` picks) and returns what it computed;
 * checks y and the pool against the float64 chain.
 */
async function check(
  gpu: Gpu,
  h: Heads,
  M: number,
  K: number,
  wHf: ArrayLike<number>, // (N, K) Hugging Face order, the weights the kernel's rows dequantize to
  magnitude: ArrayLike<number>, // (N, K) |weight| bound per weight (dequantizeWithMagnitude; |w| for dense)
  baseTol: number,
  rand: () => number,
  seed: number,
  run: (x: GPUBuffer, bias: GPUBuffer, y: GPUBuffer, rope: { positions: GPUBuffer; slots: GPUBuffer; freq: GPUBuffer; kv: GPUBuffer }, e: YEpilogue) => () => void,
  q8 = false,
): Promise<void> {
  const hd = h.headDim;
  const qDim = h.nHeads * hd;
  const kvDim = h.kvHeads * hd;
  const N = qDim + 2 * kvDim;
  const map = columnMap(h);
  const x = randomF32(rand, M * K);
  const biasHf = randomF32(rand, N, 0.5);
  const positions = Uint32Array.from({ length: M }, () => Math.floor(rand() * 4096));
  // Distinct slots in random pages (M <= PAGES * PAGE); with M > 1 the last row's lies past the pool and must be dropped.
  const free = Array.from({ length: PAGES * PAGE }, (_, i) => i).sort(() => rand() - 0.5);
  const dropped = M > 1 ? 1 : 0;
  const slots = Uint32Array.from({ length: M }, (_, r) => (r >= M - dropped ? PAGES * PAGE + 2 : free[r]));
  const kv0 = randomF32(rand, PAGES * 2 * h.kvHeads * PAGE * hd);
  const invFreq = defaultInvFreq(h.rotary, 1e4);

  const proj = matmulRef(x, wHf, biasHf, M, K, N);
  const scale = matmulRef(Float64Array.from(x, Math.abs), magnitude, Float64Array.from(biasHf, Math.abs), M, K, N);
  const want = ropeKvRef(proj.y, positions, { nHeads: h.nHeads, kvHeads: h.kvHeads, headDim: hd, qkvStride: N, qkNorm: 'none', eps: 0, invFreq, ropeScale: h.scale });

  const d = gpu.device;
  const xb = createStorageFrom(d, x, 'x');
  const bb = createStorageFrom(d, Float32Array.from(map, (c) => biasHf[c]), 'bias (pair order)');
  const yb = createStorage(d, M * N * 4, 'y');
  const rope = {
    positions: createStorageFrom(d, positions, 'positions'),
    slots: createStorageFrom(d, slots, 'slots'),
    freq: createStorageFrom(d, splitFrequencies(invFreq), 'freq'),
    kv: createStorageFrom(d, kv0, 'kv'),
  };
  const e: YEpilogue = { kind: 'rope_kv', qDim, kvDim, headDim: hd, rotaryHalf: h.rotary / 2, pageSize: PAGE, pages: PAGES, scale: h.scale };
  const done = run(xb, bb, yb, rope, e);
  const got = await readF32(gpu, yb, M * N);
  const gotKv = await readF32(gpu, rope.kv, kv0.length);
  done();
  for (const b of [xb, bb, yb, ...Object.values(rope)]) b.destroy();

  // y back in Hugging Face order, by the column map.
  const gotHf = new Float32Array(M * N);
  for (let m = 0; m < M; m++) for (let c = 0; c < N; c++) gotHf[m * N + map[c]] = got[m * N + c];
  // y: the projection errs by gamma(K + 2) * sum |terms| per output (test/kernels/matmul.test.ts, with the bias); a
  // rotated pair mixes two outputs with cos, sin <= scale, and the rotation adds the angle's ~7e-7 rad and ~1e-7 from
  // the octant polynomials (test/kernels/rope_kv.test.ts) times |y|, plus three roundings: 2e-6 relative to the pair's
  // sum |terms| covers it. A wrong pair, angle, position or unrotated head errs by O(1) relative.
  const half = h.rotary / 2;
  const tol = baseTol + 2e-6;
  // On 8-bit activations x is rounded to its 8-bit grid first: each output moves by at most x8Bound (test/ref/x8.ts),
  // a rotated pair by the sum of its two outputs' bounds times the rotation's scale.
  const q8b = q8 ? x8Bound(x, magnitude, M, K, N) : new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < N; c++) {
      const dd = c < qDim + kvDim ? c % hd : hd;
      const partner = dd < half ? c + half : dd < 2 * half ? c - half : -1;
      const s = (scale.y[m * N + c] + (partner >= 0 ? scale.y[m * N + partner] : 0)) * Math.max(1, h.scale);
      const b = tol * s + (q8b[m * N + c] + (partner >= 0 ? q8b[m * N + partner] : 0)) * Math.max(1, h.scale);
      const err = Math.abs(gotHf[m * N + c] - want[m * N + c]);
      if (!(err <= b)) expect.fail(`seed ${seed}: y[${m}, ${c}] = ${gotHf[m * N + c]}, want ${want[m * N + c]} (bound ${b.toExponential(2)})`);
    }
  }
  // The pool holds exactly the y values the kernel stored (k after RoPE, in the kernel's pair order like q, and v as
  // projected), at each row's slot; a row whose slot lies past the pool wrote nothing.
  const wantKv = kvWriteRef({ kvHeads: h.kvHeads, headDim: hd, pageSize: PAGE, qkvStride: N, kOffset: qDim, vOffset: qDim + kvDim }, got, slots.slice(0, M - dropped), kv0);
  expect(Array.from(gotKv), `seed ${seed}: kv pool`).toEqual(Array.from(wantKv));
}

const F32_BASE: { variant: MatmulVariant; M: number; K: number; heads: Heads; registerBlocks?: RegisterBlocks }[] = [
  { variant: 'decode', M: 1, K: 100, heads: HEADS[0] }, // 1x2
  { variant: 'decode', M: 2, K: 100, heads: HEADS[2] }, // 4x4
  { variant: 'decode', M: 3, K: 63, heads: HEADS[1] }, // scalar path
  { variant: 'prefill', M: 17, K: 100, heads: HEADS[1] },
  { variant: 'prefill', M: 9, K: 40, heads: HEADS[2] },
  { variant: 'tiled', M: 17, K: 63, heads: HEADS[0] },
  { variant: 'tiled', M: 5, K: 100, heads: HEADS[2] },
];
// The prefill cases again with the prefill written out (shaders/matmul_prefill_unrolled.wgsl, Chromium's GL route).
const F32_CASES = [...F32_BASE, ...F32_BASE.filter((c) => c.variant === 'prefill').map((c) => ({ ...c, registerBlocks: 'unrolled' as const }))];
const Q_CASES: { type: StorageType; blocks: number; variant: QMatmulVariant; M: number; heads: Heads }[] = [
  { type: 'F16', blocks: 26, variant: 'decode', M: 1, heads: HEADS[1] }, // dot step, 4 columns
  { type: 'Q8_0', blocks: 3, variant: 'decode', M: 1, heads: HEADS[0] }, // dot step, 8 columns
  { type: 'Q8_0', blocks: 3, variant: 'decode', M: 3, heads: HEADS[1] }, // 4x2
  { type: 'Q4_K', blocks: 1, variant: 'prefill', M: 17, heads: HEADS[2] }, // 8-bit x, 8 rows per invocation
  { type: 'Q5_0', blocks: 3, variant: 'decode', M: 3, heads: HEADS[0] }, // 8-bit x on 8-row tiles, 4 rows per invocation
];

describe.each(testAdapterChoices())('matmul rope_kv epilogue on %s', (choice) => {
  it.each(F32_CASES.map((c) => ({ ...c, h: c.heads.name, v: `${c.variant}${c.registerBlocks === 'unrolled' ? ' written out' : ''}` })))('F32 $v M=$M K=$K $h matches projection, RoPE and KV write in float64', async (t) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const map = columnMap(t.heads);
    const N = map.length;
    const w = randomF32(rand, N * t.K); // pair order, as uploaded
    const wHf = new Float32Array(N * t.K);
    map.forEach((from, c) => wHf.set(w.subarray(c * t.K, (c + 1) * t.K), from * t.K));
    await check(gpu, t.heads, t.M, t.K, wHf, Float64Array.from(wHf, Math.abs), gammaF32(t.K + 2), rand, seed, (x, bias, y, rope, e) => {
      const mm = new Matmul(gpu, { K: t.K, N, bias: true, variants: [t.variant], epilogue: e, registerBlocks: t.registerBlocks });
      // Chunks of an even number of rows (the model uploads q|k|v so): the pairs of one invocation stay in one chunk.
      const wt = uploadSplit(gpu, w, N, t.K, 'w', 2 * Math.ceil(N / 6) * t.K * 4 + 32);
      expect(wt.chunks.length).toBeGreaterThanOrEqual(2);
      const b = mm.bind({ x, w: wt, bias, y, rope });
      submitPass(gpu, (pass) => b.encode(pass, t.M));
      return () => {
        b.destroy();
        mm.destroy();
        for (const c of wt.chunks) c.buffer.destroy();
      };
    });
  });

  it.each(Q_CASES.map((c) => ({ ...c, h: c.heads.name })))(
    '$type $variant M=$M $h matches projection, RoPE and KV write in float64',
    async (t) => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const rand = mulberry32(seed);
      const K = t.blocks * kernelBlock(t.type);
      const map = columnMap(t.heads);
      const N = map.length;
      const bytes = randomWeights(t.type, N, K, rand); // pair order, as uploaded
      const { values, magnitude } = dequantizeWithMagnitude(t.type, bytes, N * K);
      const wHf = new Float64Array(N * K);
      const magHf = new Float64Array(N * K);
      map.forEach((from, c) => {
        wHf.set(values.subarray(c * K, (c + 1) * K), from * K);
        magHf.set(magnitude.subarray(c * K, (c + 1) * K), from * K);
      });
      await check(gpu, t.heads, t.M, K, wHf, magHf, gammaF32(2 * K + 5), rand, seed, (x, bias, y, rope, e) => {
        const mm = new QMatmul(gpu, { type: t.type, K, N, bias: true, variants: [t.variant], epilogue: e });
        expect(mm.int8).toBe(hasIntDot(t.type));
        const wt = uploadWeights(gpu, t.type, bytes, N, K, 'w');
        const b = mm.bind({ x, w: wt, bias, y, rope });
        submitPass(gpu, (pass) => b.encode(pass, t.M));
        return () => {
          b.destroy();
          mm.destroy();
          destroyWeights(wt);
        };
      }, hasIntDot(t.type));
    },
  );

  it('refuses a rope_kv epilogue without its buffers, on a projection of another width or over odd chunks', async () => {
    const gpu = await gpuFor(choice);
    const e: YEpilogue = { kind: 'rope_kv', qDim: 8, kvDim: 4, headDim: 4, rotaryHalf: 2, pageSize: 4, pages: 2, scale: 1 };
    expect(() => new Matmul(gpu, { K: 8, N: 12, bias: false, epilogue: e })).toThrow(InvalidArgumentError);
    const mm = new Matmul(gpu, { K: 8, N: 16, bias: false, epilogue: e });
    const x = createStorage(gpu.device, 8 * 4, 'x');
    const y = createStorage(gpu.device, 16 * 4, 'y');
    const w = uploadSplit(gpu, new Float32Array(16 * 8), 16, 8, 'w');
    expect(() => mm.bind({ x, w, y })).toThrow(/positions, slots, freq and kv/);
    const odd = uploadSplit(gpu, new Float32Array(16 * 8), 16, 8, 'w', 5 * 8 * 4); // chunks of 5 rows
    const u32 = createStorage(gpu.device, 16, 'u32');
    expect(() => mm.bind({ x, w: odd, y, rope: { positions: u32, slots: u32, freq: u32, kv: u32 } })).toThrow(/even/);
    for (const b of [x, y, u32, ...w.chunks.map((c) => c.buffer), ...odd.chunks.map((c) => c.buffer)]) b.destroy();
  });
});
