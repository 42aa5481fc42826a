// The GPU forward on the real shapes of the models people pick for the browser (Qwen3-0.6B, Gemma-3-270m,
// SmolLM2-360M, GPT-2 124M), with seeded random weights at 2-3 layers and a small vocabulary, against the float64
// forward over the same spec: head_dim 256 with one KV head, 128 with q/k norms, 15 / 5 heads, learned positions and
// LayerNorm with biases everywhere, sliding-window layers beside global ones, over a prompt longer than a page and the window.
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { GEMMA3_270M, GPT2_124M, QWEN3_06B, SMOLLM2_360M, randomModelWeights, withSpec } from '../../src/model/random_weights.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { specRefForward } from '../ref/spec_forward.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { row, rowError, stepAllRows } from './step_helpers.js';

const TOKENS = 24;
const SHAPES = {
  // Gemma 3 with a sliding layer (window cut to 10, so the 24-token prompt crosses it) and a global one.
  gemma3: withSpec(
    { ...GEMMA3_270M, layers: [{ ...GEMMA3_270M.layers[0], window: 10 }, GEMMA3_270M.layers[5]] },
    { nLayers: 2, vocabSize: 300, maxSeqLen: 64 },
  ),
  qwen3: withSpec(QWEN3_06B, { nLayers: 2, vocabSize: 300, maxSeqLen: 64 }),
  smollm2: withSpec(SMOLLM2_360M, { nLayers: 2, vocabSize: 300, maxSeqLen: 64 }),
  gpt2: withSpec(GPT2_124M, { nLayers: 2, vocabSize: 300, maxSeqLen: 64 }),
  // No family pairs the parallel layout with RMSNorm, but the forward supports it: its gate|up projection (norm folded
  // in) runs before the out-projection adds to h.
  parallel_rms: withSpec({ ...SMOLLM2_360M, residual: { layout: 'parallel', sharedNorm: false, scale: 1 } }, { nLayers: 2, vocabSize: 300, maxSeqLen: 64 }),
};

// N(0, 0.02) weights keep logits small (|logit| ~ 0.1-1): relative to the row's largest logit, f32 accumulation over
// K <= 3072 terms errs by ~1e-6 (the same bound as test/model/random_forward.test.ts); 5e-5 leaves headroom, and a
// wrong head mapping, window or norm errs by > 1e-2.
const TOL = 5e-5;

describe.each(testAdapterChoices())('random weights in real shapes vs the float64 spec forward on %s', (choice) => {
  it.each(Object.keys(SHAPES) as (keyof typeof SHAPES)[])('%s', async (name) => {
    const spec = SHAPES[name];
    const seed = testSeed();
    const weights = randomModelWeights(spec, seed);
    const gpu = await gpuFor(choice);
    const model = new GpuModel(gpu, weights, { maxRows: TOKENS, maxSamples: TOKENS, kvPages: 4 });
    try {
      const rand = mulberry32(seed);
      const tokens = Array.from({ length: TOKENS }, () => Math.floor(rand() * spec.vocabSize));
      const want = specRefForward(weights, tokens);
      const kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
      const sched = new Scheduler(kv, { maxRowsPerStep: TOKENS });
      sched.addRequest(tokens);
      const { logits } = await stepAllRows(model, sched);
      let worst = 0;
      for (let i = 0; i < tokens.length; i++) worst = Math.max(worst, rowError(row(logits, i, spec.vocabSize), want[i]));
      expect(worst, `${name} seed ${seed}`).toBeLessThanOrEqual(TOL);
    } finally {
      model.destroy();
    }
  });
});
