// Confidence-peak prefix branching on the GPU engine with stories260K: branches are page-table forks at an earlier
// position of a finished trace, so a branch's first new token must be drawn from exactly the distribution a
// from-scratch forward over prompt + prefix gives; the seed's metadata checks; exact accounting; every page released.
// One adapter by default (llvmpipe) to stay within seconds; FORKLM_TEST_ADAPTERS picks others.
import { afterAll, describe, expect, it } from 'vitest';
import { tokenConfidence } from '../../src/branch/confidence.js';
import { onlinePeaks, runPeaks, type PeaksResult, type PeaksTrace } from '../../src/branch/peaks.js';
import { Engine } from '../../src/engine.js';
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';
import { row, rowError } from './step_helpers.js';

const choices: AdapterChoice[] = process.env.FORKLM_TEST_ADAPTERS ? testAdapterChoices() : ['llvmpipe'];

// batch_fork.test.ts's bound: each computation of a position's logits is within 2e-5 (of the row's largest |logit|)
// of the float64 forward, so two computations (a 1-row decode in a batch vs a prefill chunk) agree within 4e-5.
const LOGITS_TOL = 4e-5;
// token_stats sums 20 f32 log-probs on the GPU; the host sums the same f32 values in float64: ~20 ulps of ~10.
const CONF_TOL = 1e-4;

const RUN = {
  initial_traces: 2,
  max_traces: 8,
  max_new_tokens: 64,
  temperature: 0.9,
  confidence_threshold: 6.5,
  peak_window: 6,
  min_peak_distance: 6,
  peaks_per_trace: 1,
  branches_per_peak: 2,
  max_depth: 2,
  seed: 3,
} as const;

function checkTraces(r: PeaksResult, prefix: boolean): void {
  const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
  const fields: (keyof PeaksTrace)[] = [
    'trace_id', 'parent_id', 'depth', 'branch_point', 'prefix_length', 'branch_history', 'text', 'token_ids',
    'num_tokens', 'confs', 'new_tokens', 'stop_reason',
  ];
  for (const t of r.traces) {
    for (const f of fields) expect(t[f], `${t.trace_id}.${f}`).not.toBeUndefined();
    expect(t.text.length).toBeGreaterThan(0);
    expect(t.num_tokens).toBe(t.token_ids.length);
    expect(t.confs.length).toBe(t.num_tokens);
    expect(t.new_tokens).toBe(t.num_tokens - t.prefix_length);
    expect(t.branch_history.length).toBe(t.depth);
    if (t.parent_id === null) continue;
    const p = byId.get(t.parent_id)!;
    expect(t.depth).toBe(p.depth + 1);
    expect(t.branch_point).toBeGreaterThan(0);
    expect(t.branch_point).toBeLessThan(p.num_tokens);
    expect(t.branch_history.at(-1)).toMatchObject({ step: t.branch_point, parent_trace: p.trace_id });
    expect(t.branch_history.at(-1)!.confidence).toBeGreaterThanOrEqual(RUN.confidence_threshold);
    if (prefix) {
      expect(t.prefix_length).toBe(t.branch_point);
      expect(t.token_ids.slice(0, t.branch_point)).toEqual(p.token_ids.slice(0, t.branch_point));
    } else expect(t.prefix_length).toBe(0);
  }
  expect(r.traces.reduce((a, t) => a + t.tokens_computed, 0)).toBe(r.stats.tokens_computed);
}

describe.each(choices)('confidence-peak branching on stories260K (%s)', (choice) => {
  const engines: Engine[] = [];
  afterAll(() => engines.forEach((e) => e.destroy()));

  async function engineOn(kvPages: number): Promise<Engine> {
    const loaded = await loadStories('hf');
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor(choice), kvPages, maxSamples: 32 });
    engines.push(e);
    return e;
  }

  it('branches continue their parent exactly: same prefix, from-scratch logits at the first new token', async () => {
    const engine = await engineOn(256);
    const tok = engine.tokenizer!;
    const prompt = tok.encode('Once upon a time');
    const V = engine.config.vocabSize;
    const pages0 = engine.pagesInUse;
    const firstLogits = new Map<number, Float32Array>();
    let confErr = 0;
    let records = 0;
    const r = await runPeaks(engine, prompt, {
      ...RUN,
      logits: true,
      onStep: ({ results, logits }) =>
        results.forEach((res, s) => {
          if (!firstLogits.has(res.pathId)) firstLogits.set(res.pathId, row(logits!, s, V).slice());
          confErr = Math.max(confErr, Math.abs(res.stats.confidence - tokenConfidence(res.stats.topLogprobs)) / res.stats.confidence);
          records++;
        }),
    });
    expect(engine.pagesInUse).toBe(pages0);
    expect(records).toBeGreaterThan(0);
    expect(confErr, 'GPU confidence vs -mean(top-20 log-probs)').toBeLessThanOrEqual(CONF_TOL);

    checkTraces(r, true);
    const branches = r.traces.filter((t) => t.depth > 0);
    expect(branches.length).toBeGreaterThan(0);
    expect(r.stats.max_depth_reached).toBe(2);
    // Branches exist exactly where the online rule finds a peak (the budget does not bind for the roots here).
    for (const root of r.traces.filter((t) => t.depth === 0)) {
      const peaks = onlinePeaks({ confs: root.confs, branchPoint: 0, prefixLength: 0 }, r.params);
      const points = r.traces.filter((t) => t.parent_id === root.trace_id).map((t) => t.branch_point);
      expect([...new Set(points)], root.trace_id).toEqual(peaks.map((p) => p.branchPoint));
    }
    // Accounting: prefixes reused, so strictly fewer rows than re-encoding; forks cost one row each plus new tokens.
    expect(r.stats.tokens_computed).toBeLessThan(r.stats.tokens_reencode);
    expect(r.stats.tokens_computed).toBe(
      r.traces.filter((t) => t.depth === 0).reduce((a, t) => a + prompt.length + t.num_tokens - 1, 0) +
        branches.reduce((a, t) => a + t.new_tokens, 0),
    );
    expect(r.stats.forks).toBe(branches.length);

    // From scratch: a separate engine (its own page pool and prefix cache) prefills prompt + prefix.
    const fresh = await engineOn(64);
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    for (const t of branches) {
      const parent = byId.get(t.parent_id!)!;
      const id = fresh.createPath([...prompt, ...parent.token_ids.slice(0, t.branch_point)], { temperature: 0 });
      const step = await fresh.step({ logits: true });
      const scratch = row(step!.logits!, 0, V);
      const got = firstLogits.get(t.path_id)!;
      expect(rowError(got, scratch), `${t.trace_id} at ${t.branch_point}`).toBeLessThanOrEqual(LOGITS_TOL);
      // The distribution the branch drew its first token from is its parent's at that position.
      expect(Math.abs(t.confs[t.branch_point] - parent.confs[t.branch_point])).toBeLessThanOrEqual(CONF_TOL * parent.confs[t.branch_point]);
      fresh.free(id);
    }
    expect(fresh.pagesInUse).toBe(0);
  });

  it('simulated branching regenerates every row; prefix branching computes fewer for the same tree shape', async () => {
    const engine = await engineOn(256);
    const prompt = engine.tokenizer!.encode('Once upon a time');
    const sim = await runPeaks(engine, prompt, { ...RUN, regenerate: true });
    expect(engine.pagesInUse).toBe(0);
    checkTraces(sim, false);
    expect(sim.stats.branch_traces).toBeGreaterThan(0);
    expect(sim.stats.forks).toBe(0);
    expect(sim.stats.tokens_computed + sim.stats.reused_prompt_tokens).toBe(sim.stats.tokens_reencode);

    const early = await runPeaks(engine, prompt, { ...RUN, early_stop: true, keep_percent: 10, group_window: 8 });
    expect(engine.pagesInUse).toBe(0);
    checkTraces(early, true);
    expect(early.stats.early_stop_bar).not.toBeNull();
    // A stopped trace was branched only at peaks it passed before the stop (online schedule).
    for (const t of early.traces.filter((x) => x.stop_reason === 'low_confidence'))
      for (const c of t.children) expect(early.traces.find((x) => x.trace_id === c)!.branch_point).toBeLessThan(t.num_tokens - 1);
  });
});
