import { describe, expect, it } from 'vitest';
import { createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { ResidualAdd } from '../../src/kernels/residual_add.js';
import { expectClose } from '../ref/compare.js';
import { residualAddRef } from '../ref/elementwise.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

describe.each(testAdapterChoices())('residual_add on %s', (choice) => {
  it.each([1, 5, 63, 200, 1000, 17 * 63])('matches float64 for n=%i', async (n) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const x = randomF32(rand, n, 3);
    const y = randomF32(rand, n, 3);
    const xb = createStorageFrom(gpu.device, x, 'x');
    const yb = createStorageFrom(gpu.device, y, 'y');
    const k = new ResidualAdd(gpu).bind({ x: xb, y: yb });
    submitPass(gpu, (pass) => k.encode(pass, n));
    const got = await readF32(gpu, xb, n);
    // One f32 addition of two f32 inputs: the result is the correctly rounded sum, within half an ulp (2^-24 relative);
    // the floor covers sums that cancel to near zero, where the rounding of the inputs dominates.
    expectClose(got, residualAddRef(x, y), { rel: 2 ** -23, floor: 1e-6 }, `seed ${seed}`);
    expect(got.some((v) => v !== 0)).toBe(true);
  });
});
