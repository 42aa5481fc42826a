// The strongest check of the loaders: stories260K in three formats (HF rotate-half safetensors, GGUF and llama2.c
// with interleaved q/k) must give bit-identical LlamaWeights. That only holds if every name map, shape reversal,
// section offset and the q/k permutation direction are right.
import { sharedModelsDir } from '../ref/shared_models.js';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { f32BitsEqual } from '../../src/io/bytes.js';
import { loadModel } from '../../src/model/load.js';
import type { LoadedModel } from '../../src/model/load.js';
import { halfToInterleaved, interleavedToHalf } from '../../src/model/permute.js';
import { localModelDirs } from '../../src/model/resolve.js';
import { BIAS_SLOTS, LAYER_SLOTS } from '../../src/model/weight_maps.js';

const stories = `${sharedModelsDir()}/stories260K`;

describe('stories260K: three formats, one set of weights', async () => {
  const hf = await loadModel(`${stories}/hf`);
  const gguf = await loadModel(`${stories}/gguf/stories260K.gguf`);
  const l2c = await loadModel(`${stories}/llama2c/stories260K.bin`);
  const models: [string, LoadedModel][] = [['gguf', gguf], ['llama2c', l2c]];

  it('loads each format as what it is', () => {
    expect([hf.format, gguf.format, l2c.format]).toEqual(['hf', 'gguf', 'llama2c']);
    expect(hf.tokenizer?.kind).toBe('hf');
    expect(gguf.tokenizer?.kind).toBe('gguf');
    expect(l2c.tokenizer?.kind).toBe('llama2c');
    for (const m of [hf, gguf, l2c]) expect(m.unusedTensors).toEqual([]);
  });

  it('has the README configuration in every format (GGUF declares context 2048, the others 512)', () => {
    expect(hf.config).toMatchObject({ architecture: 'llama', dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512 });
    expect(hf.config).toMatchObject({ maxSeqLen: 512, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true, bosTokenId: 1, eosTokenIds: [2] });
    expect(l2c.config).toEqual(hf.config);
    expect(gguf.config).toEqual({ ...hf.config, maxSeqLen: 2048 });
  });

  it.each(models)('%s weights equal the HF weights bit for bit, every array', (_name, m) => {
    const a = hf.weights;
    const b = m.weights;
    const arrays: [string, Float32Array | undefined, Float32Array | undefined][] = [
      ['embed', a.embed, b.embed],
      ['finalNorm', a.finalNorm, b.finalNorm],
      ['lmHead', a.lmHead, b.lmHead],
    ];
    a.layers.forEach((l, i) => {
      for (const s of [...LAYER_SLOTS, ...BIAS_SLOTS]) arrays.push([`layers.${i}.${s}`, l[s], b.layers[i][s]]);
    });
    expect(b.layers.length).toBe(5);
    for (const [what, x, y] of arrays) {
      expect(x === undefined, `${what} presence`).toBe(y === undefined);
      if (x && y) expect(f32BitsEqual(x, y), `${what} differs`).toBe(true);
    }
    expect(b.lmHead).toBe(b.embed);
    expect(b.embed.length).toBe(512 * 64);
  });

  it('is not equal by accident: the other permutation direction, or none, breaks the match', () => {
    const c = hf.config;
    // undo the loader's permutation to get the file's interleaved rows back
    const rawQ = halfToInterleaved(l2c.weights.layers[0].wq, c.nHeads, c.headDim, c.dim);
    const rawK = halfToInterleaved(l2c.weights.layers[0].wk, c.nKvHeads, c.headDim, c.dim);
    expect(f32BitsEqual(rawQ, hf.weights.layers[0].wq)).toBe(false);
    expect(f32BitsEqual(rawK, hf.weights.layers[0].wk)).toBe(false);
    // the inverse map applied to the raw rows is a different permutation for head size 8, and gives other weights
    expect(f32BitsEqual(halfToInterleaved(rawQ, c.nHeads, c.headDim, c.dim), hf.weights.layers[0].wq)).toBe(false);
    expect(f32BitsEqual(interleavedToHalf(rawQ, c.nHeads, c.headDim, c.dim), hf.weights.layers[0].wq)).toBe(true);
  });
});
