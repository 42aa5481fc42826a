// Shared-prefix (cascade) attention must be invisible: on a tree of forks (a prompt shared by every path, generated
// prefixes shared by subtrees, uneven lengths), every row's logits with the cascade equal those of plain paged
// attention on the same model, step by step; and the cascade really ran (its task lists were built at most steps).
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { GEMMA3_270M, randomModelWeights, SMOLLM2_360M, withSpec } from '../../src/model/random_weights.js';
import { validateSpec, type ModelSpec } from '../../src/model/spec.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { rowError, stepAllRows } from './step_helpers.js';

/**
 * Gemma-3-like layers at a small size: a sliding layer (window 20, shorter than the prompt) and a global one, GQA
 * (4 / 2 heads), head dim 32, an attention soft-cap of 30 (Gemma 2's), q/k norms, sandwich norms.
 */
const GEMMA_SMALL: ModelSpec = validateSpec(
  {
    ...GEMMA3_270M,
    dim: 128,
    vocabSize: 300,
    nLayers: 2,
    maxSeqLen: 256,
    attention: { ...GEMMA3_270M.attention, nHeads: 4, nKvHeads: 2, headDim: 32, queryScale: 32 ** -0.5, softCap: 30 },
    mlp: { ...GEMMA3_270M.mlp, hiddenDim: 256 },
    layers: [
      { ...GEMMA3_270M.layers[0], window: 20, rope: { ...GEMMA3_270M.layers[0].rope!, rotaryDim: 32 } },
      { ...GEMMA3_270M.layers[5], rope: { ...GEMMA3_270M.layers[5].rope!, rotaryDim: 32 } },
    ],
    embedScale: Math.fround(Math.sqrt(128)),
    bosTokenId: 2,
    eosTokenIds: [1],
  },
  'GEMMA_SMALL',
);
const SPECS: Record<string, ModelSpec> = {
  gemma: GEMMA_SMALL,
  // A Llama (SmolLM2's layout) with 6 / 2 heads of 20 dims: plain RoPE, no window, no soft-cap.
  llama: validateSpec(
    {
      ...withSpec(SMOLLM2_360M, { nLayers: 2, vocabSize: 300, maxSeqLen: 256 }),
      dim: 120,
      attention: { ...SMOLLM2_360M.attention, nHeads: 6, nKvHeads: 2, headDim: 20, queryScale: 20 ** -0.5 },
      mlp: { ...SMOLLM2_360M.mlp, hiddenDim: 240 },
      layers: Array.from({ length: 2 }, () => ({ ...SMOLLM2_360M.layers[0], rope: { ...SMOLLM2_360M.layers[0].rope!, rotaryDim: 20 } })),
    },
    'LLAMA_SMALL',
  ),
};

// Same argument as random_spec_forward.test.ts: N(0, 0.02) weights keep logits near 1, and two f32 computations of
// the same attention that differ only in summation order (the merge by log-sum-exp regroups the softmax sums) agree
// to ~1e-6 of the row's largest logit; 5e-5 leaves headroom, while a dropped or doubled page errs by > 1e-3.
const TOL = 5e-5;

interface Run {
  logits: Float32Array[]; // per step, (rows, V)
  cascadeSteps: number;
}

/** The same fork tree, step by step, with tokens fixed by (path, position) so both runs feed identical inputs. */
async function runTree(model: GpuModel, seed: number): Promise<Run> {
  const rand = mulberry32(seed);
  const V = model.spec.vocabSize;
  const kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
  const sched = new Scheduler(kv, { maxRowsPerStep: 64 });
  const token = (id: number, n: number) => 3 + ((id * 7919 + n * 104729) % (V - 3));
  const commit = (plan: { pathIds: number[]; samplePath: Uint32Array; samples: number }) =>
    Array.from({ length: plan.samples }, (_, s) => token(plan.pathIds[plan.samplePath[s]], sched.path(plan.pathIds[plan.samplePath[s]]).tokens.length));
  const prompt = Array.from({ length: 43 + Math.floor(rand() * 20) }, () => 3 + Math.floor(rand() * (V - 3)));
  const root = sched.addRequest(prompt).id;
  const out: Run = { logits: [], cascadeSteps: 0 };
  const step = async () => {
    const { logits } = await stepAllRows(model, sched, commit);
    out.logits.push(logits.slice());
    if (model.attention.cascadeUsed) out.cascadeSteps++;
  };
  await step(); // the prompt
  // Forks of the root at the tail and inside the prompt (several pages, and page boundaries), then forks of forks.
  const live = [root];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3; i++) {
      const parent = live[Math.floor(rand() * live.length)];
      const at = Math.max(1, sched.path(parent).computed - Math.floor(rand() * 40));
      live.push(sched.fork(parent, { atLength: at, nextTokens: [token(live.length, at)] }).id);
    }
    for (let s = 0; s < 3 + Math.floor(rand() * 4); s++) await step();
  }
  return out;
}

describe.each(testAdapterChoices())('shared-prefix attention on %s', (choice) => {
  it.each(Object.keys(SPECS))('%s: logits with the cascade equal plain paged attention on a fork tree', async (name) => {
    const spec = SPECS[name];
    const seed = testSeed();
    const gpu = await gpuFor(choice);
    const model = new GpuModel(gpu, randomModelWeights(spec, seed), { maxRows: 64, maxSamples: 64, kvPages: 96, cascade: true });
    try {
      const withCascade = await runTree(model, seed);
      model.attention.cascade = false;
      const plain = await runTree(model, seed);
      expect(plain.cascadeSteps).toBe(0);
      // Every step after the prompt has decode rows over whole shared pages.
      expect(withCascade.cascadeSteps, `seed ${seed}`).toBe(withCascade.logits.length - 1);
      expect(withCascade.logits.length).toBe(plain.logits.length);
      const V = spec.vocabSize;
      let worst = 0;
      withCascade.logits.forEach((l, s) => {
        for (let r = 0; r < l.length / V; r++) worst = Math.max(worst, rowError(l.subarray(r * V, (r + 1) * V), plain.logits[s].subarray(r * V, (r + 1) * V)));
      });
      expect(worst, `${name} seed ${seed}`).toBeLessThanOrEqual(TOL);
    } finally {
      model.destroy();
    }
  });
});
