import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Gelu } from '../../src/kernels/gelu.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { geluRef, geluTanhRef } from '../ref/elementwise.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import type { Gpu } from '../../src/gpu/device.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [1, 3, 17].flatMap((rows) => [5, 63, 200, 1000].map((dim) => [rows, dim] as const));

async function runGelu(gpu: Gpu, x: Float32Array): Promise<Float32Array> {
  const xb = createStorageFrom(gpu.device, x, 'x');
  const yb = createStorage(gpu.device, x.length * 4, 'y');
  const k = new Gelu(gpu).bind({ x: xb, y: yb });
  submitPass(gpu, (pass) => k.encode(pass, x.length));
  const got = await readF32(gpu, yb, x.length);
  xb.destroy();
  yb.destroy();
  return got;
}

describe('geluRef', () => {
  it('equals the textbook tanh form where that form is accurate', () => {
    for (let x = -5; x <= 5; x += 0.01) {
      // Below x = -5 the tanh form loses digits to 1 + tanh(u) cancelling; above, both agree to float64 rounding.
      expect(Math.abs(geluRef([x])[0] - geluTanhRef(x))).toBeLessThanOrEqual(1e-12 * Math.max(1e-3, Math.abs(geluTanhRef(x))));
    }
  });
});

describe.each(testAdapterChoices())('gelu on %s', (choice) => {
  it.each(CASES)('matches float64 for rows=%i dim=%i (x in [-5, 5])', async (rows, dim) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const x = randomF32(mulberry32(seed), rows * dim, 5);
    const got = await runGelu(gpu, x);
    const want = geluRef(x);
    // y = x * sigmoid(2u), so the error is relative. 2u = 1.6 x (1 + 0.044715 x^2) takes ~4 roundings (relative),
    // and WGSL's exp is within (3 + 2|2u|) ulp; the sigmoid passes both on at most once (|d ln s / d(2u)| <= 1):
    // for |x| <= 5, |2u| <= 17, so <= 4 * 17 + 3 + 34 = 105 ulp = 6.3e-6.
    expectClose(got, want, { rel: 1e-5, floor: 1e-30 }, `seed ${seed}`);
    expect(got.some((v) => v !== 0)).toBe(true);
  });

  it('stays finite and accurate in the tails and at extreme inputs', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const tail = randomF32(mulberry32(seed), 64, 7).map((v) => v + Math.sign(v) * 5); // |x| in [5, 12)
    const extremes = [15, -15, 20, -20, 100, -100, 1e4, -1e4, 1e30, -1e30, 1e-20, -1e-20, 3e38, -3e38];
    const x = Float32Array.from([...tail, ...extremes]);
    const got = await runGelu(gpu, x);
    expect(got.every(Number.isFinite), `got ${Array.from(got).join(', ')}`).toBe(true);
    // Outputs above the floor (1e-30) have |2u| < 71 (x > -8.5): <= 4 * 71 + 3 + 142 = 430 ulp = 2.6e-5. Below it
    // the value is at most 1e-30 off, where f32 is near its denormals and GPUs may flush them.
    expectClose(got, geluRef(x), { rel: 5e-5, floor: 1e-30 }, `seed ${seed}`);
  });

  it('rejects aliasing with a typed error', async () => {
    const gpu = await gpuFor(choice);
    const b = createStorage(gpu.device, 16, 'b');
    expect(() => new Gelu(gpu).bind({ x: b, y: b })).toThrow(InvalidArgumentError);
  });
});
