import { describe, expect, it } from 'vitest';
import { createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { defaultInvFreq, RopeKv, splitFrequencies, type QkNormKind } from '../../src/kernels/rope_kv.js';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import { kvWriteRef } from '../ref/attention.js';
import { expectClose } from '../ref/compare.js';
import { ropeKvRef } from '../ref/elementwise.js';
import { mulberry32, randomF32, randomNormal, testSeed } from '../ref/random.js';
import type { Gpu } from '../../src/gpu/device.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

interface Case {
  name: string;
  nHeads: number;
  kvHeads: number;
  headDim: number;
  qkNorm: QkNormKind;
  /** rotated dims per head (0 = NoPE) */
  rotary: number;
  theta: number;
  ropeScale: number;
  /** a llama3/yarn-like table: every frequency multiplied by a random factor in (0.03, 1] */
  scrambled?: boolean;
}

const CASES: Case[] = [
  { name: 'plain RoPE, GQA', nHeads: 6, kvHeads: 2, headDim: 16, qkNorm: 'none', rotary: 16, theta: 1e4, ropeScale: 1 },
  { name: 'per-head norm, partial rotary 8/12', nHeads: 5, kvHeads: 5, headDim: 12, qkNorm: 'head', rotary: 8, theta: 1e6, ropeScale: 1 },
  { name: 'whole-projection norm, scaled table', nHeads: 4, kvHeads: 1, headDim: 8, qkNorm: 'projection', rotary: 8, theta: 5e5, ropeScale: 1, scrambled: true },
  { name: 'NoPE layer with per-head norm', nHeads: 3, kvHeads: 3, headDim: 20, qkNorm: 'head', rotary: 0, theta: 1e4, ropeScale: 1 },
  { name: 'yarn attention factor, head dim 128', nHeads: 2, kvHeads: 1, headDim: 128, qkNorm: 'none', rotary: 128, theta: 1e6, ropeScale: 1.1386, scrambled: true },
];

const PAGE = 5;
const PAGES = 4;

async function run(gpu: Gpu, seed: number, c: Case, rows: number, maxPos: number) {
  const rand = mulberry32(seed);
  const hd = c.headDim;
  const qkvStride = (c.nHeads + 2 * c.kvHeads) * hd + 4; // a tail beyond the v heads must not move
  const qkv = randomNormal(rand, rows * qkvStride, 1.3);
  const positions = Uint32Array.from({ length: rows }, () => Math.floor(rand() * maxPos));
  // Distinct slots in random pages; the last row's slot lies past the pool and must be dropped.
  const free = Array.from({ length: PAGES * PAGE }, (_, i) => i).sort(() => rand() - 0.5);
  const slots = Uint32Array.from({ length: rows }, (_, r) => (r === rows - 1 ? PAGES * PAGE + 3 : free[r]));
  const kv = randomF32(rand, PAGES * 2 * c.kvHeads * PAGE * hd, 1);
  const whole = c.qkNorm === 'projection';
  const qw = c.qkNorm === 'none' ? undefined : randomF32(rand, whole ? c.nHeads * hd : hd, 1.5);
  const kw = c.qkNorm === 'none' ? undefined : randomF32(rand, whole ? c.kvHeads * hd : hd, 1.5);
  const invFreq = defaultInvFreq(c.rotary, c.theta).map((f) => (c.scrambled ? f * (0.03 + 0.97 * rand()) : f));
  const d = gpu.device;
  const b = {
    qkv: createStorageFrom(d, qkv, 'qkv'),
    positions: createStorageFrom(d, positions, 'positions'),
    slots: createStorageFrom(d, slots, 'slots'),
    kv: createStorageFrom(d, kv, 'kv'),
    ...(qw && kw ? { qNorm: createStorageFrom(d, qw, 'qw'), kNorm: createStorageFrom(d, kw, 'kw') } : {}),
  };
  const eps = 1e-6;
  const op = new RopeKv(gpu, { nHeads: c.nHeads, kvHeads: c.kvHeads, headDim: hd, pageSize: PAGE, qkvStride, qkNorm: c.qkNorm, eps });
  const k = op.bind(b, { invFreq, scale: c.ropeScale });
  submitPass(gpu, (pass) => k.encode(pass, rows));
  const gotQkv = await readF32(gpu, b.qkv, rows * qkvStride);
  const gotKv = await readF32(gpu, b.kv, kv.length);
  op.destroy();
  const shape = { ...c, qkvStride, eps, invFreq };
  const want = ropeKvRef(qkv, positions, shape, qw, kw);
  const qDim = c.nHeads * hd;
  const wantKv = kvWriteRef({ kvHeads: c.kvHeads, headDim: hd, pageSize: PAGE, qkvStride, kOffset: qDim, vOffset: qDim + c.kvHeads * hd }, want, slots.slice(0, rows - 1), kv);
  // The row whose slot is outside the pool wrote nothing: the pool equals the other rows' writes alone.
  return { gotQkv, gotKv, want, wantKv, qkv, positions };
}

/**
 * Values are normal(1.3) times norm weights up to 1.5: |y| up to ~8, so errors are judged against a floor of the
 * largest |value| (an absolute bound). The q/k norm's f32 sum of squares over n <= 128 values errs by n * 2^-24
 * relatively and the scale by half that, the product with the weight by two more roundings; the reduced RoPE angle is
 * within ~6e-7 rad of float64 and the octant polynomials add ~1e-7 (shaders/rope_kv.wgsl), the rotation three
 * roundings: about 128 * 2^-25 + 4e-6 in all, under 1e-5. A radian angle in f32 would be off by 2.4e-4 at position
 * 4095.
 */
const TOL = 1e-5;

describe.each(testAdapterChoices())('rope_kv on %s', (choice) => {
  it.each(CASES)('matches float64 and writes k, v at each slot: $name', async (c) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rows = 7;
    const { gotQkv, gotKv, want, wantKv, qkv } = await run(gpu, seed, c, rows, 4096);
    const floor = Math.max(...want.map(Math.abs));
    expectClose(gotQkv, want, { rel: TOL, floor }, `qkv, seed ${seed}`);
    expectClose(gotKv, wantKv, { rel: TOL, floor }, `kv pool, seed ${seed}`);
    // v heads and the row tail are copied bit for bit, never touched.
    const qkvStride = qkv.length / rows;
    for (let r = 0; r < rows; r++) {
      const from = r * qkvStride + (c.nHeads + c.kvHeads) * c.headDim;
      expect(Array.from(gotQkv.slice(from, (r + 1) * qkvStride)), `row ${r} v heads`).toEqual(Array.from(qkv.slice(from, (r + 1) * qkvStride)));
    }
    if (c.rotary === 0 && c.qkNorm === 'none') return;
    // The switches matter: the input itself is far from the answer.
    expect(gotQkv.some((v, i) => Math.abs(v - qkv[i]) > 1e3 * TOL * floor), `seed ${seed}`).toBe(true);
  });

  it('keeps the angle accurate at positions up to 2^17', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const c = CASES[4];
    const { gotQkv, want } = await run(gpu, seed, { ...c, ropeScale: 1, scrambled: false }, 9, 131072);
    // The same bound: the split frequency keeps the angle exact up to a few 2^-25-turn roundings below 2^17.
    expectClose(gotQkv, want, { rel: TOL, floor: Math.max(...want.map(Math.abs)) }, `seed ${seed}`);
  });

  it('rejects what it cannot run, with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const ok = { nHeads: 4, kvHeads: 2, headDim: 8, pageSize: 4, qkvStride: 64, qkNorm: 'none' as const };
    expect(() => new RopeKv(gpu, { ...ok, headDim: 7, qkvStride: 56 })).toThrow(UnsupportedModelError);
    expect(() => new RopeKv(gpu, { ...ok, qkvStride: 60 })).toThrow(InvalidArgumentError);
    const buf = createStorageFrom(gpu.device, new Float32Array(2 * 2 * 4 * 8), 'b');
    const b = { qkv: buf, positions: buf, slots: buf, kv: buf };
    const op = new RopeKv(gpu, ok);
    expect(() => op.bind(b, { invFreq: [1, 0.1, 0.01, 0.001, 1e-4] })).toThrow(/do not fit/);
    expect(() => op.bind(b, { invFreq: [Number.NaN] })).toThrow(InvalidArgumentError);
    expect(() => op.bind({ ...b, qNorm: buf, kNorm: buf }, { invFreq: [] })).toThrow(/qkNorm/);
    op.destroy();
  });
});

describe('splitFrequencies', () => {
  it('splits each frequency into 7-bit parts that sum to the float64 value in turns', () => {
    const inv = defaultInvFreq(128, 1e6);
    const t = splitFrequencies(inv);
    for (let i = 0; i < inv.length; i++) {
      for (let k = 0; k < 3; k++) {
        const v = Math.abs(t[i * 4 + k]);
        if (v > 0) expect(v * 2 ** (6 - Math.floor(Math.log2(v))) % 1).toBe(0);
      }
      const sum = t[i * 4] + t[i * 4 + 1] + t[i * 4 + 2] + t[i * 4 + 3];
      // The remainder d is rounded to f32: 2^-24 relative to a value under 2^-21 of the frequency.
      expect(Math.abs(sum - inv[i] / (2 * Math.PI))).toBeLessThanOrEqual((inv[i] / (2 * Math.PI)) * 2 ** -40);
    }
  });
});
