import { describe, expect, it } from 'vitest';
import { createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Rope, ropeFrequencyTable } from '../../src/kernels/rope.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { ropeRef } from '../ref/elementwise.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import type { Gpu } from '../../src/gpu/device.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [8, 64, 128].flatMap((headDim) => [1e4, 1e6].flatMap((theta) => [1, 3, 17].map((rows) => [headDim, theta, rows] as const)));

/** Rotates random rows at `positions` on the GPU; returns (got, want, x) over the whole (rows, rowStride) buffer. */
async function runRope(gpu: Gpu, seed: number, headDim: number, theta: number, positions: Uint32Array) {
  const rand = mulberry32(seed);
  const rows = positions.length;
  const nHeads = 3;
  // Columns past nHeads * headDim stand for the v heads of a fused q|k|v row (plus an odd tail): they must not move.
  const rowStride = nHeads * headDim + headDim + 3;
  const x = randomF32(rand, rows * rowStride, 1);
  const xb = createStorageFrom(gpu.device, x, 'x');
  const pb = createStorageFrom(gpu.device, positions, 'positions');
  const rope = new Rope(gpu, { headDim, nHeads, rowStride, theta });
  const k = rope.bind({ x: xb, positions: pb });
  submitPass(gpu, (pass) => k.encode(pass, rows));
  const got = await readF32(gpu, xb, rows * rowStride);
  rope.destroy();
  return { got, want: ropeRef(x, positions, { rows, rowStride, nHeads, headDim, theta }), x, rowStride, nHeads };
}

describe.each(testAdapterChoices())('rope on %s', (choice) => {
  it.each(CASES)('matches float64 for headDim=%i theta=%d rows=%i, positions < 4096', async (headDim, theta, rows) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed ^ 0x5eed);
    const positions = Uint32Array.from({ length: rows }, () => Math.floor(rand() * 4096));
    positions[0] = rows > 1 ? 4095 : positions[0];
    const { got, want, x, rowStride, nHeads } = await runRope(gpu, seed, headDim, theta, positions);
    // Values are in [-1, 1], so errors are judged against a floor of 1 (absolute). The reduced angle is within
    // ~6e-7 rad of float64 (three 2^-25-turn roundings, see shaders/rope.wgsl), the octant polynomials add ~1e-7,
    // and the rotation three roundings of values up to sqrt(2): ~1.5e-6 at worst, measured 1.2e-6 on llvmpipe and
    // SwiftShader. An angle formed in f32 radians (theta^(-2i/d) in f32, times pos) is off by 2.4e-4 rad at
    // position 4095 and 2e-3 at 32k; the built-in sin/cos on SwiftShader by 2e-4.
    expectClose(got, want, { rel: 4e-6, floor: 1 }, `seed ${seed}, positions ${positions.join(',')}`);
    for (let r = 0; r < rows; r++) {
      const untouched = (a: ArrayLike<number>) => Array.from(a).slice(r * rowStride + nHeads * headDim, (r + 1) * rowStride);
      expect(untouched(got), `row ${r} past the rotated heads, seed ${seed}`).toEqual(untouched(x));
    }
  });

  it.each([
    [128, 1e6],
    [128, 1e4],
    [64, 5e5],
  ])('keeps the angle accurate at long positions (headDim=%i theta=%d)', async (headDim, theta) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed ^ 0x10ca1);
    const positions = Uint32Array.from([32767, 32768, 65535, 131071, 100003, ...Array.from({ length: 6 }, () => Math.floor(rand() * 131072))]);
    const { got, want } = await runRope(gpu, seed, headDim, theta, positions);
    // Same bound as above: the split frequency keeps the angle exact up to f32 rounding of a few turn fractions for
    // every position below 2^17, so the tolerance does not grow with position.
    expectClose(got, want, { rel: 4e-6, floor: 1 }, `seed ${seed}, positions ${positions.join(',')}`);
  });

  it('rejects bad options with typed errors', async () => {
    const gpu = await gpuFor(choice);
    expect(() => new Rope(gpu, { headDim: 7, nHeads: 1, rowStride: 7, theta: 1e4 })).toThrow(InvalidArgumentError);
    expect(() => new Rope(gpu, { headDim: 8, nHeads: 2, rowStride: 15, theta: 1e4 })).toThrow(/rowStride/);
    expect(() => new Rope(gpu, { headDim: 8, nHeads: 2, rowStride: 16, theta: 1 })).toThrow(/theta/);
  });
});

describe('ropeFrequencyTable', () => {
  it('splits each frequency into 7-bit parts that sum to the float64 value', () => {
    for (const [headDim, theta] of [[128, 1e6], [64, 1e4], [8, 1e4]] as const) {
      const t = ropeFrequencyTable(headDim, theta);
      for (let i = 0; i < headDim / 2; i++) {
        const f = theta ** ((-2 * i) / headDim) / (2 * Math.PI);
        const [a, b, c, d] = t.subarray(i * 4, i * 4 + 4);
        // Sum within 2^-45 relative: three exact 7-bit parts and a remainder rounded to f32 (2^-24 of 2^-21 f).
        expect(Math.abs(a + b + c + d - f) / f).toBeLessThan(2 ** -44);
        for (const part of [a, b, c]) {
          const m = Math.abs(part) / 2 ** Math.floor(Math.log2(Math.abs(part)));
          expect(Number.isInteger(m * 64), `part ${part} of frequency ${i} has more than 7 significant bits`).toBe(true);
        }
      }
    }
  });
});
