// Batch invariance on quantized GGUF models: a path's logits and tokens are the same bits alone as batched with seven
// other paths (README: batched == single). The quantized matmul must take one body at every M whose per-row arithmetic
// does not depend on M: on 8-bit activations (the default for Q8_0, Q4_0..Q5_1, Q4_K and Q6_K) qmatmul_q8.wgsl with 1, 4 or 8
// rows per invocation, for the other types the register-blocked f32 body. Its dot-step decode kernel at M = 1 rounds
// differently (up to ~6e-6 here), which arch_engine's 4e-5 tolerance would miss. On llvmpipe a one-row step also
// skips quantize dispatches (act_q8, the x hand-off), which must give the same bits as the quantize_x8 of wider steps.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import { loadModel } from '../../src/model/load.js';
import { hasIntDot } from '../../src/kernels/weight_shader.js';
import { handoffPairs } from '../../src/model/projections.js';
import { gpuFor } from '../kernels/adapters.js';
import { sharedModelsDir } from '../ref/shared_models.js';
import { mulberry32 } from '../ref/random.js';
import { stepPaths, type PathRecord } from '../ref/step_paths.js';

const STEPS = 24;

// Q5_0 (8-row tiles, Q8_0 fallbacks) and Q4_K_M (Q4_K, Q6_K, Q5_0 and F32 mixed).
describe.each(['llama256-Q5_0.gguf', 'llama256-Q4_K_M.gguf'])('batch invariance on %s (llvmpipe)', (file) => {
  it('seeded sampling: each path alone equals itself batched with 3 and with 7 others, logits bit for bit', async () => {
    const m = await loadModel(join(sharedModelsDir(), '../fixtures/gguf', file));
    const gpu = await gpuFor('llvmpipe');
    const V = m.spec.vocabSize;
    const rand = mulberry32(3);
    // Uneven prompt lengths, so batched rows sit at different positions and pages.
    const prompts = Array.from({ length: 8 }, (_, i) => [1, ...Array.from({ length: 5 + 3 * i }, () => 3 + Math.floor(rand() * (V - 3)))]);
    async function run(which: number[]): Promise<Map<number, PathRecord>> {
      const e = await Engine.fromWeights(m.modelWeights, null, { gpu, kvPages: 200, maxRows: 200, maxSamples: 32 });
      // The 8-bit path is what runs: 8-bit activations (the default) on some 4- or 5-bit matrix of the file.
      const types = e.model.weights.layers.flatMap((l) => [l.wqkv, l.wo, l.wGateUp, l.wDown].flatMap((w) => w.parts.map((p) => p.type)));
      expect(e.model.activations === 'q8' && types.some(hasIntDot)).toBe(true);
      // One-row steps hand x over between 8-bit matmuls on llvmpipe (kernels/x8_handoff.ts), wider ones quantize it:
      // the same bits either way is what this test holds.
      const pairs = handoffPairs(gpu, e.model.spec, e.model.weights.layers, e.model.activations);
      expect(pairs.some((p) => p.o || p.down)).toBe(true);
      const out = await stepPaths(e, prompts, which, STEPS);
      e.destroy();
      return out;
    }
    // 8 rows take the prefill blocking (8 rows per invocation), 4 rows the small-batch one (4), 1 row 1.
    const batches = [await run([0, 1, 2, 3, 4, 5, 6, 7]), await run([0, 2, 5, 7])];
    for (const i of [0, 5]) {
      const alone = (await run([i])).get(i)!;
      for (const [b, together] of batches.entries()) {
        const batched = together.get(i)!;
        expect(alone.tokens).toEqual(batched.tokens);
        for (let s = 0; s < STEPS; s++) {
          let differing = 0;
          for (let v = 0; v < V; v++) if (alone.logits[s][v] !== batched.logits[s][v]) differing++;
          expect(differing, `path ${i}, step ${s}: logits differing from batched run ${b}`).toBe(0);
        }
      }
    }
  }, 600_000);
});
