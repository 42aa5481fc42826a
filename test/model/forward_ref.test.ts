// The GPU forward against the float64 reference forward (test/ref/llama_ref.ts) on the same stories260K weights, at
// every position of random prompts of 1-300 tokens; and the prefill path (many rows in one pass) against the
// token-by-token path (one decode row per step).
import { afterAll, describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { refForward } from '../ref/llama_ref.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { loadStories } from './models.js';
import { row, rowError, stepAllRows } from './step_helpers.js';

// f32 forward of 5 layers with K <= 172 accumulations per dot product: rounding error per op ~6e-8 relative, grown by
// the depth and the attention softmax; 2e-5 of the row's largest |logit| leaves ~10x headroom over what we measure
// (1.5e-7 at n=1 on llvmpipe) while a wrong RoPE, mask or GQA mapping gives errors of order 1e-1.
const TOL = 2e-5;

describe.each(testAdapterChoices())('forward vs float64 reference on %s', (choice) => {
  const models: GpuModel[] = [];
  afterAll(() => models.forEach((m) => m.destroy()));

  it('matches at every position, prefill and token by token', async () => {
    const gpu = await gpuFor(choice);
    const { weights } = await loadStories('hf');
    const V = weights.config.vocabSize;
    const model = new GpuModel(gpu, weights, { maxRows: 320, maxSamples: 320, kvPages: 128 });
    models.push(model);
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (const n of [1, 7, 16, 17, 45, 300]) {
      const tokens = [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rand() * (V - 3)))];
      const want = refForward(weights, tokens);

      const kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
      const sched = new Scheduler(kv, { maxRowsPerStep: 320 });
      sched.addRequest(tokens);
      const prefill = await stepAllRows(model, sched);
      expect(prefill.plan.rows).toBe(n);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, rowError(row(prefill.logits, i, V), want[i]));
      expect(worst, `prefill n=${n} seed ${seed}`).toBeLessThanOrEqual(TOL);

      // Token by token: a one-token prompt, then each next token forced through commit().
      const kv2 = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
      const s2 = new Scheduler(kv2, { maxRowsPerStep: 320 });
      s2.addRequest([tokens[0]]);
      let worstStep = 0;
      let worstVsPrefill = 0;
      for (let i = 0; i < n; i++) {
        const next = i + 1 < n ? tokens[i + 1] : 0;
        const { plan, logits } = await stepAllRows(model, s2, () => [next]);
        expect(plan.rows).toBe(1);
        worstStep = Math.max(worstStep, rowError(row(logits, 0, V), want[i]));
        worstVsPrefill = Math.max(worstVsPrefill, rowError(row(logits, 0, V), row(prefill.logits, i, V)));
      }
      expect(worstStep, `token by token n=${n} seed ${seed}`).toBeLessThanOrEqual(TOL);
      // Both paths are within TOL of the same float64 values, so within 2*TOL of each other.
      expect(worstVsPrefill, `prefill vs token by token n=${n} seed ${seed}`).toBeLessThanOrEqual(2 * TOL);
    }
  });
});
