// Q5_0's 8-row tiles on the GPU (src/weights/tiles.ts): the repacking keeps every byte (read back and unpacked, each
// row equals its GGUF bytes), rows written in pieces that end inside a tile and across chunks, the last tile of each
// chunk padded; and the 5-bit values the kernels cut from the words (pairs as qmatmul_q8_t8.wgsl multiplies them)
// are the values dequant.ts reads from the GGUF block.
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/readback.js';
import { f16ToF32 } from '../../src/io/bytes.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { allocWeights, chunkBytes, destroyWeights, writeWeightRows } from '../../src/weights/gpu_tensor.js';
import { dequantize } from '../../src/weights/dequant.js';
import { packTiles, unpackRow } from '../../src/weights/tiles.js';
import { rowBytes } from '../../src/weights/types.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { gpuFor } from './adapters.js';

describe('Q5_0 tiles', () => {
  it('pairs hold the 5-bit values of the GGUF block: d (q - 16) equals dequant.ts on every value', () => {
    const seed = testSeed();
    const K = 96;
    const rb = rowBytes('Q5_0', K);
    const bytes = randomWeights('Q5_0', 8, K, mulberry32(seed));
    const want = dequantize('Q5_0', bytes, 8 * K);
    const tiled = packTiles(0, 1, rb, (l) => bytes.subarray(l * rb, (l + 1) * rb));
    const view = new DataView(tiled.buffer);
    for (let r = 0; r < 8; r++) {
      for (let b = 0; b < K / 32; b++) {
        const base = b * 176;
        const w = Array.from({ length: 5 }, (_, k) => view.getUint32(base + 4 * (8 * k + r), true));
        const d = f16ToF32(tiled, base + 160 + 2 * r, 1)[0];
        // Pair p < 15: word p / 3, shift 5 (p % 3), 16-bit lanes (value 4 g + e, value 4 g + e + 2), p = 2 g + e.
        for (let p = 0; p < 16; p++) {
          let lo = 0;
          let hi = 0;
          if (p < 15) {
            lo = (w[Math.floor(p / 3)] >>> (5 * (p % 3))) & 31;
            hi = (w[Math.floor(p / 3)] >>> (16 + 5 * (p % 3))) & 31;
          } else {
            for (let k = 0; k < 5; k++) {
              lo |= ((w[k] >>> 15) & 1) << k;
              hi |= ((w[k] >>> 31) & 1) << k;
            }
          }
          const v = 4 * (p >> 1) + (p & 1);
          expect(d * (lo - 16), `seed ${seed} row ${r} block ${b} value ${v}`).toBe(want[r * K + b * 32 + v]);
          expect(d * (hi - 16), `seed ${seed} row ${r} block ${b} value ${v + 2}`).toBe(want[r * K + b * 32 + v + 2]);
        }
      }
    }
  });

  it('keeps every byte: rows written in pieces inside tiles and across chunks read back as written', async () => {
    const gpu = await gpuFor('llvmpipe');
    const seed = testSeed();
    const rand = mulberry32(seed);
    const [N, K] = [45, 64]; // 45 rows: chunks of 16 rows (two tiles), the last chunk 13 rows (one padded tile)
    const rb = rowBytes('Q5_0', K);
    const bytes = randomWeights('Q5_0', N, K, rand);
    const t = allocWeights(gpu, 'Q5_0', N, K, 'tiles', 16 * rb + 32);
    expect(t.chunks.map((c) => c.rows)).toEqual([16, 16, 13]);
    expect(t.chunks.map((c) => c.buffer.size)).toEqual([16, 16, 16].map((n) => chunkBytes(n, rb)));
    for (const [a, b] of [[0, 3], [3, 11], [11, 30], [30, 31], [31, 45]]) writeWeightRows(gpu, t, a, bytes.subarray(a * rb, b * rb));
    for (const c of t.chunks) {
      const tiled = new Uint8Array(await readBuffer(gpu, c.buffer, c.buffer.size));
      for (let l = 0; l < c.rows; l++) {
        const g = c.rowStart + l;
        expect(Array.from(unpackRow(tiled, rb, l)), `seed ${seed} row ${g}`).toEqual(Array.from(bytes.subarray(g * rb, (g + 1) * rb)));
      }
      for (let l = c.rows; l < Math.ceil(c.rows / 8) * 8; l++) expect(unpackRow(tiled, rb, l).every((x) => x === 0), `padding row ${l}`).toBe(true);
    }
    destroyWeights(t);
    const u = allocWeights(gpu, 'Q5_0', N, K, 'tiles');
    expect(() => writeWeightRows(gpu, u, 5, bytes.subarray(5 * rb, 9 * rb))).toThrow(InvalidArgumentError);
    destroyWeights(u);
    // Rows 0..2 wait for their tile's rest: a piece that skips ahead must not drop them.
    const v = allocWeights(gpu, 'Q5_0', N, K, 'tiles');
    writeWeightRows(gpu, v, 0, bytes.subarray(0, 3 * rb));
    expect(() => writeWeightRows(gpu, v, 8, bytes.subarray(8 * rb, 16 * rb))).toThrow(/rows 0\.\.2 wait for row 3/);
    destroyWeights(v);
  });
});
