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
