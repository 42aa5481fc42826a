// GGUF tensors in every storage type read as stored: the bytes of the fixture's source tensors equal the blocks that
// gguf-py extracted (../shared/fixtures/quant), and a type forklm does not run is refused by name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGguf } from '../../src/io/gguf.js';
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
    expect(() => file.readF32(ts.find((t) => t.storage === 'Q4_K')!.name)).toThrow(/Q4_K/);
  });
});
