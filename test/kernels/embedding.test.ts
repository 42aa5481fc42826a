import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { Embedding } from '../../src/kernels/embedding.js';
import { destroySplit, uploadSplit, wholeTensor } from '../../src/gpu/split_tensor.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { embeddingRef } from '../ref/elementwise.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const CASES = [1, 3, 17].flatMap((rows) => [5, 63, 200, 1000].map((dim) => [rows, dim] as const));
const VOCAB = 37; // not a multiple of the forced chunk size below: the last chunk is short

describe.each(testAdapterChoices())('embedding on %s', (choice) => {
  it.each(CASES)('gathers rows=%i of dim=%i from one chunk and from 4 chunks, zeros for ids >= V', async (rows, dim) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const table = randomNormal(rand, VOCAB * dim);
    const ids = Uint32Array.from({ length: rows }, () => Math.floor(rand() * VOCAB));
    // Out-of-range ids (just past the end, far past it, the largest u32) where there is room for them.
    [VOCAB, 0xffffffff, VOCAB + 1000].forEach((bad, i) => {
      if (rows > 1 && 1 + i < rows) ids[1 + i] = bad;
    });
    if (rows === 17) ids[16] = VOCAB - 1; // the last row of the short last chunk
    const want = embeddingRef(table, VOCAB, dim, ids);
    const idb = createStorageFrom(gpu.device, ids, 'ids');
    // 10 rows per chunk gives chunks of 10, 10, 10 and 7 rows.
    for (const maxBytes of [undefined, 10 * dim * 4]) {
      const split = uploadSplit(gpu, table, VOCAB, dim, 'table', maxBytes);
      expect(split.chunks.length).toBe(maxBytes ? 4 : 1);
      // Start from garbage so that rows the kernel fails to write (zeros included) show up.
      const ob = createStorageFrom(gpu.device, new Float32Array(rows * dim).fill(123.5), 'out');
      const k = new Embedding(gpu, { dim }).bind({ table: split, ids: idb, out: ob });
      submitPass(gpu, (pass) => k.encode(pass, rows));
      const got = await readF32(gpu, ob, rows * dim);
      // A copy: every value must be bit-identical to the table's f32 (and exactly 0 for bad ids).
      expect(Array.from(got), `seed ${seed}, ids ${ids.join(',')}, ${split.chunks.length} chunk(s)`).toEqual(Array.from(want));
      destroySplit(split);
      ob.destroy();
    }
  });

  it('scales rows and adds them into out (learned positions onto token embeddings), across chunks', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const dim = 45;
    const table = randomNormal(rand, VOCAB * dim);
    const ids = Uint32Array.from({ length: 11 }, () => Math.floor(rand() * VOCAB));
    ids[3] = VOCAB + 2; // a bad id: out keeps its row when accumulating
    const out0 = randomNormal(rand, ids.length * dim);
    const split = uploadSplit(gpu, table, VOCAB, dim, 'table', 10 * dim * 4);
    const ob = createStorageFrom(gpu.device, out0, 'out');
    const scale = 2.7;
    const k = new Embedding(gpu, { dim }).bind({ table: split, ids: createStorageFrom(gpu.device, ids, 'ids'), out: ob }, 'emb', { scale, accumulate: true });
    submitPass(gpu, (pass) => k.encode(pass, ids.length));
    const got = await readF32(gpu, ob, ids.length * dim);
    const rows = embeddingRef(table, VOCAB, dim, ids);
    // Two roundings (the product in f32, then the sum) against float64 of the f32 inputs: 2^-23 of the terms'
    // size, whose largest is below 20. Forgetting the scale or the old row errs by ~1.
    const want = Float64Array.from(out0, (v, i) => v + scale * rows[i]);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `[${i}] seed ${seed}`).toBeLessThanOrEqual(20 * 2 ** -23);
    destroySplit(split);
  });

  it('gathers rows of an activation buffer wrapped with wholeTensor', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const [n, dim] = [9, 70];
    const act = randomNormal(rand, n * dim);
    const ab = createStorageFrom(gpu.device, act, 'hidden');
    const ids = Uint32Array.from([8, 0, 3, 3]);
    const ob = createStorage(gpu.device, ids.length * dim * 4, 'sampleHidden');
    const k = new Embedding(gpu, { dim }).bind({ table: wholeTensor(ab, n, dim), ids: createStorageFrom(gpu.device, ids, 'rows'), out: ob });
    submitPass(gpu, (pass) => k.encode(pass, ids.length));
    expect(Array.from(await readF32(gpu, ob, ids.length * dim)), `seed ${seed}`).toEqual(Array.from(embeddingRef(act, n, dim, ids)));
  });

  it('rejects a table of the wrong width and out inside the table with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const b = createStorage(gpu.device, 64, 'b');
    const ids = createStorage(gpu.device, 16, 'ids');
    expect(() => new Embedding(gpu, { dim: 4 }).bind({ table: wholeTensor(b, 2, 8), ids, out: createStorage(gpu.device, 64, 'o') })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new Embedding(gpu, { dim: 4 }).bind({ table: wholeTensor(b, 4, 4), ids, out: b })).toThrow(InvalidArgumentError);
  });
});
