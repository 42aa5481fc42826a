// The GPU forward on the shapes real configs have that stories260K does not: Qwen2-style q/k/v bias, GQA ratios of
// 3 and 7, untied LM head, theta 1e6, head dim 64 — seeded random weights at small width, against float64.
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { QWEN25_05B, SMOLLM2_135M, randomWeights, withConfig } from '../../src/model/random_weights.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { refForward } from '../ref/llama_ref.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { row, rowError, stepAllRows } from './step_helpers.js';

const CONFIGS = {
  // 9 query heads over 3 KV heads, head dim 64, tied embeddings, as SmolLM2-135M; 2 layers, narrow MLP, small vocab.
  smollm: withConfig(SMOLLM2_135M, { nLayers: 2, hiddenDim: 200, vocabSize: 1000, maxSeqLen: 256 }),
  // 14 query heads over 2 KV heads (ratio 7), q/k/v bias, theta 1e6, untied head, as Qwen2.5-0.5B.
  qwen: withConfig(QWEN25_05B, { nLayers: 2, hiddenDim: 300, vocabSize: 1500, maxSeqLen: 256, tiedEmbeddings: false, bosTokenId: 1, eosTokenIds: [2] }),
};

// Random N(0, 0.02) weights keep logits small (|logit| ~ 0.1-1), so the row-scale error of f32 accumulation over
// K = 896 terms is ~1e-6 (measured 6e-7 and 8e-7); 5e-5 leaves headroom, and a wrong bias, GQA mapping or RoPE theta errs by > 1e-2.
const TOL = 5e-5;

describe.each(testAdapterChoices())('random-weight forward vs float64 on %s', (choice) => {
  it.each(Object.keys(CONFIGS) as (keyof typeof CONFIGS)[])('%s shape', async (name) => {
    const config = CONFIGS[name];
    const seed = testSeed();
    const weights = randomWeights(config, seed);
    const gpu = await gpuFor(choice);
    const model = new GpuModel(gpu, weights, { maxRows: 64, maxSamples: 64, kvPages: 32 });
    try {
      const rand = mulberry32(seed);
      const tokens = Array.from({ length: 37 }, () => Math.floor(rand() * config.vocabSize));
      const want = refForward(weights, tokens);
      const kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
      const sched = new Scheduler(kv, { maxRowsPerStep: 64 });
      sched.addRequest(tokens);
      const { logits } = await stepAllRows(model, sched);
      let worst = 0;
      for (let i = 0; i < tokens.length; i++) worst = Math.max(worst, rowError(row(logits, i, config.vocabSize), want[i]));
      expect(worst, `${name} seed ${seed}`).toBeLessThanOrEqual(TOL);
    } finally {
      model.destroy();
    }
  });
});
