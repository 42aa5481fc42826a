import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/weights/dequant.js';
import { STORAGE_TYPES, layoutOf, rowBytes, storageTypeOfGgml, tensorBytes, type StorageType } from '../../src/weights/types.js';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import { sharedFixturesDir } from '../ref/fixtures.js';
import { mulberry32, randomF32, testSeed } from '../ref/random.js';

interface QuantFixture {
  source: string;
  tensor: string;
  shape_row_major: [number, number];
  bytes: number;
  values: number;
}
const quantDir = join(sharedFixturesDir(), 'quant');
const index = JSON.parse(readFileSync(join(quantDir, 'index.json'), 'utf8')) as Record<string, QuantFixture>;

/** One float32 ulp of x (the spacing of float32 values at |x|; subnormal spacing near zero). */
function ulpF32(x: number): number {
  const a = Math.abs(Math.fround(x));
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

describe('reference dequantization', () => {
  it('covers every fixture type', () => {
    expect(Object.keys(index).sort()).toEqual(['F16', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0']);
  });

  it.each(Object.keys(index))("%s matches gguf-py's dequantization within one float32 ulp", (name) => {
    const fx = index[name];
    const type = name as StorageType;
    const raw = new Uint8Array(readFileSync(join(quantDir, `${name}.bin`)));
    const want = new Float32Array(new Uint8Array(readFileSync(join(quantDir, `${name}.f32`))).buffer);
    const [rows, cols] = fx.shape_row_major;
    expect(tensorBytes(type, rows, cols)).toBe(raw.length);
    expect(want.length).toBe(rows * cols);
    const got = dequantize(type, raw, rows * cols);
    // gguf-py computes in float32 (d * sc rounded, then times q, minus dmin * m rounded): each of those roundings is
    // half an ulp of an intermediate at most the size of the result's terms, so float32 values land within one ulp of
    // the exact (float64) value rounded to float32. A wrong nibble, bit or scale moves a value by a whole quantization
    // step, many ulps.
    let worst = 0;
    let at = -1;
    for (let i = 0; i < got.length; i++) {
      const e = Math.abs(Math.fround(got[i]) - want[i]) / ulpF32(want[i]);
      if (!(e <= worst)) {
        worst = e;
        at = i;
      }
    }
    expect(worst, `${name} ${fx.tensor}: ${worst} ulp at ${at} (got ${got[at]}, want ${want[at]})`).toBeLessThanOrEqual(1);
    // Not all zeros or constant: the comparison above means something.
    expect(new Set(want).size).toBeGreaterThan(16);
  });

  it('BF16 is the top half of an f32 and F32 is itself', () => {
    const seed = testSeed();
    const x = randomF32(mulberry32(seed), 64, 3);
    const bits = new Uint32Array(x.buffer);
    const bf = new Uint8Array(128);
    for (let i = 0; i < 64; i++) {
      bf[2 * i] = (bits[i] >>> 16) & 0xff;
      bf[2 * i + 1] = bits[i] >>> 24;
    }
    const truncated = Float32Array.from(bits, (b) => new Float32Array(new Uint32Array([b & 0xffff0000]).buffer)[0]);
    expect(Array.from(dequantize('BF16', bf, 64)), `seed ${seed}`).toEqual(Array.from(truncated));
    expect(Array.from(dequantize('F32', new Uint8Array(x.buffer), 64)), `seed ${seed}`).toEqual(Array.from(x));
  });

  it('sizes rows in whole blocks and rejects partial ones', () => {
    expect(rowBytes('Q4_K', 512)).toBe(288);
    expect(rowBytes('Q6_K', 256)).toBe(210);
    expect(rowBytes('Q8_0', 64)).toBe(68);
    expect(rowBytes('F16', 172)).toBe(344);
    expect(() => rowBytes('Q4_0', 172)).toThrow(UnsupportedModelError);
    expect(() => dequantize('Q4_K', new Uint8Array(144), 128)).toThrow(InvalidArgumentError);
    expect(() => dequantize('Q8_0', new Uint8Array(33), 32)).toThrow(/34 bytes/);
    for (const t of STORAGE_TYPES) expect(storageTypeOfGgml(layoutOf(t).ggmlType)).toBe(t);
  });

  it('refuses the types forklm does not run by name', () => {
    for (const [id, name] of [
      [16, 'IQ2_XXS'],
      [23, 'IQ4_XS'],
      [34, 'TQ1_0'],
      [35, 'TQ2_0'],
      [39, 'MXFP4'],
      [10, 'Q2_K'],
      [11, 'Q3_K'],
    ] as const) {
      expect(() => storageTypeOfGgml(id, 'tensor "blk.0.attn_q.weight"')).toThrow(UnsupportedModelError);
      expect(() => storageTypeOfGgml(id)).toThrow(new RegExp(`stored as ${name}, which forklm does not run`));
    }
    expect(() => storageTypeOfGgml(250)).toThrow(/type 250/);
  });
});
