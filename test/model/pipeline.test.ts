// Step instrumentation (engine.onStep, read by bench/idle.ts): one trace per forward step, carrying the plan that ran
// and timestamps in order, so the GPU-idle report adds up to the engine's own counters.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type StepTrace } from '../../src/engine.js';
import { gpuFor } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';

describe('engine step traces', () => {
  const engines: Engine[] = [];
  afterAll(() => engines.forEach((e) => e.destroy()));

  it('one trace per step, with the plan that ran and ordered timestamps', async () => {
    const loaded = await loadStories('hf');
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages: 64, maxSamples: 8 });
    engines.push(e);
    const traces: StepTrace[] = [];
    e.onStep = (t) => traces.push(t);
    e.createPath([1, 403, 407, 261, 378], { temperature: 0.9, seed: 3 });
    await e.step();
    e.createPath([1, 403, 407], { temperature: 0 }); // a 3-row prefill beside a decode row: plans of different shapes
    for (let i = 0; i < 4; i++) await e.step();
    expect(traces.length).toBe(e.stats.steps);
    expect(traces.map((t) => t.plan.rows)).toEqual([5, 4, 2, 2, 2]);
    expect(traces.reduce((s, t) => s + t.plan.rows, 0)).toBe(e.stats.rows);
    for (const [i, t] of traces.entries()) {
      expect(t.sampling.length).toBe(t.plan.samples);
      expect(t.startMs).toBeLessThanOrEqual(t.submitMs);
      expect(t.submitMs).toBeLessThanOrEqual(t.endMs);
      if (i > 0) expect(traces[i - 1].endMs).toBeLessThanOrEqual(t.startMs);
    }
    e.freeAll();
  });
});

describe('GPU timestamps of steps (bench/idle.ts on adapters with timestamp-query)', () => {
  it('each step carries its forward pass\'s GPU start and end, in queue order, pipelined too', async () => {
    const { createGpu } = await import('../../src/gpu/device.js');
    const gpu = await createGpu({ adapter: 'swiftshader', timestamps: true });
    const loaded = await loadStories('hf');
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 64, maxSamples: 8, pipeline: true });
    try {
      // SwiftShader offers timestamp-query (CI installs it); the device has it exactly when the adapter does.
      expect(gpu.timestamps).toBe(gpu.adapter.features.has('timestamp-query'));
      expect(gpu.timestamps).toBe(true);
      e.timestampSteps = true;
      const traces: StepTrace[] = [];
      e.onStep = (t) => traces.push(t);
      e.createPath([1, 403, 407, 261], { temperature: 0.9, seed: 2 });
      for (let i = 0; i < 5; i++) await e.step();
      expect(traces.length).toBe(5);
      for (const [i, t] of traces.entries()) {
        expect(t.gpuNs![1]).toBeGreaterThan(t.gpuNs![0]);
        if (i > 0) expect(t.gpuNs![0]).toBeGreaterThanOrEqual(traces[i - 1].gpuNs![1]);
      }
      e.freeAll();
    } finally {
      e.destroy();
      gpu.destroy();
    }
  });
});

// Pipelined steps (EngineOptions.pipeline): step t+1 is submitted before step t's stats are read, fed on the GPU with
// each path's first draw. Everything a controller sees must be what synchronous steps give: the same tokens and stats
// bit for bit (same plans, same rows, same random words), the same counters and pages. Each case runs twice, off and
// on, and also checks that the speculation really ran (pipelineStats), so the equality is not vacuous.
describe('pipelined steps equal synchronous ones', () => {
  const engines: Engine[] = [];
  afterAll(() => engines.forEach((e) => e.destroy()));
  async function engineWith(pipeline: boolean, kvPages = 256): Promise<Engine> {
    const loaded = await loadStories('hf');
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages, maxSamples: 16, pipeline });
    engines.push(e);
    return e;
  }
  const counters = (e: Engine) => ({ ...e.stats, pagesInUse: e.pagesInUse });

  it('decode with finishes at different steps, a free, and a fork from a speculated path', async () => {
    const run = async (pipeline: boolean) => {
      const e = await engineWith(pipeline);
      const log: unknown[] = [];
      const ids = [0, 1, 2, 3].map((i) => e.createPath([1, 403, 407, 261 + i * 7], { temperature: 0.9, seed: 5 }, { root: i }));
      const len = new Map(ids.map((id, i) => [id, 6 + 5 * i]));
      let forked = false;
      for (let step = 0; step < 40; step++) {
        const r = await e.step();
        if (!r) break;
        for (const res of r.results) {
          log.push([step, res.pathId, res.token, res.position, res.stats.sampledLogprobs[0], res.stats.entropy]);
          if (res.position >= len.get(res.pathId)!) e.finish(res.pathId);
        }
        if (step === 9) e.free(ids[3]);
        if (step === 4 && !forked) {
          // a sibling of a path whose next row is already in flight: the fork is at the position it was sampled
          len.set(e.fork(ids[2], { nextToken: 300, sibling: 1 }), 25);
          forked = true;
        }
        log.push(counters(e));
      }
      const out = { log, tokens: e.sched.paths().map((p) => p.tokens), stats: counters(e), pipe: e.pipelineStats };
      e.freeAll();
      expect(e.pagesInUse).toBe(0);
      return out;
    };
    const off = await run(false);
    const on = await run(true);
    expect(on.log).toEqual(off.log);
    expect(on.tokens).toEqual(off.tokens);
    expect(on.stats).toEqual(off.stats);
    expect(off.pipe.confirmed).toBe(0);
    expect(on.pipe.confirmed).toBeGreaterThan(10);
    expect(on.pipe.abandoned).toBeGreaterThan(0); // the fork, the finishes, the free
    expect(on.pipe.undoneRows).toBeGreaterThan(0); // the finishes
  });

  it('EAB exact-N and confidence-peak branching give the same trees, tokens and accounting', async () => {
    const { runEab } = await import('../../src/branch/eab.js');
    const { runPeaks } = await import('../../src/branch/peaks.js');
    const run = async (pipeline: boolean) => {
      const e = await engineWith(pipeline, 512);
      const prompt = e.tokenizer!.encode('Once upon a time, there was a little dog');
      const eab = await runEab(e, prompt, { num_samples: 8, max_new_tokens: 30, entropy_threshold: 0.35, seed: 11 });
      const peaks = await runPeaks(e, prompt, { initial_traces: 2, max_traces: 6, max_new_tokens: 24, seed: 4 });
      return { eab: { samples: eab.samples, tree: eab.tree, stats: eab.stats }, peaks: { traces: peaks.traces, stats: peaks.stats }, stats: counters(e), pipe: e.pipelineStats };
    };
    const off = await run(false);
    const on = await run(true);
    // Everything but wall-clock fields (ms, tokens_per_s).
    const json = (v: unknown) => JSON.stringify(v, (k, x: unknown) => (k === 'ms' || k === 'tokens_per_s' || k === 'wall_ms' ? undefined : x));
    expect(json(on.eab) === json(off.eab), 'EAB result, pipeline on vs off').toBe(true);
    expect(json(on.peaks) === json(off.peaks), 'peaks result, pipeline on vs off').toBe(true);
    expect(on.stats).toEqual(off.stats);
    expect(on.pipe.confirmed).toBeGreaterThan(10);
  });

  it('a speculative row never takes a page holding a cached prompt prefix (a later prompt reuses it as without)', async () => {
    // 3 pages of 16 tokens. Prompt A (17 tokens) fills page 0 (cached) and part of page 1, then is freed: the free list
    // is [2, 0, 1]. Prompt B (16 tokens) fills page 2; its first decode row needs a new page, and the next free one is
    // page 0 with A's prefix. B finishes after its first token, so a row speculated onto page 0 would be undone and
    // the page would come back without its cache entry: A again would be prefilled in 17 rows instead of 1.
    const A = [1, 403, 407, 261, 378, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311];
    const B = [1, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 400, 401, 402];
    const run = async (pipeline: boolean) => {
      const e = await engineWith(pipeline, 3);
      const a = e.createPath(A, { temperature: 0 });
      await e.step();
      e.free(a);
      const b = e.createPath(B, { temperature: 0 });
      await e.step();
      e.finish(b);
      const a2 = e.createPath(A, { temperature: 0 });
      const reused = e.path(a2).reusedTokens;
      const r = await e.step();
      const out = { reused, rows: e.stats.rows, token: r?.results[0].token, stats: counters(e), pipe: e.pipelineStats };
      e.freeAll();
      return out;
    };
    const off = await run(false);
    const on = await run(true);
    expect(off.reused).toBe(16);
    expect(off.rows).toBe(17 + 16 + 1);
    expect(on.reused).toBe(off.reused);
    expect(on.rows).toBe(off.rows);
    expect(on.token).toBe(off.token);
    expect(on.stats).toEqual(off.stats);
    expect(on.pipe.speculated).toBeGreaterThan(0); // A's first step was speculated on (its next row stays in page 1)
  });

  it('sessions and the OpenAI API (n, stop strings, logprobs) give the same choices', async () => {
    const run = async (pipeline: boolean) => {
      const e = await engineWith(pipeline);
      const [a, b] = await Promise.all([
        e.completions.create({ prompt: 'Once upon a time', n: 3, max_tokens: 24, temperature: 0.9, seed: 7, stop: ['.'], logprobs: 2 }),
        e.completions.create({ prompt: 'Lily saw a', n: 2, max_tokens: 16, temperature: 1, seed: 9 }),
      ]);
      const strip = (r: typeof a) => r.choices.map((c) => ({ text: c.text, finish: c.finish_reason, lp: c.logprobs }));
      return { a: strip(a), b: strip(b), usage: [a.usage, b.usage], stats: counters(e), pipe: e.pipelineStats };
    };
    const off = await run(false);
    const on = await run(true);
    expect(on.a).toEqual(off.a);
    expect(on.b).toEqual(off.b);
    expect(on.usage).toEqual(off.usage);
    expect(on.stats).toEqual(off.stats);
    expect(on.pipe.confirmed).toBeGreaterThan(0);
  });
});
