import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom, writeBuffer } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { uploadSplit } from '../../src/gpu/split_tensor.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Matmul } from '../../src/kernels/matmul.js';
import { MlpBlock, type MlpBlockShape } from '../../src/kernels/mlp_block.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import type { Gpu } from '../../src/gpu/device.js';

const silu = (v: number) => v / (1 + Math.exp(-v));

/** float64: h += a Wo^T; gu = rms(h) * g Wgu^T; h += (silu(gate) * up) Wd^T. Returns h and gu. */
function reference(s: MlpBlockShape, M: number, h0: Float32Array, a: Float32Array, wo: Float32Array, g: Float32Array, wgu: Float32Array, wd: Float32Array) {
  const { dim: D, qDim: Q, hidden: F } = s;
  const h = Float64Array.from(h0);
  const gu = new Float64Array(M * 2 * F);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < D; n++) {
      let t = 0;
      for (let k = 0; k < Q; k++) t += a[m * Q + k] * wo[n * Q + k];
      h[m * D + n] += t;
    }
    let ss = 0;
    for (let k = 0; k < D; k++) ss += h[m * D + k] ** 2;
    const r = 1 / Math.sqrt(ss / D + s.eps);
    for (let n = 0; n < 2 * F; n++) {
      let t = 0;
      for (let k = 0; k < D; k++) t += h[m * D + k] * r * g[k] * wgu[n * D + k];
      gu[m * 2 * F + n] = t;
    }
    for (let n = 0; n < D; n++) {
      let t = 0;
      for (let k = 0; k < F; k++) t += silu(gu[m * 2 * F + k]) * gu[m * 2 * F + F + k] * wd[n * F + k];
      h[m * D + n] += t;
    }
  }
  return { h, gu };
}

/** Runs the block, then the three layered matmuls on the same inputs; returns both results and the inputs. */
async function run(gpu: Gpu, s: MlpBlockShape, M: number, seed: number) {
  const rand = mulberry32(seed);
  const { dim: D, qDim: Q, hidden: F } = s;
  const a = randomF32(rand, M * Q);
  const h0 = randomF32(rand, M * D, 2);
  const wo = randomF32(rand, D * Q, 0.3);
  const g = randomF32(rand, D);
  const wgu = randomF32(rand, 2 * F * D, 0.3);
  const wd = randomF32(rand, D * F, 0.3);
  const d = gpu.device;
  const buf = (x: Float32Array, label: string) => createStorageFrom(d, x, label);
  const [ab, wob, gb, wgub, wdb] = [buf(a, 'attnOut'), buf(wo, 'wo'), buf(g, 'g'), buf(wgu, 'wgu'), buf(wd, 'wd')];
  // One spare row in hidden and gateUp: the block must leave rows >= M alone.
  const spare = (n: number, label: string) => {
    const b = createStorage(d, (M + 1) * n * 4, label);
    const init = new Float32Array((M + 1) * n).fill(7.5);
    return { b, init };
  };
  const hid = spare(D, 'hidden');
  hid.init.set(h0);
  const gu = spare(2 * F, 'gateUp');
  const reset = () => {
    writeBuffer(d, hid.b, hid.init);
    writeBuffer(d, gu.b, gu.init);
  };

  reset();
  const block = new MlpBlock(gpu, s).bind({ attnOut: ab, wo: wob, hidden: hid.b, norm: gb, wGateUp: wgub, gateUp: gu.b, wDown: wdb });
  submitPass(gpu, (p) => block.encode(p, M));
  const fused = { h: await readF32(gpu, hid.b, (M + 1) * D), gu: await readF32(gpu, gu.b, (M + 1) * 2 * F) };

  // The layered forward's three matmuls at this M (the register-blocked variant of CPU adapters, else the default).
  reset();
  const wide = gpu.isCpu ? { variants: ['prefill' as const] } : {};
  const o = new Matmul(gpu, { K: Q, N: D, bias: false, accumulate: true, ...wide }).bind({ x: ab, w: uploadSplit(gpu, wo, D, Q, 'wo'), y: hid.b });
  const gateUp = new Matmul(gpu, { K: D, N: 2 * F, bias: false, prologue: { kind: 'rms', eps: s.eps }, ...wide })
    .bind({ x: hid.b, w: uploadSplit(gpu, wgu, 2 * F, D, 'wgu'), y: gu.b, norm: gb });
  const down = new Matmul(gpu, { K: F, N: D, bias: false, accumulate: true, prologue: { kind: 'act', act: s.act, gated: true }, ...wide })
    .bind({ x: gu.b, w: uploadSplit(gpu, wd, D, F, 'wd'), y: hid.b });
  submitPass(gpu, (p) => {
    o.encode(p, M);
    gateUp.encode(p, M);
    down.encode(p, M);
  });
  const layered = { h: await readF32(gpu, hid.b, (M + 1) * D), gu: await readF32(gpu, gu.b, (M + 1) * 2 * F) };
  block.destroy();
  return { fused, layered, ref: reference(s, M, h0, a, wo, g, wgu, wd) };
}

const STORIES: MlpBlockShape = { dim: 64, qDim: 64, hidden: 172, eps: 1e-5, act: 'silu' };
// Uneven: no dimension a multiple of 8 (partial column blocks in every phase), qDim != D.
const UNEVEN: MlpBlockShape = { dim: 20, qDim: 12, hidden: 36, eps: 1e-6, act: 'silu' };

describe.each(testAdapterChoices())('mlp_block on %s', (choice) => {
  it.each([
    ['stories260K', 16, STORIES],
    ['stories260K', 5, STORIES],
    ['uneven', 17, UNEVEN],
    ['uneven', 8, UNEVEN],
  ] as const)('%s shape, M=%i: the three layered matmuls\' bits, and float64', async (_name, M, s) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const { fused, layered, ref } = await run(gpu, s, M, seed);
    // Same operations in the same order as matmul_prefill with its prologues: equal bits (rows >= M untouched in both).
    expect(Array.from(fused.h), `seed ${seed}: hidden`).toEqual(Array.from(layered.h));
    expect(Array.from(fused.gu), `seed ${seed}: gate|up`).toEqual(Array.from(layered.gu));
    expect(Array.from(fused.h.subarray(M * s.dim)), `seed ${seed}: row M`).toEqual(new Array(s.dim).fill(7.5));
    // Against float64: three chained f32 dot products of K <= 172 terms of size ~0.1-1, the norm and SiLU between
    // them; each step errs by about K * 2^-24 of its sum of |terms| (<= ~1e-5 here), and the norm's scale
    // (|h| ~ 2) passes it on: 1e-3 absolute is two orders above that and far below a wrong term (~0.1).
    let worst = 0;
    for (let i = 0; i < s.dim * M; i++) worst = Math.max(worst, Math.abs(fused.h[i] - ref.h[i]));
    for (let i = 0; i < 2 * s.hidden * M; i++) worst = Math.max(worst, Math.abs(fused.gu[i] - ref.gu[i]));
    expect(worst, `seed ${seed}: worst error against float64`).toBeLessThan(1e-3);
  });

  it('rejects shapes that are not multiples of 4 and buffers too small', async () => {
    const gpu = await gpuFor(choice);
    expect(() => new MlpBlock(gpu, { ...UNEVEN, hidden: 34 })).toThrow(InvalidArgumentError);
    const k = new MlpBlock(gpu, UNEVEN);
    const small = createStorage(gpu.device, 16, 'small');
    const ok = createStorage(gpu.device, 65536, 'ok');
    const hidden = createStorage(gpu.device, 65536, 'hidden');
    const gateUp = createStorage(gpu.device, 72 * 64 * 4, 'gu');
    expect(() => k.bind({ attnOut: ok, wo: small, hidden, norm: ok, wGateUp: ok, gateUp, wDown: ok })).toThrow(InvalidArgumentError);
    // A written buffer bound twice (WebGPU would drop the command buffer).
    expect(() => k.bind({ attnOut: hidden, wo: ok, hidden, norm: ok, wGateUp: ok, gateUp, wDown: ok })).toThrow(/hidden is written/);
    expect(() => k.bind({ attnOut: ok, wo: ok, hidden, norm: ok, wGateUp: ok, gateUp: hidden, wDown: ok })).toThrow(InvalidArgumentError);
    // The read-only bindings may share one buffer.
    const b = k.bind({ attnOut: ok, wo: ok, hidden, norm: ok, wGateUp: ok, gateUp, wDown: ok });
    // 64 rows fit gateUp (2F = 72 columns) but not 65.
    expect(() => submitPass(gpu, (p) => b.encode(p, 65))).toThrow(InvalidArgumentError);
    submitPass(gpu, (p) => b.encode(p, 64));
  });
});
