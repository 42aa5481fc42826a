// The x hand-off between two one-row 8-bit matmuls (kernels/x8_handoff.ts): a writer accumulating into the residual
// stream y (y += x Wp^T, as a layer's out- or down projection) also quantizes RMSNorm(y) * g for the reader (gate|up or
// the next q|k|v), which skips its quantize_x8 dispatch. Against the same two matmuls without the hand-off (the reader
// quantizing y itself) on fresh random inputs: y, the words and the reader's output bit for bit; against float64:
// the writer's y, the partial sums of squares and the reader's output. Uneven widths D = 96 and 160 (a last workgroup
// of 32 columns, 2-3 workgroups), D = 576 (SmolLM2-135M's, Q5_0 tiles and Q4_K as the bench's Q4_K model runs them).
import { describe, expect, it } from 'vitest';
import { onLlvmpipe } from '../../src/gpu/adapters.js';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { canReadHandoff, canWriteHandoff, QMatmul } from '../../src/kernels/qmatmul.js';
import { decodeQuantizedX } from '../../src/kernels/quantize_x8.js';
import { createX8Handoff, handoffBytes } from '../../src/kernels/x8_handoff.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import type { StorageType } from '../../src/weights/types.js';
import { rmsNormRef } from '../ref/elementwise.js';
import { gammaF32, matmulRef } from '../ref/matmul.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { x8Bound } from '../ref/x8.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import type { Gpu } from '../../src/gpu/device.js';

const EPS = 1e-5;

interface Case {
  D: number; // the residual width: the writer's N, the reader's K
  wType: StorageType; // the writer's weights, (D, wK)
  wK: number;
  rType: StorageType; // the reader's weights, (rN, D)
  rN: number;
  bias: boolean; // on the writer
}

const CASES: Case[] = [
  { D: 96, wType: 'Q8_0', wK: 64, rType: 'Q4_0', rN: 70, bias: true },
  { D: 160, wType: 'Q5_0', wK: 96, rType: 'Q8_0', rN: 37, bias: false },
  { D: 576, wType: 'Q4_K', wK: 512, rType: 'Q5_0', rN: 129, bias: false },
  { D: 512, wType: 'Q5_0', wK: 64, rType: 'Q4_K', rN: 40, bias: true },
];

interface Run {
  y: Float32Array; // (D) the residual after the writer
  out: Float32Array; // (rN) the reader's y
  words: Uint32Array; // (D) the words the reader multiplied
  scales: Float32Array; // the hand-off's (max / 127, sum q) per block and partial sums, or quantize_x8's (dx, sx)
  dispatches: number[]; // the writer's and the reader's
}

/** Writer then reader at one row, with the hand-off or without it (the reader's own quantize_x8). */
async function run(gpu: Gpu, t: Case, inp: { x: Float32Array; y0: Float32Array; g: Float32Array; bias: Float32Array | null; wBytes: Uint8Array; rBytes: Uint8Array }, handoff: boolean): Promise<Run> {
  const { D } = t;
  const xb = createStorageFrom(gpu.device, inp.x, 'x (1, wK) f32');
  const yb = createStorageFrom(gpu.device, inp.y0, 'y (1, D) f32');
  const gb = createStorageFrom(gpu.device, inp.g, 'g (D) f32');
  const bb = inp.bias ? createStorageFrom(gpu.device, inp.bias, 'bias (D) f32') : undefined;
  const ob = createStorage(gpu.device, t.rN * 4, 'out (1, rN) f32');
  const ww = uploadWeights(gpu, t.wType, inp.wBytes, D, t.wK, 'w writer');
  const wr = uploadWeights(gpu, t.rType, inp.rBytes, t.rN, D, 'w reader');
  const hand = handoff ? createX8Handoff(gpu, D, 'hand-off') : null;
  const writer = new QMatmul(gpu, { type: t.wType, K: t.wK, N: D, bias: t.bias, accumulate: true, handoffOut: handoff });
  const reader = new QMatmul(gpu, { type: t.rType, K: D, N: t.rN, bias: false, prologue: { kind: 'rms', eps: EPS }, handoffIn: handoff });
  const bw = writer.bind({ x: xb, w: ww, y: yb, ...(bb ? { bias: bb } : {}), ...(hand ? { handoffOut: { to: hand, norm: gb } } : {}) }, 'writer');
  const br = reader.bind({ x: yb, w: wr, y: ob, norm: gb, ...(hand ? { handoffIn: hand } : {}) }, 'reader');
  const dispatches: number[] = [];
  submitPass(gpu, (pass) => {
    for (const k of [bw, br]) {
      let n = 0;
      k.encode(counting(pass, () => n++), 1);
      dispatches.push(n);
    }
  });
  const y = await readF32(gpu, yb, D);
  const out = await readF32(gpu, ob, t.rN);
  const src = hand ?? br.quantizedX!;
  const words = await readU32(gpu, src.xq, D);
  const scales = await readF32(gpu, src.xs, hand ? handoffBytes(D).scales / 4 : (D / 32) * 2);
  bw.destroy();
  br.destroy();
  writer.destroy();
  reader.destroy();
  destroyWeights(ww);
  destroyWeights(wr);
  for (const b of [xb, yb, gb, bb, ob, hand?.xq, hand?.xs]) b?.destroy();
  return { y, out, words, scales, dispatches };
}

/** `pass`, counting its dispatches. */
function counting(pass: GPUComputePassEncoder, count: () => void): GPUComputePassEncoder {
  return new Proxy(pass, {
    get: (target, key) => {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (key === 'dispatchWorkgroups') count();
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe.each(testAdapterChoices())('x hand-off between one-row 8-bit matmuls on %s', (choice) => {
  it.each(CASES)('D=$D: $wType writer, $rType reader: the same bits as quantize_x8, and float64', async (t) => {
    const gpu = await gpuFor(choice);
    if (!canWriteHandoff(gpu, t.wType) || !canReadHandoff(gpu, t.rType)) {
      // Only llvmpipe runs the one-row 8-bit body in 8-invocation workgroups, which the hand-off needs; elsewhere it
      // is refused with a typed error (and the model keeps the quantize dispatch).
      expect(onLlvmpipe(gpu)).toBe(false);
      expect(() => new QMatmul(gpu, { type: t.rType, K: t.D, N: t.rN, bias: false, prologue: { kind: 'rms', eps: EPS }, handoffIn: true })).toThrow(InvalidArgumentError);
      return;
    }
    const { D } = t;
    const seed = testSeed();
    const rand = mulberry32(seed);
    const inp = {
      x: randomF32(rand, t.wK),
      // A residual stream of a few units and a norm weight around 1.
      y0: randomF32(rand, D, 3),
      g: Float32Array.from(randomF32(rand, D, 0.5), (v) => 1 + v),
      bias: t.bias ? randomF32(rand, D) : null,
      wBytes: randomWeights(t.wType, D, t.wK, rand),
      rBytes: randomWeights(t.rType, t.rN, D, rand),
    };
    const fused = await run(gpu, t, inp, true);
    const plain = await run(gpu, t, inp, false);
    const at = `seed ${seed} D=${D}`;
    // The writer quantizes its x, then multiplies (W in one chunk); the reader quantizes y first only without it.
    expect(fused.dispatches).toEqual([2, 1]);
    expect(plain.dispatches).toEqual([2, 2]);

    // The writer's y is untouched by its epilogue, and the reader sees the same x: bit for bit.
    expect(Array.from(fused.y), `${at}: the residual`).toEqual(Array.from(plain.y));
    // The words: the integers of the same f32 values y * g through the same block arithmetic (xq8_block.wgsl).
    expect(Array.from(fused.words), `${at}: words against quantize_x8's`).toEqual(Array.from(plain.words));
    const blocks = D / 32;
    const h = decodeQuantizedX(fused.words, fused.scales.subarray(0, 2 * blocks), 1, D);
    expect(h.bWordsAgree).toBe(true);
    for (let b = 0; b < blocks; b++) {
      // (max / 127, sum q) without r: sum q exact; dx * r within a few ulp of quantize_x8's dx (the product of the
      // same f32 r, compared bit for bit through the reader's output below).
      let sq = 0;
      for (let k = 0; k < 32; k++) sq += h.q[b * 32 + k];
      expect(h.sx[b], `${at}: block ${b} sum q`).toBe(sq);
      expect(plain.scales[2 * b + 1], `${at}: quantize_x8's sx = dx sum q`).toBe(Math.fround(plain.scales[2 * b] * sq));
    }
    // The partial sums of squares, one per 64 columns: each an f32 sum of <= 64 squares, within gamma(64) of float64.
    const chunks = Math.ceil(D / 64);
    let total = 0;
    for (let c = 0; c < chunks; c++) {
      let ref = 0;
      for (let k = 64 * c; k < Math.min(D, 64 * c + 64); k++) ref += fused.y[k] ** 2;
      total += ref;
      const got = fused.scales[2 * 2 * chunks + 2 * c];
      expect(Math.abs(got - ref), `${at}: chunk ${c}'s sum of squares`).toBeLessThanOrEqual(gammaF32(64) * ref);
    }
    // r * max / 127 = quantize_x8's dx, r from those sums: within a few roundings (sum, mean, sqrt, reciprocal, product).
    const r = 1 / Math.sqrt(total / D + EPS);
    for (let b = 0; b < blocks; b++) {
      expect(Math.abs(r * h.dx[b] - plain.scales[2 * b]), `${at}: block ${b} dx`).toBeLessThanOrEqual(gammaF32(D / 2 + 8) * plain.scales[2 * b]);
    }
    // The reader's output: the same r, dx and sx, so the same bits.
    expect(Array.from(fused.out), `${at}: the reader's y against its own quantize_x8`).toEqual(Array.from(plain.out));

    // Against float64. The writer: y0 + bias + x Wp^T on 8-bit x (qmatmul.test.ts's bound: the f32 sum, gamma(2K + 5)
    // of the magnitude-weighted sum, plus what rounding x to 8 bits can move it, x8Bound).
    const wp = dequantizeWithMagnitude(t.wType, inp.wBytes, D * t.wK);
    const abs = (a: ArrayLike<number> | null) => a && Float64Array.from(a, Math.abs);
    const refW = matmulRef(inp.x, wp.values, inp.bias, 1, t.wK, D, inp.y0);
    const scaleW = matmulRef(abs(inp.x)!, wp.magnitude, abs(inp.bias), 1, t.wK, D, abs(inp.y0));
    const qW = x8Bound(inp.x, wp.magnitude, 1, t.wK, D);
    for (let n = 0; n < D; n++) {
      const bound = gammaF32(2 * t.wK + 5) * scaleW.y[n] + qW[n];
      expect(Math.abs(fused.y[n] - refW.y[n]), `${at}: writer column ${n}`).toBeLessThanOrEqual(bound);
    }
    // The reader: RMSNorm(y) * g Wr^T from the f32 y (matmul_prologue.test.ts's bound for the rms prologue on 8-bit x:
    // the f32 sum, one rounding more per term for x g, r from an f32 sum of D squares, plus the 8-bit rounding).
    const wr = dequantizeWithMagnitude(t.rType, inp.rBytes, t.rN * D);
    const xRef = rmsNormRef(fused.y, inp.g, 1, D, EPS);
    const refR = matmulRef(xRef, wr.values, null, 1, D, t.rN, null);
    const scaleR = matmulRef(abs(xRef)!, wr.magnitude, null, 1, D, t.rN, null);
    const qR = x8Bound(xRef, wr.magnitude, 1, D, t.rN);
    const tol = gammaF32(2 * D + 5) + gammaF32(D) + gammaF32(D / 2 + 4);
    for (let n = 0; n < t.rN; n++) {
      const bound = tol * scaleR.y[n] + qR[n];
      expect(Math.abs(fused.out[n] - refR.y[n]), `${at}: reader column ${n}`).toBeLessThanOrEqual(bound);
    }
  });

  it('two rows quantize as before: a step of more rows ignores the hand-off', async () => {
    const gpu = await gpuFor(choice);
    const t = CASES[0];
    if (!canWriteHandoff(gpu, t.wType)) return expect(canReadHandoff(gpu, t.rType)).toBe(false);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const D = t.D;
    const wBytes = randomWeights(t.wType, D, t.wK, rand);
    const rBytes = randomWeights(t.rType, t.rN, D, rand);
    const x = randomF32(rand, 2 * t.wK);
    const y0 = randomF32(rand, 2 * D, 3);
    const g = Float32Array.from(randomF32(rand, D, 0.5), (v) => 1 + v);
    const outs: Float32Array[] = [];
    for (const handoff of [true, false]) {
      const xb = createStorageFrom(gpu.device, x, 'x (2, wK)');
      const yb = createStorageFrom(gpu.device, y0, 'y (2, D)');
      const gb = createStorageFrom(gpu.device, g, 'g (D)');
      const ob = createStorage(gpu.device, 2 * t.rN * 4, 'out (2, rN)');
      const ww = uploadWeights(gpu, t.wType, wBytes, D, t.wK, 'w writer');
      const wr = uploadWeights(gpu, t.rType, rBytes, t.rN, D, 'w reader');
      const hand = handoff ? createX8Handoff(gpu, D, 'hand-off') : null;
      const writer = new QMatmul(gpu, { type: t.wType, K: t.wK, N: D, bias: false, accumulate: true, handoffOut: handoff });
      const reader = new QMatmul(gpu, { type: t.rType, K: D, N: t.rN, bias: false, prologue: { kind: 'rms', eps: EPS }, handoffIn: handoff });
      const bw = writer.bind({ x: xb, w: ww, y: yb, ...(hand ? { handoffOut: { to: hand, norm: gb } } : {}) }, 'writer');
      const br = reader.bind({ x: yb, w: wr, y: ob, norm: gb, ...(hand ? { handoffIn: hand } : {}) }, 'reader');
      submitPass(gpu, (pass) => {
        bw.encode(pass, 2);
        br.encode(pass, 2);
      });
      outs.push(await readF32(gpu, ob, 2 * t.rN));
      for (const o of [bw, br, writer, reader]) o.destroy();
      destroyWeights(ww);
      destroyWeights(wr);
      for (const b of [xb, yb, gb, ob, hand?.xq, hand?.xs]) b?.destroy();
    }
    expect(Array.from(outs[0]), `seed ${seed}`).toEqual(Array.from(outs[1]));
  });

  it('refuses a hand-off it cannot run with typed errors', async () => {
    const gpu = await gpuFor(choice);
    if (!canReadHandoff(gpu, 'Q8_0')) {
      expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 64, bias: false, handoffOut: true })).toThrow(InvalidArgumentError);
      return;
    }
    // Reading needs an rms prologue; writing no y epilogue and N in whole blocks; neither on f32 activations.
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 64, bias: false, handoffIn: true })).toThrow(InvalidArgumentError);
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 70, bias: false, handoffOut: true })).toThrow(InvalidArgumentError);
    expect(() => new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 64, bias: false, handoffOut: true, activations: 'f32' })).toThrow(InvalidArgumentError);
    // A writer bound with a hand-off of another width, and a reader given one it was not built for.
    const w = uploadWeights(gpu, 'Q8_0', randomWeights('Q8_0', 64, 64, mulberry32(1)), 64, 64, 'w');
    const x = createStorage(gpu.device, 64 * 4, 'x');
    const y = createStorage(gpu.device, 64 * 4, 'y');
    const g = createStorage(gpu.device, 64 * 4, 'g');
    const narrow = createX8Handoff(gpu, 32, 'narrow');
    const writer = new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 64, bias: false, handoffOut: true });
    expect(() => writer.bind({ x, w, y, handoffOut: { to: narrow, norm: g } })).toThrow(InvalidArgumentError);
    const reader = new QMatmul(gpu, { type: 'Q8_0', K: 64, N: 64, bias: false, prologue: { kind: 'rms', eps: EPS } });
    expect(() => reader.bind({ x, w, y, norm: g, handoffIn: narrow })).toThrow(InvalidArgumentError);
    for (const o of [writer, reader]) o.destroy();
    destroyWeights(w);
    for (const b of [x, y, g, narrow.xq, narrow.xs]) b.destroy();
  });
});
