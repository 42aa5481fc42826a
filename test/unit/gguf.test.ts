// The GGUF reader (metadata through @huggingface/gguf, tensor data here) on the real stories260K file and on
// synthetic and patched files.
import { sharedModelsDir } from '../ref/shared_models.js';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ForkLMError, ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import { GGUFValueType, encodeGguf, parseGguf } from '../../src/io/gguf.js';
import { localModelDirs } from '../../src/model/resolve.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';

const stories = `${sharedModelsDir()}/stories260K`;

/** Offset just after the name string of tensor info `name` (where n_dims starts). */
function infoOffset(bytes: Uint8Array, name: string): number {
  const needle = new TextEncoder().encode(name);
  outer: for (let i = 8; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    const len = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(i - 8, true);
    if (len === BigInt(needle.length)) return i + needle.length;
  }
  throw new Error(`tensor info ${name} not found`);
}

/** Patches tensor info fields of a copy of `bytes`. Only for 1-D tensors (one u64 dim). */
function patch1d(bytes: Uint8Array, name: string, f: { dim?: bigint; type?: number; offset?: bigint }): Uint8Array {
  const out = bytes.slice();
  const v = new DataView(out.buffer);
  const at = infoOffset(out, name);
  expect(v.getUint32(at, true)).toBe(1);
  if (f.dim !== undefined) v.setBigUint64(at + 4, f.dim, true);
  if (f.type !== undefined) v.setUint32(at + 12, f.type, true);
  if (f.offset !== undefined) v.setBigUint64(at + 16, f.offset, true);
  return out;
}

async function rejects(p: Promise<unknown>, cls: new (...args: never[]) => ForkLMError, message: RegExp): Promise<void> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, 'expected a rejection').toBeInstanceOf(cls);
  expect((e as Error).message).toMatch(message);
}

describe('gguf: real stories260K file', async () => {
  const bytes = stories ? new Uint8Array(readFileSync(`${stories}/gguf/stories260K.gguf`)) : new Uint8Array();
  const file = await parseGguf(bytes, 'stories260K.gguf');

  it('reads the metadata and tensor infos, with shapes row-major', () => {
    expect(file.version).toBe(3);
    expect(file.metadata['general.architecture']).toBe('llama');
    expect(file.metadata['llama.embedding_length']).toBe(64);
    expect(file.metadata['llama.attention.head_count_kv']).toBe(4);
    expect(file.tensors.size).toBe(48);
    expect(file.tensors.get('token_embd.weight')?.shape).toEqual([512, 64]);
    expect(file.tensors.get('blk.0.attn_k.weight')?.shape).toEqual([32, 64]);
    expect(file.tensors.get('blk.4.ffn_down.weight')?.shape).toEqual([64, 172]);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset % 32).toBe(0);
  });

  it('reads tensor values at data offset + tensor offset', () => {
    const t = file.tensors.get('blk.1.ffn_norm.weight')!;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const got = file.readF32(t.name);
    expect(got.length).toBe(64);
    for (let i = 0; i < 64; i++) expect(got[i]).toBe(view.getFloat32(t.begin + 4 * i, true));
    expect(got.some((x) => x !== 0)).toBe(true);
  });

  it('rejects the file truncated in the header or in the tensor data', async () => {
    for (const cut of [0, 3, 23, 100, 5000, 11000, 14000, file.dataOffset + 100, bytes.length - 1]) {
      const e = await parseGguf(bytes.subarray(0, cut)).then(() => null, (x: unknown) => x);
      expect(e, `cut at ${cut}`).toBeInstanceOf(ModelFormatError);
    }
  });

  it('names a type forklm does not run, or an unknown type, when the tensor is read', async () => {
    const q = await parseGguf(patch1d(bytes, 'output_norm.weight', { type: 2 }));
    expect(q.tensors.get('output_norm.weight')?.typeName).toBe('Q4_0');
    expect(q.readF32('output_norm.weight')).toHaveLength(64); // a quantized vector is dequantized
    for (const [type, name] of [[16, 'IQ2_XXS'], [34, 'TQ1_0'], [39, 'MXFP4']] as const) {
      const iq = await parseGguf(patch1d(bytes, 'output_norm.weight', { type }));
      expect(() => iq.readF32('output_norm.weight')).toThrow(UnsupportedModelError);
      expect(() => iq.stored('output_norm.weight')).toThrow(new RegExp(`"output_norm.weight" is stored as ${name}, which forklm does not run`));
    }
    const u = await parseGguf(patch1d(bytes, 'output_norm.weight', { type: 999 }));
    expect(() => u.readF32('output_norm.weight')).toThrow(/type 999/);
  });

  it('rejects misaligned, overlapping, out-of-file and absurd tensor infos', async () => {
    const off = BigInt(file.tensors.get('output_norm.weight')!.begin - file.dataOffset);
    await rejects(parseGguf(patch1d(bytes, 'output_norm.weight', { offset: off + 4n })), ModelFormatError, /not a multiple of the alignment 32/);
    await rejects(parseGguf(patch1d(bytes, 'output_norm.weight', { offset: 0n })), ModelFormatError, /overlaps/);
    await rejects(parseGguf(patch1d(bytes, 'output_norm.weight', { offset: 1n << 30n })), ModelFormatError, /"output_norm.weight".*runs past/);
    await rejects(parseGguf(patch1d(bytes, 'output_norm.weight', { dim: 1n << 40n })), ModelFormatError, /dimension 0 is 1099511627776/);
    const many = bytes.slice();
    new DataView(many.buffer).setBigUint64(8, 1n << 33n, true);
    await rejects(parseGguf(many), ModelFormatError, /declares 8589934592 tensors/);
  });
});

describe('gguf: synthetic files', () => {
  const seed = testSeed();
  const rand = mulberry32(seed);
  const kvs = [
    { key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' },
    { key: 'llama.block_count', type: GGUFValueType.UINT32, value: 1 },
    { key: 'some.u64', type: GGUFValueType.UINT64, value: 12345678901n },
    { key: 'some.list', type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32, value: [-1, 2, 3] },
  ];

  it(`round-trips F32, F16 and BF16 tensors and typed metadata (seed ${seed})`, async () => {
    const a = randomNormal(rand, 6 * 10, 1);
    const b = randomNormal(rand, 33, 1);
    const c = randomNormal(rand, 4 * 3, 1);
    const bytes = encodeGguf(kvs, [
      { name: 'a', shape: [6, 10], data: a },
      { name: 'b', shape: [33], data: b, dtype: 'F16' },
      { name: 'c', shape: [4, 3], data: c, dtype: 'BF16' },
    ]);
    const f = await parseGguf(bytes, 'synthetic.gguf');
    expect(f.metadata['some.u64']).toBe(12345678901n);
    expect(f.metadata['some.list']).toEqual([-1, 2, 3]);
    expect(f.tensors.get('a')?.shape).toEqual([6, 10]);
    expect(f.readF32('a')).toEqual(a);
    const b16 = f.readF32('b');
    // f16: 10 stored mantissa bits, so within 2^-11 of each value (values here are N(0,1), far from subnormals)
    for (let i = 0; i < b.length; i++) expect(Math.abs(b16[i] - b[i])).toBeLessThanOrEqual(Math.abs(b[i]) * 2 ** -11 + 2 ** -25);
    const c16 = f.readF32('c');
    // bf16: 7 stored mantissa bits, so within 2^-8 of each value
    for (let i = 0; i < c.length; i++) expect(Math.abs(c16[i] - c[i])).toBeLessThanOrEqual(Math.abs(c[i]) * 2 ** -8);
  });

  it('issue 10.4: accepts zero-element tensors, e.g. ne = [4, 0] (row-major [0, 4]) with no data', async () => {
    // Today's main stopped multiplying once the running product (4) passed the data size (0), before the 0.
    for (const shape of [[0, 4], [4, 0], [0], [2, 0, 3]]) {
      const f = await parseGguf(encodeGguf([], [{ name: 'e', shape, data: new Float32Array(0) }]), 'zero.gguf');
      expect(f.tensors.get('e')!.shape).toEqual(shape);
      expect(f.readF32('e').length).toBe(0);
    }
    const f = await parseGguf(encodeGguf([], [{ name: 'e', shape: [0, 7], data: new Float32Array(0), dtype: 'F16' }, { name: 'w', shape: [3], data: new Float32Array([1, 2, 3]) }]));
    expect(Array.from(f.readF32('w'))).toEqual([1, 2, 3]);
  });

  it('finds an overlap that a zero-element tensor sits inside of', async () => {
    const bytes = encodeGguf([], [
      { name: 'a', shape: [16], data: new Float32Array(16) },
      { name: 'z', shape: [0], data: new Float32Array(0) },
      { name: 'b', shape: [1], data: new Float32Array(1) },
    ]);
    // a holds data bytes 0..64; z and b moved to 32, inside a: sorted, z comes between a and b.
    const patched = patch1d(patch1d(bytes, 'z', { offset: 32n }), 'b', { offset: 32n });
    await rejects(parseGguf(patched), ModelFormatError, /tensor "b" overlaps tensor "a"/);
  });

  it('honours general.alignment', async () => {
    const bytes = encodeGguf([{ key: 'general.alignment', type: GGUFValueType.UINT32, value: 64 }], [{ name: 'x', shape: [3], data: new Float32Array([1, 2, 3]) }, { name: 'y', shape: [1], data: new Float32Array([4]) }], 64);
    const f = await parseGguf(bytes);
    expect(f.alignment).toBe(64);
    expect(f.tensors.get('y')!.begin - f.tensors.get('x')!.begin).toBe(64);
    expect(Array.from(f.readF32('y'))).toEqual([4]);
  });

  it('rejects duplicate tensor names, bad magic, old versions and big-endian files', async () => {
    const one = { name: 'x', shape: [1], data: new Float32Array([1]) };
    await rejects(parseGguf(encodeGguf([], [one, one])), ModelFormatError, /"x" is listed twice/);
    const good = encodeGguf(kvs, [one]);
    const magic = good.slice();
    magic[0] = 0x48;
    await rejects(parseGguf(magic), ModelFormatError, /magic/);
    const v1 = good.slice();
    new DataView(v1.buffer).setUint32(4, 1, true);
    await rejects(parseGguf(v1), UnsupportedModelError, /version 1/);
    const be = good.slice();
    new DataView(be.buffer).setUint32(4, 3, false);
    await rejects(parseGguf(be), UnsupportedModelError, /big-endian/);
  });

  it('wraps the package\'s own parse errors (bad metadata value type) in ModelFormatError', async () => {
    const bytes = encodeGguf([{ key: 'k', type: GGUFValueType.UINT32, value: 7 }], []);
    // the value type u32 sits right after the 8-byte length and the 1-byte key "k"
    new DataView(bytes.buffer).setUint32(24 + 8 + 1, 77, true);
    await rejects(parseGguf(bytes), ModelFormatError, /header does not parse.*77/);
  });

});
