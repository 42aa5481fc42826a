// The act_q8 epilogue (kernels/act_q8_epilogue.ts): a one-row gate|up matmul on 8-bit activations in llvmpipe's
// 8-invocation workgroups also writes act(gate) * up on 8 bits, the down projection's x. Checked on fresh random
// inputs against float64 and against what the path it replaces computes: the matmul without the epilogue (y) and
// quantize_x8 with the act prologue over that y (the words), for F of 3 and 5 workgroups, four weight types (the
// tiled Q5_0 body among them), with and without bias, three activations.
import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import type { Activation } from '../../src/kernels/mlp_act.js';
import { actQ8Runs, QMatmul } from '../../src/kernels/qmatmul.js';
import { BoundQuantizeX8, createQuantizedX, decodeQuantizedX, type QuantizedX } from '../../src/kernels/quantize_x8.js';
import type { YEpilogue } from '../../src/kernels/y_epilogue.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { kernelBlock, type StorageType } from '../../src/weights/types.js';
import type { Gpu } from '../../src/gpu/device.js';
import { activationRef } from '../ref/elementwise.js';
import { gammaF32, matmulRef, maxMatmulError } from '../ref/matmul.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { x8Exact } from '../ref/x8.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

interface Case {
  type: StorageType;
  blocks: number; // K = blocks * the type's block
  F: number; // features: N = 2F, F / 32 workgroups
  act: Activation;
  bias: boolean;
}
const CASES: Case[] = [
  { type: 'Q4_K', blocks: 1, F: 96, act: 'silu', bias: false },
  { type: 'Q5_0', blocks: 3, F: 160, act: 'gelu_tanh', bias: true },
  { type: 'Q8_0', blocks: 5, F: 96, act: 'gelu_erf', bias: true },
  { type: 'Q6_K', blocks: 1, F: 160, act: 'silu', bias: false },
];
/** The activations' relative error in WGSL against float64 (test/kernels/mlp_act.test.ts derives these). */
const ACT_TOL: Record<Activation, number> = { silu: 4e-6, gelu_tanh: 1.5e-5, gelu_erf: 1.5e-5 };
const ROWS = 3;

async function readX8(gpu: Gpu, s: QuantizedX, F: number): Promise<{ words: Uint32Array; scales: Uint32Array }> {
  return { words: await readU32(gpu, s.xq, F), scales: await readU32(gpu, s.xs, (F / 32) * 2) };
}

describe.each(testAdapterChoices())('act_q8 epilogue of the one-row 8-bit gate|up matmul on %s', (choice) => {
  it.each(CASES)('$type K=$blocks blocks, F=$F, $act, bias $bias', async ({ type, blocks, F, act, bias: withBias }) => {
    const gpu = await gpuFor(choice);
    const K = blocks * kernelBlock(type);
    const N = 2 * F;
    const epilogue: YEpilogue = { kind: 'act_q8', act, features: F };
    if (!actQ8Runs(gpu, type)) {
      // Only llvmpipe's one-row body has 8-invocation workgroups: elsewhere the epilogue is refused by name.
      expect(() => new QMatmul(gpu, { type, K, N, bias: withBias, epilogue })).toThrow(/act_q8/);
      return;
    }
    const seed = testSeed();
    const rand = mulberry32(seed);
    const exact = x8Exact(rand, ROWS, K);
    const wBytes = randomWeights(type, N, K, rand);
    const { values: w, magnitude } = dequantizeWithMagnitude(type, wBytes, N * K);
    const bias = withBias ? randomF32(rand, N) : null;

    const xb = createStorageFrom(gpu.device, exact.x, `x (${ROWS}, ${K}) f32`);
    const wt = uploadWeights(gpu, type, wBytes, N, K, `w ${type}`);
    const bb = bias ? createStorageFrom(gpu.device, bias, `bias (${N}) f32`) : undefined;
    const yA = createStorage(gpu.device, ROWS * N * 4, 'y act_q8');
    const yP = createStorage(gpu.device, ROWS * N * 4, 'y plain');
    const xq = createQuantizedX(gpu, ROWS, K, 'x8');
    const out = createQuantizedX(gpu, 1, F, 'down x8');
    const ref = createQuantizedX(gpu, 1, F, 'down x8 by quantize_x8');
    const fused = new QMatmul(gpu, { type, K, N, bias: withBias, epilogue });
    const plain = new QMatmul(gpu, { type, K, N, bias: withBias });
    const bA = fused.bind({ x: xb, w: wt, ...(bb ? { bias: bb } : {}), y: yA, xq, actOut: out }, 'gate_up act_q8');
    const bP = plain.bind({ x: xb, w: wt, ...(bb ? { bias: bb } : {}), y: yP, xq }, 'gate_up');
    // What the down projection's quantize pass makes of gate|up today: quantize_x8 through the act prologue.
    const q8 = new BoundQuantizeX8(gpu, yA, ref, F, { kind: 'act', act, gated: true }, null, 'down quantize');
    try {
      expect(bA.writesActX(1)).toBe(true);
      expect(bA.writesActX(ROWS), 'other row counts keep the plain path').toBe(false);
      submitPass(gpu, (pass) => {
        bA.encode(pass, 1);
        q8.encode(pass, 1);
        bP.encode(pass, 1);
      });
      const got = await readF32(gpu, yA, N);
      const gotPlain = await readF32(gpu, yP, N);
      // The column order changes which invocation computes a column, not its arithmetic: the same bits as without.
      expect(Array.from(got), `seed ${seed}: y with act_q8 = y without`).toEqual(Array.from(gotPlain));
      // And y against float64 on the x grid (test/kernels/qmatmul.test.ts derives this bound).
      const abs = (a: ArrayLike<number> | null) => a && Float64Array.from(a, Math.abs);
      const refY = matmulRef(exact.xHat.subarray(0, K), w, bias, 1, K, N, null);
      const scale = matmulRef(abs(exact.xHat.subarray(0, K))!, magnitude, abs(bias), 1, K, N, null);
      const e = maxMatmulError(got, { y: refY.y, absSum: scale.y });
      expect(e.err, `seed ${seed}: y at ${e.at}`).toBeLessThanOrEqual(gammaF32(2 * K + 5) + 2 ** -21);

      const mine = await readX8(gpu, out, F);
      const theirs = await readX8(gpu, ref, F);
      // The same WGSL (act4(gate) * up, then xq8_block.wgsl) on the same f32 values: bit for bit.
      expect(Array.from(mine.words), `seed ${seed}: words = quantize_x8's`).toEqual(Array.from(theirs.words));
      expect(Array.from(mine.scales), `seed ${seed}: (dx, sx) = quantize_x8's`).toEqual(Array.from(theirs.scales));

      // Against float64: h = act(gate) * up of the f32 gate|up the kernel computed. The kernel's h carries its
      // activation's relative error (ACT_TOL) and one rounding of the product; dx = max|h| / 127 then carries that
      // and one rounding of the division; q = round(h / dx) is within half a step (plus a few ulp of h / dx), so
      // |q dx - h| <= dx (1/2 + 2^-10) + ACT_TOL |h|. A wrong pairing of gate and up columns, a wrong block or a
      // wrong lane moves q dx by about |h| itself.
      const dec = decodeQuantizedX(mine.words, new Float32Array(mine.scales.buffer), 1, F);
      expect(dec.bWordsAgree, `seed ${seed}: B words`).toBe(true);
      const tol = ACT_TOL[act] + 2 ** -22;
      for (let b = 0; b < F / 32; b++) {
        const h = Array.from({ length: 32 }, (_, j) => activationRef(act, got[32 * b + j]) * got[F + 32 * b + j]);
        const amax = Math.max(...h.map(Math.abs));
        const dx = dec.dx[b];
        expect(Math.abs(dx - amax / 127), `seed ${seed}: block ${b} dx`).toBeLessThanOrEqual(tol * (amax / 127));
        let sum = 0;
        for (let j = 0; j < 32; j++) {
          const q = dec.q[32 * b + j];
          sum += q;
          expect(Math.abs(q * dx - h[j]), `seed ${seed}: block ${b} value ${j}`).toBeLessThanOrEqual(dx * (0.5 + 2 ** -10) + tol * Math.abs(h[j]));
        }
        expect(dec.sx[b], `seed ${seed}: block ${b} sx = dx sum q in f32`).toBe(Math.fround(dx * sum));
      }

      // More rows take the plain path (no epilogue in that body): the same bits as the plain matmul.
      submitPass(gpu, (pass) => {
        bA.encode(pass, ROWS);
        bP.encode(pass, ROWS);
      });
      expect(Array.from(await readF32(gpu, yA, ROWS * N))).toEqual(Array.from(await readF32(gpu, yP, ROWS * N)));
    } finally {
      for (const b of [bA, bP, q8, fused, plain]) b.destroy();
      destroyWeights(wt);
      for (const b of [xb, bb, yA, yP, xq.xq, xq.xs, out.xq, out.xs, ref.xq, ref.xs]) b?.destroy();
    }
  });

  it('refuses a binding it cannot serve with typed errors', async () => {
    const gpu = await gpuFor(choice);
    if (!actQ8Runs(gpu, 'Q8_0')) return expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 64, bias: false, epilogue: { kind: 'act_q8', act: 'silu', features: 32 } })).toThrow(InvalidArgumentError);
    const epilogue: YEpilogue = { kind: 'act_q8', act: 'silu', features: 32 };
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 96, bias: false, epilogue }), 'N != 2F').toThrow(InvalidArgumentError);
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 64, bias: false, accumulate: true, epilogue }), 'accumulate').toThrow(InvalidArgumentError);
    expect(() => new QMatmul(gpu, { type: 'Q5_K', K: 256, N: 64, bias: false, epilogue }), 'no integer step').toThrow(InvalidArgumentError);
    const mm = new QMatmul(gpu, { type: 'Q8_0', K: 32, N: 64, bias: false, epilogue });
    const wBytes = randomWeights('Q8_0', 64, 32, mulberry32(testSeed()));
    const whole = uploadWeights(gpu, 'Q8_0', wBytes, 64, 32, 'w');
    const split = uploadWeights(gpu, 'Q8_0', wBytes, 64, 32, 'w split', 34 * 32 + 32);
    const x = createStorage(gpu.device, 32 * 4, 'x');
    const y = createStorage(gpu.device, 64 * 4, 'y');
    const xq = createQuantizedX(gpu, 1, 32, 'xq');
    const out = createQuantizedX(gpu, 1, 32, 'out');
    try {
      expect(split.chunks.length).toBeGreaterThan(1);
      expect(() => mm.bind({ x, w: whole, y, xq }), 'no actOut').toThrow(/actOut/);
      expect(() => mm.bind({ x, w: whole, y, xq, actOut: xq }), 'actOut = xq').toThrow(InvalidArgumentError);
      expect(() => mm.bind({ x, w: split, y, xq, actOut: out }), 'chunks').toThrow(/one chunk/);
      mm.bind({ x, w: whole, y, xq, actOut: out }).destroy();
    } finally {
      mm.destroy();
      destroyWeights(whole);
      destroyWeights(split);
      for (const b of [x, y, xq.xq, xq.xs, out.xq, out.xs]) b.destroy();
    }
  });
});
