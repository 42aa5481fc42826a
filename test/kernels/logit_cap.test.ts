import { describe, expect, it } from 'vitest';
import { createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { LogitCap } from '../../src/kernels/logit_cap.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

/** scale * x, then cap * tanh(. / cap), in float64. */
function logitCapRef(x: ArrayLike<number>, scale: number, cap: number): Float64Array {
  return Float64Array.from(x, (v) => (cap > 0 ? cap * Math.tanh((v * scale) / cap) : v * scale));
}

const CASES = [
  { n: 517, scale: 1, cap: 30 },
  { n: 1000, scale: 0.125, cap: 0 },
  { n: 77, scale: 0.37, cap: 1.5 },
];

describe.each(testAdapterChoices())('logit_cap on %s', (choice) => {
  it.each(CASES)('matches float64: scale $scale cap $cap', async ({ n, scale, cap }) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    // Logits N(0, 20): beyond the caps, so tanh saturates for many and is linear for others.
    const x = randomNormal(mulberry32(seed), n, 20);
    x[0] = 1e30;
    x[1] = -1e30;
    x[2] = 1e-20;
    const xb = createStorageFrom(gpu.device, x, 'logits');
    const k = new LogitCap(gpu, { scale, cap }).bind(xb);
    submitPass(gpu, (pass) => k.encode(pass, n));
    const got = await readF32(gpu, xb, n);
    const want = logitCapRef(x, scale, cap);
    expect(got.every(Number.isFinite), `seed ${seed}`).toBe(true);
    // Absolute against the cap (or relative without one): exp(-2|u|) with |2u| <= 2 * |x| / cap loses up to
    // (3 + 2 * 2|u|) ulp, only where e is large (|u| < ~10, so ~50 ulp of e <= 1, scaled by cap); (1 - e) / (1 + e)
    // adds ~3 roundings; without a cap one rounding of the product. 1e-5 of the cap covers it; a missing scale or
    // cap is off by far more.
    if (cap > 0) expectClose(got, want, { rel: 1e-5, floor: cap }, `seed ${seed}`);
    else expectClose(got, want, { rel: 2 ** -23, floor: 1e-30 }, `seed ${seed}`);
  });

  it('rejects a bad scale or cap with typed errors', async () => {
    const gpu = await gpuFor(choice);
    expect(() => new LogitCap(gpu, { scale: 0 })).toThrow(InvalidArgumentError);
    expect(() => new LogitCap(gpu, { cap: -1 })).toThrow(InvalidArgumentError);
  });
});
