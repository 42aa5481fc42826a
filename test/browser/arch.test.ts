// Gemma 3, Qwen 3 and GPT-2 in Chromium (software WebGPU): the arch fixtures fetched over HTTP from the test server
// and loaded as a page would, one teacher-forced pass over prompt_ids + greedy_ids, logits at every position against
// transformers' logits.f32 and greedy tokens up to the first near-tie, as test/model/arch_gpu.test.ts does in Node.
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { loadModel } from '../../src/model/load.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor } from '../kernels/adapters.js';
import { stepAllRows } from '../model/step_helpers.js';

declare const __FORKLM_SHARED_MODELS__: string;
const base = (rel: string) => new URL(`/@fs${__FORKLM_SHARED_MODELS__}/../fixtures/arch/${rel}`, location.origin).href;

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

// The tolerance of test/model/arch_gpu.test.ts and its argument: the same kernels on the same software adapters
// (Chromium's Dawn), f32 in another summation order than transformers, measured worst 6.3e-6 in Node.
const TOL = 5e-5;

describe('arch fixtures in Chromium vs transformers', () => {
  it.each(['gemma3', 'qwen3-qknorm-headdim', 'gpt2'])('%s: logits at every position, greedy up to the first near-tie', async (folder) => {
    const ref = await (await fetch(base(`${folder}/reference.json`))).json();
    const want = new Float32Array(await (await fetch(base(`${folder}/logits.f32`))).arrayBuffer());
    const [T, V] = ref.logits_shape as [number, number];
    const m = await loadModel(base(`${folder}/`));
    const model = new GpuModel(await gpuFor('auto'), m.modelWeights, { maxRows: T, maxSamples: T, kvPages: Math.ceil(T / 16) + 1 });
    try {
      const sched = new Scheduler(new KvCache({ numPages: model.kvPages, pageSize: model.pageSize }), { maxRowsPerStep: T });
      sched.addRequest([...ref.prompt_ids, ...ref.greedy_ids]);
      const { logits } = await stepAllRows(model, sched);
      let worst = 0;
      for (let i = 0; i < T * V; i++) worst = Math.max(worst, Math.abs(logits[i] - want[i]));
      expect(worst, `${folder}: max |logit - transformers|`).toBeLessThan(TOL);
      const P = ref.prompt_ids.length;
      for (let i = 0; i < ref.greedy_ids.length && ref.margins[i] >= 0.02; i++) {
        expect(argmax(logits.subarray((P - 1 + i) * V, (P + i) * V)), `${folder} greedy step ${i}`).toBe(ref.greedy_ids[i]);
      }
    } finally {
      model.destroy();
    }
  });
});
