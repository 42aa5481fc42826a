// gpu/cpu_threads.ts: the rule that picks llvmpipe's worker-thread count from a model's size. layerWeights is checked
// against the matrices the loaders really produce for every arch fixture family (gated and plain MLPs, GQA, fused
// q|k|v files split at load, odd head dims), so the rule sees each family's real per-layer size; and the rule puts
// stories260K on the submitting thread and the SmolLM2-135M shape on Mesa's worker pool, the two models it was
// measured on (bench/RESULTS.md, "llvmpipe threads").
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autoCpuThreads, INLINE_LAYER_WEIGHTS, layerWeights } from '../../src/gpu/cpu_threads.js';
import { specFromLlamaConfig } from '../../src/model/from_llama.js';
import { loadModel } from '../../src/model/load.js';
import { SMOLLM2_135M } from '../../src/model/random_weights.js';
import type { LayerWeights } from '../../src/model/spec.js';
import type { WeightMatrix } from '../../src/weights/stored_matrix.js';
import { sharedModelsDir } from '../ref/shared_models.js';

const archDir = join(sharedModelsDir(), '../fixtures/arch');
const FOLDERS = readdirSync(archDir).filter((d) => existsSync(join(archDir, d, 'config.json'))).sort();

const size = (m: WeightMatrix | null) => (m === null ? 0 : m instanceof Float32Array ? m.length : m.rows * m.cols);
const counted = (l: LayerWeights) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].reduce((a, m) => a + size(m), 0);

describe('layerWeights', () => {
  it('finds the fixtures', () => expect(FOLDERS.length).toBe(14));

  it.each(FOLDERS)('%s: equals the matrices of a loaded layer', async (folder) => {
    const m = await loadModel(join(archDir, folder));
    for (const layer of m.modelWeights.layers) expect(layerWeights(m.spec)).toBe(counted(layer));
  });
});

describe('autoCpuThreads', () => {
  it('runs stories260K on the submitting thread and the SmolLM2-135M shape on the worker pool', async () => {
    const stories = await loadModel(join(sharedModelsDir(), 'stories260K/hf'));
    expect(layerWeights(stories.spec)).toBeLessThan(INLINE_LAYER_WEIGHTS);
    expect(autoCpuThreads(stories.spec)).toBe(0);
    const smol = specFromLlamaConfig({ config: SMOLLM2_135M } as Parameters<typeof specFromLlamaConfig>[0]);
    expect(layerWeights(smol)).toBe(576 * (576 + 2 * 192) + 576 * 576 + 3 * 576 * 1536);
    expect(autoCpuThreads(smol)).toBeUndefined();
  });
});
