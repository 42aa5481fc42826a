import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { LayerNorm } from '../../src/kernels/layernorm.js';
import { NORM_WORKGROUP_SIZES } from '../../src/kernels/rmsnorm.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { layerNormRef } from '../ref/elementwise.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [1, 3, 17].flatMap((rows) => [5, 63, 200, 1000].map((dim) => [rows, dim] as const));
const EPS = 1e-5;

describe.each(testAdapterChoices())('layernorm on %s', (choice) => {
  it.each(CASES)('matches float64 for rows=%i dim=%i, every workgroup size', async (rows, dim) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    // Each row is mean + scale * N(0, 1) with |mean| = 3 scale (so E[x^2] - E[x]^2 would cancel ~3 digits) and
    // scales from 1e-3 to 10 (at 1e-3 the variance 1e-6 is below eps, so eps must be applied right).
    const x = randomNormal(rand, rows * dim);
    for (let r = 0; r < rows; r++) {
      const scale = 10 ** ((r % 5) - 3);
      const mean = (r % 2 ? -3 : 3) * scale;
      for (let c = 0; c < dim; c++) x[r * dim + c] = mean + x[r * dim + c] * scale;
    }
    const weight = randomNormal(rand, dim);
    const bias = randomNormal(rand, dim);
    const want = layerNormRef(x, weight, bias, rows, dim, EPS);
    const xb = createStorageFrom(gpu.device, x, 'x');
    const wb = createStorageFrom(gpu.device, weight, 'weight');
    const bb = createStorageFrom(gpu.device, bias, 'bias');
    for (const workgroupSize of NORM_WORKGROUP_SIZES) {
      const yb = createStorage(gpu.device, rows * dim * 4, 'y');
      const k = new LayerNorm(gpu, { dim, eps: EPS, workgroupSize }).bind({ x: xb, weight: wb, bias: bb, y: yb });
      submitPass(gpu, (pass) => k.encode(pass, rows));
      const got = await readF32(gpu, yb, rows * dim);
      // Outputs are N(0, 1)-sized (normalised values times N(0, 1) weights plus N(0, 1) biases), so the error is
      // judged against a floor of 1. The mean sums dim values of size |mean| + sigma = 4 sigma in f32: runs of up to
      // 63 per thread (WG 16, dim 1000) whose partial sums grow linearly, then a 4-level tree, <= ~3.6e-6 sigma if
      // every rounding aligned, ~4e-7 as a random walk; x - mean adds half an ulp of 7 sigma. Times rstd and
      // |weight| <= ~4, plus bias: 1.6e-5 at the aligned worst, ~2e-6 expected, measured 1.3e-6 on llvmpipe and
      // SwiftShader. A variance from E[x^2] - E[x]^2 or a missing eps fails by orders of magnitude.
      expectClose(got, want, { rel: 1e-5, floor: 1 }, `seed ${seed}, WG ${workgroupSize}`);
      expect(got.some((v) => v !== 0)).toBe(true);
      yb.destroy();
    }
  });

  it('adds into y when accumulating (post-norm into the residual stream)', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const rows = 4;
    const dim = 77;
    const x = randomNormal(rand, rows * dim, 3).map((v) => v + 5);
    const weight = randomNormal(rand, dim);
    const bias = randomNormal(rand, dim);
    const y0 = randomNormal(rand, rows * dim, 2);
    const norm = layerNormRef(x, weight, bias, rows, dim, EPS);
    const want = Float64Array.from(y0, (v, i) => v + norm[i]);
    const yb = createStorageFrom(gpu.device, y0, 'y');
    const k = new LayerNorm(gpu, { dim, eps: EPS, accumulate: true }).bind({
      x: createStorageFrom(gpu.device, x, 'x'),
      weight: createStorageFrom(gpu.device, weight, 'weight'),
      bias: createStorageFrom(gpu.device, bias, 'bias'),
      y: yb,
    });
    submitPass(gpu, (pass) => k.encode(pass, rows));
    const got = await readF32(gpu, yb, rows * dim);
    // Absolute against the largest term: the two-pass mean/variance in f32 over 77 values (~1e-5 relative on the
    // normalised value, as the test above bounds it) plus one rounding of the sum. Forgetting y0 errs by ~2.
    const floor = Math.max(...norm.map(Math.abs));
    expectClose(got, want, { rel: 2e-5, floor }, `seed ${seed}`);
  });

  it('rejects aliasing and a short bias with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const x = createStorage(gpu.device, 8 * 4, 'x');
    const w = createStorage(gpu.device, 4 * 4, 'w');
    const norm = new LayerNorm(gpu, { dim: 4, eps: EPS });
    expect(() => norm.bind({ x, weight: w, bias: w, y: x })).toThrow(InvalidArgumentError);
    expect(() => norm.bind({ x, weight: w, bias: createStorage(gpu.device, 8, 'short'), y: createStorage(gpu.device, 32, 'y') })).toThrow(
      /bias/,
    );
  });
});
