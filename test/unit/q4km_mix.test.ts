// The weights bench's Q4_K_M model (bench/common/model_decode.ts q4kmType) against a file llama-quantize made: every
// matrix of ../shared/fixtures/gguf/llama256-Q4_K_M.gguf (2 layers, rows of 256: no fallback) has the type the recipe
// gives it. A wrong use_more_bits layer or a head left in Q4_K would show here.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model/load.js';
import { q4kmType } from '../../bench/common/model_decode.js';
import type { WeightMatrix } from '../../src/weights/stored_matrix.js';
import { ggufDir } from '../ref/gguf_reference.js';

/** A matrix's storage type (F32 when held as a Float32Array). */
const typeOf = (m: WeightMatrix | null): string => (!m || m instanceof Float32Array ? 'F32' : m.type);

describe('Q4_K_M recipe of the weights bench', () => {
  it('gives every matrix of llama.cpp Q4_K_M fixture its type', async () => {
    const w = (await loadModel(join(ggufDir, 'llama256-Q4_K_M.gguf'))).modelWeights;
    const n = w.layers.length;
    expect(w.lmHead).toBe(w.embed);
    expect(typeOf(w.embed)).toBe(q4kmType('head', 0, n));
    const kinds = ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'] as const;
    const got = w.layers.map((l) => kinds.map((k) => typeOf(l[k])));
    const want = w.layers.map((_, i) => kinds.map((k) => q4kmType(k === 'wv' || k === 'wDown' ? k : 'other', i, n)));
    expect(got).toEqual(want);
    // Not trivially: the recipe mixes types within the file.
    expect(new Set(got.flat()).size).toBe(2);
  });
});
