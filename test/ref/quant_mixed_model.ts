// Small random 8-bit models with uneven shapes (D = 96, F = 160: neither a multiple of 64), random norm weights,
// biases and a per-layer type mix (Q4_0 / Q8_0 / Q5_0 / Q4_1 / F32 parts), so that one-row steps take act_q8 and the
// x hand-off where the rules allow and wider steps quantize_x8; and batched == single over them (a review's probes).
import { expect } from 'vitest';
import { Engine } from '../../src/engine.js';
import { validateSpec, type ModelSpec, type ModelWeights } from '../../src/model/spec.js';
import { randomModelWeights } from '../../src/model/random_weights.js';
import { handoffPairs } from '../../src/model/projections.js';
import type { WeightMatrix } from '../../src/weights/stored_matrix.js';
import type { StorageType } from '../../src/weights/types.js';
import { randomWeights } from './quant_random.js';
import { mulberry32, randomF32 } from './random.js';
import { gpuFor } from '../kernels/adapters.js';
import { stepPaths } from './step_paths.js';

const rope = { theta: 1e4, rotaryDim: 32, scaling: { type: 'default' as const }, attentionFactor: 1, freqFactors: null };
export const SPEC = (D: number, F: number, nLayers: number, extra: Partial<ModelSpec> = {}): ModelSpec => validateSpec({
  family: 'llama', sourceArchitecture: 'LlamaForCausalLM', dim: D, vocabSize: 300, nLayers, maxSeqLen: 128,
  norm: { kind: 'rms', eps: 1e-5, weightOffset: 0, bias: false },
  attention: { nHeads: D / 32, nKvHeads: 1, headDim: 32, bias: { q: true, k: true, v: true, o: true }, qkNorm: null, queryScale: 32 ** -0.5, softCap: null },
  mlp: { hiddenDim: F, activation: 'silu', gated: true, bias: { gate: true, up: true, down: true } },
  residual: { layout: 'sequential', sharedNorm: false, scale: 1 },
  positions: 'rope', layers: Array.from({ length: nLayers }, () => ({ attention: 'global' as const, window: null, rope })),
  embedScale: 1, logitScale: 1, finalSoftCap: null, tiedEmbeddings: false, bosTokenId: 1, eosTokenIds: [2],
  ...extra,
} as ModelSpec, 'probe');

type T = StorageType | 'F32';
export function mixed(spec: ModelSpec, types: { q: T; k: T; v: T; o: T; gate: T; up: T; down: T }[], seed = 7): ModelWeights {
  const w = randomModelWeights(spec, seed, { std: 0.08, biasStd: 0.05 });
  const rand = mulberry32(seed);
  const q = (m: WeightMatrix, rows: number, cols: number, type: T): WeightMatrix => {
    if (type === 'F32') return m;
    const bytes = randomWeights(type, rows, cols, rand);
    return { type, rows, cols, bytes: () => bytes };
  };
  const s = spec;
  const [D, F] = [s.dim, s.mlp.hiddenDim];
  const [qDim, kvDim] = [s.attention.nHeads * s.attention.headDim, s.attention.nKvHeads * s.attention.headDim];
  const g = () => Float32Array.from(randomF32(rand, D, 0.4), (v) => 1 + v);
  const layers = w.layers.map((l, i) => {
    const t = types[i % types.length];
    return {
      ...l,
      attnNorm: l.attnNorm && { ...l.attnNorm, weight: g() },
      mlpNorm: l.mlpNorm && { ...l.mlpNorm, weight: g() },
      wq: q(l.wq, qDim, D, t.q), wk: q(l.wk, kvDim, D, t.k), wv: q(l.wv, kvDim, D, t.v), wo: q(l.wo, D, qDim, t.o),
      wGate: q(l.wGate!, F, D, t.gate), wUp: q(l.wUp, F, D, t.up), wDown: q(l.wDown, D, F, t.down),
    };
  });
  return { ...w, layers, finalNorm: { ...w.finalNorm, weight: g() } };
}

export const TYPES = [
  { q: 'Q4_0', k: 'Q4_0', v: 'Q8_0', o: 'Q8_0', gate: 'Q4_0', up: 'Q4_0', down: 'Q8_0' },
  { q: 'Q5_0', k: 'Q5_0', v: 'Q5_0', o: 'Q4_1', gate: 'Q8_0', up: 'Q8_0', down: 'Q5_0' },
  { q: 'F32', k: 'F32', v: 'F32', o: 'Q4_0', gate: 'Q8_0', up: 'Q4_0', down: 'Q4_0' },
  { q: 'Q8_0', k: 'Q8_0', v: 'Q8_0', o: 'Q8_0', gate: 'Q4_0', up: 'Q4_0', down: 'Q8_0' },
] as const;

/** Steps four paths together and two of them alone; asserts the same logits bit for bit. Returns the hand-off pairs. */
export async function batchedEqualsSingle(w: ModelWeights, steps = 8): Promise<{ o: boolean; down: boolean }[]> {
  const gpu = await gpuFor('llvmpipe');
  const V = w.spec.vocabSize;
  const rand = mulberry32(3);
  const prompts = Array.from({ length: 4 }, (_, i) => [1, ...Array.from({ length: 3 + 2 * i }, () => 3 + Math.floor(rand() * (V - 3)))]);
  async function run(which: number[]) {
    const e = await Engine.fromWeights(w, null, { gpu, kvPages: 64, maxRows: 64, maxSamples: 8 });
    const pairs = handoffPairs(gpu, e.model.spec, e.model.weights.layers, e.model.activations);
    const out = await stepPaths(e, prompts, which, steps);
    e.destroy();
    return { out, pairs };
  }
  const together = await run([0, 1, 2, 3]);
  for (const i of [0, 3]) {
    const alone = await run([i]);
    const a = alone.out.get(i)!;
    const b = together.out.get(i)!;
    for (let s = 0; s < steps; s++) {
      let differing = 0;
      let maxd = 0;
      for (let v = 0; v < V; v++) if (a.logits[s][v] !== b.logits[s][v]) { differing++; maxd = Math.max(maxd, Math.abs(a.logits[s][v] - b.logits[s][v])); }
      expect(differing, `path ${i} step ${s} (max diff ${maxd}) pairs ${JSON.stringify(alone.pairs)}`).toBe(0);
    }
    expect(a.tokens).toEqual(b.tokens);
  }
  return together.pairs;
}

