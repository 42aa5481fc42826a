// Sessions: concurrent runs on one engine share its forward passes (continuous batching) and each gets what it would
// get alone. Before sessions, the second concurrent call failed with "plan() while a plan is in flight".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab, type EabResult } from '../../src/branch/eab.js';
import { runPeaks, type PeaksResult } from '../../src/branch/peaks.js';
import { Engine } from '../../src/engine.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { generate, type GenerateResult } from '../../src/generate.js';
import type { LoadedModel } from '../../src/model/load.js';
import { gpuFor } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';

let loaded: LoadedModel;
const engines: Engine[] = [];
async function fresh(options: { kvPages?: number; maxSamples?: number } = {}): Promise<Engine> {
  const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages: 512, ...options });
  engines.push(e);
  return e;
}
beforeAll(async () => {
  loaded = await loadStories('hf');
});
afterAll(() => engines.forEach((e) => e.destroy()));

const EAB = { max_new_tokens: 32, entropy_threshold: 0.35, branch_factor: 3, max_paths: 8 };
const eabKey = (r: EabResult) => JSON.stringify({ samples: r.samples, tree: r.tree, forks: r.stats.forks });
const genKey = (r: GenerateResult) => JSON.stringify({ tokens: r.tokens, logprobs: r.logprobs, finish: r.finishReason });
const peaksKey = (r: PeaksResult) => JSON.stringify(r.traces.map((t) => ({ ...t, path_id: undefined })));

describe('sessions on one engine', () => {
  it('two concurrent runEab equal their solo runs and share steps', async () => {
    const e = await fresh();
    const tok = e.tokenizer!;
    const pa = tok.encode('Once upon a time, there was a little dog');
    const pb = tok.encode('Lily saw a big red ball');
    const soloA = await runEab(e, pa, { ...EAB, seed: 5 });
    const soloB = await runEab(e, pb, { ...EAB, seed: 9 });
    const steps0 = e.stats.steps;
    const [a, b] = await Promise.all([runEab(e, pa, { ...EAB, seed: 5 }), runEab(e, pb, { ...EAB, seed: 9 })]);
    const shared = e.stats.steps - steps0;
    expect(eabKey(a)).toBe(eabKey(soloA));
    expect(eabKey(b)).toBe(eabKey(soloB));
    // Rows the session's paths needed: computed now or served by the prefix cache the solo runs left.
    expect(a.stats.token_steps + a.stats.reused_prompt_tokens).toBe(soloA.stats.token_steps + soloA.stats.reused_prompt_tokens);
    expect(b.stats.token_steps + b.stats.reused_prompt_tokens).toBe(soloB.stats.token_steps + soloB.stats.reused_prompt_tokens);
    // Each run counts the steps it took part in; sharing means the engine ran fewer than their sum (as many as the
    // longer run's when they stay in lockstep).
    expect(a.stats.steps).toBe(soloA.stats.steps);
    expect(b.stats.steps).toBe(soloB.stats.steps);
    expect(shared).toBe(Math.max(a.stats.steps, b.stats.steps));
    expect(e.pagesInUse).toBe(0);
  });

  it('two concurrent generate calls equal their solo runs and share steps; peaks beside them too', async () => {
    const e = await fresh();
    const tok = e.tokenizer!;
    const p1 = tok.encode('Once upon a time');
    const p2 = tok.encode('The cat');
    const g1 = await generate(e, p1, { maxNewTokens: 40, seed: 3, temperature: 0.9 });
    const g2 = await generate(e, p2, { maxNewTokens: 24, seed: 4 });
    const pk = await runPeaks(e, p2, { max_new_tokens: 24, initial_traces: 3, max_traces: 8, seed: 2 });
    const steps0 = e.stats.steps;
    const [c1, c2, cp] = await Promise.all([
      generate(e, p1, { maxNewTokens: 40, seed: 3, temperature: 0.9 }),
      generate(e, p2, { maxNewTokens: 24, seed: 4 }),
      runPeaks(e, p2, { max_new_tokens: 24, initial_traces: 3, max_traces: 8, seed: 2 }),
    ]);
    expect(genKey(c1)).toBe(genKey(g1));
    expect(genKey(c2)).toBe(genKey(g2));
    expect(peaksKey(cp)).toBe(peaksKey(pk));
    const solo = c1.tokens.length + c2.tokens.length + cp.stats.steps;
    expect(e.stats.steps - steps0).toBeLessThan(solo);
    expect(e.stats.steps - steps0).toBeGreaterThanOrEqual(Math.max(c1.tokens.length, cp.stats.steps));
    expect(e.pagesInUse).toBe(0);
  });

  it('a session that holds live paths without stepping delays the others by batchWaitMs, not forever', async () => {
    const e = await fresh();
    const idle = e.session();
    idle.createPath([1, 5, 6]);
    const alone = await generate(await fresh(), [1, 7, 8], { maxNewTokens: 6, seed: 1 });
    const r = await generate(e, [1, 7, 8], { maxNewTokens: 6, seed: 1 });
    expect(r.tokens).toEqual(alone.tokens);
    expect(idle.path(0).state).toBe('prefill');
    idle.close();
    expect(e.pagesInUse).toBe(0);
  });

  it('steps at most maxSamples paths at once: sessions beyond it wait for the next step, with the same results', async () => {
    const e = await fresh({ maxSamples: 8 });
    const tok = e.tokenizer!;
    const p = tok.encode('One day');
    const opts = { ...EAB, max_paths: 6, entropy_threshold: 0.2 };
    const soloA = await runEab(e, p, { ...opts, seed: 1 });
    const soloB = await runEab(e, p, { ...opts, seed: 2 });
    const [a, b] = await Promise.all([runEab(e, p, { ...opts, seed: 1 }), runEab(e, p, { ...opts, seed: 2 })]);
    expect(Math.max(soloA.stats.max_live_paths, soloB.stats.max_live_paths)).toBeGreaterThan(4); // the cap binds
    expect(eabKey(a)).toBe(eabKey(soloA));
    expect(eabKey(b)).toBe(eabKey(soloB));
    expect(e.pagesInUse).toBe(0);
  });

  it("a session sees only its own paths, and a closed session refuses work", async () => {
    const e = await fresh();
    const s1 = e.session();
    const s2 = e.session();
    const a = s1.createPath([1, 2, 3]);
    const b = s2.createPath([1, 4]);
    expect([a, b]).toEqual([0, 0]); // ids are per session
    expect(s2.path(b).tokens).toEqual([1, 4]);
    expect(() => s2.path(1)).toThrow(InvalidArgumentError);
    const [r1, r2] = await Promise.all([s1.step(), s2.step()]);
    expect(r1!.results.map((r) => r.pathId)).toEqual([0]);
    expect(r2!.results.map((r) => r.pathId)).toEqual([0]);
    expect(s1.counters().steps).toBe(1);
    expect(s1.counters().rows).toBe(3);
    expect(s2.counters().rows).toBe(2);
    s1.close();
    expect(() => s1.createPath([1])).toThrow(InvalidArgumentError);
    await expect(s1.step()).rejects.toThrow(InvalidArgumentError);
    expect(s2.path(b).tokens.length).toBe(3);
    s2.close();
    expect(e.pagesInUse).toBe(0);
  });
});
