import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { NORM_WORKGROUP_SIZES, RmsNorm } from '../../src/kernels/rmsnorm.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { rmsNormRef } from '../ref/elementwise.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [1, 3, 17].flatMap((rows) => [5, 63, 200, 1000].map((dim) => [rows, dim] as const));
const EPS = 1e-5;

describe.each(testAdapterChoices())('rmsnorm on %s', (choice) => {
  it.each(CASES)('matches float64 for rows=%i dim=%i, every workgroup size', async (rows, dim) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    // Row scales from 1e-3 to 10: in the small rows mean(x^2) ~ 1e-6 is below eps, so eps must be applied right.
    const x = randomNormal(rand, rows * dim);
    for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) x[r * dim + c] *= 10 ** ((r % 5) - 3);
    const weight = randomNormal(rand, dim);
    const want = rmsNormRef(x, weight, rows, dim, EPS);
    const xb = createStorageFrom(gpu.device, x, 'x');
    const wb = createStorageFrom(gpu.device, weight, 'weight');
    for (const workgroupSize of NORM_WORKGROUP_SIZES) {
      const yb = createStorage(gpu.device, rows * dim * 4, 'y');
      const k = new RmsNorm(gpu, { dim, eps: EPS, workgroupSize }).bind({ x: xb, weight: wb, y: yb });
      submitPass(gpu, (pass) => k.encode(pass, rows));
      const got = await readF32(gpu, yb, rows * dim);
      // Each output is x * scale * weight: a product, so its relative error is that of `scale` plus two roundings,
      // whatever the sign pattern. `scale` sums dim positive squares in f32 (per-thread runs of dim/WG, then a
      // log2(WG) tree: at most ~67 roundings of 2^-24 at dim 1000 and WG 16, 4e-6, halved by the square root), then
      // a divide, sqrt and reciprocal of a few ulp each in WGSL: ~2.5e-6 if every rounding aligned, measured 2e-7 on
      // llvmpipe and SwiftShader. A dropped partial sum or a misplaced eps (rows of scale 1e-3 have mean(x^2) ~
      // eps / 10) is off by far more. The floor only guards exact zeros.
      expectClose(got, want, { rel: 5e-6, floor: 1e-20 }, `seed ${seed}, WG ${workgroupSize}`);
      expect(got.every((v) => v !== 0)).toBe(true);
      yb.destroy();
    }
  });

  it.each(NORM_WORKGROUP_SIZES)('adds into y when accumulating (post-norm into the residual stream), WG %i', async (workgroupSize) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const rows = 5;
    const dim = 203;
    const x = randomNormal(rand, rows * dim, 3);
    const weight = randomNormal(rand, dim);
    const y0 = randomNormal(rand, rows * dim, 2);
    const norm = rmsNormRef(x, weight, rows, dim, EPS);
    const want = Float64Array.from(y0, (v, i) => v + norm[i]);
    const yb = createStorageFrom(gpu.device, y0, 'y');
    const k = new RmsNorm(gpu, { dim, eps: EPS, workgroupSize, accumulate: true }).bind({
      x: createStorageFrom(gpu.device, x, 'x'),
      weight: createStorageFrom(gpu.device, weight, 'weight'),
      y: yb,
    });
    submitPass(gpu, (pass) => k.encode(pass, rows));
    const got = await readF32(gpu, yb, rows * dim);
    // The norm's 5e-6 relative bound (above) on terms up to ~4, plus one rounding of the sum: absolute, against a
    // floor of the largest term. Forgetting y0 errs by ~2.
    const floor = Math.max(...norm.map(Math.abs));
    expectClose(got, want, { rel: 5e-6 + 2 ** -23, floor }, `seed ${seed}`);
  });

  it('writes only the first `rows` rows and leaves x unchanged', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const dim = 37;
    const x = randomNormal(rand, 4 * dim);
    const xb = createStorageFrom(gpu.device, x, 'x');
    const wb = createStorageFrom(gpu.device, randomNormal(rand, dim), 'weight');
    const yb = createStorage(gpu.device, 4 * dim * 4, 'y');
    const k = new RmsNorm(gpu, { dim, eps: EPS }).bind({ x: xb, weight: wb, y: yb });
    submitPass(gpu, (pass) => k.encode(pass, 3));
    const y = await readF32(gpu, yb, 4 * dim);
    expect(y.subarray(0, 3 * dim).every((v) => v !== 0), `seed ${seed}`).toBe(true);
    expect(Array.from(y.subarray(3 * dim))).toEqual(new Array(dim).fill(0));
    expect(await readF32(gpu, xb, 4 * dim)).toEqual(x);
  });

  it('rejects aliasing, bad options and rows beyond the buffers with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const b = createStorage(gpu.device, 8 * 4, 'b');
    expect(() => new RmsNorm(gpu, { dim: 0, eps: EPS })).toThrow(InvalidArgumentError);
    expect(() => new RmsNorm(gpu, { dim: 4, eps: -1 })).toThrow(InvalidArgumentError);
    const norm = new RmsNorm(gpu, { dim: 4, eps: EPS });
    expect(() => norm.bind({ x: b, weight: b, y: b })).toThrow(InvalidArgumentError);
    const k = norm.bind({ x: b, weight: createStorage(gpu.device, 16, 'w'), y: createStorage(gpu.device, 32, 'y') });
    const pass = gpu.device.createCommandEncoder().beginComputePass();
    expect(() => k.encode(pass, 3)).toThrow(InvalidArgumentError);
    expect(() => k.encode(pass, 3)).toThrow(/needs 48/);
    expect(() => k.encode(pass, -1)).toThrow(InvalidArgumentError);
    pass.end();
  });
});
