// batched == single and fork == recompute on small random 8-bit models of uneven shapes and mixed types
// (test/ref/quant_mixed_model.ts): one-row steps on llvmpipe take act_q8 and the x hand-off, wider steps and a fresh
// path's prefill quantize_x8, and the logits must not tell them apart (found as probes by a review of both).
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import { validateSpec, type ModelSpec } from '../../src/model/spec.js';
import { gpuFor } from '../kernels/adapters.js';
import { mulberry32 } from '../ref/random.js';
import { batchedEqualsSingle, mixed, SPEC, TYPES } from '../ref/quant_mixed_model.js';

describe('batched == single, uneven shapes and a type mix (llvmpipe)', () => {
  it('D=96, F=160, 4 layers of mixed types, biases, random norm weights', async () => {
    const spec = SPEC(96, 160, 4);
    const pairs = await batchedEqualsSingle(mixed(spec, TYPES as never));
    // The mix must leave both kinds of hand-off active somewhere, or this would test only quantize_x8.
    expect(pairs.some((p) => p.o) && pairs.some((p) => p.down), JSON.stringify(pairs)).toBe(true);
  }, 300_000);
});

describe('other families on 8 bits (llvmpipe)', () => {
  const Q = { q: 'Q8_0', k: 'Q4_0', v: 'Q8_0', o: 'Q5_0', gate: 'Q4_0', up: 'Q4_0', down: 'Q8_0' } as const;
  it('Qwen 3-like (q/k norm: rope_kv op, q|k|v reads the hand-off), Gemma offset, gelu_tanh', async () => {
    const base = SPEC(96, 160, 3);
    const spec = validateSpec({
      ...base, family: 'qwen3',
      norm: { kind: 'rms', eps: 1e-6, weightOffset: 1, bias: false },
      attention: { ...base.attention, qkNorm: 'head' },
      mlp: { ...base.mlp, activation: 'gelu_tanh' },
    } as ModelSpec, 'probe-qwen3');
    await batchedEqualsSingle(mixed(spec, [Q]), 6);
  }, 300_000);
  it('Gemma 3-like sandwich norms (no hand-off, act_q8 with a post-norm)', async () => {
    const base = SPEC(96, 160, 3);
    const spec = validateSpec({ ...base, family: 'gemma3', residual: { layout: 'sandwich', sharedNorm: false, scale: 1 } } as ModelSpec, 'probe-gemma3');
    await batchedEqualsSingle(mixed(spec, [Q]), 6);
  }, 300_000);
});

it('fork at several positions equals recomputing, bit for bit', async () => {
  const gpu = await gpuFor('llvmpipe');
  const w = mixed(SPEC(96, 160, 3), [
    { q: 'Q4_0', k: 'Q4_0', v: 'Q8_0', o: 'Q8_0', gate: 'Q4_0', up: 'Q4_0', down: 'Q8_0' },
    { q: 'Q5_0', k: 'Q5_0', v: 'Q5_0', o: 'Q4_1', gate: 'Q8_0', up: 'Q8_0', down: 'Q5_0' },
  ]);
  const V = w.spec.vocabSize;
  const rand = mulberry32(9);
  const prompt = [1, ...Array.from({ length: 20 }, () => 3 + Math.floor(rand() * (V - 3)))];
  const engine = await Engine.fromWeights(w, null, { gpu, kvPages: 64, maxRows: 64, maxSamples: 8 });
  const scratch = await Engine.fromWeights(w, null, { gpu, kvPages: 64, maxRows: 64, maxSamples: 8 });
  const parent = engine.createPath(prompt, { temperature: 0 });
  for (let s = 0; s < 8; s++) await engine.step();
  const toks = [...engine.path(parent).tokens];
  engine.finish(parent);
  for (const keep of [5, 16, 21, 26]) {
    const child = engine.fork(parent, { keep });
    const fresh = scratch.createPath(toks.slice(0, keep), { temperature: 0 });
    for (let s = 0; s < 3; s++) {
      const a = (await engine.step({ logits: true }))!;
      const b = (await scratch.step({ logits: true }))!;
      let diff = 0;
      for (let v = 0; v < V; v++) if (a.logits![v] !== b.logits![v]) diff++;
      expect(diff, `keep=${keep} step ${s}`).toBe(0);
    }
    engine.free(child);
    scratch.free(fresh);
  }
  engine.free(parent);
  engine.destroy();
  scratch.destroy();
}, 300_000);
