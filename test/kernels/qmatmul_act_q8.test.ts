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
import { actQ8Runs, canWriteHandoff, QMatmul } from '../../src/kernels/qmatmul.js';
import { createX8Handoff } from '../../src/kernels/x8_handoff.js';
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

  // In the model gate|up also reads its x handed over by the out-projection (kernels/x8_handoff.ts): the act_q8
  // configuration then reads it too (q8x1act-in). Writer (Q8_0, 64 -> D = 160, accumulating) then gate|up (Q4_0,
  // D -> 2F = 192) with the hand-off and act_q8, against the same two without either: gate|up's y bit for bit, and
  // down's x bit for bit against quantize_x8's act prologue over that y.
  it('reads x handed over by the matmul before, with the same bits', async () => {
    const gpu = await gpuFor(choice);
    const [D, K, F, eps] = [160, 64, 96, 1e-5];
    const epilogue: YEpilogue = { kind: 'act_q8', act: 'silu', features: F };
    if (!actQ8Runs(gpu, 'Q4_0') || !canWriteHandoff(gpu, 'Q8_0')) {
      expect(() => new QMatmul(gpu, { type: 'Q4_0', K: D, N: 2 * F, bias: false, epilogue })).toThrow(InvalidArgumentError);
      return;
    }
    const seed = testSeed();
    const rand = mulberry32(seed);
    const x = createStorageFrom(gpu.device, randomF32(rand, K), 'x (1, 64) f32');
    const y0 = randomF32(rand, D, 3);
    const g = createStorageFrom(gpu.device, Float32Array.from(randomF32(rand, D, 0.5), (v) => 1 + v), 'g (D) f32');
    const ww = uploadWeights(gpu, 'Q8_0', randomWeights('Q8_0', D, K, rand), D, K, 'w writer');
    const wr = uploadWeights(gpu, 'Q4_0', randomWeights('Q4_0', 2 * F, D, rand), 2 * F, D, 'w gate|up');
    const rms = { kind: 'rms' as const, eps };
    async function pass(handed: boolean): Promise<{ gu: Float32Array; words: Uint32Array; scales: Uint32Array }> {
      const h = createStorageFrom(gpu.device, y0, 'h (1, D) f32');
      const gu = createStorage(gpu.device, 2 * F * 4, 'gate|up (1, 2F) f32');
      const hand = handed ? createX8Handoff(gpu, D, 'hand-off') : null;
      const out = createQuantizedX(gpu, 1, F, "down's x");
      const writer = new QMatmul(gpu, { type: 'Q8_0', K, N: D, bias: false, accumulate: true, handoffOut: handed });
      const reader = new QMatmul(gpu, { type: 'Q4_0', K: D, N: 2 * F, bias: false, prologue: rms, handoffIn: handed, ...(handed ? { epilogue } : {}) });
      const bw = writer.bind({ x, w: ww, y: h, ...(hand ? { handoffOut: { to: hand, norm: g } } : {}) }, 'writer');
      const br = reader.bind({ x: h, w: wr, y: gu, norm: g, ...(hand ? { handoffIn: hand, actOut: out } : {}) }, 'gate|up');
      const q8 = new BoundQuantizeX8(gpu, gu, out, F, { kind: 'act', act: 'silu', gated: true }, null, 'down quantize');
      expect(br.writesActX(1)).toBe(handed);
      let dispatches = 0;
      submitPass(gpu, (p) => {
        bw.encode(p, 1);
        const counted = new Proxy(p, {
          get: (t, key) => (key === 'dispatchWorkgroups' ? (...a: [number, number?]) => (dispatches++, t.dispatchWorkgroups(...a)) : (Reflect.get(t, key) as Function).bind(t)),
        });
        br.encode(counted, 1);
        if (!handed) q8.encode(p, 1);
      });
      // With the hand-off gate|up quantizes nothing itself: one dispatch, not quantize_x8 + matmul.
      expect(dispatches).toBe(handed ? 1 : 2);
      const r = { gu: await readF32(gpu, gu, 2 * F), ...(await readX8(gpu, out, F)) };
      for (const k of [bw, br, q8, writer, reader]) k.destroy();
      for (const b of [h, gu, hand?.xq, hand?.xs, out.xq, out.xs]) b?.destroy();
      return r;
    }
    try {
      const fused = await pass(true);
      const plain = await pass(false);
      expect(Array.from(fused.gu), `seed ${seed}: gate|up`).toEqual(Array.from(plain.gu));
      expect(Array.from(fused.words), `seed ${seed}: down's x words`).toEqual(Array.from(plain.words));
      expect(Array.from(fused.scales), `seed ${seed}: down's x scales`).toEqual(Array.from(plain.scales));
      // Not all zero: the words carry the values (the float64 checks above hold the arithmetic itself).
      expect(fused.words.some((w) => w !== 0)).toBe(true);
    } finally {
      destroyWeights(ww);
      destroyWeights(wr);
      for (const b of [x, g]) b.destroy();
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
