// A one-row gate|up that both reads the x hand-off (handoffIn, its q8x1act-in pipeline) and ends in the act_q8
// epilogue, as the model binds every such layer after o hands x over: its act output (down's x) must be quantize_x8's
// bits over its own y, and y the same bits as a plain gate|up that quantizes its x itself. No kernel test combined the
// two (test/kernels/qmatmul_act_q8.test.ts has no hand-off, x8_handoff.test.ts no act_q8; found by a review).
import { expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { actQ8Runs, canReadHandoff, QMatmul } from '../../src/kernels/qmatmul.js';
import { BoundQuantizeX8, createQuantizedX } from '../../src/kernels/quantize_x8.js';
import { createX8Handoff } from '../../src/kernels/x8_handoff.js';
import { uploadWeights } from '../../src/weights/gpu_tensor.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { gpuFor } from './adapters.js';

it('gate|up with handoffIn and act_q8 writes down x = quantize_x8(act(gate) * up) at one row', async () => {
  const gpu = await gpuFor('llvmpipe');
  // llvmpipe (always there in Node) runs both: the model binds them together on every hand-off layer there.
  expect(actQ8Runs(gpu, 'Q4_0') && canReadHandoff(gpu, 'Q4_0')).toBe(true);
  const [D, F, wK] = [96, 160, 64];
  const seed = testSeed();
  const rand = mulberry32(seed);
  const g = createStorageFrom(gpu.device, Float32Array.from(randomF32(rand, D, 0.4), (v) => 1 + v), 'g');
  const x0 = randomF32(rand, wK);
  const h0 = randomF32(rand, D, 3);
  const wo = randomWeights('Q8_0', D, wK, rand);
  const wgu = randomWeights('Q4_0', 2 * F, D, rand);
  const bias = randomF32(rand, 2 * F);
  const run = async (hand: boolean) => {
    const x = createStorageFrom(gpu.device, x0, 'x');
    const h = createStorageFrom(gpu.device, h0, 'h');
    const bb = createStorageFrom(gpu.device, bias, 'b');
    const gu = createStorage(gpu.device, 2 * F * 4, 'gu');
    const xq = createQuantizedX(gpu, 1, Math.max(D, wK), 'xq');
    const act = createQuantizedX(gpu, 1, F, 'act');
    const ref = createQuantizedX(gpu, 1, F, 'ref');
    const ho = createX8Handoff(gpu, D, 'hand');
    const o = new QMatmul(gpu, { type: 'Q8_0', K: wK, N: D, bias: false, accumulate: true, handoffOut: hand })
      .bind({ x, w: uploadWeights(gpu, 'Q8_0', wo, D, wK, 'wo'), y: h, xq, ...(hand ? { handoffOut: { to: ho, norm: g } } : {}) });
    const r = new QMatmul(gpu, { type: 'Q4_0', K: D, N: 2 * F, bias: true, prologue: { kind: 'rms', eps: 1e-5 }, epilogue: { kind: 'act_q8', act: 'silu', features: F }, handoffIn: hand })
      .bind({ x: h, w: uploadWeights(gpu, 'Q4_0', wgu, 2 * F, D, 'wgu'), bias: bb, y: gu, norm: g, xq, actOut: act, ...(hand ? { handoffIn: ho } : {}) });
    const q = new BoundQuantizeX8(gpu, gu, ref, F, { kind: 'act', act: 'silu', gated: true }, null, 'ref');
    submitPass(gpu, (pass) => {
      o.encode(pass, 1);
      r.encode(pass, 1);
      q.encode(pass, 1);
    });
    return { y: await readF32(gpu, gu, 2 * F), act: await readU32(gpu, act.xq, F), actS: await readU32(gpu, act.xs, (F / 32) * 2), ref: await readU32(gpu, ref.xq, F), refS: await readU32(gpu, ref.xs, (F / 32) * 2) };
  };
  const a = await run(true);
  const b = await run(false);
  expect(Array.from(a.y), `seed ${seed}: gate|up after a hand-off = after its own quantize_x8`).toEqual(Array.from(b.y));
  expect(Array.from(a.act), `seed ${seed}: down's x words (hand-off reader) = quantize_x8's`).toEqual(Array.from(a.ref));
  expect(Array.from(a.actS), `seed ${seed}: down's x scales (hand-off reader) = quantize_x8's`).toEqual(Array.from(a.refS));
  expect(Array.from(b.act)).toEqual(Array.from(b.ref));
});
