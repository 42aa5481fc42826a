import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { QEmbedding } from '../../src/kernels/qembedding.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { dequantizeWithMagnitude } from '../../src/weights/dequant.js';
import { STORAGE_TYPES, kernelBlock } from '../../src/weights/types.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

describe.each(testAdapterChoices())('embedding gather from stored weight types on %s', (choice) => {
  it.each(STORAGE_TYPES.map((t) => [t]))('%s rows match float64, from a split table, with out-of-range ids zeroed', async (type) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const qk = kernelBlock(type);
    const dim = qk === 4 ? 44 : 2 * qk;
    const V = 37;
    const bytes = randomWeights(type, V, dim, rand);
    const { values, magnitude } = dequantizeWithMagnitude(type, bytes, V * dim);
    // Rows 0, V-1 (last row of the last chunk), ids in every chunk, repeats, and V / 2^32-1 (out of range: zeros).
    const ids = [0, V - 1, 5, 5, 20, 36, V, 0xffffffff, 13, 1, 30];
    const table = uploadWeights(gpu, type, bytes, V, dim, `table ${type}`, Math.ceil(V / 4) * (bytes.length / V) + 32);
    expect(table.chunks.length).toBeGreaterThanOrEqual(4);
    const idb = createStorageFrom(gpu.device, new Uint32Array(ids), `ids (${ids.length}) u32`);
    const out = createStorage(gpu.device, ids.length * dim * 4, `out (${ids.length}, ${dim}) f32`);
    const bound = new QEmbedding(gpu, type, dim).bind({ table, ids: idb, out }, 'test');
    submitPass(gpu, (pass) => bound.encode(pass, ids.length));
    const got = await readF32(gpu, out, ids.length * dim);
    let worst = 0;
    let where = '';
    ids.forEach((id, r) => {
      for (let c = 0; c < dim; c++) {
        const want = id < V ? values[id * dim + c] : 0;
        // A gathered value is one dequantized weight: at most 3 f32 roundings (d * sc, dmin * m, the final fma or
        // product), each within 2^-24 of the weight's magnitude |d q| (+ |m|) (src/weights/dequant.ts). Exact zeros
        // for out-of-range ids.
        const bound3 = id < V ? 3 * 2 ** -24 * magnitude[id * dim + c] : 0;
        const e = Math.abs(got[r * dim + c] - want) - bound3;
        if (e > worst) {
          worst = e;
          where = `row ${r} (id ${id}) col ${c}: got ${got[r * dim + c]}, want ${want}`;
        }
      }
    });
    expect(worst, `seed ${seed} ${type}: ${where}`).toBe(0);
    destroyWeights(table);
    idb.destroy();
    out.destroy();
    bound.destroy();
  });

  it('rejects a dim that is not whole blocks and a table of another type', async () => {
    const gpu = await gpuFor(choice);
    expect(() => new QEmbedding(gpu, 'Q4_K', 128)).toThrow(InvalidArgumentError);
    expect(() => new QEmbedding(gpu, 'F16', 6)).toThrow(/multiple of 4/);
    const table = uploadWeights(gpu, 'Q8_0', new Uint8Array(2 * 34), 2, 32, 't');
    const ids = createStorage(gpu.device, 4, 'ids');
    const out = createStorage(gpu.device, 128, 'out');
    expect(() => new QEmbedding(gpu, 'Q4_0', 32).bind({ table, ids, out })).toThrow(/Q8_0/);
    destroyWeights(table);
  });
});
