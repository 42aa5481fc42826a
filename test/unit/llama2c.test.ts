// llama2.c checkpoints and tokenizer.bin: the real stories260K files and synthetic ones.
import { sharedModelsDir } from '../ref/shared_models.js';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import {
  encodeLlama2c,
  encodeLlama2cTokenizer,
  llama2cFileSize,
  parseLlama2cCheckpoint,
  parseLlama2cHeader,
} from '../../src/io/llama2c.js';
import { parseLlama2cTokenizer } from '../../src/tokenizer/llama2c.js';

const pieceText = (t: { pieces: Uint8Array[] }) => t.pieces.map((b) => new TextDecoder().decode(b));
import type { Llama2cArrays, Llama2cHeader } from '../../src/io/llama2c.js';
import { localModelDirs } from '../../src/model/resolve.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';

const stories = `${sharedModelsDir()}/stories260K`;

function header(values: number[]): Uint8Array {
  const b = new Uint8Array(28);
  values.forEach((x, i) => new DataView(b.buffer).setInt32(4 * i, x, true));
  return b;
}

describe('llama2.c: real stories260K files', () => {
  const bytes = stories ? new Uint8Array(readFileSync(`${stories}/llama2c/stories260K.bin`)) : new Uint8Array();
  const tok = stories ? new Uint8Array(readFileSync(`${stories}/llama2c/tok512.bin`)) : new Uint8Array();

  it('parses the header and checks the exact file size', () => {
    const h = parseLlama2cHeader(bytes);
    expect(h).toEqual({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
    expect(llama2cFileSize(h)).toBe(BigInt(bytes.length));
  });

  it('slices per-layer arrays out of the stacked sections', () => {
    const c = parseLlama2cCheckpoint(bytes);
    expect(c.tensorShape('wq.4')).toEqual([64, 64]);
    expect(c.tensorShape('wk.0')).toEqual([32, 64]);
    expect(c.tensorShape('w2.1')).toEqual([64, 172]);
    expect(c.tensorShape('wq.5')).toBeNull();
    expect(c.tensorShape('wcls')).toBeNull();
    // wk of layer 2 starts after the embedding, 5 rms_att, 5 wq and 2 wk
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const start = 28 + 4 * (512 * 64 + 5 * 64 + 5 * 64 * 64 + 2 * 32 * 64);
    const wk2 = c.readF32('wk.2');
    for (const i of [0, 1, 2047]) expect(wk2[i]).toBe(view.getFloat32(start + 4 * i, true));
    // freq_cis of position 1, pair 0 is cos(1) / sin(1) (theta^0 = 1): proves the section offsets line up
    const re = c.readF32('freq_cis_real');
    const im = c.readF32('freq_cis_imag');
    expect(re[4]).toBeCloseTo(Math.cos(1), 6);
    expect(im[4]).toBeCloseTo(Math.sin(1), 6);
  });

  it('rejects the checkpoint one byte short or long, and truncated headers', () => {
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, bytes.length - 1))).toThrow(/implies a 1056540-byte file, but it has 1056539 bytes/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => parseLlama2cCheckpoint(longer)).toThrow(ModelFormatError);
    for (const cut of [0, 3, 27]) expect(() => parseLlama2cCheckpoint(bytes.subarray(0, cut))).toThrow(/truncated/);
  });

  it('parses tok512.bin', () => {
    const t = parseLlama2cTokenizer(tok, 512);
    expect(t.pieces.length).toBe(512);
    expect(t.maxTokenLength).toBe(7);
    expect(pieceText(t).slice(0, 4)).toEqual(['<unk>', '\n<s>\n', '\n</s>\n', '<0x00>']);
    expect(pieceText(t)[259]).toBe(' t');
    expect(t.scores[261]).toBe(-2);
    expect(t.pieces[259]).toEqual(new Uint8Array([0x20, 0x74]));
    // the count can also come from the file itself
    expect(parseLlama2cTokenizer(tok).pieces.length).toBe(512);
  });

  it('rejects a tokenizer that does not match the vocabulary or is cut short', () => {
    expect(() => parseLlama2cTokenizer(tok, 511)).toThrow(/byte\(s\) left after/);
    expect(() => parseLlama2cTokenizer(tok, 513)).toThrow(ModelFormatError);
    expect(() => parseLlama2cTokenizer(tok.subarray(0, tok.length - 3), 512)).toThrow(/truncated/);
  });
});

describe('llama2.c: synthetic files', () => {
  const seed = testSeed();
  const rand = mulberry32(seed);
  const h: Llama2cHeader = { dim: 12, hiddenDim: 20, nLayers: 2, nHeads: 3, nKvHeads: 1, vocabSize: 17, seqLen: 9, sharedClassifier: false };

  function arrays(): Llama2cArrays {
    const hd = h.dim / h.nHeads;
    return {
      header: h,
      tokenEmbedding: randomNormal(rand, h.vocabSize * h.dim),
      layers: Array.from({ length: h.nLayers }, () => ({
        rmsAtt: randomNormal(rand, h.dim),
        wq: randomNormal(rand, h.nHeads * hd * h.dim),
        wk: randomNormal(rand, h.nKvHeads * hd * h.dim),
        wv: randomNormal(rand, h.nKvHeads * hd * h.dim),
        wo: randomNormal(rand, h.dim * h.nHeads * hd),
        rmsFfn: randomNormal(rand, h.dim),
        w1: randomNormal(rand, h.hiddenDim * h.dim),
        w2: randomNormal(rand, h.dim * h.hiddenDim),
        w3: randomNormal(rand, h.hiddenDim * h.dim),
      })),
      rmsFinal: randomNormal(rand, h.dim),
      wcls: randomNormal(rand, h.vocabSize * h.dim),
    };
  }

  it(`round-trips an unshared-classifier checkpoint with GQA (seed ${seed})`, () => {
    const a = arrays();
    const bytes = encodeLlama2c(a);
    // a negative vocab_size marks the unshared classifier
    expect(new DataView(bytes.buffer).getInt32(20, true)).toBe(-17);
    const c = parseLlama2cCheckpoint(bytes);
    expect(c.header).toEqual(h);
    expect(c.readF32('token_embedding_table')).toEqual(a.tokenEmbedding);
    expect(c.readF32('wcls')).toEqual(a.wcls);
    expect(c.readF32('wk.1')).toEqual(a.layers[1].wk);
    expect(c.readF32('w3.0')).toEqual(a.layers[0].w3);
    expect(c.readF32('rms_final_weight')).toEqual(a.rmsFinal);
  });

  it('rejects impossible headers and the newer export format', () => {
    expect(() => parseLlama2cHeader(header([0, 1, 1, 1, 1, 1, 1]))).toThrow(/dim is 0/);
    expect(() => parseLlama2cHeader(header([8, 1, 1, 2, 1, 0, 1]))).toThrow(/vocab_size is 0/);
    expect(() => parseLlama2cHeader(header([9, 1, 1, 3, 1, 5, 1]))).toThrow(/even head size/);
    expect(() => parseLlama2cHeader(header([12, 1, 1, 3, 2, 5, 1]))).toThrow(/not a multiple of n_kv_heads/);
    expect(() => parseLlama2cHeader(header([8, 1, 1, 2, -1, 5, 1]))).toThrow(/n_kv_heads is -1/);
    const v1 = header([0x616b3432, 1, 0, 0, 0, 0, 0]);
    expect(() => parseLlama2cHeader(v1)).toThrow(UnsupportedModelError);
    // a header whose sizes multiply past 2^53 still gets an exact size comparison
    const huge = header([2 ** 30, 2 ** 30, 2 ** 30, 2 ** 29, 2 ** 29, 2 ** 30, 2 ** 30]);
    expect(() => parseLlama2cCheckpoint(huge)).toThrow(/implies a \d{20,}-byte file, but it has 28 bytes/);
  });

  it('round-trips a tokenizer and checks token lengths', () => {
    const bytes = encodeLlama2cTokenizer({ tokens: ['<unk>', 'ab', 'é', ''], scores: [0, -1.5, 2, 3] });
    const t = parseLlama2cTokenizer(bytes, 4);
    expect(pieceText(t)).toEqual(['<unk>', 'ab', 'é', '']);
    expect(Array.from(t.scores)).toEqual([0, -1.5, 2, 3]);
    expect(t.maxTokenLength).toBe(5);
    const long = bytes.slice();
    new DataView(long.buffer).setInt32(4 + 4, 6, true); // token 0 claims 6 bytes > max 5
    expect(() => parseLlama2cTokenizer(long, 4)).toThrow(/token 0 claims 6 bytes/);
    const neg = bytes.slice();
    new DataView(neg.buffer).setInt32(4 + 4, -1, true);
    expect(() => parseLlama2cTokenizer(neg, 4)).toThrow(ModelFormatError);
    const zero = bytes.slice();
    new DataView(zero.buffer).setInt32(0, 0, true);
    expect(() => parseLlama2cTokenizer(zero, 4)).toThrow(/max_token_length is 0/);
    expect(() => parseLlama2cTokenizer(bytes, 1_000_000)).toThrow(ModelFormatError);
  });
});
