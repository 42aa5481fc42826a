// Every decoder family of ../shared/fixtures/arch on the GPU against Hugging Face transformers: one teacher-forced
// pass over prompt_ids + greedy_ids (a single prefill step of every row), logits at every position against
// logits.f32, and the greedy tokens up to the first near-tie (fixtures README).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { loadModel } from '../../src/model/load.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { sharedModelsDir } from '../ref/shared_models.js';
import { stepAllRows } from './step_helpers.js';

const archDir = join(sharedModelsDir(), '../fixtures/arch');
const FOLDERS = readdirSync(archDir).filter((d) => existsSync(join(archDir, d, 'reference.json'))).sort();

interface ArchReference {
  prompt_ids: number[];
  greedy_ids: number[];
  margins: number[];
  logits_shape: [number, number];
}

export function readArchReference(folder: string): { ref: ArchReference; logits: Float32Array } {
  const ref = JSON.parse(readFileSync(join(archDir, folder, 'reference.json'), 'utf8')) as ArchReference;
  const bytes = readFileSync(join(archDir, folder, 'logits.f32'));
  return { ref, logits: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * Both sides compute in float32 over the same stored values, in different orders: our matmuls sum K <= 192 terms in
 * 4 lanes, transformers' (oneDNN) in its own blocking; attention, norms and softmax likewise. Each op's result then
 * differs by a few ulps of its magnitude (~1e-6 relative), and three layers of width 64-192 carry that to the logits
 * (magnitude 1-5) as a few 1e-6. Measured worst per folder on llvmpipe and SwiftShader: 2.4e-7 (granite) to 6.3e-6
 * (gemma2, whose soft-caps and sandwich norms add ops), 1.2-4.3e-6 for the rest. 5e-5 leaves 8x room and is still
 * 200x below what a wrong switch does (a window off by one, a missed 1 + w, a NoPE layer rotated: > 1e-2).
 */
const TOL = 5e-5;

describe.each(testAdapterChoices())('arch fixtures on the GPU (%s) vs transformers', (choice) => {
  it.each(FOLDERS)('%s: logits at every position, greedy up to the first near-tie', async (folder) => {
    const { ref, logits: want } = readArchReference(folder);
    const [T, V] = ref.logits_shape;
    const m = await loadModel(join(archDir, folder));
    const gpu = await gpuFor(choice);
    const model = new GpuModel(gpu, m.modelWeights, { maxRows: T, maxSamples: T, kvPages: Math.ceil(T / 16) + 1 });
    try {
      const kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
      const sched = new Scheduler(kv, { maxRowsPerStep: T });
      const tokens = [...ref.prompt_ids, ...ref.greedy_ids];
      sched.addRequest(tokens);
      const { plan, logits } = await stepAllRows(model, sched);
      expect(plan.rows).toBe(T);
      let worst = 0;
      for (let i = 0; i < T * V; i++) worst = Math.max(worst, Math.abs(logits[i] - want[i]));
      expect(worst, `${folder}: max |logit - transformers| on ${choice}`).toBeLessThan(TOL);
      const P = ref.prompt_ids.length;
      for (let i = 0; i < ref.greedy_ids.length && ref.margins[i] >= 0.02; i++) {
        expect(argmax(logits.subarray((P - 1 + i) * V, (P + i) * V)), `${folder} greedy step ${i}`).toBe(ref.greedy_ids[i]);
      }
    } finally {
      model.destroy();
    }
  });
});
