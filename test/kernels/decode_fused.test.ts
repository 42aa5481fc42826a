// The fused decode (kernels/decode_fused.ts: a decode step's layers in one dispatch) against the layered forward it
// replaces, bit for bit, and against the float64 spec forward, on small Llama-shaped specs with uneven shapes: 6 query
// heads on 2 KV heads of dim 12, D = 44, F = 60, a layer with partial rotary dims and a NoPE layer, SiLU and GELU, over
// prompts that cross pages; steps of one and two decode rows run fused, prefill steps layered.
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { DecodeFused, decodeFusedIterations, decodeFusedRefusal, DECODE_FUSED_LOOP_BUDGET } from '../../src/kernels/decode_fused.js';
import { KvCache } from '../../src/kv/kv_cache.js';
import { ROPE_EPILOGUE_STORAGE_BUFFERS } from '../../src/kernels/y_epilogue.js';
import { fusedStep, runStep, samplesInPlace } from '../../src/model/forward.js';
import { measureDecodeFused } from '../../src/model/decode_fused_choice.js';
import { GpuModel } from '../../src/model/gpu_model.js';
import { QWEN3_06B, SMOLLM2_360M, randomModelWeights, withSpec } from '../../src/model/random_weights.js';
import { validateSpec, type ModelSpec } from '../../src/model/spec.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { readF32 } from '../../src/gpu/readback.js';
import { specRefForward } from '../ref/spec_forward.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { row, rowError, stepAllRows } from '../model/step_helpers.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import { isNode } from '../../src/gpu/adapters.js';

const rope = (rotaryDim: number) => ({ theta: 1e4, rotaryDim, scaling: { type: 'default' as const }, attentionFactor: 1, freqFactors: null });

function tinyLlama(activation: 'silu' | 'gelu_tanh'): ModelSpec {
  const base = SMOLLM2_360M;
  return validateSpec(
    {
      ...base,
      dim: 44,
      vocabSize: 97,
      nLayers: 3,
      maxSeqLen: 80,
      attention: { ...base.attention, nHeads: 6, nKvHeads: 2, headDim: 12, queryScale: 12 ** -0.5 },
      mlp: { ...base.mlp, hiddenDim: 60, activation },
      layers: [
        { attention: 'global', window: null, rope: rope(12) },
        { attention: 'global', window: null, rope: rope(8) }, // partial rotary: 4 of 6 pairs
        { attention: 'global', window: null, rope: null }, // NoPE
      ],
      bosTokenId: 1,
      eosTokenIds: [2],
    },
    `tiny llama ${activation}`,
  );
}

// Same argument as test/model/random_spec_forward.test.ts: N(0, 0.02) weights, f32 accumulation over K <= 60 terms
// errs by ~1e-6 of the row's largest logit; 5e-5 leaves headroom, and a wrong head, rotation or norm errs by > 1e-2.
const TOL = 5e-5;

describe.each(testAdapterChoices())('fused decode on %s', (choice) => {
  const models: GpuModel[] = [];
  afterAll(() => models.forEach((m) => m.destroy()));

  it.each(['silu', 'gelu_tanh'] as const)('equals the layered forward bit for bit and float64 within tolerance (%s)', async (act) => {
    const gpu = await gpuFor(choice);
    const spec = tinyLlama(act);
    const seed = testSeed();
    const weights = randomModelWeights(spec, seed);
    const opts = { maxRows: 32, maxSamples: 32, kvPages: 12 };
    // 'any-adapter': in the page llvmpipe and SwiftShader cannot be told from a GPU; the kernel runs there all the same.
    const fused = new GpuModel(gpu, weights, { ...opts, decodeFused: 'any-adapter' });
    const layered = new GpuModel(gpu, weights, { ...opts, decodeFused: false });
    models.push(fused, layered);
    if (gpu.limits.maxStorageBuffersPerShaderStage < ROPE_EPILOGUE_STORAGE_BUFFERS) {
      // Chromium's SwiftShader (10 per stage): q|k|v is not uploaded pair-ordered, so the layered forward runs.
      expect(fused.decodeFusedRefusal).toMatch(/RoPE runs in its own dispatch/);
      return;
    }
    expect(fused.decodeFusedRefusal, 'the tiny Llama should run fused').toBeNull();
    expect(fused.decodeFused).not.toBeNull();
    expect(layered.decodeFused).toBeNull();

    const rand = mulberry32(seed);
    const prompt = (n: number) => [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rand() * (spec.vocabSize - 3)))];
    const prompts = [prompt(21), prompt(5)];
    const drive = (m: GpuModel) => {
      const sched = new Scheduler(new KvCache({ numPages: m.kvPages, pageSize: m.pageSize }), { maxRowsPerStep: 32 });
      const ids = prompts.map((p) => sched.addRequest(p).id);
      return { sched, ids };
    };
    const a = drive(fused);
    const b = drive(layered);
    // Path 0's logits at each position (float64 check afterwards).
    const logitsAt = new Map<number, Float32Array>();
    let fusedSteps = 0;
    const rowsSeen = new Set<number>();
    for (let s = 0; s < 14; s++) {
      if (s === 8) {
        // From here path 1 is finished: one-row steps.
        a.sched.finish(a.ids[1]);
        b.sched.finish(b.ids[1]);
      }
      const ra = await stepAllRows(fused, a.sched);
      const rb = await stepAllRows(layered, b.sched);
      if (fusedStep(ra.plan)) (fusedSteps++, rowsSeen.add(ra.plan.rows));
      expect(ra.logits.length).toBe(rb.logits.length);
      let differ = 0;
      for (let i = 0; i < ra.logits.length; i++) if (ra.logits[i] !== rb.logits[i]) differ++;
      expect(differ, `step ${s} (${ra.plan.rows} rows, fused ${fusedStep(ra.plan)}) seed ${seed}`).toBe(0);
      const V = spec.vocabSize;
      for (let r = 0; r < ra.plan.rows; r++) {
        if (ra.plan.pathIds[ra.plan.rowPath[r]] !== a.ids[0]) continue;
        logitsAt.set(ra.plan.positions[r], row(ra.logits, r, V).slice());
      }
    }
    expect(fusedSteps, 'decode steps of 2 and then 1 rows ran fused').toBeGreaterThanOrEqual(12);
    expect([...rowsSeen].sort()).toEqual([1, 2]);
    // The KV pools too: every layer's K/V of every position, bit for bit.
    for (let l = 0; l < spec.nLayers; l++) {
      const n = (fused.kvPages * fused.pageBytes) / 4;
      const ka = await readF32(gpu, fused.kv[l], n);
      const kb = await readF32(gpu, layered.kv[l], n);
      let differ = 0;
      for (let i = 0; i < n; i++) if (ka[i] !== kb[i]) differ++;
      expect(differ, `layer ${l} KV seed ${seed}`).toBe(0);
    }
    const tokens = a.sched.path(a.ids[0]).tokens;
    const want = specRefForward(weights, tokens.slice(0, -1));
    let worst = 0;
    for (const [pos, got] of logitsAt) worst = Math.max(worst, rowError(got, want[pos]));
    expect(logitsAt.size).toBe(tokens.length - 1);
    expect(worst, `seed ${seed}`).toBeLessThanOrEqual(TOL);
  });

  it('the head reads decode rows in place with the bits it gets through the gather', async () => {
    const gpu = await gpuFor(choice);
    const spec = tinyLlama('silu');
    const m = new GpuModel(gpu, randomModelWeights(spec, testSeed()), { maxRows: 32, maxSamples: 32, kvPages: 12, decodeFused: 'any-adapter' });
    models.push(m);
    const sched = new Scheduler(new KvCache({ numPages: m.kvPages, pageSize: m.pageSize }), { maxRowsPerStep: 32 });
    sched.addRequest([1, 7, 9, 11, 13]);
    sched.addRequest([1, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38]);
    await stepAllRows(m, sched); // both prompts: layered
    const plan = sched.plan()!;
    expect(plan.rows).toBe(2);
    const greedy = { temperature: 0, topP: 1, randomBits: 0, nSamples: 1 };
    const V = spec.vocabSize;
    const inOrder = await runStep(m, plan, [greedy, greedy], { logits: true });
    expect(samplesInPlace(plan)).toBe(true);
    const swapped = { ...plan, sampleRow: Uint32Array.from([1, 0]), samplePath: Uint32Array.from([plan.samplePath[1], plan.samplePath[0]]) };
    expect(samplesInPlace(swapped)).toBe(false);
    const gathered = await runStep(m, swapped, [greedy, greedy], { logits: true });
    for (const [a, b] of [[0, 1], [1, 0]])
      expect(Array.from(row(inOrder.logits!, a, V)), `row ${a}`).toEqual(Array.from(row(gathered.logits!, b, V)));
    sched.commit(plan, [5, 6]);
  });
});

// Whether a model runs fused depends on its spec and weights, not on which CPU adapter: one adapter is enough.
describe(`fused decode refusals on ${testAdapterChoices()[0]}`, () => {
  const models: GpuModel[] = [];
  afterAll(() => models.forEach((m) => m.destroy()));
  const choice = testAdapterChoices()[0];

  it('is refused, with the reason, where it does not apply', async () => {
    const gpu = await gpuFor(choice);
    const small = (s: ModelSpec) => withSpec(s, { nLayers: 2, vocabSize: 97, maxSeqLen: 64 });
    const qk = new GpuModel(gpu, randomModelWeights(small(QWEN3_06B), 1), { maxRows: 4, maxSamples: 2, kvPages: 4 });
    models.push(qk);
    expect(qk.decodeFused).toBeNull();
    expect(qk.decodeFusedRefusal).toMatch(/q\/k norm/);
    // The default follows the adapter (model/decode_fused_rule.ts): on for CPU adapters, measured for one that names
    // nothing of itself, the layered forward on GPUs. Every adapter these tests run on names itself (Node's Dawn,
    // Chromium's SwiftShader) except Chromium's GL route, which the browser-gl project launches as users' pages get it.
    expect(gpu.anonymous).toBe(!isNode && choice === 'llvmpipe');
    const plain = new GpuModel(gpu, randomModelWeights(tinyLlama('silu'), 1), { maxRows: 4, maxSamples: 2, kvPages: 4 });
    models.push(plain);
    if (gpu.limits.maxStorageBuffersPerShaderStage < ROPE_EPILOGUE_STORAGE_BUFFERS) expect(plain.decodeFusedRefusal).toMatch(/RoPE runs in its own dispatch/);
    else if (gpu.isCpu) expect(plain.decodeFusedRefusal).toBeNull();
    else if (gpu.anonymous) expect(plain.decodeFusedRefusal).toMatch(/not measured yet/);
    else expect(plain.decodeFusedRefusal).toBe('not a CPU adapter (one workgroup per row suits only those)');
    const f16 = new GpuModel(gpu, randomModelWeights(tinyLlama('silu'), 1), { maxRows: 4, maxSamples: 2, kvPages: 4, weights: 'f16' });
    models.push(f16);
    expect(f16.decodeFusedRefusal).toMatch(/F32/);
    const shape = { dim: 44, hidden: 60, nHeads: 6, kvHeads: 2, headDim: 6, vocab: 97, pageSize: 16, pages: 4, eps: 1e-5, act: 'silu' as const, queryScale: 1, maxKeys: 64, layers: [{ rotaryHalf: 3, ropeScale: 1 }] };
    expect(() => new DecodeFused(gpu, shape)).toThrow(InvalidArgumentError);
    // 32 layers need 39 storage bindings, beyond every adapter here.
    const deep = { ...shape, headDim: 12, layers: Array.from({ length: 32 }, () => ({ rotaryHalf: 6, ropeScale: 1 })) };
    expect(decodeFusedRefusal(gpu, deep)).toMatch(/storage bindings/);
    // A context long enough to pass llvmpipe's loop limit is refused rather than silently cut short.
    const long = { ...shape, headDim: 12, layers: [{ rotaryHalf: 6, ropeScale: 1 }], maxKeys: 70_000 };
    expect(decodeFusedIterations(long)).toBeGreaterThan(DECODE_FUSED_LOOP_BUDGET);
    expect(() => new DecodeFused(gpu, long)).toThrow(/loop limit/);
  });
});

// decodeFused 'measure': the load-time choice (model/decode_fused_choice.ts) on the first test adapter.
describe(`fused decode measured at load on ${testAdapterChoices()[0]}`, () => {
  const models: GpuModel[] = [];
  afterAll(() => models.forEach((m) => m.destroy()));

  it('times both forms, keeps the faster, frees the other, and then decodes as the kept form does', async () => {
    const gpu = await gpuFor(testAdapterChoices()[0]);
    const spec = tinyLlama('silu');
    const weights = randomModelWeights(spec, testSeed());
    const opts = { maxRows: 8, maxSamples: 8, kvPages: 12 };
    const m = new GpuModel(gpu, weights, { ...opts, decodeFused: 'measure' });
    const layered = new GpuModel(gpu, weights, { ...opts, decodeFused: false });
    models.push(m, layered);
    if (gpu.limits.maxStorageBuffersPerShaderStage < ROPE_EPILOGUE_STORAGE_BUFFERS) {
      expect(m.decodeFusedPending).toBeNull();
      expect(await measureDecodeFused(m)).toBeNull();
      return;
    }
    expect(m.decodeFused, 'nothing runs fused before the measurement').toBeNull();
    expect(m.decodeFusedPending).not.toBeNull();
    expect(m.decodeFusedRefusal).toMatch(/not measured yet/);
    const r = (await measureDecodeFused(m))!;
    expect(r.fusedMs).toBeGreaterThan(0);
    expect(r.layeredMs).toBeGreaterThan(0);
    expect(r.kept).toBe(r.fusedMs < r.layeredMs);
    expect(m.decodeFusedMeasured).toEqual(r);
    expect(m.decodeFusedPending).toBeNull();
    expect(m.decodeFused !== null).toBe(r.kept);
    if (!r.kept) expect(m.decodeFusedRefusal).toMatch(/measured slower/);
    expect(await measureDecodeFused(m), 'a second call has nothing to measure').toBeNull();
    expect(() => m.settleDecodeFused(true, '', r)).toThrow(InvalidArgumentError);
    // The measurement wrote garbage K/V into the pool's first pages; a path written afterwards reads only its own.
    const drive = (g: GpuModel) => {
      const sched = new Scheduler(new KvCache({ numPages: g.kvPages, pageSize: g.pageSize }), { maxRowsPerStep: 8 });
      sched.addRequest([1, 5, 9, 13, 17, 21, 25]);
      return sched;
    };
    const a = drive(m);
    const b = drive(layered);
    for (let s = 0; s < 6; s++) {
      const ra = await stepAllRows(m, a);
      const rb = await stepAllRows(layered, b);
      expect(Array.from(ra.logits), `step ${s}`).toEqual(Array.from(rb.logits));
    }
  });
});
