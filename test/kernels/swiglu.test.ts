import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { SwiGlu } from '../../src/kernels/swiglu.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { expectClose } from '../ref/compare.js';
import { swiGluRef } from '../ref/elementwise.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import type { Gpu } from '../../src/gpu/device.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [1, 3, 17].flatMap((rows) => [5, 63, 200, 1000].map((hidden) => [rows, hidden] as const));

async function runSwiGlu(gpu: Gpu, gateUp: Float32Array, rows: number, hidden: number): Promise<Float32Array> {
  const gb = createStorageFrom(gpu.device, gateUp, 'gateUp');
  const ob = createStorage(gpu.device, rows * hidden * 4, 'out');
  const k = new SwiGlu(gpu, { hidden }).bind({ gateUp: gb, out: ob });
  submitPass(gpu, (pass) => k.encode(pass, rows));
  const got = await readF32(gpu, ob, rows * hidden);
  gb.destroy();
  ob.destroy();
  return got;
}

describe.each(testAdapterChoices())('swiglu on %s', (choice) => {
  it.each(CASES)('matches float64 for rows=%i hidden=%i', async (rows, hidden) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const gateUp = randomNormal(mulberry32(seed), rows * 2 * hidden, 3);
    const got = await runSwiGlu(gpu, gateUp, rows, hidden);
    const want = swiGluRef(gateUp, rows, hidden);
    // A product of silu(gate) and up, so the error is relative, whatever the signs. WGSL's exp is within
    // (3 + 2|x|) ulp; the sigmoid from exp(-|gate|) passes at most that on, plus ~4 roundings: for |gate| <= 15
    // (5 sigma of N(0, 3)) <= 37 ulp = 2.2e-6. The floor only matters below f32's normal range.
    expectClose(got, want, { rel: 4e-6, floor: 1e-30 }, `seed ${seed}`);
    expect(got.some((v) => v !== 0)).toBe(true);
  });

  it('stays finite and accurate for large |gate|', async () => {
    const gpu = await gpuFor(choice);
    const gates = [20, -20, 50, -50, 88, -88, 100, -100, 1e4, -1e4, 1e30, -1e30, 1e-20, -1e-20];
    const hidden = gates.length;
    const gateUp = Float32Array.from([...gates, ...gates.map((_, i) => 1.5 - 0.25 * i)]);
    const got = await runSwiGlu(gpu, gateUp, 1, hidden);
    expect(got.every(Number.isFinite), `got ${Array.from(got).join(', ')}`).toBe(true);
    // exp at |x| <= 88 may be off by 3 + 2 * 88 ulp = 1.1e-5 in WGSL; below the floor (1e-30: silu(-88) ~ 5e-37,
    // where GPUs may flush to zero) only the absolute size counts.
    expectClose(got, swiGluRef(gateUp, 1, hidden), { rel: 2e-5, floor: 1e-30 }, 'large gates');
  });

  it('rejects aliasing and a short output with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const b = createStorage(gpu.device, 16, 'b');
    expect(() => new SwiGlu(gpu, { hidden: 0 })).toThrow(InvalidArgumentError);
    expect(() => new SwiGlu(gpu, { hidden: 2 }).bind({ gateUp: b, out: b })).toThrow(InvalidArgumentError);
    const k = new SwiGlu(gpu, { hidden: 2 }).bind({ gateUp: createStorage(gpu.device, 48, 'gu'), out: b });
    const pass = gpu.device.createCommandEncoder().beginComputePass();
    expect(() => k.encode(pass, 3)).toThrow(/out/);
    pass.end();
  });
});
