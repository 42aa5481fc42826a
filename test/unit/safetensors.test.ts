// The safetensors reader on the real stories260K file and on synthetic files, including every malformation the
// reader promises to name.
import { sharedModelsDir } from '../ref/shared_models.js';
import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import { bf16ToF32, f16ToF32, floatToBf16Bits, floatToHalfBits } from '../../src/io/bytes.js';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.js';
import { localModelDirs } from '../../src/model/resolve.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';

const stories = `${sharedModelsDir()}/stories260K`;

/** A file from a raw header object and a data section of `dataLen` bytes. */
function rawFile(header: unknown, dataLen: number, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataLen; i++) out[8 + json.length + i] = (i * 37 + 11) & 0xff;
  return out;
}

function formatError(f: () => unknown): ModelFormatError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFormatError);
    return e as ModelFormatError;
  }
  throw new Error('expected a ModelFormatError');
}

describe('safetensors: real stories260K file', () => {
  const bytes = readFileSync(`${stories}/hf/model.safetensors`);
  const file = parseSafetensors(bytes, 'model.safetensors');

  it('lists every tensor with its shape, dtype and metadata', () => {
    // embed + 5 layers x 9 tensors + final norm; no lm_head (tied)
    expect(file.tensors.size).toBe(1 + 5 * 9 + 1);
    expect(file.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [512, 64] });
    expect(file.tensors.get('model.layers.3.self_attn.k_proj.weight')?.shape).toEqual([32, 64]);
    expect(file.tensors.get('model.layers.4.mlp.down_proj.weight')?.shape).toEqual([64, 172]);
    expect(file.metadata?.format).toBe('pt');
  });

  it('reads values at the declared offsets', () => {
    const t = file.tensors.get('model.layers.2.mlp.up_proj.weight')!;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const got = file.readF32(t.name);
    expect(got.length).toBe(172 * 64);
    for (const i of [0, 1, 4321, got.length - 1]) expect(got[i]).toBe(view.getFloat32(t.begin + 4 * i, true));
    // real weights, not a zero region
    expect(got.some((x) => x !== 0)).toBe(true);
  });

  it('rejects the file truncated anywhere', () => {
    for (const cut of [0, 7, 8, 100, 4936, bytes.length - 1]) {
      expect(() => parseSafetensors(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(ModelFormatError);
    }
  });
});

describe('safetensors: synthetic files', () => {
  const seed = testSeed();
  const rand = mulberry32(seed);

  it(`round-trips F32 exactly and F16/BF16 to the nearest representable value (seed ${seed})`, () => {
    const a = randomNormal(rand, 3 * 5, 2);
    const b = randomNormal(rand, 7, 100);
    const c = randomNormal(rand, 2 * 9, 0.01);
    const bytes = encodeSafetensors(
      [
        { name: 'a', shape: [3, 5], data: a },
        { name: 'b', shape: [7], data: b, dtype: 'F16' },
        { name: 'c', shape: [2, 9], data: c, dtype: 'BF16' },
      ],
      { note: 'synthetic' },
    );
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ note: 'synthetic' });
    expect(f.readF32('a')).toEqual(a);
    const b16 = f.readF32('b');
    const c16 = f.readF32('c');
    for (let i = 0; i < b.length; i++) {
      // the decoded value is the f16 the writer chose, within half an ulp (10 stored mantissa bits: 2^-11 of the
      // value; 2^-25 absolute for subnormals)
      expect(floatToHalfBits(b16[i])).toBe(floatToHalfBits(b[i]));
      expect(Math.abs(b16[i] - b[i])).toBeLessThanOrEqual(Math.abs(b[i]) * 2 ** -11 + 2 ** -25);
    }
    for (let i = 0; i < c.length; i++) {
      // bf16 stores 7 mantissa bits: half an ulp is at most 2^-8 of the value
      expect(Math.abs(c16[i] - c[i])).toBeLessThanOrEqual(Math.abs(c[i]) * 2 ** -8);
      expect(floatToBf16Bits(c16[i])).toBe(floatToBf16Bits(c[i]));
    }
  });

  it('converts every f16 bit pattern exactly (decode then encode is the identity)', () => {
    const all = new Uint8Array(65536 * 2);
    for (let h = 0; h < 65536; h++) {
      all[2 * h] = h & 0xff;
      all[2 * h + 1] = h >> 8;
    }
    const f = f16ToF32(all, 0, 65536);
    expect(f[0x3c00]).toBe(1);
    expect(f[0xc000]).toBe(-2);
    expect(f[0x0001]).toBe(2 ** -24);
    expect(f[0x7bff]).toBe(65504);
    expect(f[0x7c00]).toBe(Infinity);
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN16) expect(Number.isNaN(f[h])).toBe(true);
      else if (floatToHalfBits(f[h]) !== h) mismatches++;
    }
    expect(mismatches).toBe(0);
    // rounding: halfway between 1 and 1+2^-10 goes to even (1); a hair above goes up
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    expect(floatToHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(floatToHalfBits(70000)).toBe(0x7c00);
  });

  it('converts bf16 as the top half of an f32', () => {
    const bytes = new Uint8Array([0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40]); // 1, -2, 3.140625
    expect(Array.from(bf16ToF32(bytes, 0, 3))).toEqual([1, -2, 3.140625]);
    expect(floatToBf16Bits(Math.PI)).toBe(0x4049);
  });

  it('accepts tensors listed in any order', () => {
    const f = parseSafetensors(rawFile({ z: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8));
    expect([...f.tensors.keys()].sort()).toEqual(['a', 'z']);
    expect(f.tensors.get('z')!.begin - f.tensors.get('a')!.begin).toBe(4);
  });

  it('names an unsupported dtype when it is read, not when an unused tensor is listed', () => {
    const f = parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ids: { dtype: 'I32', shape: [3], data_offsets: [8, 20] } }, 20));
    expect(f.readF32('w').length).toBe(2);
    expect(() => f.readF32('ids')).toThrow(UnsupportedModelError);
    expect(() => f.readF32('ids')).toThrow(/"ids" has dtype I32/);
    expect(() => f.readF32('nope')).toThrow(/no tensor named "nope"/);
  });

  it('issue 10.4: accepts zero-element tensors with a 0 in any dimension, e.g. [4, 0] with data_offsets [0, 0]', () => {
    // Today's main stopped multiplying once the running product (4) passed the data size (0), before the 0.
    for (const shape of [[4, 0], [0, 4], [0], [3, 0, 2 ** 40]]) {
      const f = parseSafetensors(rawFile({ e: { dtype: 'F32', shape, data_offsets: [0, 0] } }, 0), 'x.safetensors');
      expect(f.tensors.get('e')!.shape).toEqual(shape);
      expect(f.readF32('e').length).toBe(0);
    }
    // Beside a real tensor, in either order of offsets.
    const f = parseSafetensors(rawFile({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, e: { dtype: 'BF16', shape: [5, 0], data_offsets: [4, 4] } }, 4));
    expect(f.readF32('w').length).toBe(2);
    expect(f.readF32('e').length).toBe(0);
  });

  it('sizes a shape exactly past 2^53: [2^30 + 1, 2^30 + 1] of F32 is not the float-rounded byte count', () => {
    const exact = (2n ** 30n + 1n) ** 2n * 4n; // 2^62 + 2^33 + 4: a float product rounds the + 4 away
    expect(BigInt((2 ** 30 + 1) * (2 ** 30 + 1) * 4)).not.toBe(exact);
    const e = formatError(() => parseSafetensors(rawFile({ a: { dtype: 'F32', shape: [2 ** 30 + 1, 2 ** 30 + 1], data_offsets: [0, 8] } }, 8)));
    expect(e.message).toContain(`needs ${exact} bytes`);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['a file shorter than the length field', new Uint8Array(5), /fewer than the 8-byte header length/],
    ['a header length beyond the file', (() => { const b = rawFile({}, 0); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), /header length is 1099511627776 bytes but only/],
    ['invalid JSON', rawFile(null, 0, '{"a": {"dtype": "F32",'), /not valid JSON/],
    ['a JSON array header', rawFile([1, 2], 0), /not an object/],
    ['invalid UTF-8 in the header', rawFile(null, 0, '{"\u00ff": 1}').map((x, i) => (i === 11 ? 0xff : x)), /UTF-8/],
    ['overlapping offsets', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /tensor "b" .*overlaps tensor "a"/],
    ['a gap between tensors', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12), /4 unused byte\(s\) before tensor "b"/],
    ['bytes after the last tensor', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 9), /5 byte\(s\) after the last tensor/],
    ['offsets past the data section', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /tensor "a".*run past the 8-byte data section/],
    ['a shape that does not match the byte length', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor "a": shape \[3\] of F32 needs 12 bytes, but data_offsets \[0, 8\] hold 8/],
    ['a shape whose product overflows', rawFile({ a: { dtype: 'F16', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), /tensor "a": shape/],
    ['reversed offsets', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 8), /end before they begin/],
    ['fractional offsets', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, 8), /not a pair of non-negative integers/],
    ['a negative dimension', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape is not a list/],
    ['a missing dtype', rawFile({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /dtype is missing/],
    ['a non-object tensor entry', rawFile({ a: 3 }, 0), /tensor "a": its header entry is not an object/],
    ['non-string metadata', rawFile({ __metadata__: { k: 1 } }, 0), /__metadata__\["k"\] is not a string/],
  ];
  it.each(bad)('rejects %s with a ModelFormatError that says what is wrong', (_what, bytes, message) => {
    expect(formatError(() => parseSafetensors(bytes, 'x.safetensors')).message).toMatch(message);
  });
});
