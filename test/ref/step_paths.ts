// Steps an engine's paths together and records each one's tokens and logits per step: the batched == single tests
// (test/model/quant_batch_invariance.test.ts, test/ref/quant_mixed_model.ts) compare these runs bit for bit.
import type { Engine } from '../../src/engine.js';

export interface PathRecord {
  tokens: number[];
  logits: Float32Array[]; // per step, (V) f32
}

/**
 * Creates one path per index in `which` (prompt prompts[i], seed 100 + i, temperature 1), runs `steps` steps and
 * returns each path's record by its index.
 */
export async function stepPaths(e: Engine, prompts: readonly number[][], which: readonly number[], steps: number): Promise<Map<number, PathRecord>> {
  const V = e.config.vocabSize;
  const ids = which.map((i) => e.createPath(prompts[i], { temperature: 1, seed: 100 + i }));
  const out = new Map(which.map((i) => [i, { tokens: [] as number[], logits: [] as Float32Array[] }]));
  for (let s = 0; s < steps; s++) {
    const r = (await e.step({ logits: true }))!;
    r.results.forEach((res, k) => {
      const o = out.get(which[ids.indexOf(res.pathId)])!;
      o.tokens.push(res.token);
      o.logits.push(r.logits!.slice(k * V, (k + 1) * V));
    });
  }
  return out;
}
