// The arch checkpoints as llama.cpp converted them (../shared/fixtures/gguf/arch-*.gguf, F32) on the GPU against
// llama.cpp's own output: one teacher-forced pass per prompt, the log-probs of llama.cpp's top 5 at every greedy step
// and the greedy token where llama.cpp's margin is not a near-tie (fixtures README).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { loadModel } from '../../src/model/load.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { sharedModelsDir } from '../ref/shared_models.js';
import { stepAllRows } from './step_helpers.js';

const ggufDir = join(sharedModelsDir(), '../fixtures/gguf');
const FILES = readdirSync(ggufDir).filter((f) => /^arch-.*\.gguf$/.test(f)).sort();

interface GgufReference {
  cases: { prompt_ids: number[]; greedy_ids: number[]; logprob_margins: number[]; steps: { id: number; logprob: number; top: [number, number][] }[] }[];
}

function logSoftmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(z, (x) => x - lse);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * llama.cpp's CPU attention keeps K/V in f16 and converts q to f16 for its dot products (2^-11 relative each) and
 * reports log-probs through its float32 sampler: the float64 forward over the same file is within 3.5e-3 of it at
 * worst (test/unit/arch_fixtures.test.ts), and our f32 GPU forward is within ~1e-5 of float64, so 5e-3 bounds both;
 * a wrong switch (RoPE pairing, NoPE layer, norm, scaling) moves these log-probs by 1e-2 to 1.
 */
const TOL = 5e-3;

describe.each(testAdapterChoices())('arch GGUF files on the GPU (%s) vs llama.cpp', (choice) => {
  it.each(FILES)('%s', async (file) => {
    const ref = JSON.parse(readFileSync(join(ggufDir, file.replace(/\.gguf$/, '.reference.json')), 'utf8')) as GgufReference;
    const m = await loadModel(join(ggufDir, file));
    const V = m.spec.vocabSize;
    const longest = Math.max(...ref.cases.map((c) => c.prompt_ids.length + c.greedy_ids.length));
    const model = new GpuModel(await gpuFor(choice), m.modelWeights, { maxRows: longest, maxSamples: longest, kvPages: 2 * Math.ceil(longest / 16) });
    try {
      for (const c of ref.cases) {
        const sched = new Scheduler(new KvCache({ numPages: model.kvPages, pageSize: model.pageSize }), { maxRowsPerStep: longest });
        sched.addRequest([...c.prompt_ids, ...c.greedy_ids].slice(0, -1));
        const { logits } = await stepAllRows(model, sched);
        const P = c.prompt_ids.length;
        let worst = 0;
        // llama.cpp's server leaves out the step of a token that ends inside a UTF-8 sequence: match steps by id.
        for (let i = 0, j = 0; i < c.steps.length; i++, j++) {
          while (j < c.greedy_ids.length && c.greedy_ids[j] !== c.steps[i].id) j++;
          expect(j, `${file}: step ${i} is not among the greedy ids`).toBeLessThan(c.greedy_ids.length);
          const lp = logSoftmax(logits.subarray((P - 1 + j) * V, (P + j) * V));
          for (const [id, want] of c.steps[i].top) worst = Math.max(worst, Math.abs(lp[id] - want));
          if (c.logprob_margins[i] >= 0.05) expect(argmax(lp), `${file} greedy step ${i}`).toBe(c.steps[i].id);
        }
        expect(worst, `${file}: max |log-prob - llama.cpp| over the top 5 of every step`).toBeLessThan(TOL);
      }
    } finally {
      model.destroy();
    }
  });
});
