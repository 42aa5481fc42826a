// gpu/cpu_threads.ts: the rule that picks llvmpipe's worker-thread count from a model's size. layerWeights is checked
// against the matrices the loaders really produce for every arch fixture family (gated and plain MLPs, GQA, fused
// q|k|v files split at load, odd head dims), so the rule sees each family's real per-layer size; and the rule puts
// stories260K on the submitting thread and the SmolLM2-135M shape on Mesa's worker pool, the two models it was
// measured on (bench/RESULTS.md, "llvmpipe threads").
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autoCpuThreads, INLINE_TOKEN_WEIGHTS, layerWeights, tokenWeights } from '../../src/gpu/cpu_threads.js';
import { specFromLlamaConfig } from '../../src/model/from_llama.js';
import { loadModel } from '../../src/model/load.js';
import { SMOLLM2_135M } from '../../src/model/random_weights.js';
import { validateConfig } from '../../src/model/config_parse.js';
import type { LayerWeights } from '../../src/model/spec.js';
import type { WeightMatrix } from '../../src/weights/stored_matrix.js';
import { parseLpNumThreads } from '../../src/gpu/adapters.js';
import { sharedModelsDir } from '../ref/shared_models.js';

const archDir = join(sharedModelsDir(), '../fixtures/arch');
const FOLDERS = readdirSync(archDir).filter((d) => existsSync(join(archDir, d, 'config.json'))).sort();

const size = (m: WeightMatrix | null) => (m === null ? 0 : m instanceof Float32Array ? m.length : m.rows * m.cols);
const counted = (l: LayerWeights) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].reduce((a, m) => a + size(m), 0);

describe('layerWeights', () => {
  it('finds the fixtures', () => expect(FOLDERS.length).toBe(14));

  it.each(FOLDERS)('%s: equals the matrices of a loaded layer; tokenWeights adds them up with the LM head', async (folder) => {
    const m = await loadModel(join(archDir, folder));
    for (const layer of m.modelWeights.layers) expect(layerWeights(m.spec)).toBe(counted(layer));
    const all = m.modelWeights.layers.reduce((a, l) => a + counted(l), 0) + size(m.modelWeights.lmHead);
    expect(tokenWeights(m.spec)).toBe(all);
  });
});

describe('autoCpuThreads', () => {
  const spec = (c: Parameters<typeof validateConfig>[0]) => specFromLlamaConfig({ config: validateConfig(c, 'test') } as Parameters<typeof specFromLlamaConfig>[0]);

  it('runs stories260K on the submitting thread, stories15M and the SmolLM2-135M shape on the worker pool', async () => {
    const stories = await loadModel(join(sharedModelsDir(), 'stories260K/hf'));
    expect(tokenWeights(stories.spec)).toBeLessThan(INLINE_TOKEN_WEIGHTS);
    expect(autoCpuThreads(stories.spec)).toBe(0);
    const smol = spec(SMOLLM2_135M);
    expect(layerWeights(smol)).toBe(576 * (576 + 2 * 192) + 576 * 576 + 3 * 576 * 1536);
    expect(autoCpuThreads(smol)).toBeUndefined();
    // karpathy's stories15M (llama2.c): layers of 0.995M weights, under 1M each, but a 32000 x 288 LM head.
    const stories15M = spec({ ...SMOLLM2_135M, dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, maxSeqLen: 256 });
    expect(layerWeights(stories15M)).toBe(995_328);
    expect(autoCpuThreads(stories15M)).toBeUndefined();
  });
});

describe('parseLpNumThreads', () => {
  it('reads LP_NUM_THREADS as Mesa does (strtol base 0; its default when no digit leads)', () => {
    const cases: [string | undefined, number | null][] = [
      [undefined, null],
      ['', null],
      ['abc', null],
      ['0', 0],
      [' 3', 3],
      ['2abc', 2],
      ['0x10', 16],
      ['010', 8],
      ['-1', null],
      ['-0', 0],
    ];
    for (const [v, want] of cases) expect(parseLpNumThreads(v), String(v)).toBe(want);
  });
});
