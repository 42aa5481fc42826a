import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { KvWrite } from '../../src/kernels/kv_write.js';
import { kvWriteRef } from '../ref/attention.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

/** Fisher-Yates shuffle of 0..n-1. */
function permutation(rand: () => number, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

const SHAPES = [
  { nHeads: 8, kvHeads: 4, headDim: 64, pageSize: 16, rows: 13, pages: 9 },
  { nHeads: 9, kvHeads: 3, headDim: 8, pageSize: 7, rows: 30, pages: 11 },
  // An odd head dim: the copy is scalar, so any layout works.
  { nHeads: 5, kvHeads: 5, headDim: 6, pageSize: 3, rows: 7, pages: 4 },
];

describe.each(testAdapterChoices())('kv_write on %s', (choice) => {
  it.each(SHAPES)('copies k and v to scattered slots exactly: %o', async (sh) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const kOffset = sh.nHeads * sh.headDim;
    const vOffset = kOffset + sh.kvHeads * sh.headDim;
    const qkvStride = vOffset + sh.kvHeads * sh.headDim;
    const shape = { kvHeads: sh.kvHeads, headDim: sh.headDim, pageSize: sh.pageSize, qkvStride, kOffset, vOffset };
    const qkv = randomF32(rand, sh.rows * qkvStride, 2); // (rows, qkvStride)
    const poolLen = sh.pages * 2 * sh.kvHeads * sh.pageSize * sh.headDim;
    const kv = randomF32(rand, poolLen, 5); // (pages, 2, Hkv, pageSize, hd): random, so untouched slots are checked too
    const slots = Uint32Array.from(permutation(rand, sh.pages * sh.pageSize).slice(0, sh.rows)); // distinct, scattered

    const kvBuf = createStorageFrom(gpu.device, kv, 'kv');
    const k = new KvWrite(gpu, shape).bind({
      qkv: createStorageFrom(gpu.device, qkv, 'qkv'),
      slots: createStorageFrom(gpu.device, slots, 'slots'),
      kv: kvBuf,
    });
    submitPass(gpu, (pass) => k.encode(pass, sh.rows));
    const got = await readF32(gpu, kvBuf, poolLen);
    const want = kvWriteRef(shape, qkv, slots, kv);
    // A copy: bit-exact, and every written value differs from what was there (fresh random data).
    const bad = got.findIndex((v, i) => v !== want[i]);
    expect(bad, `seed ${seed}: first mismatch at ${bad} (got ${got[bad]}, want ${want[bad]})`).toBe(-1);
    expect(got.some((v, i) => v !== kv[i]), `seed ${seed}: nothing was written`).toBe(true);
    k.destroy();
  });

  it('drops a slot outside the pool instead of writing elsewhere', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const shape = { kvHeads: 2, headDim: 4, pageSize: 4, qkvStride: 24, kOffset: 8, vOffset: 16 };
    const pages = 3;
    const qkv = randomF32(rand, 3 * 24, 1);
    const kv = randomF32(rand, pages * 2 * 2 * 4 * 4, 1);
    const slots = Uint32Array.from([5, pages * 4 + 1, 0]); // row 1 points one page past the pool
    const kvBuf = createStorageFrom(gpu.device, kv, 'kv');
    const k = new KvWrite(gpu, shape).bind({
      qkv: createStorageFrom(gpu.device, qkv, 'qkv'),
      slots: createStorageFrom(gpu.device, slots, 'slots'),
      kv: kvBuf,
    });
    submitPass(gpu, (pass) => k.encode(pass, 3));
    const got = await readF32(gpu, kvBuf, kv.length);
    const want = kvWriteRef(shape, [...qkv.subarray(0, 24), ...qkv.subarray(48, 72)], [5, 0], kv);
    expect(Array.from(got), `seed ${seed}`).toEqual(Array.from(want));
  });

  it('rejects a layout whose v heads fall outside the qkv row', async () => {
    const gpu = await gpuFor(choice);
    const bad = { kvHeads: 2, headDim: 8, pageSize: 16, qkvStride: 40, kOffset: 16, vOffset: 32 };
    expect(() => new KvWrite(gpu, bad)).toThrow(InvalidArgumentError);
    expect(() => new KvWrite(gpu, { ...bad, vOffset: 24, pageSize: 0 })).toThrow(/pageSize/);
  });
});
