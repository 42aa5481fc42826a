// Dispatches per layer of one step, per residual layout and norm kind (issue 15: at most 5 per Llama layer; the README
// states each family's count and why). Counted by running the model's bound ops on a pass
// encoder that only counts dispatchWorkgroups, so every dispatch an op makes (a weight in several chunks or parts
// would add some) is seen, at a decode step (1 row) and a prefill chunk (17 rows: other matmul variants).
import { describe, expect, it } from 'vitest';
import { GpuModel } from '../../src/model/gpu_model.js';
import { downSplits } from '../../src/model/projections.js';
import { PREFILL_MIN_M } from '../../src/kernels/matmul.js';
import { GEMMA3_270M, GPT2_124M, QWEN3_06B, SMOLLM2_360M, randomModelWeights, withSpec } from '../../src/model/random_weights.js';
import { onLlvmpipe } from '../../src/gpu/adapters.js';
import { validateSpec, type ModelSpec, type ResidualSpec } from '../../src/model/spec.js';
import type { ModelWeights } from '../../src/model/spec.js';
import type { WeightMatrix } from '../../src/weights/stored_matrix.js';
import { encodeForward } from '../../src/model/forward.js';
import type { StepPlan } from '../../src/sched/step_plan.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { randomWeights } from '../ref/quant_random.js';
import { mulberry32 } from '../ref/random.js';

const small = (s: ModelSpec) => withSpec(s, { nLayers: 2, vocabSize: 300, maxSeqLen: 64 });
const withResidual = (s: ModelSpec, residual: ResidualSpec, family: ModelSpec['family']): ModelSpec =>
  validateSpec({ ...small(s), family, residual }, `${family} ${residual.layout}`);

/** A pass encoder that records nothing but how many dispatches were encoded. */
function countingPass(): { pass: GPUComputePassEncoder; count: () => number } {
  let n = 0;
  const pass = new Proxy({} as GPUComputePassEncoder, {
    get: (_, key) => (key === 'dispatchWorkgroups' ? () => void n++ : () => undefined),
  });
  return { pass, count: () => n };
}

// [name, spec, dispatches per layer, dispatches of the head (gather .. token_stats)], each with why:
const CASES: { name: string; spec: ModelSpec; perLayer: number; head: number }[] = ([
  // Pre-norm RMS (Llama, Mistral, Qwen 2, SmolLM, Phi-3, Granite): qkv (norm folded in, RoPE and the KV write in its
  // epilogue), attention, o (+h), gate_up (norm folded in), down (activation folded in, +h). Head: gather, lm_head
  // (final norm folded in), token_stats.
  ['llama (sequential, RMSNorm)', small(SMOLLM2_360M), 5, 3],
  // A q/k norm needs whole heads, which a matmul invocation does not hold: rope_kv stays a dispatch (Qwen 3, Gemma 3,
  // OLMo 2).
  ['qwen3 (q/k norm)', small(QWEN3_06B), 6, 3],
  // Sandwich (Gemma 2/3): the post-norms normalise a whole projected row before adding it, which a matmul epilogue
  // (one invocation per few columns) cannot: attn_post_norm and mlp_post_norm stay dispatches; Gemma 3's q/k norm
  // keeps rope_kv (Gemma 2, without one, has 7).
  ['gemma3 (sandwich, q/k norm)', small(GEMMA3_270M), 8, 3],
  // Post-norm without a q/k norm: no pre-norm to fold, the two post-norm dispatches (OLMo 2's q/k norm adds rope_kv: 8).
  ['post-norm', withResidual(SMOLLM2_360M, { layout: 'post-norm', sharedNorm: false, scale: 1 }, 'olmo2'), 7, 3],
  // LayerNorm with bias (GPT-2): attn_norm and mlp_norm stay dispatches (mean, variance and bias are not folded), and
  // so does the final norm: gather, final_norm, lm_head, token_stats. Learned positions: the KV write is in the qkv
  // epilogue all the same.
  ['gpt2 (sequential, LayerNorm)', small(GPT2_124M), 7, 4],
  // Parallel with LayerNorm (GPT-NeoX): both norms read h before attention adds: attn_norm, mlp_norm, qkv, attention,
  // o, gate_up, down.
  ['gpt_neox (parallel, LayerNorm)', withResidual(GPT2_124M, { layout: 'parallel', sharedNorm: false, scale: 1 }, 'gpt_neox'), 7, 4],
  // Parallel with one shared LayerNorm (GPT-J, Phi-2): one norm dispatch.
  ['parallel, shared LayerNorm', withResidual(GPT2_124M, { layout: 'parallel', sharedNorm: true, scale: 1 }, 'gpt_neox'), 6, 4],
  // Parallel with RMSNorm: both norms folded; gate_up runs right after qkv, before o adds to h.
  ['parallel, RMSNorm', withResidual(SMOLLM2_360M, { layout: 'parallel', sharedNorm: false, scale: 1 }, 'llama'), 5, 3],
] as const).map(([name, spec, perLayer, head]) => ({ name, spec, perLayer, head }));

/** `w` with every matrix (rows, cols) in Q4_0: random blocks, the same shapes. */
function inQ4_0(w: ModelWeights, vType: 'Q4_0' | 'Q8_0' = 'Q4_0'): ModelWeights {
  const rand = mulberry32(5);
  const q = (_: WeightMatrix, rows: number, cols: number, type: 'Q4_0' | 'Q8_0' = 'Q4_0'): WeightMatrix => {
    const bytes = randomWeights(type, rows, cols, rand);
    return { type, rows, cols, bytes: () => bytes };
  };
  const s = w.spec;
  const [D, F] = [s.dim, s.mlp.hiddenDim];
  const [qDim, kvDim] = [s.attention.nHeads * s.attention.headDim, s.attention.nKvHeads * s.attention.headDim];
  const embed = q(w.embed, s.vocabSize, D);
  const layers = w.layers.map((l) => ({ ...l, wq: q(l.wq, qDim, D), wk: q(l.wk, kvDim, D), wv: q(l.wv, kvDim, D, vType), wo: q(l.wo, D, qDim), wGate: q(l.wGate!, F, D), wUp: q(l.wUp, F, D), wDown: q(l.wDown, D, F) }));
  return { ...w, embed, layers, lmHead: embed };
}

// The count depends on the adapter only through the down projection of wide steps (see below), so one adapter is enough.
describe(`dispatches per layer on ${testAdapterChoices()[0]}`, () => {
  it.each(CASES)('$name: $perLayer per layer, $head in the head', async ({ spec, perLayer, head }) => {
    const gpu = await gpuFor(testAdapterChoices()[0]);
    const model = new GpuModel(gpu, randomModelWeights(spec, 1), { maxRows: 17, maxSamples: 4, kvPages: 4 });
    try {
      for (const rows of [1, 17]) {
        // One more in wide steps on CPU adapters: the register-blocked down projection reads act(gate) * up from an
        // mlp_act dispatch instead of loading gate and up for each of its rows (model/gpu_model.ts, downOp).
        const s = model.spec;
        const want = perLayer + (rows >= PREFILL_MIN_M && gpu.isCpu && downSplits(rows, s.mlp.hiddenDim, s.dim) ? 1 : 0);
        // These shapes are all large enough to split at 17 rows: the count below checks the split itself.
        if (gpu.isCpu && rows === 17) expect(downSplits(rows, s.mlp.hiddenDim, s.dim)).toBe(true);
        for (const layer of model.kernels.layers) {
          const c = countingPass();
          for (const op of layer) op.run(c.pass, rows, 1);
          expect(c.count(), `${rows} rows: ${layer.map((o) => o.name).join(', ')}`).toBe(want);
        }
      }
      const c = countingPass();
      for (const op of model.kernels.head) op.run(c.pass, 1, 1);
      expect(c.count(), model.kernels.head.map((o) => o.name).join(', ')).toBe(head);
    } finally {
      model.destroy();
    }
  });

  // A Llama layer on Q4_0 weights: on 8-bit activations (the default) q|k|v, gate|up and down quantize their input in
  // a dispatch of their own (kernels/quantize_x8.ts; quantizing inside each matmul invocation cost 1.5-2.2x the matmul
  // time on llvmpipe, bench/RESULTS.md "Weights"), the out-projection reads the attention's output on 8 bits (per-head
  // attention in its loop form writes it: PagedAttention quantizeOut), so 5 + 3 per layer and the LM head's one more;
  // on llvmpipe a one-row step's gate|up writes down's x on 8 bits in its epilogue (kernels/act_q8_epilogue.ts), so
  // down's quantize_x8 goes, and o hands x over to gate|up and down to the next layer's q|k|v (kernels/x8_handoff.ts),
  // whose quantize dispatches go too: at one row there 6 in the first layer (its q|k|v reads the embedding), 5 in the
  // others, the F32 model's count. With activations 'f32' the counts of the F32 model.
  it.each([
    ['q8', 8, 4],
    ['f32', 5, 3],
  ] as const)('llama on Q4_0 weights, activations %s: %i per layer, %i in the head', async (activations, perLayer, head) => {
    const gpu = await gpuFor(testAdapterChoices()[0]);
    const model = new GpuModel(gpu, inQ4_0(randomModelWeights(small(SMOLLM2_360M), 1)), { maxRows: 17, maxSamples: 4, kvPages: 4, activations });
    try {
      expect(model.weights.layers[0].wDown.parts[0].type).toBe('Q4_0');
      expect(model.attention.quantizesOut).toBe(activations === 'q8');
      const actQ8 = activations === 'q8' && onLlvmpipe(gpu);
      for (const rows of [1, 17]) {
        for (const [l, layer] of model.kernels.layers.entries()) {
          const c = countingPass();
          for (const op of layer) op.run(c.pass, rows, 1);
          // On f32 activations wide steps on CPU adapters split the down projection as above; on 8-bit ones never (its
          // quantize_x8 pass computes act(gate) * up once per value).
          const split = activations === 'f32' && rows >= PREFILL_MIN_M && gpu.isCpu ? 1 : 0;
          const oneRow = actQ8 && rows === 1 ? (l === 0 ? 2 : 3) : 0;
          expect(c.count(), `layer ${l}, ${rows} rows`).toBe(perLayer + split - oneRow);
        }
      }
      const c = countingPass();
      for (const op of model.kernels.head) op.run(c.pass, 1, 1);
      expect(c.count()).toBe(head);
    } finally {
      model.destroy();
    }
  });

  // A q|k|v stored in two 8-bit types (Q4_0 q and k, Q8_0 v, as llama-quantize's Q4_K_M mixes attn_v): one matmul per
  // part, but the second part reads the x the first quantized (QMatmul xqReady): 8 + 1, not 8 + 2; at one row on
  // llvmpipe both parts read the x the previous layer's down projection handed over, and as above gate|up and down
  // quantize nothing: 9 - 3.
  it('llama with a Q8_0 attn_v beside Q4_0 q and k: one quantize_x8 for the fused q|k|v, 9 per layer', async () => {
    const gpu = await gpuFor(testAdapterChoices()[0]);
    const model = new GpuModel(gpu, inQ4_0(randomModelWeights(small(SMOLLM2_360M), 1), 'Q8_0'), { maxRows: 17, maxSamples: 4, kvPages: 4 });
    try {
      expect(model.weights.layers[0].wqkv.parts.map((p) => p.type)).toEqual(['Q4_0', 'Q8_0']);
      for (const rows of [1, 17]) {
        const c = countingPass();
        for (const op of model.kernels.layers[1]) op.run(c.pass, rows, 1);
        expect(c.count(), `${rows} rows`).toBe(rows === 1 && onLlvmpipe(gpu) ? 6 : 9);
      }
    } finally {
      model.destroy();
    }
  });
});

// A whole decode step (model/forward.ts encodeForward) of a small F32 Llama (stories260K's shape) on a CPU adapter:
// its layers in one fused dispatch (kernels/decode_fused.ts) and the head reading the decode rows in place (no gather):
// 1 + 2 dispatches for 1 or 2 decode rows; 3 rows take the layered forward (1 + 5 L) and a prefill step the gather.
// (The layered count of a 17-row step may hold one more per layer: main's mlp_act dispatch of wide steps.)
describe(`dispatches per step on ${testAdapterChoices()[0]}`, () => {
  it('a decode step of a small F32 Llama: 3; more rows or a prefill: the layered count', async () => {
    const gpu = await gpuFor(testAdapterChoices()[0]);
    const base = small(SMOLLM2_360M);
    const spec = validateSpec(
      {
        ...base, dim: 64, nLayers: 5, vocabSize: 512,
        attention: { ...base.attention, nHeads: 8, nKvHeads: 4, headDim: 8, queryScale: 8 ** -0.5 },
        mlp: { ...base.mlp, hiddenDim: 172 },
        layers: Array.from({ length: 5 }, () => ({ ...base.layers[0], rope: { ...base.layers[0].rope!, rotaryDim: 8 } })),
      },
      'stories260K shape',
    );
    const model = new GpuModel(gpu, randomModelWeights(spec, 1), { maxRows: 17, maxSamples: 4, kvPages: 4 });
    try {
      expect(model.decodeFusedRefusal).toBeNull();
      const count = (rows: number, paths: number, samples: number) => {
        const c = countingPass();
        const plan = { rows, paths, samples, maxPages: 1, sampleRow: Uint32Array.from({ length: samples }, (_, i) => (paths === rows ? i : rows - 1)) };
        encodeForward(model, c.pass, plan as unknown as StepPlan);
        return c.count();
      };
      // The layered forward's own count at R rows (wide steps may add a dispatch per layer: the README's counts).
      const layered = (rows: number) => {
        const c = countingPass();
        for (const layer of model.kernels.layers) for (const op of layer) op.run(c.pass, rows, 1);
        return 1 + c.count();
      };
      expect(count(1, 1, 1)).toBe(3);
      expect(count(2, 2, 2)).toBe(3);
      expect(layered(3)).toBe(1 + 5 * 5);
      expect(count(3, 3, 3)).toBe(layered(3) + 2);
      expect(count(17, 1, 1)).toBe(layered(17) + 3);
      // A stories260K-sized down projection does not split up to 17 rows (DOWN_SPLIT_MIN_WORK): 1 + 5 L; on llvmpipe
      // (Node and Chromium's GL route) o, gate|up and down of such rows run as one mlp_block dispatch from PREFILL_MIN_M rows on
      // (model/mlp_block_op.ts): 1 + 3 L there, and 1 + 5 L below.
      expect(downSplits(17, 172, 64)).toBe(false);
      const blocks = onLlvmpipe(gpu);
      expect(layered(17)).toBe(1 + (blocks ? 3 : 5) * 5);
      expect(layered(PREFILL_MIN_M)).toBe(1 + (blocks ? 3 : 5) * 5);
      expect(layered(PREFILL_MIN_M - 1)).toBe(1 + 5 * 5);
    } finally {
      model.destroy();
    }
  });
});
