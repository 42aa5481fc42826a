// GGUF tensors in every storage type read as stored: the bytes of the fixture's source tensors equal the blocks that
// gguf-py extracted (../shared/fixtures/quant), and a type forklm does not run is refused by name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGguf } from '../../src/io/gguf.js';
import { dequantize } from '../../src/weights/dequant.js';
import { loadGgufBytes } from '../../src/model/load.js';
import { UnsupportedModelError } from '../../src/errors.js';
import { sharedFixturesDir } from '../ref/fixtures.js';

const fixtures = sharedFixturesDir();
const index = JSON.parse(readFileSync(join(fixtures, 'quant/index.json'), 'utf8')) as Record<string, { source: string; tensor: string; shape_row_major: number[] }>;

describe('GGUF tensors as stored', () => {
  it.each(Object.keys(index))('%s: type, shape and bytes of the source tensor', async (name) => {
    const fx = index[name];
    const file = await parseGguf(new Uint8Array(readFileSync(join(fixtures, 'gguf', fx.source))), fx.source);
    const t = file.stored(fx.tensor);
    expect(t.type).toBe(name);
    expect(t.shape).toEqual(fx.shape_row_major);
    expect(Buffer.from(t.bytes).equals(readFileSync(join(fixtures, 'quant', `${name}.bin`)))).toBe(true);
  });

  it('sizes every tensor of a Q4_K_M file (Q4_K, Q6_K and F32 mixed) and they tile the data section', async () => {
    const bytes = new Uint8Array(readFileSync(join(fixtures, 'gguf/llama256-Q4_K_M.gguf')));
    const file = await parseGguf(bytes, 'llama256-Q4_K_M.gguf');
    const ts = [...file.tensors.values()].sort((a, b) => a.begin - b.begin);
    expect(new Set(ts.map((t) => t.storage))).toEqual(new Set(['Q4_K', 'Q6_K', 'F32']));
    for (const t of ts) expect(t.byteLength).not.toBeNull();
    const last = ts[ts.length - 1];
    // Tensors follow each other at the file's alignment, and the last one ends at the end of the file.
    expect(Math.ceil((last.begin + last.byteLength!) / file.alignment) * file.alignment).toBeGreaterThanOrEqual(bytes.length);
    // readF32 dequantizes (for vectors); matrices stay stored.
    const q4k = ts.find((t) => t.storage === 'Q4_K')!;
    const n = q4k.shape.reduce((a, b) => a * b, 1);
    expect(file.readF32(q4k.name)).toEqual(Float32Array.from(dequantize('Q4_K', file.stored(q4k.name).bytes, n)));
  });

  it('refuses a model with a matrix in a type forklm does not run, naming the tensor and the type', async () => {
    const bytes = new Uint8Array(readFileSync(join(fixtures, 'gguf/llama256-Q4_K_M.gguf')));
    // The tensor info of blk.0.attn_q.weight: name, n_dims u32 (2), ne u64 x 2, type u32.
    const name = new TextEncoder().encode('blk.0.attn_q.weight');
    let at = -1;
    for (let i = 8; i < bytes.length && at < 0; i++) if (name.every((c, j) => bytes[i + j] === c) && bytes[i + name.length] === 2) at = i + name.length;
    expect(at).toBeGreaterThan(0);
    for (const [type, typeName] of [[16, 'IQ2_XXS'], [35, 'TQ2_0'], [39, 'MXFP4']] as const) {
      const patched = bytes.slice();
      new DataView(patched.buffer).setUint32(at + 4 + 16, type, true);
      const e = await loadGgufBytes(patched, 'patched.gguf').then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(UnsupportedModelError);
      expect((e as Error).message).toMatch(new RegExp(`"blk.0.attn_q.weight" is stored as ${typeName}, which forklm does not run`));
    }
  });
});
