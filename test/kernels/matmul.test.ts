import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom, writeBuffer } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { uploadSplit } from '../../src/gpu/split_tensor.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { fittedWorkgroup, Matmul, PREFILL_MIN_M, TILED_MIN_M, type MatmulVariant } from '../../src/kernels/matmul.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { gammaF32, matmulRef, maxMatmulError } from '../ref/matmul.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import { isNode } from '../../src/gpu/adapters.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';

interface Case {
  variant: MatmulVariant;
  M: number;
  K: number;
  N: number;
  bias: boolean;
  split: boolean;
  accumulate?: boolean;
  /** The prefill variant's form (gpu/register_blocks.ts); default the device's. */
  registerBlocks?: RegisterBlocks;
  /** MatmulOptions.fitWorkgroups (default true). */
  fitWorkgroups?: boolean;
}
const c = (variant: MatmulVariant, M: number, K: number, N: number, bias: boolean, split: boolean): Case =>
  ({ variant, M, K, N, bias, split });
const acc = (variant: MatmulVariant, M: number, K: number, N: number, bias: boolean, split: boolean): Case =>
  ({ variant, M, K, N, bias, split, accumulate: true });

// Every variant on M in {1, 3, 17, 70}, uneven K and N (K % 4 != 0 takes the decode shader's scalar path and the
// tiled kernel's partial K stage), with and without bias, and W split in 3+ chunks. Decode covers both of its
// blockings (1x2 at M=1, 4x4 above) and M beyond one block (grid y). Prefill needs K % 4 == 0.
const CASES: Case[] = [
  c('decode', 1, 1000, 200, true, false),
  c('decode', 1, 63, 1000, false, true),
  c('decode', 3, 5, 63, true, false),
  c('decode', 3, 200, 1000, false, true),
  c('decode', 17, 1000, 5, false, false),
  c('decode', 70, 63, 200, true, true),
  c('prefill', 70, 200, 1000, true, true),
  c('prefill', 17, 1000, 63, false, false),
  c('prefill', 3, 200, 5, true, false),
  c('prefill', 1, 1000, 200, false, true),
  // One column past a workgroup of 8 threads x 8 columns, and 16 rows: llvmpipe's fitted workgroups (fittedWorkgroup)
  // take 16 threads here, the second block of 8 of them with one column between them.
  c('prefill', 16, 64, 65, true, false),
  c('decode', 1, 64, 17, false, false),
  c('tiled', 70, 63, 200, true, true),
  c('tiled', 17, 5, 1000, false, false),
  c('tiled', 3, 1000, 63, true, false),
  c('tiled', 70, 200, 1000, false, true),
];

// y += x W^T (+ bias) on every variant and blocking: decode 1x2 (M=1) and 4x4 (M=3, and M=70 over many blocks), its
// scalar path (K % 4 != 0), prefill, tiled with a partial K stage; with and without bias, W whole and split.
const ACCUMULATE_CASES: Case[] = [
  acc('decode', 1, 1000, 200, false, true),
  acc('decode', 1, 63, 1000, true, false),
  acc('decode', 3, 200, 63, true, true),
  acc('decode', 70, 5, 200, false, false),
  acc('prefill', 70, 200, 1000, false, true),
  acc('prefill', 3, 1000, 63, true, false),
  acc('tiled', 70, 63, 200, true, true),
  acc('tiled', 3, 200, 1000, false, false),
];

// The prefill variant written out (shaders/matmul_prefill_unrolled.wgsl, what Chromium's GL route runs) on the same
// prefill cases, plain and accumulating: M beyond one 8-row block, M below it, N below one 8-column block, W split.
const UNROLLED_CASES: Case[] = [...CASES, ...ACCUMULATE_CASES]
  .filter((t) => t.variant === 'prefill')
  .map((t) => ({ ...t, registerBlocks: 'unrolled' as const }));

const SENTINEL = 7.5;

/**
 * Runs y = x W^T (+ bias), or y += x W^T (+ bias) from random initial y when `accumulate`, for one case on `gpu` and
 * checks it against float64; `variant` undefined = default pick.
 */
async function checkMatmul(gpu: Gpu, t: Omit<Case, 'variant'> & { variant?: MatmulVariant }, seed = testSeed()): Promise<Float32Array> {
  const { M, K, N } = t;
  const rand = mulberry32(seed);
  const x = randomF32(rand, M * K);
  const w = randomF32(rand, N * K);
  const bias = t.bias ? randomF32(rand, N) : null;
  // Initial y of an accumulating matmul: |y0| up to 4, the size of a residual stream beside one projection's output.
  const y0 = t.accumulate ? randomF32(rand, M * N, 4) : null;
  const ref = matmulRef(x, w, bias, M, K, N, y0);

  const xb = createStorageFrom(gpu.device, x, `x (${M}, ${K}) f32`);
  // Split W into chunks of ceil(N/3) rows: three dispatches writing y columns at offsets 0, ceil(N/3), 2 ceil(N/3).
  const wt = uploadSplit(gpu, w, N, K, 'w', t.split ? Math.ceil(N / 3) * K * 4 : undefined);
  if (t.split) expect(wt.chunks.length).toBeGreaterThanOrEqual(3);
  const bb = bias ? createStorageFrom(gpu.device, bias, `bias (${N}) f32`) : undefined;
  // One extra row of y, prefilled: rows >= M must stay untouched, and an unwritten output shows as the sentinel.
  const yb = createStorage(gpu.device, (M + 1) * N * 4, `y (${M + 1}, ${N}) f32`);
  const yInit = new Float32Array((M + 1) * N).fill(SENTINEL);
  if (y0) yInit.set(y0);
  writeBuffer(gpu.device, yb, yInit);

  const mm = new Matmul(gpu, {
    K,
    N,
    bias: t.bias,
    accumulate: t.accumulate ?? false,
    ...(t.variant ? { variants: [t.variant] } : {}),
    ...(t.registerBlocks ? { registerBlocks: t.registerBlocks } : {}),
    ...(t.fitWorkgroups === false ? { fitWorkgroups: false } : {}),
  });
  const bound = mm.bind({ x: xb, w: wt, ...(bb ? { bias: bb } : {}), y: yb }, 'test');
  if (t.variant) expect(bound.variantFor(M)).toBe(t.variant);
  const compiled = gpu.pipelines.compiled;
  submitPass(gpu, (pass) => bound.encode(pass, M));
  const got = await readF32(gpu, yb, (M + 1) * N);
  expect(gpu.pipelines.compiled, 'encode must not compile').toBe(compiled);

  const { err, at } = maxMatmulError(got, ref);
  // An f32 dot product of K products plus the bias: |error| <= gamma(K + 1) * sum |terms| in any summation order
  // (test/ref/matmul.ts); the float64 reference's own error is 2^-29 times smaller. A wrong index, a dropped term
  // or a missing bias errs by a whole term (|x w| ~ 1/4, |bias| ~ 1/2), far above gamma(K + 1) * sum |terms|
  // (<= 1.5e-2 at K = 1000, where sum |terms| ~ 250; 4e-7 at K = 5).
  // Accumulating adds one more term, y0, to the sum and to sum |terms|: gamma(K + 2). Dropping y0 (writing over it)
  // errs by |y0| (up to 4) against sum |terms| <= 4 + 250 + 1: about 1e-2 relative, over 100x the bound (<= 6e-5).
  const tol = gammaF32(K + (t.accumulate ? 2 : 1));
  expect(
    err,
    `seed ${seed}: worst error ${err.toExponential(2)} of sum|x w| at [${Math.floor(at / N)}, ${at % N}] ` +
      `(got ${got[at]}, want ${ref.y[at]}), bound ${tol.toExponential(2)}`,
  ).toBeLessThanOrEqual(tol);
  expect(Array.from(got.subarray(M * N)), `seed ${seed}: row M written`).toEqual(new Array(N).fill(SENTINEL));

  for (const ch of wt.chunks) ch.buffer.destroy();
  for (const b of [xb, yb, bb]) b?.destroy();
  bound.destroy();
  mm.destroy();
  return got;
}

describe.each(testAdapterChoices())('matmul on %s', (choice) => {
  it.each(CASES)('$variant M=$M K=$K N=$N bias=$bias split=$split matches float64', async (t) => {
    await checkMatmul(await gpuFor(choice), t);
  });

  it.each(ACCUMULATE_CASES)('$variant M=$M K=$K N=$N bias=$bias split=$split accumulates into y', async (t) => {
    await checkMatmul(await gpuFor(choice), t);
  });

  it.each(UNROLLED_CASES)('prefill written out M=$M K=$K N=$N bias=$bias split=$split accumulate=$accumulate matches float64', async (t) => {
    await checkMatmul(await gpuFor(choice), t);
  });

  it('the device\'s default form is written out exactly on Chromium\'s GL route, and a Matmul takes it', async () => {
    const gpu = await gpuFor(choice);
    // Node (either adapter) and Chromium's SwiftShader keep the loops; the browser-gl project's llvmpipe writes them out.
    expect(gpu.registerBlocks).toBe(!isNode && choice === 'llvmpipe' ? 'unrolled' : 'loops');
    expect(new Matmul(gpu, { K: 64, N: 8, bias: false }).registerBlocks).toBe(gpu.registerBlocks);
    expect(() => new Matmul(gpu, { K: 64, N: 8, bias: false, registerBlocks: 'unroll' as 'unrolled' })).toThrow(InvalidArgumentError);
  });

  it('the written-out prefill gives the loop form\'s bits (the same fma\'s in the same order)', async () => {
    const gpu = await gpuFor(choice);
    // Fresh inputs each run, the same for both forms (one seed).
    const t = { variant: 'prefill' as const, M: 21, K: 132, N: 75, bias: true, split: true, accumulate: true };
    const seed = testSeed();
    const loops = await checkMatmul(gpu, { ...t, registerBlocks: 'loops' }, seed);
    const unrolled = await checkMatmul(gpu, { ...t, registerBlocks: 'unrolled' }, seed);
    expect(Array.from(unrolled), `seed ${seed}`).toEqual(Array.from(loops));
  });

  it('picks decode for small M and the wide variant from the threshold on, by default', async () => {
    const gpu = await gpuFor(choice);
    const wide = gpu.isCpu ? 'prefill' : 'tiled';
    const threshold = gpu.isCpu ? PREFILL_MIN_M : TILED_MIN_M;
    const mm = new Matmul(gpu, { K: 64, N: 8, bias: false });
    expect([1, threshold - 1, threshold, 500].map((m) => mm.variantFor(m))).toEqual(['decode', 'decode', wide, wide]);
    // K % 4 != 0: no vec4 rows, so on CPU adapters the decode shader takes every M.
    const odd = new Matmul(gpu, { K: 63, N: 8, bias: false });
    expect(odd.variantFor(500)).toBe(gpu.isCpu ? 'decode' : 'tiled');
    // The default pick, end to end, on both sides of the threshold.
    for (const M of [1, threshold + 3]) await checkMatmul(gpu, { M, K: 200, N: 63, bias: true, split: true });
  });

  it('fits workgroups to N on llvmpipe (Node and Chromium\'s GL route), with the bits of full workgroups', async () => {
    const gpu = await gpuFor(choice);
    // llvmpipe in Node and on Chromium's GL route (browser-gl); not SwiftShader (the browser project's adapter).
    const fits = choice === 'llvmpipe';
    const prefill = { wg: 64, nr: 8 };
    // The fewest threads (8, 16, 32 or 64) whose workgroup covers ceil(N / 8) blocks of 8 columns.
    expect([1, 64, 65, 128, 129, 344, 512, 513, 5000].map((N) => fittedWorkgroup(gpu, prefill, N))).toEqual(
      fits ? [8, 8, 16, 16, 32, 64, 64, 64, 64] : new Array(9).fill(64),
    );
    expect(fittedWorkgroup(gpu, { wg: 64, nr: 2 }, 17)).toBe(fits ? 16 : 64);
    // Each column is the same operations in the same order whatever the workgroup size: equal bits, fresh inputs.
    for (const [variant, M, N] of [['prefill', 16, 65], ['decode', 1, 17], ['decode', 3, 100]] as const) {
      const seed = testSeed();
      const t = { variant, M, K: 64, N, bias: true, split: false, accumulate: true };
      const fitted = await checkMatmul(gpu, t, seed);
      const full = await checkMatmul(gpu, { ...t, fitWorkgroups: false }, seed);
      expect(Array.from(fitted), `seed ${seed}: ${variant} M=${M} N=${N}`).toEqual(Array.from(full));
    }
  });

  it('accumulating shares the plain pipelines: no compile for the flag', async () => {
    const gpu = await gpuFor(choice);
    new Matmul(gpu, { K: 64, N: 8, bias: false });
    const compiled = gpu.pipelines.compiled;
    new Matmul(gpu, { K: 64, N: 8, bias: true, accumulate: true });
    expect(gpu.pipelines.compiled).toBe(compiled);
  });

  it('rejects mismatched shapes, bias, rows and variants with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const K = 8;
    const N = 6;
    const x = createStorage(gpu.device, 2 * K * 4, 'x (2, 8) f32');
    const y = createStorage(gpu.device, 2 * N * 4, 'y (2, 6) f32');
    const w = uploadSplit(gpu, new Float32Array(N * K).fill(0.5), N, K, 'w');
    const bias = createStorage(gpu.device, N * 4, 'bias (6) f32');
    const mm = new Matmul(gpu, { K, N, bias: false, variants: ['decode'] });
    expect(() => new Matmul(gpu, { K, N: N + 1, bias: false }).bind({ x, w, y })).toThrow(InvalidArgumentError);
    expect(() => mm.bind({ x, w, bias, y })).toThrow(/bias/);
    expect(() => mm.bind({ x, w, y: x })).toThrow(/own/);
    const accumulating = new Matmul(gpu, { K, N, bias: false, accumulate: true, variants: ['decode'] });
    expect(() => accumulating.bind({ x, w, y: x })).toThrow(/own/);
    expect(() => new Matmul(gpu, { K, N, bias: true }).bind({ x, w, y })).toThrow(InvalidArgumentError);
    expect(() => new Matmul(gpu, { K: 6, N, bias: false, variants: ['prefill'] })).toThrow(/K % 4/);
    expect(() => new Matmul(gpu, { K: 0, N, bias: false })).toThrow(InvalidArgumentError);
    const bound = mm.bind({ x, w, y });
    submitPass(gpu, (pass) => {
      expect(() => bound.encode(pass, 3)).toThrow(/fewer than M=3/);
      expect(() => bound.encode(pass, 1, 'tiled')).toThrow(/not built/);
      expect(() => bound.encode(pass, 1.5)).toThrow(InvalidArgumentError);
    });
    for (const b of [x, y, bias, w.chunks[0].buffer]) b.destroy();
  });
});
